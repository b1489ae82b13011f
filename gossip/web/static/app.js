// gossip web: the live page. Plain JavaScript and SVG, no library: a small force layout
// draws the topology the nodes report; a WebSocket brings every survey and every spread.
// Text from the network is only ever set as textContent, never parsed as HTML.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const SVG = "http://www.w3.org/2000/svg";
const W = 800, H = 600, R = 14;
const REPLAY_MS = 3000; // a spread of a few ms replays over about this long

const $ = (id) => document.getElementById(id);
const layout = new Map(); // node number -> {x, y, vx, vy, info, g, badge}
let links = []; // [{a, b, twoWay, line}]
let linkKey = "";
let alpha = 1;
let lastSpread = null;
let timers = [];
let latest = null; // the last survey

function svg(tag, attrs, parent) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

async function api(path, body) {
  const options = { method: body === undefined ? "GET" : "POST", headers: { "X-Gossip-Token": token } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    // a refusal before the API's own (a body too large: 413), in plain text
    throw new Error(response.ok ? "the server's answer is not JSON" : text || response.statusText);
  }
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function say(text, error) {
  $("said").textContent = text;
  $("said").className = error ? "error" : "";
}

async function perform(label, path, body) {
  say(label + "…");
  try {
    const data = await api(path, body);
    say(data.said || "done");
    return data;
  } catch (error) {
    say(error.message, true);
    return null;
  }
}

// ---- the live feed ----

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  socket.onopen = () => { $("link").textContent = "live"; $("link").className = "online"; };
  socket.onclose = () => {
    $("link").textContent = "offline: reconnecting";
    $("link").className = "offline";
    setTimeout(connect, 1000);
  };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "survey") surveyed(event);
    else if (event.type === "spread") replay(event);
    else if (event.type === "trouble") trouble(event.error);
  };
}

// A survey that failed (the network stopped, its state unreadable): what the page shows is
// only the last known state, greyed out with its controls, until a survey succeeds again.
function trouble(error) {
  say(error, true);
  document.body.classList.add("stale");
  const el = $("summary");
  el.textContent = "the network does not answer: shown as it last was";
  for (const key of ["up", "parts", "links"]) delete el.dataset[key];
}

// ---- the topology ----

function surveyed(survey) {
  latest = survey;
  if (document.body.classList.contains("stale")) {
    say("");
    document.body.classList.remove("stale");
  }
  $("label").textContent = `${survey.label}: ${survey.topology}, at most ${survey.max_peers} peers each`;
  const numbers = survey.nodes.map((n) => n.node);
  const fresh = layout.size === 0;
  numbers.forEach((number, i) => {
    let spot = layout.get(number);
    if (!spot) {
      // A new network starts on a circle and is laid out at once; a node added later
      // starts beside a peer it reports and finds its place as the layout moves.
      const angle = (2 * Math.PI * i) / numbers.length;
      const beside = layout.get((survey.nodes[i].peers || []).find((p) => layout.has(p)));
      spot = fresh || !beside
        ? { x: W / 2 + 250 * Math.cos(angle), y: H / 2 + 250 * Math.sin(angle), vx: 0, vy: 0 }
        : { x: beside.x + 20 * Math.cos(angle), y: beside.y + 20 * Math.sin(angle), vx: 0, vy: 0 };
      spot.g = svg("g", { class: "node", "data-node": number }, $("nodes-drawn"));
      svg("circle", { r: R }, spot.g).addEventListener("click", () => inbox(number));
      svg("text", {}, spot.g).textContent = number;
      spot.badge = svg("text", { class: "badge", y: R + 11 }, spot.g);
      layout.set(number, spot);
      alpha = fresh ? 1 : Math.max(alpha, 0.6);
    }
    spot.info = survey.nodes[i];
    const state = spot.info.state;
    spot.g.setAttribute("data-state", state);
    spot.g.classList.remove("up", "down", "busy", "failing", "paused", "removed");
    spot.g.classList.add(state);
  });
  for (const [number, spot] of layout) {
    if (!numbers.includes(number)) { spot.g.remove(); layout.delete(number); }
  }
  const peersOf = new Map(survey.nodes.filter((n) => n.peers).map((n) => [n.node, n.peers]));
  const found = new Map();
  for (const [a, peers] of peersOf) {
    for (const b of peers) {
      if (!layout.has(b)) continue;
      const key = a < b ? `${a}-${b}` : `${b}-${a}`;
      const twoWay = (peersOf.get(b) || []).includes(a);
      found.set(key, { a: Math.min(a, b), b: Math.max(a, b), twoWay });
    }
  }
  const key = [...found.entries()].map(([k, l]) => k + (l.twoWay ? "" : "?")).sort().join(" ");
  if (key !== linkKey) {
    linkKey = key;
    $("links").replaceChildren();
    links = [...found.values()];
    for (const link of links) {
      link.line = svg("line", { class: link.twoWay ? "link" : "link one-way" }, $("links"));
    }
    alpha = Math.max(alpha, 0.6);
  }
  if (fresh) settle();
  set($("conditions"), `In force: ${survey.conditions || "none"}`);
  table(survey);
  summary(survey, links.filter((l) => l.twoWay).length);
}

