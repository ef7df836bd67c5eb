// The fleet overview: one page of terminals from /_fleet/ui/state, refreshed every two
// seconds; power and reboot buttons post to the fleet control API (/_fleet/…).
"use strict";

const $ = (id) => document.getElementById(id);
let offset = 0;
let total = 0;

function perPage() { return Number($("per-page").value); }

function report(text, failed) {
  const out = $("action-result");
  out.textContent = text;
  out.classList.toggle("error", Boolean(failed));
}

async function control(path, body) {
  try {
    const r = await fetch(`/_fleet/${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    report(`${path}: ${await r.text()}`, !r.ok);
  } catch (e) {
    report(`${path}: ${e.message}`, true);
  }
  load();
}

function cell(row, content, cls) {
  const td = document.createElement("td");
  if (typeof content === "string") td.textContent = content; else td.appendChild(content);
  if (cls) td.className = cls;
  row.appendChild(td);
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

function row(t) {
  const tr = document.createElement("tr");
  cell(tr, String(t.index));
  cell(tr, t.model);
  cell(tr, String(t.device_id));
  const badge = document.createElement("span");
  badge.className = `badge ${t.connection}`;
  badge.textContent = t.connection;
  cell(tr, badge);
  cell(tr, t.mode);
  const screen = t.screen.text + (typeof t.screen.countdown === "number" ? ` (${t.screen.countdown})` : "");
  cell(tr, screen, "wrap");
  cell(tr, t.led);
  const e = t.last_event;
  cell(tr, e ? `${e.granted ? "granted" : "denied"}${e.user_id === null ? "" : ` (user ${e.user_id})`}` : "–",
    e ? (e.granted ? "granted" : "denied") : "");
  const actions = document.createElement("span");
  if (t.url && t.powered) {
    const a = document.createElement("a");
    a.href = `${t.url}/_sim/ui`;
    a.textContent = "Open panel";
    a.setAttribute("aria-label", `Open the panel of terminal ${t.index}`);
    actions.appendChild(a);
    actions.append(" ");
  }
  actions.appendChild(button(t.powered ? "Power off" : "Power on",
    () => control("power", { select: [t.index], on: !t.powered })));
  actions.append(" ");
  actions.appendChild(button("Reboot", () => control("faults", { select: [t.index], reboot: true })));
  cell(tr, actions);
  return tr;
}

async function load() {
  try {
    const r = await fetch(`/_fleet/ui/state?offset=${offset}&limit=${perPage()}`, { cache: "no-store" });
    if (!r.ok) return;
    const s = await r.json();
    total = s.total;
    $("totals").textContent = `${s.total} terminals, ${s.powered} powered`;
    const last = s.offset + s.terminals.length;
    $("range").textContent = s.total ? `Terminals ${s.offset}–${last - 1} of ${s.total}` : "No terminal";
    $("prev").disabled = s.offset === 0;
    $("next").disabled = last >= s.total;
    $("fleet").tBodies[0].replaceChildren(...s.terminals.map(row));
  } catch (_) {
    $("totals").textContent = "The fleet control API does not answer.";
  }
}

$("prev").addEventListener("click", () => { offset = Math.max(0, offset - perPage()); load(); });
$("next").addEventListener("click", () => { if (offset + perPage() < total) offset += perPage(); load(); });
$("per-page").addEventListener("change", () => { offset = 0; load(); });
$("goto").addEventListener("change", () => {
  const i = Number($("goto").value);
  if (Number.isInteger(i) && i >= 0) { offset = Math.floor(i / perPage()) * perPage(); load(); }
});

load();
setInterval(load, 2000);
