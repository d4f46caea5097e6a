// Self-tests of the deployment checks: each check must reject what it is
// there to reject (a misspelled field, an undocumented metric, a grace period
// shorter than the drain, a cluster port in a Service), or a green
// scripts/check-deploy means nothing. The chart's refusals of cluster values
// are tested here too, with the Helm scripts/check-deploy installs.
//
//   node --test selftest.test.mjs

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { checkDashboard, documentedMetrics, isDocumented, metricNames } from "./grafana_check.mjs";
import { CHART_OWNED, compareKeys } from "./config_keys_check.mjs";
import { checkDockerfile } from "./dockerfile_check.mjs";
import { checkObjects, documentedKeys, durationSeconds } from "./invariants.mjs";
import { validateObject } from "./k8s_validate.mjs";

const deployment = () => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "gw", labels: { app: "gw", "example.com/any-label": "x" }, annotations: { "a/b": "c" } },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: "gw" } },
    template: {
      metadata: { labels: { app: "gw" } },
      spec: {
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        terminationGracePeriodSeconds: 35,
        securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } },
        containers: [
          {
            name: "wsgateway",
            image: "wsgateway:0.1.0",
            args: ["--config", "/etc/wsgateway/config.yaml"],
            ports: [
              { name: "ws", containerPort: 8080 },
              { name: "grpc", containerPort: 50051 },
              { name: "metrics", containerPort: 9100 },
            ],
            livenessProbe: { httpGet: { path: "/healthz", port: "metrics" } },
            readinessProbe: { httpGet: { path: "/readyz", port: "metrics" } },
            lifecycle: { preStop: { exec: { command: ["/bin/sleep", "5"] } } },
            resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "1Gi" } },
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ["ALL"] },
            },
            volumeMounts: [{ name: "config", mountPath: "/etc/wsgateway/config.yaml", subPath: "config.yaml" }],
          },
        ],
        volumes: [{ name: "config", configMap: { name: "gw" } }],
      },
    },
  },
});

const configMap = (config) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "gw" },
  data: { "config.yaml": config },
});

const goodConfig = "listen: 0.0.0.0:8080\nadmin_listen: 0.0.0.0:50051\nmetrics_listen: 0.0.0.0:9100\ndrain_timeout: 25s\n";
const keys = new Set(["listen", "admin_listen", "metrics_listen", "drain_timeout", "backend"]);

test("a valid Deployment passes", async () => {
  assert.deepEqual(await validateObject(deployment()), []);
});

test("a misspelled field is rejected", async () => {
  const object = deployment();
  const container = object.spec.template.spec.containers[0];
  container.livenesProbe = container.livenessProbe;
  delete container.livenessProbe;
  const errors = await validateObject(object);
  assert.equal(errors.length, 1, errors.join("\n"));
  assert.match(errors[0], /containers\/0\/livenesProbe: unknown field/);
});

test("unknown fields are found at every depth", async () => {
  const object = deployment();
  object.spec.replica = 3;
  object.spec.template.spec.securityContext.seccompProfile.typ = "RuntimeDefault";
  object.status2 = {};
  const errors = await validateObject(object);
  assert.equal(errors.length, 3, errors.join("\n"));
  assert.ok(errors.some((e) => e.startsWith("/spec/replica:")));
  assert.ok(errors.some((e) => e.startsWith("/spec/template/spec/securityContext/seccompProfile/typ:")));
  assert.ok(errors.some((e) => e.startsWith("/status2:")));
});

test("a wrong type and a missing required field are rejected", async () => {
  const object = deployment();
  object.spec.replicas = "two";
  delete object.spec.selector;
  const errors = await validateObject(object);
  assert.ok(errors.some((e) => e.startsWith("/spec/replicas")), errors.join("\n"));
  assert.ok(errors.some((e) => /selector/.test(e)), errors.join("\n"));
});

test("maps with free keys (labels, data, quantities) accept any key", async () => {
  assert.deepEqual(await validateObject(configMap("a: b")), []);
});

