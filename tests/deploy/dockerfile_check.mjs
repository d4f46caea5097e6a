// Static checks of deploy/Dockerfile (no Docker needed):
// - a Debian 12 build stage that installs what scripts/install-deps installs
//   (no more, and no less than those needed to build: see NOT_FOR_BUILDING)
//   and runs scripts/build release;
// - a Debian 12 slim final stage that installs no -dev package, copies
//   wsgateway and echo_backend, runs as a numeric non-root user, exposes
//   8080, 9100 and 50051 and has wsgateway as its exec-form entrypoint;
// - where apt-cache has package lists: every package named exists;
// - where the binaries were built here (build/wsgateway,
//   build/examples/echo_backend) and dpkg is there: every shared library
//   they load comes from a package the final stage installs (or from the
//   base image's libc6, libgcc-s1, libstdc++6).
//
//   node dockerfile_check.mjs DOCKERFILE INSTALL-DEPS [BINARY...]

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";

// Joins continuation lines and drops comments; returns [{instruction, args}].
export function parseDockerfile(text) {
  const instructions = [];
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (/^\s*#/.test(line) && current === "") continue;
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith("\\")) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim()) {
      const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(current.trim());
      if (match) instructions.push({ instruction: match[1].toUpperCase(), args: match[2].trim() });
    }
    current = "";
  }
  return instructions;
}

// Stages with their FROM image (ARG defaults substituted) and instructions.
export function stages(instructions) {
  const args = {};
  const result = [];
  for (const { instruction, args: text } of instructions) {
    if (instruction === "ARG" && result.length === 0) {
      const [name, value = ""] = text.split("=");
      args[name.trim()] = value.trim();
      continue;
    }
    if (instruction === "FROM") {
      const resolved = text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name) => args[name] ?? "");
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(resolved);
      result.push({ image: match?.[1] ?? resolved, name: match?.[2] ?? null, instructions: [] });
      continue;
    }
    if (result.length) result[result.length - 1].instructions.push({ instruction, args: text });
  }
  return result;
}

// Package names given to `apt-get install` in a stage's RUN instructions.
export function aptPackages(stage) {
  const packages = [];
  for (const { instruction, args } of stage.instructions) {
    if (instruction !== "RUN") continue;
    for (const command of args.split(/&&|;/)) {
      const words = command.trim().split(/\s+/);
      const at = words.indexOf("install");
      if (at < 0 || !words.slice(0, at).includes("apt-get")) continue;
      for (const word of words.slice(at + 1)) {
        if (!word.startsWith("-") && /^[a-z0-9][a-z0-9.+-]+$/.test(word)) packages.push(word);
      }
    }
  }
  return packages;
}

// The packages=( ... ) list of scripts/install-deps.
export function installDepsPackages(text) {
  const match = /packages=\(([\s\S]*?)\)/.exec(text);
  if (!match) return [];
  return match[1]
    .split("\n")
    .map((line) => line.replace(/#.*$/, ""))
    .join(" ")
    .split(/\s+/)
    .filter(Boolean);
}

// Packages of scripts/install-deps that building does not need (tests and
// scripts/run use them), so the image's build stage leaves them out. A
// package added to scripts/install-deps must go into the Dockerfile's build
// stage or here.
// python3-grpcio and python3-protobuf run examples/python_backend and its
// test, not the image's build.
export const NOT_FOR_BUILDING = new Set(["prometheus", "curl", "redis-server", "python3-grpcio", "python3-protobuf"]);

export function checkDockerfile(text, installDeps) {
  const errors = [];
  const all = stages(parseDockerfile(text));
  if (all.length !== 2) {
    errors.push(`expected two stages (build, runtime), found ${all.length}`);
    return { errors, build: [], runtime: [] };
  }
  const [build, runtime] = all;
  if (!/^debian:(12|bookworm)$/.test(build.image)) errors.push(`build stage is ${build.image}, not debian:12 / bookworm`);
  if (!/^debian:(12|bookworm)-slim$/.test(runtime.image)) {
    errors.push(`final stage is ${runtime.image}, not debian:12-slim / bookworm-slim`);
  }
  const buildPackages = aptPackages(build);
  const runtimePackages = aptPackages(runtime);
  const known = new Set(installDepsPackages(installDeps));
  if (known.size === 0) errors.push("no packages=( ... ) list in scripts/install-deps");
  for (const name of buildPackages) {
    if (!known.has(name)) errors.push(`build stage installs ${name}, which scripts/install-deps does not`);
  }
  for (const name of known) {
    if (!buildPackages.includes(name) && !NOT_FOR_BUILDING.has(name)) {
      errors.push(`scripts/install-deps installs ${name}, which the build stage does not (add it there, or to NOT_FOR_BUILDING in tests/deploy/dockerfile_check.mjs)`);
    }
  }
  if (!build.instructions.some((i) => i.instruction === "RUN" && /scripts\/build release\b/.test(i.args))) {
    errors.push("build stage does not run scripts/build release");
  }
  for (const name of runtimePackages) {
    if (/-dev$/.test(name)) errors.push(`final stage installs the -dev package ${name}`);
  }
  if (runtimePackages.length === 0) errors.push("final stage installs no runtime libraries");
  const find = (name) => runtime.instructions.filter((i) => i.instruction === name);
  const copies = find("COPY").map((i) => i.args);
  for (const binary of ["build/wsgateway", "build/examples/echo_backend"]) {
    if (!copies.some((c) => c.startsWith(`--from=${build.name}`) && c.includes(`/${binary} `))) {
      errors.push(`final stage does not copy ${binary} from the build stage`);
    }
  }
  const users = find("USER");
  const user = users.length ? users[users.length - 1].args : "";
  const ids = /^([0-9]+)(?::([0-9]+))?$/.exec(user);
  if (!ids || Number(ids[1]) === 0 || (ids[2] !== undefined && Number(ids[2]) === 0)) {
    errors.push(`final stage USER is "${user}", not a numeric non-root UID[:GID]`);
  }
  const exposed = new Set(find("EXPOSE").flatMap((i) => i.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, "")));
  for (const port of ["8080", "9100", "50051"]) {
    if (!exposed.has(port)) errors.push(`final stage does not EXPOSE ${port}`);
  }
  const entrypoints = find("ENTRYPOINT");
  let entrypoint = null;
  try {
    entrypoint = entrypoints.length ? JSON.parse(entrypoints[entrypoints.length - 1].args) : null;
  } catch {
    entrypoint = null;
  }
  if (!Array.isArray(entrypoint) || !/(^|\/)wsgateway$/.test(entrypoint[0] ?? "")) {
    errors.push("final stage ENTRYPOINT is not the exec form of wsgateway (it must be PID 1 to get SIGTERM)");
  }
  return { errors, build: buildPackages, runtime: runtimePackages };
}

function run(command, args) {
  try {
    return { ok: true, out: execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }) };
  } catch (error) {
    return { ok: false, out: String(error.stdout || ""), err: String(error.stderr || "") };
  }
}

