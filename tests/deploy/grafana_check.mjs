// Checks the Grafana dashboard: it parses, its panels query the
// ${datasource} variable (never a data source baked in), and every metric it
// uses is documented in docs/metrics.md (histogram series by their base
// name), so the dashboard stays in step with the gateway. With promtool on
// PATH (Debian's prometheus package, which scripts/install-deps installs)
// every query is also parsed as PromQL.
//
//   node grafana_check.mjs DASHBOARD.json METRICS.md

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// docs/metrics.md table rows: | `name` | type | labels | meaning |
export function documentedMetrics(markdown) {
  const metrics = new Map();
  for (const line of markdown.split("\n")) {
    const match = /^\|\s*`(wsgateway_[a-zA-Z0-9_]+)`\s*\|\s*([a-z]+)\s*\|/.exec(line);
    if (match) metrics.set(match[1], match[2]);
  }
  return metrics;
}

// Metric names in a PromQL expression: identifiers starting with
// wsgateway_ that are not label names (those are followed by =, !=, =~, !~).
export function metricNames(expr) {
  const names = new Set();
  const pattern = /\b(wsgateway_[a-zA-Z0-9_:]*)\b(?!\s*(=|!=|=~|!~))/g;
  let match;
  while ((match = pattern.exec(expr)) !== null) names.add(match[1]);
  return names;
}

// A name is known if documented, or if it is a _bucket/_sum/_count series of
// a documented histogram (_sum/_count of a summary).
export function isDocumented(name, documented) {
  if (documented.has(name)) return true;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!name.endsWith(suffix)) continue;
    const type = documented.get(name.slice(0, -suffix.length));
    if (type === "histogram") return true;
    if (type === "summary" && suffix !== "_bucket") return true;
  }
  return false;
}

function allPanels(panels) {
  const out = [];
  for (const panel of panels || []) {
    out.push(panel);
    if (Array.isArray(panel.panels)) out.push(...allPanels(panel.panels));
  }
  return out;
}

// Grafana's variables replaced by something PromQL accepts.
function asPromQL(expr) {
  return expr
    .replace(/\$__rate_interval|\$__interval|\$__range|\$\{__rate_interval\}|\$\{__interval\}|\$\{__range\}/g, "5m")
    .replace(/\$\{?[a-zA-Z_][a-zA-Z0-9_]*(:[a-z]+)?\}?/g, ".*");
}

export function checkDashboard(dashboard, documented) {
  const errors = [];
  const expressions = [];
  if (typeof dashboard.title !== "string" || !dashboard.title) errors.push("dashboard has no title");
  if (typeof dashboard.uid !== "string" || !dashboard.uid) errors.push("dashboard has no uid");
  const variables = dashboard.templating?.list || [];
  const datasource = variables.find((v) => v.name === "datasource");
  if (!datasource || datasource.type !== "datasource" || datasource.query !== "prometheus") {
    errors.push('templating needs a variable "datasource" of type datasource with query prometheus');
  }
  if (!variables.some((v) => v.name === "instance" || v.name === "pod")) {
    errors.push('templating needs an "instance" or "pod" variable');
  }
  const usesDatasource = (ds, where) => {
    if (!ds || ds.uid !== "${datasource}") errors.push(`${where}: data source must be {"uid": "\${datasource}"}`);
  };
  for (const variable of variables) {
    if (variable.type !== "query") continue;
    usesDatasource(variable.datasource, `variable ${variable.name}`);
    const query = typeof variable.query === "string" ? variable.query : variable.query?.query;
    if (query) expressions.push({ where: `variable ${variable.name}`, expr: query, promql: false });
  }
  const panels = allPanels(dashboard.panels);
  if (panels.length === 0) errors.push("dashboard has no panels");
  const ids = new Set();
  for (const panel of panels) {
    const where = `panel ${panel.id} "${panel.title}"`;
    if (typeof panel.id !== "number") errors.push(`${where}: no numeric id`);
    else if (ids.has(panel.id)) errors.push(`${where}: id used twice`);
    ids.add(panel.id);
    if (!panel.gridPos) errors.push(`${where}: no gridPos`);
    if (panel.type === "row") continue;
    if (!Array.isArray(panel.targets) || panel.targets.length === 0) {
      errors.push(`${where}: no queries`);
      continue;
    }
    usesDatasource(panel.datasource, where);
    for (const target of panel.targets) {
      usesDatasource(target.datasource, `${where} query ${target.refId}`);
      if (typeof target.expr !== "string" || !target.expr.trim()) {
        errors.push(`${where} query ${target.refId}: empty expression`);
        continue;
      }
      expressions.push({ where: `${where} query ${target.refId}`, expr: target.expr, promql: true });
    }
  }
  const used = new Set();
  for (const { where, expr } of expressions) {
    const names = metricNames(expr);
    if (names.size === 0) errors.push(`${where}: uses no wsgateway_ metric: ${expr}`);
    for (const name of names) {
      used.add(name);
      if (!isDocumented(name, documented)) errors.push(`${where}: metric ${name} is not in docs/metrics.md`);
    }
  }
  return { errors, expressions, used };
}

function promtoolErrors(expressions) {
  try {
    execFileSync("promtool", ["--version"], { stdio: "ignore" });
  } catch {
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), "wsg-grafana-"));
  try {
    const rules = expressions
      .filter((e) => e.promql)
      .map((e, i) => `      - record: wsgateway_dashboard_query_${i}\n        expr: ${JSON.stringify(asPromQL(e.expr))}`);
    const file = join(dir, "rules.yaml");
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`);
    try {
      execFileSync("promtool", ["check", "rules", file], { stdio: "pipe" });
      return [];
    } catch (error) {
      return [`promtool rejects a query:\n${String(error.stdout || "")}${String(error.stderr || "")}`];
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main([dashboardFile, metricsFile]) {
  if (!dashboardFile || !metricsFile) {
    console.error("usage: node grafana_check.mjs DASHBOARD.json METRICS.md");
    return 2;
  }
  let dashboard;
  try {
    dashboard = JSON.parse(readFileSync(dashboardFile, "utf8"));
  } catch (error) {
    console.log(`FAIL ${dashboardFile}: not JSON: ${error.message}`);
    return 1;
  }
  const documented = documentedMetrics(readFileSync(metricsFile, "utf8"));
  if (documented.size === 0) {
    console.log(`FAIL ${metricsFile}: no metrics table found`);
    return 1;
  }
  const { errors, expressions, used } = checkDashboard(dashboard, documented);
  const promtool = promtoolErrors(expressions);
  if (promtool === null) console.log("note: promtool not found, PromQL syntax not checked");
  else errors.push(...promtool);
  for (const error of errors) console.log(`FAIL ${error}`);
  const unused = [...documented.keys()].filter(
    (name) => ![...used].some((u) => u === name || u.startsWith(`${name}_`)),
  );
  if (unused.length) console.log(`note: documented metrics not on the dashboard: ${unused.join(", ")}`);
  console.log(
    `${expressions.length} queries, ${used.size} metric names checked against ${documented.size} documented metrics, ${errors.length} failure(s)`,
  );
  return errors.length ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
