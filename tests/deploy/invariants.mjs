// Checks what the schemas cannot see across the rendered objects: the
// gateway's config.yaml uses only documented keys and its listeners match the
// container ports, the probes and the preStop hook are the documented ones,
// the grace period covers preStop + drain_timeout, the pods are locked down,
// every Service, NetworkPolicy, ServiceMonitor, PDB and HPA points at
// something that exists, and cluster mode is wired up: token and Redis
// password from mounted Secrets, the pod IP advertised, the bundled Redis
// named by cluster_redis, the cluster port in no Service and admitted by the
// NetworkPolicies only from the gateway's own pods.
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
  if (config.cluster_redis && portOf(config.cluster_listen ?? "0.0.0.0:50061") !== containerPort(container, "cluster")) {
    errors.push(`${where}: cluster_listen (${config.cluster_listen}) does not listen on container port cluster (${containerPort(container, "cluster")})`);
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
  return config;
}

// The Secret (name and key) a file of the container lies in, through a
// read-only Secret volume mounted as a folder, or a reason why it does not.
function secretOfFile(podSpec, container, file) {
  const mount = (container.volumeMounts || [])
    .filter((m) => !m.subPath && String(file).startsWith(`${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) return { error: `${file} is in no mounted volume` };
  const secret = (podSpec.volumes || []).find((v) => v.name === mount.name)?.secret;
  if (!secret?.secretName) return { error: `${file} is in volume ${mount.name}, not a Secret` };
  if (mount.readOnly !== true) return { error: `${file}: volume ${mount.name} is not mounted read-only` };
  const path = String(file).slice(mount.mountPath.length + 1);
  if (!secret.items) return { name: secret.secretName, key: path };
  const item = secret.items.find((i) => i.path === path);
  return item ? { name: secret.secretName, key: item.key } : { error: `${file}: no item of Secret ${secret.secretName} is mounted as ${path}` };
}

// redis://[user:password@]host[:port][/db] -> { host, port }.
function redisHostPort(url) {
  const match = /^redis:\/\/(?:[^@]*@)?(\[[^\]]+\]|[^:/]+)(?::([0-9]+))?(?:\/[0-9]+)?$/.exec(String(url));
  return match ? { host: match[1], port: Number(match[2] ?? 6379) } : null;
}

// The password of a redis:// URL as the gateway reads it: what follows the
// first ':' of the part before the last '@', or all of that part.
function redisPassword(url) {
  const rest = String(url).replace(/^redis:\/\//, "");
  const at = rest.lastIndexOf("@");
  if (at < 0) return "";
  const credentials = rest.slice(0, at);
  const colon = credentials.indexOf(":");
  return colon < 0 ? credentials : credentials.slice(colon + 1);
}

const isRedis = (deployment) => deployment.spec.template.spec.containers.some((c) => c.name === "redis");

// Whether a NetworkPolicy ingress rule covers a container port (a rule
// without ports covers them all).
function ruleCovers(rule, container, portName) {
  if (!rule.ports || rule.ports.length === 0) return true;
  const number = containerPort(container, portName);
  return rule.ports.some((p) => p.port === undefined || p.port === portName || p.port === number);
}

// Checks cluster mode across the objects: config is the gateway's parsed
// config.yaml (cluster mode is on when it sets cluster_redis).
function checkCluster(where, deployment, config, objects, deployments, podsOf, errors) {
  const podSpec = deployment.spec.template.spec;
  const container = podSpec.containers.find((c) => c.name === "wsgateway");
  const clusterPort = containerPort(container, "cluster");
  const gatewayLabels = deployment.spec.template.metadata?.labels;
  const services = objects.filter((o) => o.kind === "Service");
  const redisDeployments = deployments.filter(isRedis);

  // The cluster port is for the replicas alone, which dial pod IPs: a
  // Service would hand it to whoever can reach that Service.
  for (const service of services.filter((s) => podsOf(s.spec.selector).includes(deployment))) {
    for (const port of service.spec.ports || []) {
      const target = port.targetPort ?? port.port;
      if (port.name === "cluster" || (clusterPort !== null && (target === "cluster" || target === clusterPort))) {
        errors.push(`${describe(service)}: port ${port.name ?? port.port} exposes the cluster port`);
      }
    }
  }

  if (!config.cluster_redis) {
    if (clusterPort !== null) errors.push(`${where}: container port cluster without cluster_redis (cluster mode is off)`);
    for (const redis of redisDeployments) {
      errors.push(`${describe(redis)}: a bundled Redis renders, but the gateway is not in cluster mode (no cluster_redis)`);
    }
    return;
  }
  if (clusterPort === null) errors.push(`${where}: cluster mode without a container port named cluster`);

  // Token and password files come from read-only Secret mounts, never from
  // the ConfigMap.
  const secretFiles = {};
  for (const key of ["cluster_token_file", "cluster_redis_password_file"]) {
    if (!config[key]) {
      if (key === "cluster_token_file") errors.push(`${where}: cluster mode without cluster_token_file (the gateway refuses to start)`);
      continue;
    }
    const found = secretOfFile(podSpec, container, config[key]);
    if (found.error) {
      errors.push(`${where}: ${key} ${found.error}`);
      continue;
    }
    secretFiles[key] = found;
    const secret = objects.find((o) => o.kind === "Secret" && o.metadata?.name === found.name);
    if (secret && !(found.key in (secret.data || {})) && !(found.key in (secret.stringData || {}))) {
      errors.push(`${describe(secret)}: no key ${found.key}, which ${key} reads`);
    }
  }
  if (redisPassword(config.cluster_redis)) {
    errors.push(`${where}: cluster_redis carries a password, which the ConfigMap would hold in clear`);
  }

  // Each pod advertises its own IP: a fixed address would be the same for
  // every replica.
  const env = container.env || [];
  const envAt = (name) => env.findIndex((e) => e.name === name);
  const fieldOf = (name) => env[envAt(name)]?.valueFrom?.fieldRef?.fieldPath;
  if (fieldOf("POD_NAME") !== "metadata.name") errors.push(`${where}: env POD_NAME must come from metadata.name`);
  const advertise = env[envAt("WSGATEWAY_CLUSTER_ADVERTISE")]?.value;
  if (!advertise) {
    errors.push(`${where}: no WSGATEWAY_CLUSTER_ADVERTISE: the replicas would not know where to dial this pod`);
  } else {
    const ipVar = /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/.exec(advertise)?.[1];
    if (!ipVar || fieldOf(ipVar) !== "status.podIP" || envAt(ipVar) > envAt("WSGATEWAY_CLUSTER_ADVERTISE")) {
      errors.push(`${where}: WSGATEWAY_CLUSTER_ADVERTISE (${advertise}) must use $(VAR) of an earlier env from status.podIP`);
    }
    if (portOf(advertise) !== clusterPort) {
      errors.push(`${where}: WSGATEWAY_CLUSTER_ADVERTISE (${advertise}) is not on container port cluster (${clusterPort})`);
    }
  }

  // The bundled Redis is the one cluster_redis names, with the password the
  // gateway reads.
  const redisTarget = redisHostPort(config.cluster_redis);
  if (!redisTarget) errors.push(`${where}: cluster_redis ${config.cluster_redis} is not redis://host:port[/db]`);
  for (const redis of redisDeployments) {
    const service = services.find((s) => s.metadata.name === redisTarget?.host);
    if (!service || !podsOf(service.spec.selector).includes(redis)) {
      errors.push(`${where}: cluster_redis (${config.cluster_redis}) does not name the Service of the bundled ${describe(redis)}`);
    } else if (!(service.spec.ports || []).some((p) => p.port === redisTarget.port)) {
      errors.push(`${where}: cluster_redis port ${redisTarget.port} is not a port of ${describe(service)}`);
    }
    const redisContainer = redis.spec.template.spec.containers.find((c) => c.name === "redis");
    const args = [...(redisContainer.command || []), ...(redisContainer.args || [])];
    const passwordArg = args[args.indexOf("--requirepass") + 1];
    const passwordVar = args.includes("--requirepass") ? /^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$/.exec(passwordArg)?.[1] : null;
    const ref = (redisContainer.env || []).find((e) => e.name === passwordVar)?.valueFrom?.secretKeyRef;
    const file = secretFiles.cluster_redis_password_file;
    if (!ref) {
      errors.push(`${describe(redis)}: no --requirepass $(VAR) from a Secret: anyone who reaches it can write the membership`);
    } else if (!file || ref.name !== file.name || ref.key !== file.key) {
      errors.push(`${describe(redis)}: its password (${ref.name}/${ref.key}) is not the gateway's cluster_redis_password_file (${file ? `${file.name}/${file.key}` : "none"})`);
    }
  }

  // With NetworkPolicies on, the cluster port and the bundled Redis admit
  // the gateway's own pods (else the replicas cannot talk) and nothing else.
  const policies = objects.filter((o) => o.kind === "NetworkPolicy");
  const gatewayPolicies = policies.filter((p) => podsOf(p.spec.podSelector?.matchLabels).includes(deployment));
  if (gatewayPolicies.length === 0) return;
  // A peer admits only gateway pods when it is a podSelector of this
  // namespace holding every label of the gateway Deployment's selector (and
  // only labels its pods carry).
  const gatewaySelector = deployment.spec.selector?.matchLabels || {};
  const onlyGatewayPods = (rule) =>
    Array.isArray(rule.from) &&
    rule.from.length > 0 &&
    rule.from.every(
      (peer) =>
        Object.keys(peer).join() === "podSelector" &&
        Object.keys(peer.podSelector || {}).join() === "matchLabels" &&
        Object.keys(gatewaySelector).length > 0 &&
        matches(gatewaySelector, peer.podSelector.matchLabels) &&
        matches(peer.podSelector.matchLabels, gatewayLabels),
    );
  const checkPort = (policiesOf, target, targetContainer, portName, what) => {
    const rules = policiesOf.flatMap((p) => (p.spec.ingress || []).map((rule) => ({ p, rule })));
    const covering = rules.filter(({ rule }) => ruleCovers(rule, targetContainer, portName));
    if (covering.length === 0) errors.push(`${describe(target)}: no NetworkPolicy rule admits the gateway's pods to ${what}`);
    for (const { p, rule } of covering) {
      if (!onlyGatewayPods(rule)) errors.push(`${describe(p)}: ${what} is open to more than the gateway's own pods`);
    }
  };
  if (clusterPort !== null) checkPort(gatewayPolicies, deployment, container, "cluster", "the cluster port");
  for (const redis of redisDeployments) {
    const redisPolicies = policies.filter((p) => podsOf(p.spec.podSelector?.matchLabels).includes(redis));
    if (redisPolicies.length === 0) {
      errors.push(`${describe(redis)}: no NetworkPolicy, though the gateway has one: any pod could write the membership`);
      continue;
    }
    const redisContainer = redis.spec.template.spec.containers.find((c) => c.name === "redis");
    checkPort(redisPolicies, redis, redisContainer, "redis", "the bundled Redis");
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
  const podsOf = (selector) =>
    deployments.filter((d) => selector && Object.keys(selector).length && matches(selector, d.spec.template.metadata?.labels));
  for (const deployment of gateways) {
    const where = describe(deployment);
    const config = checkGateway(where, deployment, objects, configKeys, errors);
    if (config) checkCluster(where, deployment, config, objects, deployments, podsOf, errors);
  }
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