function aptCacheErrors(packages, notes) {
  // One apt-cache call: `policy` prints "NAME:" for each package it knows.
  const policy = run("apt-cache", ["policy", "libc6", ...packages]);
  const known = new Set(
    policy.out
      .split("\n")
      .map((line) => /^(\S+):$/.exec(line)?.[1])
      .filter(Boolean)
      .map((name) => name.replace(/:[a-z0-9]+$/, "")),
  );
  if (!known.has("libc6")) {
    notes.push("apt-cache has no package lists (run apt-get update): package names not checked");
    return [];
  }
  return packages.filter((name) => !known.has(name)).map((name) => `apt-cache does not know the package ${name}`);
}

// Packages whose files the binaries load (ldd, then one dpkg -S for all).
function linkedPackageErrors(binaries, runtime, notes) {
  const present = binaries.filter((file) => existsSync(file));
  if (present.length === 0) {
    notes.push(`no local build (${binaries.join(", ")}): shared libraries not checked against the final stage`);
    return [];
  }
  if (!run("dpkg", ["--version"]).ok) {
    notes.push("no dpkg: shared libraries not checked against the final stage");
    return [];
  }
  const errors = [];
  const loaded = new Map(); // resolved path -> binaries loading it
  for (const binary of present) {
    const ldd = run("ldd", [binary]);
    if (!ldd.ok) {
      errors.push(`ldd ${binary} failed: ${ldd.err}`);
      continue;
    }
    for (const line of ldd.out.split("\n")) {
      if (/not found/.test(line)) errors.push(`${binary}: ${line.trim()}`);
      const match = /=>\s+(\/\S+)/.exec(line);
      if (!match) continue;
      let path = match[1];
      try {
        path = realpathSync(path);
      } catch {
        // keep the path ldd printed
      }
      loaded.set(path, [...(loaded.get(path) || []), binary]);
    }
  }
  // Merged /usr: dpkg may know a file under /lib or under /usr/lib.
  const alias = (path) => (path.startsWith("/usr/") ? path.slice(4) : `/usr${path}`);
  const queries = [...loaded.keys()].flatMap((path) => [path, alias(path)]);
  const owners = new Map();
  for (const line of run("dpkg", ["-S", ...queries]).out.split("\n")) {
    const match = /^([^:]+)(?::[a-z0-9]+)?: (\/\S+)$/.exec(line.trim());
    if (match) owners.set(match[2], match[1]);
  }
  const allowed = new Set([...runtime, "libc6", "libgcc-s1", "libstdc++6"]);
  for (const [path, users] of loaded) {
    const name = owners.get(path) ?? owners.get(alias(path));
    if (!name) errors.push(`${users.join(", ")}: ${path} belongs to no Debian package`);
    else if (!allowed.has(name)) {
      errors.push(`${users.join(", ")} ${users.length === 1 ? "loads" : "load"} ${path} from ${name}, which the final stage does not install`);
    }
  }
  return errors;
}

async function main([dockerfile, installDeps, ...binaries]) {
  if (!dockerfile || !installDeps) {
    console.error("usage: node dockerfile_check.mjs DOCKERFILE INSTALL-DEPS [BINARY...]");
    return 2;
  }
  const notes = [];
  const { errors, build, runtime } = checkDockerfile(readFileSync(dockerfile, "utf8"), readFileSync(installDeps, "utf8"));
  errors.push(...aptCacheErrors([...build, ...runtime], notes));
  errors.push(...linkedPackageErrors(binaries, runtime, notes));
  for (const note of notes) console.log(`note: ${note}`);
  for (const error of errors) console.log(`FAIL ${error}`);
  console.log(`${build.length} build and ${runtime.length} runtime packages checked, ${errors.length} failure(s)`);
  return errors.length ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