test("a ServiceMonitor is validated strictly against its CRD schema", async () => {
  const monitor = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: { name: "gw" },
    spec: { selector: { matchLabels: { app: "gw" } }, endpoints: [{ port: "metrics", path: "/metrics", interval: "30s" }] },
  };
  assert.deepEqual(await validateObject(monitor), []);
  monitor.spec.endpoints[0].intervall = "30s";
  const errors = await validateObject(monitor);
  assert.equal(errors.length, 1, errors.join("\n"));
  assert.match(errors[0], /endpoints\/0\/intervall: unknown field/);
});

test("an unknown kind or apiVersion is rejected", async () => {
  assert.match((await validateObject({ apiVersion: "apps/v1", kind: "Deploymnet", metadata: {} }))[0], /no schema/);
  assert.match((await validateObject({ apiVersion: "app/v1", kind: "Deployment", metadata: {} }))[0], /no schema/);
});

test("the cross-checks pass a consistent gateway", () => {
  assert.deepEqual(checkObjects([deployment(), configMap(goodConfig)], keys), []);
});

test("the cross-checks reject a grace period shorter than preStop + drain", () => {
  const object = deployment();
  object.spec.template.spec.terminationGracePeriodSeconds = 30;
  const errors = checkObjects([object, configMap(goodConfig)], keys);
  assert.ok(errors.some((e) => /terminationGracePeriodSeconds 30 must exceed/.test(e)), errors.join("\n"));
});

test("the cross-checks reject undocumented keys, port mismatches and a loopback admin listener", () => {
  const config = goodConfig.replace("0.0.0.0:50051", "127.0.0.1:50051").replace(":9100", ":9200") + "drain_timout: 5s\n";
  const errors = checkObjects([deployment(), configMap(config)], keys);
  assert.ok(errors.some((e) => /key drain_timout is not in docs/.test(e)), errors.join("\n"));
  assert.ok(errors.some((e) => /metrics_listen .* does not listen on container port metrics/.test(e)), errors.join("\n"));
  assert.ok(errors.some((e) => /admin_listen is loopback/.test(e)), errors.join("\n"));
});

test("the cross-checks reject a writable root filesystem and an admin port open to all", () => {
  const object = deployment();
  object.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false;
  const policy = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "gw" },
    spec: { podSelector: { matchLabels: { app: "gw" } }, ingress: [{ ports: [{ port: "grpc" }] }] },
  };
  const errors = checkObjects([object, configMap(goodConfig), policy], keys);
  assert.ok(errors.some((e) => /readOnlyRootFilesystem must be true/.test(e)), errors.join("\n"));
  assert.ok(errors.some((e) => /admin port is open to everyone/.test(e)), errors.join("\n"));
});

// Cluster mode as the chart renders it: the gateway with its token and Redis
// password Secrets, the bundled Redis and its Service, NetworkPolicies.
const clusterKeys = new Set([...keys, "cluster_redis", "cluster_redis_password_file", "cluster_key_prefix", "cluster_listen", "cluster_token_file"]);
const clusterConfig =
  goodConfig +
  "cluster_redis: redis://gw-redis:6379\ncluster_redis_password_file: /etc/wsgateway/cluster-redis/password\n" +
  "cluster_key_prefix: gw\ncluster_listen: 0.0.0.0:50061\ncluster_token_file: /etc/wsgateway/cluster-token/token\n";
const peer = (labels) => ({ podSelector: { matchLabels: labels } });
const secretVolume = (name, secretName, key) => ({ name, secret: { secretName, items: [{ key, path: key }] } });

