// The terminal panel: renders the terminal's picture from /_sim/ui/state and its live
// stream /_sim/ui/events, and acts as the person through the /_sim/ control API only.
"use strict";

const $ = (id) => document.getElementById(id);

function clock(seconds) {
  if (typeof seconds !== "number") return "–";
  // Device-local epoch seconds: shown as they are, without the browser's time zone.
  return new Date(seconds * 1000).toISOString().slice(11, 19);
}

function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

function decisionName(e) {
  if (e.granted) return "granted";
  if (e.event === 3) return "not identified";
  if (e.event === 14) return "no answer";
  return "denied";
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}

function fillTable(id, emptyId, items, fill) {
  const body = $(id).tBodies[0];
  const rows = items.map((item) => {
    const tr = document.createElement("tr");
    fill(tr, item);
    return tr;
  });
  body.replaceChildren(...rows);
  $(emptyId).hidden = items.length > 0;
}

let lastState = null;

function render(s) {
  lastState = s;
  document.title = `${s.model_name} ${s.device_id} – simulated terminal`;
  setText("title", `${s.model_name} · device ${s.device_id}`);
  setText("model", `${s.model_name} (${s.model})`);
  setText("device-id", String(s.device_id));
  setText("serial", s.serial);
  setText("mode", s.mode);
  const conn = $("connection");
  conn.replaceChildren();
  const badge = document.createElement("span");
  badge.className = `badge ${s.connection}`;
  badge.textContent = s.powered ? `powered, ${s.connection}` : "powered off";
  conn.appendChild(badge);

  setText("screen-text", s.screen.text);
  const cd = $("countdown");
  if (typeof s.screen.countdown === "number") {
    cd.hidden = false;
    setText("countdown", s.screen.countdown > 0 ? String(s.screen.countdown) : "Capturing…");
  } else {
    cd.hidden = true;
    setText("countdown", "");
  }
  const shown = s.screen.message ? `message (${s.screen.message.timeout > 0 ? `${s.screen.message.timeout} ms` : "until cleared"})` : "";
  setText("screen-mode", [s.screen.always_on ? "always on" : "sleeps when idle", shown].filter(Boolean).join("; "));
  const led = $("led");
  led.className = `led led-${s.led}`;
  led.setAttribute("aria-label", `LED ${s.led}`);
  setText("led-name", s.led);

  const door = s.door;
  const last = door.last_opened ? `, last ${door.last_opened.what} at ${clock(door.last_opened.time)}` : "";
  const now = door.open.length > 0 ? `open (${door.open.join(", ")})` : "closed";
  setText("door", `${door.drive === "sec_box" ? "Security Box" : "relay"} ${now}: opened ${door.opened_count}×${last}`);
  const sound = s.sounds.recent[0];
  const heard = !sound ? "none yet"
    : sound.kind === "buzz" ? `buzz ${sound.frequency} Hz, ${sound.duty_cycle} %, ${sound.timeout} ms`
    : sound.kind === "voice" ? `voice "${sound.message}"` : "beep";
  setText("sounds", `${s.sounds.count} so far${sound ? `; last: ${heard} at ${clock(sound.time)}` : ""}`);
  const enroller = s.enroller.enroller_state + (s.screen.enrolling ? ` (${s.screen.enrolling})` : "");
  setText("enroller", enroller);
  setText("person", `${s.person.policy}, ${s.person.queued} queued`);
  setText("clock", `${s.clock.mode}${s.clock.mode === "manual" ? `, ${s.clock.elapsed_ms / 1000} s elapsed` : ` ×${s.clock.scale}`}; device time ${clock(s.local_time)}`);
  $("clock-form").hidden = s.clock.mode !== "manual";
  if (document.activeElement !== $("policy")) $("policy").value = s.person.policy;

  for (const [id, able] of [["card-form", s.capabilities.card], ["face-form", s.capabilities.face],
    ["finger-form", s.capabilities.fingerprint], ["qr-form", s.capabilities.qr]]) {
    $(id).hidden = !able;
  }

  fillTable("events", "no-events", s.events, (tr, e) => {
    cell(tr, String(e.log_id));
    cell(tr, clock(e.time));
    cell(tr, decisionName(e), e.granted ? "granted" : "denied");
    cell(tr, e.user_id === null ? "–" : String(e.user_id));
    cell(tr, e.reason);
    cell(tr, String(e.portal_id));
  });
  fillTable("callbacks", "no-callbacks", s.callbacks, (tr, c) => {
    cell(tr, String(c.seq));
    cell(tr, c.topic);
    cell(tr, String(c.attempt));
    const outcome = c.status !== null ? `HTTP ${c.status}` : c.error;
    cell(tr, outcome, c.delivered ? "granted" : "denied");
  });
}