function summary(survey, linkCount) {
  const up = survey.nodes.filter((n) => n.state === "up").length;
  const parts = survey.parts.length;
  const text = `${up} of ${survey.nodes.length} nodes up · ` +
    (parts === 1 ? "one connected graph" : `${parts} separate parts`) + ` · ${linkCount} links`;
  const el = $("summary");
  el.textContent = text;
  el.dataset.up = up;
  el.dataset.parts = parts;
  el.dataset.links = linkCount;
}

function step() {
  // Forces of a spring embedder: every pair repels, every link pulls to its length
  // (scaled to the room each node has), and a weak pull to the middle keeps parts in view.
  const spots = [...layout.values()];
  const room = Math.min(160, 0.8 * Math.sqrt((W * H) / Math.max(spots.length, 1)));
  for (let i = 0; i < spots.length; i++) {
    for (let j = i + 1; j < spots.length; j++) {
      const p = spots[i], q = spots[j];
      const dx = q.x - p.x || 0.1, dy = q.y - p.y || 0.1;
      const d = Math.max(Math.hypot(dx, dy), 5);
      const f = (room * room) / (d * d) * 0.6;
      p.vx -= (dx / d) * f; p.vy -= (dy / d) * f;
      q.vx += (dx / d) * f; q.vy += (dy / d) * f;
    }
  }
  for (const link of links) {
    const p = layout.get(link.a), q = layout.get(link.b);
    const dx = q.x - p.x, dy = q.y - p.y, d = Math.max(Math.hypot(dx, dy), 1);
    const f = (d - room) * 0.06;
    p.vx += (dx / d) * f; p.vy += (dy / d) * f;
    q.vx -= (dx / d) * f; q.vy -= (dy / d) * f;
  }
  for (const p of spots) {
    p.vx += (W / 2 - p.x) * 0.005; p.vy += (H / 2 - p.y) * 0.005;
    const speed = Math.hypot(p.vx, p.vy), most = 30 * alpha + 0.5;
    if (speed > most) { p.vx *= most / speed; p.vy *= most / speed; }
    p.x = Math.min(W - R - 2, Math.max(R + 2, p.x + p.vx));
    p.y = Math.min(H - R - 14, Math.max(R + 2, p.y + p.vy));
    p.vx *= 0.6; p.vy *= 0.6;
  }
  alpha *= 0.99;
}

function settle() {
  // A new network is laid out at once, not watched as it unfolds.
  for (let i = 0; i < 300 && alpha > 0.05; i++) step();
}

function tick() {
  if (alpha > 0.01) step();
  draw();
  requestAnimationFrame(tick);
}

function draw() {
  for (const spot of layout.values()) spot.g.setAttribute("transform", `translate(${spot.x.toFixed(1)},${spot.y.toFixed(1)})`);
  for (const link of links) place(link.line, layout.get(link.a), layout.get(link.b));
  for (const line of $("tree").children) {
    place(line, layout.get(Number(line.dataset.from)), layout.get(Number(line.dataset.to)));
  }
}

function place(line, p, q) {
  if (!p || !q) return;
  line.setAttribute("x1", p.x.toFixed(1)); line.setAttribute("y1", p.y.toFixed(1));
  line.setAttribute("x2", q.x.toFixed(1)); line.setAttribute("y2", q.y.toFixed(1));
}

// ---- the table and its controls ----

const rows = new Map(); // node number -> {tr, cells, state}
const ACTIONS = { up: ["kill", "pause", "remove"], paused: ["resume"], down: ["restart", "remove"], removed: ["restart"] };

function table(survey) {
  const body = document.querySelector("#nodes tbody");
  for (const node of survey.nodes) {
    let row = rows.get(node.node);
    if (!row) {
      const tr = document.createElement("tr");
      tr.dataset.node = node.node;
      const cells = {};
      for (const name of ["number", "state", "peers", "messages", "unread", "actions"]) {
        cells[name] = tr.appendChild(document.createElement("td"));
        cells[name].className = name;
      }
      cells.number.textContent = node.node;
      cells.number.addEventListener("click", () => inbox(node.node));
      row = { tr, cells, state: null };
      rows.set(node.node, row);
      body.appendChild(tr);
    }
    const cells = row.cells;
    set(cells.state, node.state);
    set(cells.peers, node.peers ? node.peers.join(", ") || "none" : "-");
    set(cells.messages, node.messages ?? "-");
    set(cells.unread, node.unread ?? "-");
    if (row.state !== node.state) {
      row.state = node.state;
      row.tr.className = node.state;
      cells.actions.replaceChildren();
      for (const action of ACTIONS[node.state] || []) {
        const button = cells.actions.appendChild(document.createElement("button"));
        button.type = "button";
        button.textContent = action;
        button.dataset.action = action;
        button.dataset.node = node.node;
        button.addEventListener("click", () => perform(`${action} node ${node.node}`, `/api/nodes/${node.node}/${action}`, {}));
      }
    }
  }
  for (const [number, row] of rows) {
    if (!survey.nodes.some((n) => n.node === number)) { row.tr.remove(); rows.delete(number); }
  }
  const select = $("send-node");
  const live = survey.nodes.filter((n) => n.state === "up").map((n) => String(n.node));
  const shown = [...select.options].map((o) => o.value);
  if (live.join() !== shown.join()) {
    const chosen = select.value;
    select.replaceChildren(...live.map((n) => new Option(n, n)));
    if (live.includes(chosen)) select.value = chosen;
  }
}

