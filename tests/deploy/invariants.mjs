// Checks what the schemas cannot see across the rendered objects: the
// gateway's config.yaml uses only documented keys and its listeners match the
// container ports, the probes and the preStop hook are the documented ones,
// the grace period covers preStop + drain_timeout, the pods are locked down,
// and every Service, NetworkPolicy, ServiceMonitor, PDB and HPA points at
// something that exists.
//
//   node invariants.mjs CONFIGURATION.md FILE...

import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, parseStream } from "./k8s_validate.mjs";

// docs/configuration.md table rows: | `key` | default | meaning |
export function documentedKeys(markdown) {
  const keys = new Set();
  for (const line of markdown.split("\n")) {
    const match = /^\|\s*`([a-z0-9_]+)`\s*\|/.exec(line);
    if (match) keys.add(match[1]);
  }
  return keys;
}

export function durationSeconds(text) {
  const match = /^([0-9]+)(ms|s|m|h)$/.exec(String(text));
  if (!match) return null;
  const value = Number(match[1]);
  return { ms: value / 1000, s: value, m: value * 60, h: value * 3600 }[match[2]];
}

function portOf(address) {
  const match = /:([0-9]+)$/.exec(String(address));
  return match ? Number(match[1]) : null;
}

const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([key, value]) => labels?.[key] === value);

function containerPort(container, port) {
  if (typeof port === "number") return port;
  return (container.ports || []).find((p) => p.name === port)?.containerPort ?? null;
}

function checkPodSecurity(where, podSpec, errors) {
  const pod = podSpec.securityContext || {};
  if (pod.runAsNonRoot !== true) errors.push(`${where}: pod securityContext.runAsNonRoot must be true`);
  if (pod.seccompProfile?.type !== "RuntimeDefault") errors.push(`${where}: pod seccompProfile must be RuntimeDefault`);
  if (podSpec.automountServiceAccountToken !== false) errors.push(`${where}: automountServiceAccountToken must be false`);
  if (podSpec.enableServiceLinks !== false) {
    errors.push(`${where}: enableServiceLinks must be false (Service variables would be WSGATEWAY_*)`);
  }
  for (const container of podSpec.containers || []) {
    const c = container.securityContext || {};
    const at = `${where} container ${container.name}`;
    if (c.allowPrivilegeEscalation !== false) errors.push(`${at}: allowPrivilegeEscalation must be false`);
    if (c.readOnlyRootFilesystem !== true) errors.push(`${at}: readOnlyRootFilesystem must be true`);
    if (!(c.capabilities?.drop || []).includes("ALL")) errors.push(`${at}: capabilities must drop ALL`);
    if (c.runAsNonRoot === false || c.privileged === true) errors.push(`${at}: must not run as root or privileged`);
    if (!container.resources?.requests) errors.push(`${at}: no resource requests`);
  }
}

function checkGateway(where, deployment, objects, configKeys, errors) {
  const podSpec = deployment.spec.template.spec;
  const container = podSpec.containers.find((c) => c.name === "wsgateway");
  const args = container.args || [];
  const configAt = args.indexOf("--config");
  if (configAt < 0 || !args[configAt + 1]) {
    errors.push(`${where}: the gateway is not started with --config FILE`);
    return;
  }
  const configPath = args[configAt + 1];
  const mount = (container.volumeMounts || []).find(
    (m) => (m.subPath && m.mountPath === configPath) || (!m.subPath && configPath.startsWith(`${m.mountPath}/`)),
  );
  const volume = mount && (podSpec.volumes || []).find((v) => v.name === mount.name);
  const configMapName = volume?.configMap?.name;
  const configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata?.name === configMapName);
  const key = mount?.subPath || configPath.slice((mount?.mountPath.length ?? 0) + 1);
  if (!configMap || typeof configMap.data?.[key] !== "string") {
    errors.push(`${where}: ${configPath} is not a key of a ConfigMap of the same render`);
    return;
  }
  let config;
  try {
    config = parseYaml(configMap.data[key]);
  } catch (error) {
    errors.push(`ConfigMap/${configMapName} ${key}: not YAML: ${error.message}`);
    return;
  }
  if (!config || typeof config !== "object" || Array.isArray(config)) {
    errors.push(`ConfigMap/${configMapName} ${key}: not a mapping`);
    return;
  }
  for (const name of Object.keys(config)) {
    if (!configKeys.has(name)) {
      errors.push(`ConfigMap/${configMapName}: key ${name} is not in docs/configuration.md (the gateway would refuse it)`);
    }
  }
  for (const [option, portName] of [["listen", "ws"], ["admin_listen", "grpc"], ["metrics_listen", "metrics"]]) {
    const want = containerPort(container, portName);
    if (want === null) errors.push(`${where}: no container port named ${portName}`);
    else if (portOf(config[option]) !== want) {
      errors.push(`${where}: ${option} (${config[option]}) does not listen on container port ${portName} (${want})`);
    }
  }
  if (/^(127\.|\[::1\]|localhost)/.test(String(config.admin_listen))) {
    errors.push(`${where}: admin_listen is loopback: no other pod could reach the admin API`);
  }
  const metricsPort = containerPort(container, "metrics");
  for (const [probe, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
    const get = container[probe]?.httpGet;
    if (!get || get.path !== path || containerPort(container, get.port) !== metricsPort) {
      errors.push(`${where}: ${probe} must be GET ${path} on the metrics port`);
    }
  }
  const drain = durationSeconds(config.drain_timeout ?? "25s");
  if (drain === null) errors.push(`ConfigMap/${configMapName}: drain_timeout ${config.drain_timeout} is not a duration`);
  const command = container.lifecycle?.preStop?.exec?.command;
  let preStop = 0;
  if (command) {
    if (command.length !== 2 || command[0] !== "/bin/sleep" || !/^[0-9]+$/.test(command[1])) {
      errors.push(`${where}: preStop must be ["/bin/sleep", "SECONDS"] (the image has no shell)`);
    } else {
      preStop = Number(command[1]);
    }
  }
  const grace = podSpec.terminationGracePeriodSeconds ?? 30;
  if (drain !== null && !(grace > preStop + drain)) {
    errors.push(`${where}: terminationGracePeriodSeconds ${grace} must exceed preStop ${preStop}s + drain_timeout ${drain}s`);
  }
}

