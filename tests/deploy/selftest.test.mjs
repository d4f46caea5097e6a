// Self-tests of the deployment checks: each check must reject what it is
// there to reject (a misspelled field, an undocumented metric, a grace period
// shorter than the drain), or a green scripts/check-deploy means nothing.
//
//   node --test selftest.test.mjs

import assert from "node:assert/strict";
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
