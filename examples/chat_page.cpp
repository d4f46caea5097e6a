#include "chat_page.hpp"

namespace wsgateway_examples {
namespace {

// Element ids are part of the page's contract with tests/browser: #name,
// #join-form, #join-error, #status, #log, #online, #text, #send-form.
constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsgateway chat</title>
<link rel="icon" href="data:,">
<style>
  :root { color-scheme: light dark; --accent: #2f6fde; --muted: #8a8f98; --line: rgba(128, 128, 128, .28); }
  * { box-sizing: border-box; }
  body { margin: 0; height: 100vh; display: flex; flex-direction: column; font: 15px/1.45 system-ui, sans-serif; }
  header { display: flex; align-items: baseline; gap: 1rem; padding: .7rem 1.2rem; border-bottom: 1px solid var(--line); }
  h1 { margin: 0; flex: 1; font-size: 1.05rem; }
  #status { font-size: .85rem; color: var(--muted); }
  #status.up::before { content: "● "; color: #2da44e; }
  main { flex: 1; display: flex; min-height: 0; }
  #log { flex: 1; margin: 0; padding: .8rem 1.2rem; overflow-y: auto; list-style: none; }
  #log li { margin: .2rem 0; overflow-wrap: anywhere; white-space: pre-wrap; }
  #log .from { font-weight: 600; margin-right: .5rem; }
  #log .mine .from { color: var(--accent); }
  #log .notice { color: var(--muted); font-style: italic; }
  aside { width: 13rem; padding: .8rem 1.2rem; border-left: 1px solid var(--line); overflow-y: auto; }
  h2 { margin: 0 0 .5rem; font-size: .75rem; letter-spacing: .06em; text-transform: uppercase; color: var(--muted); }
  #online { margin: 0; padding: 0; list-style: none; }
  #online .mine { font-weight: 600; }
  form { display: flex; gap: .5rem; padding: .7rem 1.2rem; border-top: 1px solid var(--line); }
  #join-form { flex-direction: column; width: min(22rem, 90vw); margin: 18vh auto 0; border: 0; }
  #join-error { min-height: 1.4em; margin: 0; color: #cf222e; font-size: .9rem; }
  input { flex: 1; padding: .5rem .7rem; font: inherit; color: inherit; background: transparent;
          border: 1px solid var(--line); border-radius: 6px; }
  button { padding: .5rem 1.1rem; font: inherit; color: #fff; background: var(--accent); border: 0; border-radius: 6px;
           cursor: pointer; }
  button:disabled { opacity: .5; cursor: default; }
  [hidden] { display: none !important; }
  @media (max-width: 40rem) { aside { display: none; } }
</style>
</head>
<body>
<header><h1>wsgateway chat</h1><span id="status">not connected</span></header>
<form id="join-form">
  <label for="name">Pick a name to join the room</label>
  <input id="name" maxlength="64" autocomplete="nickname" autofocus>
  <button>Join</button>
  <p id="join-error" role="alert"></p>
</form>
<main id="room" hidden>
  <ul id="log" aria-live="polite"></ul>
  <aside><h2>Online <span id="count"></span></h2><ul id="online"></ul></aside>
</main>
<form id="send-form" hidden>
  <input id="text" maxlength="2000" autocomplete="off" placeholder="Say something" aria-label="Message">
  <button id="send" disabled>Send</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let me = "";
let socket = null;
let retryMs = 1000;

// The backend's rules (examples/chat_name.cpp), checked here first so that
// a bad name gets a message instead of a refused connection.
function nameProblem(name) {
  const length = [...name].length;
  if (length < 1 || length > 32) return "Use 1 to 32 characters.";
  if (name !== name.trim()) return "No spaces at the start or the end.";
  if (/[\p{Cc}\p{Cf}]/u.test(name)) return "Use printable characters only.";
  return "";
}

function item(className, from, text) {
  const li = document.createElement("li");
  li.className = className;
  if (from) {
    const who = document.createElement("span");
    who.className = "from";
    who.textContent = from;
    li.append(who);
  }
  li.append(text);
  return li;
}

function show(li) {
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function showOnline(names) {
  $("online").replaceChildren(...names.map((name) => item(name === me ? "mine" : "", "", name)));
  $("count").textContent = `(${names.length})`;
}

function setStatus(text, up) {
  $("status").textContent = text;
  $("status").className = up ? "up" : "";
}

function receive(data) {
  if (typeof data !== "string") return;  // Binary comes back to its sender only; the page sends none.
  let m;
  try { m = JSON.parse(data); } catch { return; }
  if (m.type === "message") show(item(m.from === me ? "mine" : "", m.from, m.text));
  if (m.type === "joined" || m.type === "left") {
    show(item("notice", "", `${m.name} ${m.type}`));
    showOnline(m.online);
  }
}

// Reconnects after a close, politely: the wait doubles up to 30 s, with
// jitter so that a restarted gateway is not hit by everyone at once.
function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/chat?name=${encodeURIComponent(me)}`, ["chat.v1"]);
  setStatus("connecting…", false);
  let opened = false;
  socket.onopen = () => {
    opened = true;
    retryMs = 1000;
    setStatus(`connected as ${me}`, true);
    $("send").disabled = false;
    $("text").focus();
  };
  socket.onmessage = (event) => receive(event.data);
  socket.onclose = () => {
    $("send").disabled = true;
    if (opened) show(item("notice", "", "disconnected"));
    const wait = retryMs * (0.75 + Math.random() / 2);
    setStatus(`reconnecting in ${Math.round(wait / 1000)} s…`, false);
    setTimeout(connect, wait);
    retryMs = Math.min(retryMs * 2, 30000);
  };
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("name").value.trim();
  const problem = nameProblem(name);
  $("join-error").textContent = problem;
  if (problem) return;
  me = name;
  try { localStorage.setItem("chat-name", name); } catch {}
  $("join-form").hidden = true;
  $("room").hidden = false;
  $("send-form").hidden = false;
  connect();
});

$("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value;
  if (!text.trim() || socket.readyState !== WebSocket.OPEN) return;
  socket.send(text);
  $("text").value = "";
});

try { $("name").value = localStorage.getItem("chat-name") || ""; } catch {}
</script>
</body>
</html>
)html";

}  // namespace

std::string_view ChatPageHtml() { return kPage; }

}  // namespace wsgateway_examples