function clusterObjects() {
  const gateway = deployment();
  const podSpec = gateway.spec.template.spec;
  const container = podSpec.containers[0];
  container.ports.push({ name: "cluster", containerPort: 50061 });
  container.env = [
    { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
    { name: "WSGATEWAY_CLUSTER_ADVERTISE", value: "$(POD_IP):50061" },
  ];
  container.volumeMounts.push(
    { name: "cluster-token", mountPath: "/etc/wsgateway/cluster-token", readOnly: true },
    { name: "cluster-redis", mountPath: "/etc/wsgateway/cluster-redis", readOnly: true },
  );
  podSpec.volumes.push(secretVolume("cluster-token", "gw-cluster-token", "token"), secretVolume("cluster-redis", "gw-redis", "password"));

  const redis = deployment();
  redis.metadata = { name: "gw-redis", labels: { app: "redis" } };
  redis.spec.selector.matchLabels = { app: "redis" };
  redis.spec.template.metadata.labels = { app: "redis" };
  redis.spec.template.spec.containers = [
    {
      name: "redis",
      image: "redis:7.0-alpine",
      command: ["redis-server"],
      args: ["--save", "", "--appendonly", "no", "--requirepass", "$(REDIS_PASSWORD)"],
      env: [{ name: "REDIS_PASSWORD", valueFrom: { secretKeyRef: { name: "gw-redis", key: "password" } } }],
      ports: [{ name: "redis", containerPort: 6379 }],
      resources: { requests: { cpu: "50m", memory: "32Mi" } },
      securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
    },
  ];
  redis.spec.template.spec.volumes = [];

  const service = (name, selector, ports) => ({ apiVersion: "v1", kind: "Service", metadata: { name }, spec: { selector, ports } });
  const policy = (name, selector, ingress) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name },
    spec: { podSelector: { matchLabels: selector }, ingress },
  });
  const secret = (name, key) => ({ apiVersion: "v1", kind: "Secret", metadata: { name }, data: { [key]: "c2VjcmV0" } });
  return [
    gateway,
    configMap(clusterConfig),
    redis,
    service("gw", { app: "gw" }, [{ name: "ws", port: 8080, targetPort: "ws" }]),
    service("gw-redis", { app: "redis" }, [{ name: "redis", port: 6379, targetPort: "redis" }]),
    policy("gw", { app: "gw" }, [
      { ports: [{ port: "ws" }] },
      { ports: [{ port: "grpc" }], from: [peer({ admin: "true" })] },
      { ports: [{ port: "cluster" }], from: [peer({ app: "gw" })] },
    ]),
    policy("gw-redis", { app: "redis" }, [{ ports: [{ port: "redis" }], from: [peer({ app: "gw" })] }]),
    secret("gw-cluster-token", "token"),
    secret("gw-redis", "password"),
  ];
}

const byKind = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const gatewayContainer = (objects) => byKind(objects, "Deployment", "gw").spec.template.spec.containers[0];
const assertRejected = (objects, pattern) => {
  const errors = checkObjects(objects, clusterKeys);
  assert.ok(errors.some((e) => pattern.test(e)), `${pattern}: ${errors.join("\n") || "no errors"}`);
};

test("the cross-checks pass a consistent cluster", () => {
  assert.deepEqual(checkObjects(clusterObjects(), clusterKeys), []);
});

test("the cross-checks reject the cluster port in a Service", () => {
  for (const port of [{ name: "cluster", port: 50061, targetPort: "cluster" }, { name: "peers", port: 80, targetPort: 50061 }]) {
    const objects = clusterObjects();
    byKind(objects, "Service", "gw").spec.ports.push(port);
    assertRejected(objects, /Service\/gw: port .* exposes the cluster port/);
  }
});

test("the cross-checks reject a cluster token or Redis password not read from a read-only Secret", () => {
  let objects = clusterObjects();
  gatewayContainer(objects).volumeMounts = gatewayContainer(objects).volumeMounts.filter((m) => m.name !== "cluster-token");
  assertRejected(objects, /cluster_token_file .* is in no mounted volume/);

  objects = clusterObjects();
  gatewayContainer(objects).volumeMounts.find((m) => m.name === "cluster-redis").readOnly = false;
  assertRejected(objects, /cluster_redis_password_file .* not mounted read-only/);

  objects = clusterObjects();
  byKind(objects, "ConfigMap", "gw").data["config.yaml"] = clusterConfig.replace("cluster-token/token", "cluster-token/tokens");
  assertRejected(objects, /cluster_token_file .* no item of Secret gw-cluster-token is mounted as tokens/);

  objects = clusterObjects();
  byKind(objects, "Secret", "gw-cluster-token").data = { tokens: "c2VjcmV0" };
  assertRejected(objects, /Secret\/gw-cluster-token: no key token/);

  objects = clusterObjects();
  byKind(objects, "ConfigMap", "gw").data["config.yaml"] = clusterConfig.replace(/cluster_token_file: .*\n/, "");
  assertRejected(objects, /cluster mode without cluster_token_file/);
});

