// The chat demo in a real browser: headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) loads the page the chat
// backend serves through the gateway, two people join and talk, and a
// WebSocket opened from the page negotiates chat.v1 and permessage-deflate
// and carries text and binary messages. Run by ctest (label `browser`).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";

import { startChatStack } from "./chat_stack.mjs";

const CHROMIUM = process.env.WSG_TEST_CHROMIUM || "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 15_000;

const { chromium } = await import("playwright-core").catch((error) => {
  throw new Error(`playwright-core is missing (scripts/install-deps runs npm ci in tests/browser): ${error.message}`);
});

let stack;
let browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/install-deps installs Debian's chromium`);
  stack = await startChatStack();
  // Loopback needs no proxy, whatever the environment says.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-proxy-server"], timeout: 30_000 });
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  const problems = (await stack?.stop()) ?? [];
  assert.deepEqual(problems, [], "a process did not exit cleanly");
}, { timeout: 60_000 });

// Adds the processes' last log lines to a failure.
async function withLogs(body) {
  try {
    await body();
  } catch (error) {
    error.message += `\n--- last log lines\n${stack.tails()}`;
    throw error;
  }
}

// A fresh browser profile (own localStorage) on the demo page, joined as `name`.
async function join(name) {
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  await page.goto(`${stack.origin}/`);
  await page.fill("#name", name);
  await page.press("#name", "Enter");
  await page.waitForSelector("#status.up");
  return page;
}

function waitOnline(page, names) {
  return page.waitForFunction(
    (expected) => JSON.stringify([...document.querySelectorAll("#online li")].map((li) => li.textContent)) === expected,
    JSON.stringify(names),
  );
}

function waitLine(page, from, text) {
  return page.waitForFunction(
    ([from, text]) =>
      [...document.querySelectorAll("#log li")].some(
        (li) => li.querySelector(".from")?.textContent === from && li.textContent === from + text,
      ),
    [from, text],
  );
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

test("two people join from the page, see each other online and chat", { timeout: 90_000 }, () =>
  withLogs(async () => {
    const ann = await join("ann");
    await waitOnline(ann, ["ann"]);
    const bob = await join("bob");
    await waitOnline(bob, ["ann", "bob"]);
    await waitOnline(ann, ["ann", "bob"]);

    await say(ann, "hello from ann");
    await waitLine(bob, "ann", "hello from ann");
    await waitLine(ann, "ann", "hello from ann");
    await say(bob, "hi ann <b>not bold</b>");
    await waitLine(ann, "bob", "hi ann <b>not bold</b>");
    assert.equal(await ann.locator("#log b").count(), 0, "a message was rendered as HTML");

    await bob.context().close();
    await waitOnline(ann, ["ann"]);
    await ann.waitForSelector("#log li.notice >> text=bob left");
    await ann.context().close();
  }));

test("the page refuses a bad name before connecting", { timeout: 30_000 }, () =>
  withLogs(async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${stack.origin}/`);
    await page.fill("#name", "x".repeat(33));
    await page.press("#name", "Enter");
    await page.waitForFunction(() => document.getElementById("join-error").textContent !== "", null, {
      timeout: STEP_TIMEOUT_MS,
    });
    assert.equal(await page.isVisible("#room"), false);
    await context.close();
  }));

test("a WebSocket from the page negotiates chat.v1 and permessage-deflate, text and binary", { timeout: 60_000 }, () =>
  withLogs(async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${stack.origin}/`);
    // Long enough to pass the gateway's compression threshold (256 bytes).
    const text = `deflated ${"la ".repeat(200)}`;
    const result = await page.evaluate(
      async ({ url, text, timeoutMs }) => {
        const deadline = new Promise((_, reject) => setTimeout(() => reject(new Error("timed out in the page")), timeoutMs));
        const ws = new WebSocket(url, ["chat.v1"]);
        ws.binaryType = "arraybuffer";
        const received = [];
        let wake = () => {};
        ws.onmessage = (event) => {
          received.push(event.data);
          wake();
        };
        // The first message received that passes `test`, removed from the list.
        const next = (test) =>
          Promise.race([
            deadline,
            new Promise((resolve) => {
              const check = () => {
                const index = received.findIndex(test);
                if (index >= 0) resolve(received.splice(index, 1)[0]);
                else wake = check;
              };
              check();
            }),
          ]);
        await Promise.race([
          deadline,
          new Promise((resolve, reject) => {
            ws.onopen = resolve;
            ws.onerror = () => reject(new Error("the WebSocket failed to open"));
          }),
        ]);
        ws.send(text);
        const line = JSON.parse(await next((data) => typeof data === "string" && data.includes('"type":"message"')));
        ws.send(new Uint8Array([0, 1, 2, 127, 128, 253, 254, 255]).buffer);
        const echoed = await next((data) => data instanceof ArrayBuffer);
        const outcome = { protocol: ws.protocol, extensions: ws.extensions, line, echoed: [...new Uint8Array(echoed)] };
        ws.close(1000);
        return outcome;
      },
      { url: `ws://127.0.0.1:${stack.port}/chat?name=probe`, text, timeoutMs: STEP_TIMEOUT_MS },
    );
    assert.equal(result.protocol, "chat.v1");
    assert.match(result.extensions, /permessage-deflate/);
    assert.deepEqual(result.line, { type: "message", from: "probe", text });
    assert.deepEqual(result.echoed, [0, 1, 2, 127, 128, 253, 254, 255]);
    await context.close();
  }));