function set(cell, value) {
  const text = String(value);
  if (cell.textContent !== text) cell.textContent = text;
}

async function inbox(number) {
  try {
    const data = await api(`/api/nodes/${number}/messages`);
    $("inbox").hidden = false;
    $("inbox-title").textContent = `Node ${number} holds ${data.messages.length} message(s); click one to replay its spread`;
    const node = latest && latest.nodes.find((n) => n.node === number);
    $("inbox-counts").textContent = node && node.counters ? counted(node.counters) : "";
    const list = $("inbox-list");
    list.replaceChildren();
    for (const message of data.messages) {
      const item = list.appendChild(document.createElement("li"));
      item.appendChild(document.createElement("b")).textContent = message.text;
      for (const copy of message.copies) {
        const path = item.appendChild(document.createElement("div"));
        path.className = "path";
        const ms = ((copy.arrived - message.sent) * 1000).toFixed(1);
        path.textContent = `↳ ${copy.path.join(" ➜ ")}  (+${ms} ms)`;
      }
      item.addEventListener("click", () => perform("looking", "/api/spread", { text: message.text }));
    }
  } catch (error) {
    say(error.message, true);
  }
}

function counted(c) {
  const frames = (way) => Object.values(c[way] || {}).reduce((a, b) => a + b, 0);
  return `Since it started: ${c.copies} copies received (${c.duplicates} duplicates), ` +
    `${frames("frames_in")} frames in, ${frames("frames_out")} out, ${c.link_breaks} links broken, ` +
    `${c.heals} heals, ${c.merges} merges, ${c.pulls} pulled by catch-up.`;
}

// ---- a message spreading ----

function replay(spread) {
  lastSpread = spread;
  $("replay").disabled = false;
  for (const timer of timers) clearTimeout(timer);
  timers = [];
  $("tree").replaceChildren();
  for (const spot of layout.values()) { spot.g.classList.remove("reached"); spot.badge.textContent = ""; }
  const arrivals = spread.arrivals;
  const last = arrivals.length ? arrivals[arrivals.length - 1].delay_ms : 0;
  const slower = last > 0 ? REPLAY_MS / last : 1;
  const el = $("spread-summary");
  el.dataset.reached = 0;
  el.dataset.expected = spread.expected;
  el.dataset.id = spread.id;
  el.textContent = `“${spread.text}” spreading… (replayed ${Math.round(slower)}× slower)`;
  arrivals.forEach((arrival, i) => {
    timers.push(setTimeout(() => {
      reach(arrival);
      el.dataset.reached = i + 1;
      if (i === arrivals.length - 1) {
        el.textContent = `“${spread.text}” reached ${arrivals.length} of ${spread.expected} live nodes; ` +
          `the last ${last.toFixed(1)} ms after it was sent (${arrivals[arrivals.length - 1].hops} hops; ` +
          `replayed ${Math.round(slower)}× slower).`;
      }
    }, arrival.delay_ms * slower));
  });
}

function reach(arrival) {
  const spot = layout.get(arrival.node);
  if (!spot) return;
  spot.g.classList.add("reached");
  spot.badge.textContent = arrival.parent === null
    ? "origin"
    : `${arrival.hops} hop${arrival.hops === 1 ? "" : "s"} · ${arrival.delay_ms.toFixed(1)} ms`;
  if (arrival.parent !== null && layout.has(arrival.parent)) {
    svg("line", { class: "tree", "data-from": arrival.parent, "data-to": arrival.node }, $("tree"));
  }
}

// ---- wiring ----

$("send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const node = Number($("send-node").value);
  const text = $("send-text").value;
  if (await perform(`sending to node ${node}`, "/api/send", { node, text })) $("send-text").value = "";
});
$("spread-form").addEventListener("submit", (event) => {
  event.preventDefault();
  perform("looking", "/api/spread", { text: $("spread-text").value });
});
$("replay").addEventListener("click", () => lastSpread && replay(lastSpread));
$("add-node").addEventListener("click", () => perform("adding a node", "/api/add", {}));
$("partition-form").addEventListener("submit", (event) => {
  event.preventDefault();
  perform("partitioning", "/api/partition", { groups: $("partition-groups").value });
});
$("heal").addEventListener("click", () => perform("healing", "/api/heal", {}));
$("netem-form").addEventListener("submit", (event) => {
  event.preventDefault();
  perform("imposing", "/api/netem", {
    delay: $("netem-delay").value, jitter: $("netem-jitter").value, loss: $("netem-loss").value,
  });
});

connect();
requestAnimationFrame(tick);