test("the cross-checks reject a fixed or misnumbered advertised address and a missing POD_NAME", () => {
  let objects = clusterObjects();
  gatewayContainer(objects).env[2].value = "10.0.0.1:50061";
  assertRejected(objects, /WSGATEWAY_CLUSTER_ADVERTISE .* must use \$\(VAR\)/);

  objects = clusterObjects();
  gatewayContainer(objects).env[2].value = "$(POD_IP):50062";
  assertRejected(objects, /WSGATEWAY_CLUSTER_ADVERTISE .* is not on container port cluster/);

  objects = clusterObjects();
  gatewayContainer(objects).env.reverse();
  assertRejected(objects, /must use \$\(VAR\) of an earlier env/);

  objects = clusterObjects();
  gatewayContainer(objects).env.shift();
  assertRejected(objects, /env POD_NAME must come from metadata.name/);

  objects = clusterObjects();
  byKind(objects, "ConfigMap", "gw").data["config.yaml"] = clusterConfig.replace("0.0.0.0:50061", "0.0.0.0:50062");
  assertRejected(objects, /cluster_listen .* does not listen on container port cluster/);
});

test("the cross-checks reject a cluster_redis that is not the bundled Redis, or a Redis password not the gateway's", () => {
  let objects = clusterObjects();
  byKind(objects, "ConfigMap", "gw").data["config.yaml"] = clusterConfig.replace("redis://gw-redis:6379", "redis://other-redis:6379");
  assertRejected(objects, /cluster_redis .* does not name the Service of the bundled Deployment\/gw-redis/);

  objects = clusterObjects();
  byKind(objects, "ConfigMap", "gw").data["config.yaml"] = clusterConfig.replace("redis://gw-redis:6379", "redis://gw-redis:6380");
  assertRejected(objects, /cluster_redis port 6380 is not a port of Service\/gw-redis/);

  objects = clusterObjects();
  byKind(objects, "ConfigMap", "gw").data["config.yaml"] = clusterConfig.replace("redis://gw-redis", "redis://:hunter2@gw-redis");
  assertRejected(objects, /cluster_redis carries a password/);

  objects = clusterObjects();
  byKind(objects, "Deployment", "gw-redis").spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name = "other";
  assertRejected(objects, /its password \(other\/password\) is not the gateway's cluster_redis_password_file/);

  objects = clusterObjects();
  byKind(objects, "Deployment", "gw-redis").spec.template.spec.containers[0].args.splice(4, 2);
  assertRejected(objects, /no --requirepass/);
});

test("the cross-checks reject cluster objects without cluster mode", () => {
  const objects = clusterObjects();
  byKind(objects, "ConfigMap", "gw").data["config.yaml"] = goodConfig;
  assertRejected(objects, /container port cluster without cluster_redis/);
  assertRejected(objects, /a bundled Redis renders, but the gateway is not in cluster mode/);
});

test("the cross-checks reject a cluster port or bundled Redis open to more than the gateway's pods", () => {
  const gatewayPolicy = (objects) => byKind(objects, "NetworkPolicy", "gw").spec;
  for (const from of [undefined, [], [peer({ app: "gw" }), { namespaceSelector: {} }], [peer({})], [peer({ admin: "true" })]]) {
    const objects = clusterObjects();
    gatewayPolicy(objects).ingress[2].from = from;
    assertRejected(objects, /NetworkPolicy\/gw: the cluster port is open to more than the gateway's own pods/);
  }
  let objects = clusterObjects();
  gatewayPolicy(objects).ingress.push({ from: [{ ipBlock: { cidr: "10.0.0.0/8" } }] });
  assertRejected(objects, /the cluster port is open to more than the gateway's own pods/);

  objects = clusterObjects();
  gatewayPolicy(objects).ingress.splice(2, 1);
  assertRejected(objects, /Deployment\/gw: no NetworkPolicy rule admits the gateway's pods to the cluster port/);

  objects = clusterObjects();
  byKind(objects, "NetworkPolicy", "gw-redis").spec.ingress[0].from = [peer({ app: "redis" })];
  assertRejected(objects, /NetworkPolicy\/gw-redis: the bundled Redis is open to more than the gateway's own pods/);

  objects = clusterObjects().filter((o) => !(o.kind === "NetworkPolicy" && o.metadata.name === "gw-redis"));
  assertRejected(objects, /Deployment\/gw-redis: no NetworkPolicy, though the gateway has one/);
});

// The chart's own refusals of cluster values, with the Helm that
// scripts/check-deploy pins (it has installed it before running these).
const root = fileURLToPath(new URL("../..", import.meta.url));
function helmPath() {
  try {
    return execFileSync("scripts/check-deploy", ["--helm-path"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}
const helm = helmPath();
const helmTemplate = (...sets) =>
  spawnSync(helm, ["template", "x", "helm/wsgateway", ...sets.flatMap((set) => ["--set", set])], { cwd: root, encoding: "utf8" });

test("the chart refuses cluster values that would leave the replicas without a Redis or leak a password", { skip: !helm && "no Helm" }, () => {
  for (const [sets, pattern] of [
    [["cluster.redis.bundled.enabled=false"], /cluster.redis.bundled.enabled is false, but cluster.redis.url is empty/],
    [["cluster.redis.url=redis://redis.shared:6379"], /cluster.redis.url \(redis:\/\/redis.shared:6379\) is for an external Redis, but cluster.redis.bundled.enabled is true/],
    [["cluster.redis.bundled.enabled=false", "cluster.redis.url=redis://:hunter2@redis.shared:6379"], /cluster.redis.url: Does not match pattern/],
    [["cluster.keyPrefix=a{b"], /cluster.keyPrefix: Does not match pattern/],
    [["config.cluster_redis=redis://redis.shared:6379"], /Additional property cluster_redis is not allowed/],
    [["config.cluster_advertise=10.0.0.1:50061"], /Additional property cluster_advertise is not allowed/],
  ]) {
    const result = helmTemplate(...sets);
    assert.notEqual(result.status, 0, `${sets.join(" ")} rendered`);
    assert.match(result.stderr, pattern, sets.join(" "));
  }
  const external = helmTemplate("cluster.redis.bundled.enabled=false", "cluster.redis.url=redis://redis.shared:6379/2");
  assert.equal(external.status, 0, external.stderr);
  // No bundled Redis, nor a generated password for it.
  assert.doesNotMatch(external.stdout, /x-wsgateway-redis/);
});

test("the chart renders no cluster object with cluster.enabled=false", { skip: !helm && "no Helm" }, () => {
  const result = helmTemplate("cluster.enabled=false");
  assert.equal(result.status, 0, result.stderr);
  assert.doesNotMatch(result.stdout, /kind: Secret|redis|cluster_|POD_IP|name: cluster\b/);
});

test("documented configuration keys and durations are read as the gateway does", () => {
  assert.deepEqual([...documentedKeys("| key | default |\n|---|---|\n| `listen` | `0.0.0.0:8080` | x |\n")], ["listen"]);
  assert.equal(durationSeconds("25s"), 25);
  assert.equal(durationSeconds("1m"), 60);
  assert.equal(durationSeconds("1500ms"), 1.5);
  assert.equal(durationSeconds("25"), null);
});

const metricsDoc = [
  "| metric | type | labels | meaning |",
  "|---|---|---|---|",
  "| `wsgateway_connections` | gauge | `state` | x |",
  "| `wsgateway_admin_request_duration_seconds` | histogram | `method` | x |",
].join("\n");

test("metric names come from expressions, not from label matchers", () => {
  const names = metricNames('sum(rate(wsgateway_connections{wsgateway_fake="1", state=~"active"}[5m]))');
  assert.deepEqual([...names], ["wsgateway_connections"]);
});

test("histogram series count as their documented base metric", () => {
  const documented = documentedMetrics(metricsDoc);
  assert.ok(isDocumented("wsgateway_admin_request_duration_seconds_bucket", documented));
  assert.ok(!isDocumented("wsgateway_connections_bucket", documented));
  assert.ok(!isDocumented("wsgateway_connection", documented));
});

test("the dashboard check rejects undocumented metrics and baked-in data sources", () => {
  const ds = { type: "prometheus", uid: "${datasource}" };
  const dashboard = {
    title: "t",
    uid: "u",
    templating: {
      list: [
        { name: "datasource", type: "datasource", query: "prometheus" },
        { name: "instance", type: "query", datasource: ds, query: "label_values(wsgateway_connections, instance)" },
      ],
    },
    panels: [
      { id: 1, type: "timeseries", title: "ok", gridPos: {}, datasource: ds, targets: [{ refId: "A", datasource: ds, expr: "wsgateway_connections" }] },
      { id: 2, type: "timeseries", title: "bad", gridPos: {}, datasource: { uid: "abc" }, targets: [{ refId: "A", datasource: ds, expr: "wsgateway_conections" }] },
    ],
  };
  const { errors } = checkDashboard(dashboard, documentedMetrics(metricsDoc));
  assert.equal(errors.length, 2, errors.join("\n"));
  assert.ok(errors.some((e) => /panel 2 "bad": data source/.test(e)));
  assert.ok(errors.some((e) => /wsgateway_conections is not in docs/.test(e)));
});

test("the chart's config keys must match the documented ones", () => {
  const documented = new Set(["listen", "backend", "drain_timeout", "admin_tokens"]);
  assert.deepEqual(compareKeys(documented, new Set(["backend", "drain_timeout"])), []);
  const errors = compareKeys(documented, new Set(["backend", "drain_timout", "listen"]));
  assert.ok(errors.some((e) => /accepts config.drain_timout, which docs/.test(e)), errors.join("\n"));
  assert.ok(errors.some((e) => /documents drain_timeout, which the chart/.test(e)), errors.join("\n"));
  assert.ok(errors.some((e) => /accepts config.listen, which the chart sets/.test(e)), errors.join("\n"));
  assert.ok(CHART_OWNED.has("admin_tokens"));
  // The chart sets the cluster keys from its cluster values; config.* must
  // not contradict them.
  for (const key of ["cluster_redis", "cluster_redis_password_file", "cluster_key_prefix", "cluster_listen", "cluster_advertise", "cluster_token_file"]) {
    assert.ok(CHART_OWNED.has(key), key);
  }
});

const installDeps = "packages=(\n  build-essential cmake  # tools\n  libgrpc++-dev\n)\n";
const dockerfile = `ARG DEBIAN_RELEASE=bookworm
FROM debian:\${DEBIAN_RELEASE} AS build
RUN apt-get update \\
 && apt-get install -y --no-install-recommends \\
      build-essential cmake libgrpc++-dev \\
 && rm -rf /var/lib/apt/lists/*
RUN scripts/build release wsgateway echo_backend
FROM debian:\${DEBIAN_RELEASE}-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgrpc++1.51 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/wsgateway /usr/local/bin/wsgateway
COPY --from=build /src/build/examples/echo_backend /usr/local/bin/echo_backend
USER 65532:65532
EXPOSE 8080 9100 50051
ENTRYPOINT ["/usr/local/bin/wsgateway"]
`;

test("a conforming Dockerfile passes the static checks", () => {
  const { errors, build, runtime } = checkDockerfile(dockerfile, installDeps);
  assert.deepEqual(errors, []);
  assert.deepEqual(build, ["build-essential", "cmake", "libgrpc++-dev"]);
  assert.deepEqual(runtime, ["libgrpc++1.51"]);
});

test("the Dockerfile check rejects root, missing ports, -dev at run time and stray build packages", () => {
  const bad = dockerfile
    .replace("USER 65532:65532", "USER 0")
    .replace("EXPOSE 8080 9100 50051", "EXPOSE 8080")
    .replace("libgrpc++1.51", "libgrpc++1.51 libssl-dev")
    .replace("cmake libgrpc++-dev", "cmake libgrpc++-dev libssl-dev")
    .replace('ENTRYPOINT ["/usr/local/bin/wsgateway"]', "ENTRYPOINT /usr/local/bin/wsgateway");
  const { errors } = checkDockerfile(bad, installDeps.replace("libgrpc++-dev", "libgrpc++-dev ninja-build curl"));
  for (const pattern of [/install-deps installs ninja-build, which the build stage does not/, /USER is "0"/, /EXPOSE 9100/, /EXPOSE 50051/, /-dev package libssl-dev/, /installs libssl-dev, which scripts\/install-deps/, /ENTRYPOINT/]) {
    assert.ok(errors.some((e) => pattern.test(e)), `${pattern}: ${errors.join("\n")}`);
  }
});
