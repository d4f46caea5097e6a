// Keeps the chart's `config` value in step with the gateway's documented
// configuration keys: every key values.schema.json accepts under `config`
// must be documented in docs/configuration.md (else the gateway refuses to
// start), and every documented key must be accepted there or be one the
// chart sets itself (listeners, TLS and token files) or refuses on purpose.
//
//   node config_keys_check.mjs CONFIGURATION.md VALUES.SCHEMA.JSON

import { readFileSync } from "node:fs";
import { documentedKeys } from "./invariants.mjs";

// Set by the chart from bindAddress/ports, tls, admin.tls, admin.tokenSecret
// and cluster; `config` is the --config flag itself; admin_tokens would put
// tokens in a ConfigMap.
export const CHART_OWNED = new Set([
  "config",
  "listen",
  "admin_listen",
  "metrics_listen",
  "tls_cert_file",
  "tls_key_file",
  "admin_tls_cert_file",
  "admin_tls_key_file",
  "admin_tls_client_ca_file",
  "admin_token_file",
  "admin_tokens",
  // Cluster mode: the chart sets these from its cluster values (the bundled
  // or external Redis, the mounted password and token Secrets, cluster.port,
  // cluster.keyPrefix) when cluster.enabled, and cluster_advertise from the
  // pod IP in the environment, since only the pod knows it. Accepting them
  // in `config` too would let a value there contradict those objects.
  "cluster_redis",
  "cluster_redis_password_file",
  "cluster_key_prefix",
  "cluster_listen",
  "cluster_advertise",
  "cluster_token_file",
]);

export function compareKeys(documented, accepted) {
  const errors = [];
  for (const key of accepted) {
    if (!documented.has(key)) errors.push(`values.schema.json accepts config.${key}, which docs/configuration.md does not document`);
    if (CHART_OWNED.has(key)) errors.push(`values.schema.json accepts config.${key}, which the chart sets or refuses itself`);
  }
  for (const key of documented) {
    if (!accepted.has(key) && !CHART_OWNED.has(key)) {
      errors.push(`docs/configuration.md documents ${key}, which the chart's config value does not accept`);
    }
  }
  return errors;
}

async function main([configurationFile, schemaFile]) {
  if (!configurationFile || !schemaFile) {
    console.error("usage: node config_keys_check.mjs CONFIGURATION.md VALUES.SCHEMA.JSON");
    return 2;
  }
  const documented = documentedKeys(readFileSync(configurationFile, "utf8"));
  const schema = JSON.parse(readFileSync(schemaFile, "utf8"));
  const accepted = new Set(Object.keys(schema.properties?.config?.properties || {}));
  const errors = compareKeys(documented, accepted);
  for (const error of errors) console.log(`FAIL ${error}`);
  console.log(`${documented.size} documented keys, ${accepted.size} accepted by the chart, ${errors.length} failure(s)`);
  return errors.length ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