export function checkObjects(objects, configKeys) {
  const errors = [];
  const deployments = objects.filter((o) => o.kind === "Deployment");
  const services = objects.filter((o) => o.kind === "Service");
  const gateways = deployments.filter((d) => d.spec.template.spec.containers.some((c) => c.name === "wsgateway"));
  if (gateways.length !== 1) errors.push(`expected one gateway Deployment, found ${gateways.length}`);
  for (const deployment of deployments) {
    const where = describe(deployment);
    checkPodSecurity(where, deployment.spec.template.spec, errors);
    if (!matches(deployment.spec.selector?.matchLabels, deployment.spec.template.metadata?.labels)) {
      errors.push(`${where}: selector does not match the pod labels`);
    }
  }
  for (const deployment of gateways) checkGateway(describe(deployment), deployment, objects, configKeys, errors);

  const podsOf = (selector) =>
    deployments.filter((d) => selector && Object.keys(selector).length && matches(selector, d.spec.template.metadata?.labels));
  for (const service of services) {
    const where = describe(service);
    const targets = podsOf(service.spec.selector);
    if (targets.length === 0) {
      errors.push(`${where}: selects no pods of the render`);
      continue;
    }
    for (const port of service.spec.ports || []) {
      const target = port.targetPort ?? port.port;
      for (const deployment of targets) {
        if (!deployment.spec.template.spec.containers.some((c) => containerPort(c, target) !== null)) {
          errors.push(`${where}: port ${port.name} targets ${target}, not a port of ${describe(deployment)}`);
        }
      }
    }
    if (/admin/.test(service.metadata.name) && (service.spec.type ?? "ClusterIP") !== "ClusterIP") {
      errors.push(`${where}: the admin Service must be ClusterIP`);
    }
  }
  for (const policy of objects.filter((o) => o.kind === "NetworkPolicy")) {
    const where = describe(policy);
    const pods = podsOf(policy.spec.podSelector?.matchLabels);
    if (pods.length === 0) errors.push(`${where}: selects no pods of the render`);
    for (const deployment of pods.filter((d) => gateways.includes(d))) {
      const adminRules = (policy.spec.ingress || []).filter((rule) =>
        (rule.ports || []).some((p) => p.port === "grpc" || p.port === containerPort(deployment.spec.template.spec.containers[0], "grpc")),
      );
      if (adminRules.length === 0) errors.push(`${where}: no rule for the admin port`);
      for (const rule of adminRules) {
        if (!rule.from || rule.from.length === 0) errors.push(`${where}: the admin port is open to everyone`);
      }
    }
  }
  for (const monitor of objects.filter((o) => o.kind === "ServiceMonitor")) {
    const where = describe(monitor);
    const selected = services.filter((s) => matches(monitor.spec.selector?.matchLabels, s.metadata.labels));
    if (selected.length === 0) errors.push(`${where}: selects no Service of the render`);
    for (const endpoint of monitor.spec.endpoints || []) {
      if (!selected.some((s) => (s.spec.ports || []).some((p) => p.name === endpoint.port))) {
        errors.push(`${where}: no selected Service has a port named ${endpoint.port}`);
      }
    }
  }
  for (const pdb of objects.filter((o) => o.kind === "PodDisruptionBudget")) {
    if (podsOf(pdb.spec.selector?.matchLabels).length === 0) errors.push(`${describe(pdb)}: selects no pods of the render`);
  }
  for (const hpa of objects.filter((o) => o.kind === "HorizontalPodAutoscaler")) {
    const ref = hpa.spec.scaleTargetRef;
    const target = deployments.find((d) => ref.kind === "Deployment" && d.metadata.name === ref.name);
    if (!target) errors.push(`${describe(hpa)}: scales ${ref.kind}/${ref.name}, not in the render`);
    else if (target.spec.replicas !== undefined) {
      errors.push(`${describe(hpa)}: ${describe(target)} sets replicas, which would fight the autoscaler`);
    }
  }
  return errors;
}

async function main([configurationFile, ...files]) {
  if (!configurationFile || files.length === 0) {
    console.error("usage: node invariants.mjs CONFIGURATION.md FILE...");
    return 2;
  }
  const configKeys = documentedKeys(readFileSync(configurationFile, "utf8"));
  let failures = 0;
  // The files given together are one render (e.g. deploy/kubernetes/*.yaml).
  const objects = [];
  for (const file of files) {
    for (const { object } of parseStream(readFileSync(file, "utf8"), file)) objects.push(object);
  }
  const errors = checkObjects(objects, configKeys);
  for (const error of errors) console.log(`FAIL ${error}`);
  failures += errors.length;
  console.log(`${objects.length} objects of ${files.length} file(s) cross-checked, ${failures} failure(s)`);
  return failures ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
