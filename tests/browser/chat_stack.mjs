// Starts the chat demo as scripts/run does (build/examples/chat_backend and
// build/wsgateway with examples/chat_gateway.yaml), on loopback ports, for
// the browser test; stops both by PID. Like tests/support/processes.cpp it
// learns the ports from the processes' own log lines, with deadlines, and
// never sleeps in place of waiting for something.
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const binary = (variable, fallback) => process.env[variable] || path.join(root, fallback);

export const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;

// Variables from the developer's shell that must not reach the processes
// under test: proxies, and settings the gateway would read.
function hermeticEnv() {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(https?|grpc|no|all)_proxy$/i.test(name) || name.startsWith("WSGATEWAY_")) delete env[name];
  }
  return env;
}

// Every child still running when node exits (a failed assertion, an
// exception) gets SIGKILL, by PID.
const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

class Child {
  constructor(name, program, args) {
    this.name = name;
    this.lines = [];
    this.listeners = new Set();
    this.process = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"], env: hermeticEnv() });
    running.add(this.process);
    this.exit = new Promise((resolve) => {
      this.process.on("error", (error) => resolve({ code: null, signal: null, error }));
      this.process.on("exit", (code, signal) => resolve({ code, signal }));
    }).then((status) => {
      running.delete(this.process);
      this.status = status;
      for (const listener of this.listeners) listener();
      return status;
    });
    for (const stream of [this.process.stdout, this.process.stderr]) {
      readline.createInterface({ input: stream }).on("line", (line) => {
        this.lines.push(line);
        if (process.env.WSG_TEST_VERBOSE) console.error(`[${this.name}] ${line}`);
        for (const listener of this.listeners) listener();
      });
    }
  }

  tail(count = 40) {
    return this.lines.slice(-count).map((line) => `  [${this.name}] ${line}`).join("\n");
  }

  // Resolves with the first line matching `pattern` (its match array);
  // rejects, with the last lines, when the process exits first or the
  // deadline passes.
  waitForLine(pattern, timeoutMs = START_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const done = (finish) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        finish();
      };
      const check = () => {
        for (const line of this.lines) {
          const match = line.match(pattern);
          if (match) return done(() => resolve(match));
        }
        if (this.status) {
          const why = this.status.error ? this.status.error.message : `exited (${JSON.stringify(this.status)})`;
          done(() => reject(new Error(`${this.name} ${why} before logging ${pattern}:\n${this.tail()}`)));
        }
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${this.name} did not log ${pattern} in ${timeoutMs} ms:\n${this.tail()}`))),
        timeoutMs,
      );
      this.listeners.add(check);
      check();
    });
  }

  // SIGTERM, then SIGKILL if it has not exited in time; resolves with its
  // exit status.
  async stop() {
    if (!this.status) this.process.kill("SIGTERM");
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(resolve, STOP_TIMEOUT_MS);
    });
    await Promise.race([this.exit, late]);
    clearTimeout(timer);
    if (!this.status) {
      this.process.kill("SIGKILL");
      await this.exit;
      return { ...this.status, killed: true };
    }
    return this.status;
  }
}

// A port the OS just reported free. The gateway's admin port must be known
// before the gateway starts, because the chat backend is started first and
// told where to call; the gateway fails loudly if it was taken meanwhile.
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startChatStack() {
  const adminPort = await freePort();
  const children = [];
  try {
    const chat = new Child("chat_backend", binary("WSG_TEST_CHAT_BACKEND", "build/examples/chat_backend"), [
      "--listen", "127.0.0.1:0", "--admin", `127.0.0.1:${adminPort}`,
    ]);
    children.push(chat);
    const [, chatPort] = await chat.waitForLine(/chat backend listening on 127\.0\.0\.1:(\d+)/);

    const gateway = new Child("wsgateway", binary("WSG_TEST_WSGATEWAY", "build/wsgateway"), [
      "--config", process.env.WSG_TEST_CHAT_CONFIG || path.join(root, "examples/chat_gateway.yaml"),
      "--listen", "127.0.0.1:0", "--admin-listen", `127.0.0.1:${adminPort}`, "--metrics-listen", "127.0.0.1:0",
      "--backend", `127.0.0.1:${chatPort}`, "--threads", "2",
    ]);
    children.push(gateway);
    const [, wsPort] = await gateway.waitForLine(/websocket listener on 127\.0\.0\.1:(\d+)/);
    await gateway.waitForLine(/admin listener on 127\.0\.0\.1:/);
    await gateway.waitForLine(/backend stream up/);
    return new ChatStack(children, Number(wsPort));
  } catch (error) {
    await Promise.all(children.map((child) => child.stop()));
    throw error;
  }
}

class ChatStack {
  constructor(children, port) {
    this.children = children;
    this.port = port;
    this.origin = `http://127.0.0.1:${port}`;
  }

  // The last log lines of both processes, for failure messages.
  tails() {
    return this.children.map((child) => child.tail()).join("\n");
  }

  // Stops both, the gateway first (as Ctrl-C in scripts/run would); returns
  // a description of each process that did not exit cleanly with status 0
  // after SIGTERM (sanitizer builds report leaks and errors that way).
  async stop() {
    const problems = [];
    for (const child of [...this.children].reverse()) {
      const status = await child.stop();
      if (status.code !== 0) problems.push(`${child.name} ended with ${JSON.stringify(status)}:\n${child.tail()}`);
    }
    return problems;
  }
}
