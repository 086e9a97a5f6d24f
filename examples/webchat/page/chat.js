// webchat: examples/chat's line protocol over a WebSocket, one line per text message.
// A reply (OK…, ERR…) answers the oldest command still waiting; a line starting with
// "* " is pushed by the server (JOIN, MSG, LEAVE, QUIT of the others in the room).
"use strict";

const $ = (id) => document.getElementById(id);
const port = document.querySelector('meta[name="chat-ws-port"]').content;
const wsURL = `ws://${location.hostname}:${port}/ws`;

let ws = null;        // the connection, once logged in or trying to
let waiting = [];     // the resolve functions of the commands sent, oldest first
let me = "";          // our name, once logged in
let members = new Set();
let quitting = false;

function show(view) {
  for (const id of ["login", "enter", "chat"]) $(id).hidden = id !== view;
  $("quit").hidden = view === "login";
  $("status").textContent = me ? `logged in as ${me}` : "not logged in";
  const focus = { login: "name", enter: "room", chat: "text" }[view];
  $(focus).focus();
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

// connect opens the WebSocket; it resolves once it is open.
function connect() {
  return new Promise((resolve, reject) => {
    ws = new WebSocket(wsURL);
    ws.onopen = () => resolve();
    ws.onmessage = (ev) => {
      const line = ev.data;
      if (line.startsWith("* ")) pushed(line.slice(2));
      else waiting.shift()?.(line);
    };
    ws.onclose = (ev) => {
      for (const resolve of waiting) resolve("ERR connection closed");
      waiting = [];
      ws = null;
      if (!quitting) showError(`connection closed (${ev.code}${ev.reason ? " " + ev.reason : ""})`);
      quitting = false;
      me = "";
      show("login");
      reject(new Error("cannot connect to " + wsURL));
    };
  });
}

// send sends one command line and resolves with its reply line.
function send(line) {
  return new Promise((resolve) => {
    waiting.push(resolve);
    ws.send(line);
  });
}

// error returns the text of an ERR reply, or "" for OK.
const error = (reply) => reply.startsWith("ERR ") ? reply.slice(4) : "";

function addLine(cls, who, text) {
  const li = document.createElement("li");
  li.className = cls;
  if (who) {
    const b = document.createElement("b");
    b.textContent = who;
    b.style.color = nameColor(who);
    li.append(b, ": ");
  }
  li.append(text);
  $("log").append(li);
  $("log").scrollTop = $("log").scrollHeight;
}

const colors = ["#2f5fb3", "#1f7a5c", "#b35a1f", "#7a3fb0", "#0f7f8f", "#a3352f", "#b03a8c", "#5f7a1f"];

// nameColor gives each name a color of its own, the same on every page.
function nameColor(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) % 997;
  return colors[h % colors.length];
}

function showMembers() {
  $("members").textContent = [...members].sort().join(", ");
}

function pushed(line) {
  const [kind, name = ""] = line.split(" ", 2);
  const rest = line.slice(kind.length + name.length + 2);
  switch (kind) {
    case "MSG":
      addLine("msg", name, rest);
      return;
    case "JOIN":
      members.add(name);
      addLine("event", "", `${name} joined`);
      break;
    case "LEAVE":
      members.delete(name);
      addLine("event", "", `${name} left`);
      break;
    case "QUIT":
      members.delete(name);
      addLine("event", "", `${name} quit (${rest})`);
      break;
    default:
      addLine("event", "", line);
  }
  showMembers();
}

async function showRooms() {
  show("enter");
  const reply = await send("ROOMS");
  $("rooms").replaceChildren();
  for (const word of reply.split(" ").slice(1)) {
    const m = /^(.+)\((\d+)\)$/.exec(word);
    if (!m) continue;
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${m[1]} · ${m[2]}`;
    b.onclick = () => { $("room").value = m[1]; $("enter").requestSubmit(); };
    const li = document.createElement("li");
    li.append(b);
    $("rooms").append(li);
  }
}

$("login").onsubmit = async (ev) => {
  ev.preventDefault();
  showError("");
  try {
    if (!ws) await connect();
  } catch (err) {
    showError(err.message);
    return;
  }
  const name = $("name").value.trim();
  const reply = await send("LOGIN " + name);
  if (error(reply)) {
    showError(error(reply));
    return;
  }
  me = name;
  await showRooms();
};

$("enter").onsubmit = async (ev) => {
  ev.preventDefault();
  showError("");
  const room = $("room").value.trim();
  $("log").replaceChildren();
  members = new Set();
  const reply = await send("ENTER " + room);
  if (error(reply)) {
    showError(error(reply));
    return;
  }
  $("title").textContent = room;
  // Lines pushed before WHO's reply are in its list already; later ones update it.
  const who = await send("WHO");
  members = new Set(who.split(" ").slice(1));
  showMembers();
  show("chat");
};

$("say").onsubmit = async (ev) => {
  ev.preventDefault();
  // One line: a line ending inside would make the rest a command of its own.
  const text = $("text").value.replace(/\s+/g, " ").trim();
  if (!text) return;
  $("text").value = "";
  const reply = await send("SAY " + text);
  if (error(reply)) showError(error(reply));
  else addLine("msg mine", me, text);
};

$("leave").onclick = async () => {
  showError("");
  const reply = await send("LEAVE");
  if (error(reply)) showError(error(reply));
  else await showRooms();
};

$("quit").onclick = () => {
  showError("");
  quitting = true;
  send("QUIT"); // the server answers "OK bye" and closes: onclose shows the login box
};

show("login");