function report(text, failed) {
  const out = $("action-result");
  out.textContent = text;
  out.classList.toggle("error", Boolean(failed));
}

// Posts to the control API; `body` is a JSON text (card values exceed a double's range).
async function control(path, body) {
  try {
    const r = await fetch(`/_sim/${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await r.text();
    report(`${path}: ${text}`, !r.ok);
    return r.ok;
  } catch (e) {
    report(`${path}: ${e.message} (is the terminal powered off?)`, true);
    return false;
  }
}

function digits(id) {
  const v = $(id).value.trim();
  if (!/^[0-9]+$/.test(v)) return null;
  return BigInt(v);
}

function on(id, event, handler) {
  $(id).addEventListener(event, (ev) => {
    ev.preventDefault();
    handler();
  });
}

on("card-form", "submit", () => {
  let value = digits("card-value");
  if (value === null) {
    const fc = digits("card-facility");
    const n = digits("card-number");
    if (fc === null || n === null) {
      report("Enter a card value, or a facility code and a number.", true);
      return;
    }
    // The terminal keeps a Wiegand card as facility × 2^32 + number.
    value = (fc << 32n) + n;
  }
  control("present", `{"card": ${value.toString()}}`);
});

on("face-form", "submit", () => {
  const user = digits("face-user");
  if (user === null) { report("Enter the id of the user whose face is shown.", true); return; }
  control("present", `{"face_of": ${user.toString()}}`);
});

on("present-face-file", "click", () => {
  const file = $("face-file").files[0];
  if (!file) { report("Choose a JPEG photo first.", true); return; }
  const reader = new FileReader();
  reader.onload = () => {
    const b64 = String(reader.result).replace(/^data:[^,]*,/, "");
    control("present", { face_jpeg: b64 });
  };
  reader.readAsDataURL(file);
});

on("finger-form", "submit", () => {
  const seed = digits("finger-seed");
  if (seed === null) { report("Enter a finger number.", true); return; }
  control("present", `{"finger": ${seed.toString()}}`);
});

on("pin-form", "submit", () => control("present", { pin: $("pin").value }));
on("qr-form", "submit", () => control("present", { qr: $("qr").value }));
on("cancel-enroll", "click", () => control("cancel_enroll", {}));
on("enroll-form", "submit", () => control("policy", { policy: $("policy").value }));
on("reboot", "click", () => control("faults", { reboot: true }));
on("power-form", "submit", () => {
  const seconds = Number($("off-seconds").value);
  control("faults", { power_off_seconds: seconds });
});
on("power-off", "click", () => {
  if (window.confirm("Power the terminal off? This page cannot power it on again.")) {
    control("power", { on: false });
  }
});
on("clock-form", "submit", () => control("clock/advance", { seconds: Number($("advance-seconds").value) }));

on("fault-form", "submit", () => {
  const amount = Number($("fault-amount").value);
  const body = {
    latency: { latency_seconds: amount },
    override: { override: { command: $("fault-command").value, status: Number($("fault-status").value), count: amount } },
    expire: { expire_sessions: true },
    skew: { clock_skew_seconds: Math.trunc(amount) },
    drop: { callbacks: { drop_next: amount } },
    clear: { clear: true },
  }[$("fault-kind").value];
  control("faults", body);
});

async function refresh() {
  try {
    const r = await fetch("/_sim/ui/state", { cache: "no-store" });
    if (r.ok) render(await r.json());
  } catch (_) {
    // The stream's error handler reports the lost connection.
  }
}

function connect() {
  const source = new EventSource("/_sim/ui/events");
  source.addEventListener("state", (e) => {
    setText("live", "Live");
    render(JSON.parse(e.data));
  });
  source.onerror = () => {
    setText("live", "Disconnected – reconnecting (powered off or rebooting?)");
  };
}

refresh();
connect();
