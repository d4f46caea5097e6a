// Strict validation of Kubernetes objects against the schemas that
// kubernetes-models ships (the Kubernetes OpenAPI schemas, and the
// prometheus-operator CRD schemas for ServiceMonitor).
//
// kubernetes-models ships its schemas as validators compiled by ajv, and those
// accept properties the schema does not name (the OpenAPI schemas have no
// `additionalProperties: false`). `kubectl apply --validate=strict` and the API
// server's field validation reject them, and a misspelled field (`livenesProbe`)
// otherwise passes silently, so this module adds that check: every object of
// the document is wrapped in a Proxy that records which properties the
// compiled validator reads. A validator compiled from a schema with
// `properties` reads each of them (present or not); one compiled from a schema
// with `additionalProperties` or `patternProperties` (labels, annotations,
// ConfigMap data, resource quantities) enumerates the object's keys. After
// validation, a key of an object that the validator read from but neither
// read nor enumerated is not in the schema: an unknown field. An object the
// validator did not look into at all has a free-form schema (e.g.
// x-kubernetes-preserve-unknown-fields) and may hold anything.

import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// apiVersion -> module that exports the model classes of that group/version.
function modelModule(apiVersion) {
  if (apiVersion === "monitoring.coreos.com/v1") {
    return "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
  }
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion)) return null;
  return `kubernetes-models/${apiVersion}`;
}

async function modelClass(apiVersion, kind) {
  const path = modelModule(apiVersion);
  if (!path) return null;
  let module;
  try {
    module = await import(path);
  } catch {
    return null;
  }
  const cls = module[kind];
  return cls && cls.apiVersion === apiVersion && cls.kind === kind ? cls : null;
}

const isObject = (value) => value !== null && typeof value === "object";

// Wraps `value` and everything inside it; `nodes` collects one record per
// plain object: its path, the object, the keys read and whether it was
// enumerated.
function track(value, path, nodes) {
  if (!isObject(value)) return value;
  if (Array.isArray(value)) {
    const items = value.map((item, index) => track(item, `${path}/${index}`, nodes));
    return items;
  }
  const record = { path: path || "/", object: value, read: new Set(), enumerated: false };
  nodes.push(record);
  const target = {};
  for (const [key, child] of Object.entries(value)) {
    target[key] = track(child, `${path}/${escapePointer(key)}`, nodes);
  }
  return new Proxy(target, {
    get(obj, key, receiver) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.get(obj, key, receiver);
    },
    has(obj, key) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.has(obj, key);
    },
    getOwnPropertyDescriptor(obj, key) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.getOwnPropertyDescriptor(obj, key);
    },
    ownKeys(obj) {
      record.enumerated = true;
      return Reflect.ownKeys(obj);
    },
  });
}

function escapePointer(key) {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

// Returns a list of error strings (empty when the object is valid).
export async function validateObject(object) {
  if (!isObject(object) || Array.isArray(object)) return ["not an object"];
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    return ["apiVersion and kind must be strings"];
  }
  const cls = await modelClass(apiVersion, kind);
  if (!cls) return [`no schema for ${apiVersion} ${kind}`];

  const nodes = [];
  const tracked = track(object, "", nodes);
  const errors = [];
  try {
    // The model's validate() runs the compiled validator on `this`; calling
    // it on the tracked copy (not on a model instance, which would copy the
    // data) lets the Proxy see what the validator reads.
    cls.prototype.validate.call(tracked);
  } catch (error) {
    const details = error.errors || [];
    if (details.length === 0) errors.push(String(error.message || error));
    for (const detail of details) {
      const params = detail.params && Object.keys(detail.params).length ? ` ${JSON.stringify(detail.params)}` : "";
      errors.push(`${detail.instancePath || "/"}: ${detail.message || detail.keyword}${params}`);
    }
  }
  for (const node of nodes) {
    if (node.enumerated || node.read.size === 0) continue;
    for (const key of Object.keys(node.object)) {
      if (!node.read.has(key)) {
        errors.push(`${node.path === "/" ? "" : node.path}/${escapePointer(key)}: unknown field "${key}"`);
      }
    }
  }
  return errors;
}

// Parses a YAML stream; returns [{ index, object }] for each non-empty
// document, or throws on a syntax error.
export function parseStream(text, name) {
  const documents = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const objects = [];
  documents.forEach((document, index) => {
    if (document.errors.length) {
      throw new Error(`${name}: document ${index + 1}: ${document.errors.map((e) => e.message).join("; ")}`);
    }
    const object = document.toJS();
    if (object !== null && object !== undefined) objects.push({ index: index + 1, object });
  });
  return objects;
}

export function describe(object) {
  const name = object?.metadata?.name ?? "(no name)";
  return `${object?.kind ?? "?"}/${name}`;
}

// CLI: node k8s_validate.mjs FILE... (YAML streams). Prints one line per
// object and exits 1 if any object is invalid or a file holds none.
async function main(files) {
  let failed = 0;
  let total = 0;
  for (const file of files) {
    let objects;
    try {
      objects = parseStream(readFileSync(file, "utf8"), file);
    } catch (error) {
      console.log(`FAIL ${file}: ${error.message}`);
      failed++;
      continue;
    }
    if (objects.length === 0) {
      console.log(`FAIL ${file}: no Kubernetes objects`);
      failed++;
      continue;
    }
    for (const { index, object } of objects) {
      total++;
      const errors = await validateObject(object);
      if (errors.length) {
        failed++;
        console.log(`FAIL ${file} #${index} ${describe(object)}`);
        for (const error of errors) console.log(`       ${error}`);
      } else if (process.env.WSG_DEPLOY_VERBOSE) {
        console.log(`ok   ${file} #${index} ${describe(object)}`);
      }
    }
  }
  console.log(`${total} objects in ${files.length} file(s) checked, ${failed} failure(s)`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.length < 3) {
    console.error("usage: node k8s_validate.mjs FILE...");
    process.exit(2);
  }
  process.exitCode = await main(process.argv.slice(2));
}
