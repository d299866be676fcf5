// The live view of a crawler's held captcha page (docs/live.md), on the intervention page.
//
// Frames arrive over /ws/live/<id> as base64 JPEGs of the page's viewport (w x h CSS pixels)
// and are shown in an <img> scaled to the panel; the reviewer's mouse, wheel, keys and pastes
// go back over the same socket, scaled from the shown size to the page's CSS pixels. The
// socket needs a one-time token, asked for first and renewed while the view is open.
import { $, api, describeError, el, say, setBadge } from "./common.js";

const id = Number($("intervention").dataset.interventionId);
const RENEW_MS = 5 * 60 * 1000; // well inside the token's 15 minutes
const RETRY_MS = 3000;
const MOVE_MS = 16; // at most one mouse move per frame of the reviewer's screen

let ws = null;
let token = null;
let renewTimer = null;
let frameSize = { w: 0, h: 0 };
let lastMove = 0;
let state = "none";
let lastMessage = "";
let pageState = "none"; // the page's, as the relay says: live, closed or none
let kind = "captcha"; // or "login": a login page opened from the sessions page (Save session)
let connecting = false;

const screen = $("live-screen");
const img = $("live-frame");

function setState(value) {
  state = value;
  setBadge($("live-state"), value);
  $("live-state").dataset.state = value;
  $("live-view").dataset.state = value;
  $("live-continue").disabled = value !== "live" || !ws;
}

// --- frames ---------------------------------------------------------------------------------

function showFrame(msg) {
  if (typeof msg.data !== "string" || !/^[A-Za-z0-9+/]+=*$/.test(msg.data)) return;
  const received = Date.now();
  img.src = `data:image/jpeg;base64,${msg.data}`;
  img.hidden = false;
  img.decode().then(() => {
    // The frame is the visible part of the page, w CSS pixels wide; its height in CSS
    // pixels follows from the image (it can be less than the reported viewport height).
    const scale = Number(msg.w) > 0 && img.naturalWidth ? Number(msg.w) / img.naturalWidth : 1;
    frameSize = { w: img.naturalWidth * scale, h: img.naturalHeight * scale };
    screen.dataset.seq = String(msg.seq);
    screen.dataset.w = String(frameSize.w);
    screen.dataset.h = String(frameSize.h);
    // for tests and bench/live_view.py: when each frame was captured, and when it was shown
    screen.dataset.frameTs = String(msg.ts);
    screen.dataset.shownAt = String(Date.now());
    screen.dataset.receivedAt = String(received);
  }).catch(() => {});
}

function onMessage(event) {
  let msg;
  try {
    msg = JSON.parse(event.data);
  } catch {
    return;
  }
  if (msg.type === "frame") showFrame(msg);
  else if (msg.type === "status") {
    if (msg.url && msg.url !== $("live-url").textContent) {
      $("live-url").textContent = String(msg.url);
      if (!msg.refused) say($("live-error"), ""); // the page moved on: an older refusal no longer applies
    }
    if (msg.message) {
      lastMessage = String(msg.message);
      say($("live-message"), lastMessage);
    }
    if (msg.state === "closed") {
      setState("closed");
      // a login page says why it closed (crashed, expired) just before closing
      say($("live-message"), lastMessage || `The crawler closed the page (${String(msg.reason || "closed")}).`);
      ws?.close();
    }
  }
}

// --- input ----------------------------------------------------------------------------------

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN && state === "live") ws.send(JSON.stringify({ ...msg, t: Date.now() }));
}

function modifiers(e) {
  return (e.altKey ? 1 : 0) | (e.ctrlKey ? 2 : 0) | (e.metaKey ? 4 : 0) | (e.shiftKey ? 8 : 0);
}

/** The event's position in the page's CSS pixels (the frame is shown scaled). */
function at(e) {
  const rect = img.getBoundingClientRect();
  if (!rect.width || !rect.height || !frameSize.w) return null;
  return {
    x: Math.round(((e.clientX - rect.left) * frameSize.w) / rect.width * 10) / 10,
    y: Math.round(((e.clientY - rect.top) * frameSize.h) / rect.height * 10) / 10,
  };
}

const BUTTON_NAMES = ["left", "middle", "right"];

function mouse(type) {
  return (e) => {
    const point = at(e);
    if (!point) return;
    if (type === "move") {
      const now = performance.now();
      if (now - lastMove < MOVE_MS) return;
      lastMove = now;
    } else {
      e.preventDefault();
      screen.focus({ preventScroll: true }); // a jump would move the page under the pointer
    }
    send({ op: "mouse", type, ...point, button: type === "move" ? "none" : BUTTON_NAMES[e.button] || "left",
      buttons: e.buttons, clicks: e.detail || 1, modifiers: modifiers(e) });
  };
}

img.addEventListener("mousedown", mouse("down"));
img.addEventListener("mouseup", mouse("up"));
img.addEventListener("mousemove", mouse("move"));
img.addEventListener("contextmenu", (e) => e.preventDefault());
img.addEventListener("wheel", (e) => {
  const point = at(e);
  if (!point) return;
  e.preventDefault();
  send({ op: "wheel", ...point, dx: e.deltaX, dy: e.deltaY, modifiers: modifiers(e) });
}, { passive: false });

function key(type) {
  return (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "v") return; // the paste event sends the text
    e.preventDefault();
    send({ op: "key", type, key: e.key, code: e.code, modifiers: modifiers(e) });
  };
}

screen.addEventListener("keydown", key("down"));
screen.addEventListener("keyup", key("up"));
screen.addEventListener("paste", (e) => {
  e.preventDefault();
  const text = e.clipboardData ? e.clipboardData.getData("text/plain") : "";
  if (text) send({ op: "text", text: text.slice(0, 2000) });
});

// --- the socket -----------------------------------------------------------------------------

async function renew() {
  if (!token) return;
  try {
    await api(`/api/v1/interventions/${id}/live/token/renew`, { method: "POST", json: { token } });
  } catch (err) {
    say($("live-error"), describeError(err));
  }
}

async function connect() {
  if (connecting || ws) return;
  connecting = true;
  say($("live-error"), "");
  try {
    token = (await api(`/api/v1/interventions/${id}/live/token`, { method: "POST" })).token;
  } catch (err) {
    connecting = false;
    if (err.status === 409) setState("closed");
    else say($("live-error"), describeError(err));
    return;
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/live/${id}?token=${encodeURIComponent(token)}`);
  ws = socket;
  socket.addEventListener("open", () => {
    connecting = false;
    setState("live");
    clearInterval(renewTimer);
    renewTimer = setInterval(renew, RENEW_MS);
  });
  socket.addEventListener("message", onMessage);
  socket.addEventListener("close", () => {
    connecting = false;
    clearInterval(renewTimer);
    if (ws === socket) ws = null;
    token = null;
    $("live-continue").disabled = true;
    if (state === "live") setTimeout(refresh, RETRY_MS); // dropped: see whether the page is still there
  });
}

async function refresh() {
  let info;
  try {
    info = await api(`/api/v1/interventions/${id}/live`);
  } catch (err) {
    say($("live-error"), describeError(err));
    return;
  }
  pageState = info.state;
  if (info.state === "none") return;
  $("live-view").hidden = false;
  if (info.kind === "login") { // a login page: its Continue stores the page's session
    kind = "login";
    $("live-continue").textContent = "Save session";
    document.querySelector("#live-view .hint").textContent = "A fresh crawler browser page on this domain, live. "
      + "Log in in it by clicking and typing (paste works too), then press Save session: its cookies, "
      + "localStorage, user agent and proxy go into the vault.";
  }
  $("live-url").textContent = info.url || "";
  if (info.state === "live") {
    if (!ws) connect();
  } else {
    setState(info.state);
    ws?.close();
  }
}

$("live-continue").addEventListener("click", async () => {
  const button = $("live-continue");
  button.disabled = true;
  say($("live-error"), "");
  say($("live-message"), "Checking the page…");
  try {
    const result = await api(`/api/v1/interventions/${id}/live/continue`, { method: "POST", json: { token } });
    if (kind === "login") {
      const storage = result.origins.length ? ` and the localStorage of ${result.origins.join(", ")}` : "";
      lastMessage = `Saved session ${result.session_name}: cookies ${result.cookie_names.join(", ") || "none"}` +
        `${storage}; ${result.requests_to_resume} parked requests resume.`; // kept when the page closes
      say($("live-message"), lastMessage);
    } else {
      say($("live-message"), `Solved: the crawl continues from ${result.url}; ` +
        `${result.requests_to_resume} parked requests resume.`);
    }
    $("live-view").dataset.continued = "true";
  } catch (err) {
    say($("live-message"), "");
    say($("live-error"), describeError(err));
    button.disabled = state !== "live";
  }
});

// --- log in through a live browser (docs/sessions.md): for an open block that a login fixes -------

const LOGIN_TYPES = new Set(["manual_access", "login_refresh"]);
let intervention = null;

async function offerLogin() {
  try {
    intervention = await api(`/api/v1/interventions/${id}`);
  } catch {
    return;
  }
  const open = intervention.status === "open" && LOGIN_TYPES.has(intervention.type) && pageState !== "live";
  $("live-login").hidden = !open;
  if (pageState === "live") say($("live-login-status"), "");
  // Why a login is asked for: the sessions the crawl retired (and why), or "expires in 25 min"
  const evidence = intervention.evidence || {};
  $("live-login-summary").textContent = evidence.summary || "";
  $("live-login-summary").hidden = !evidence.summary;
  const retired = evidence.retired_sessions || [];
  $("live-login-retired").replaceChildren(...retired.map((r) => el("li", { dataset: { session: r.name } },
    `Session ${r.name} retired: ${r.reason}`)));
  $("live-login-retired").hidden = retired.length === 0;
  if (open && !$("live-login-url").value) {
    $("live-login-url").value = intervention.url || `https://${intervention.domain}/`;
  }
}

$("live-login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say($("live-login-error"), "");
  $("live-login-open").disabled = true;
  try {
    await api(`/api/v1/sessions/${encodeURIComponent(intervention.domain)}/login`, { method: "POST", json: {
      url: $("live-login-url").value.trim(), name: $("live-login-name").value.trim() || "default",
      intervention_id: id } });
    // the live view below shows it once a worker opened it (live.opened)
    say($("live-login-status"), "Opening the login page…");
  } catch (err) {
    say($("live-login-error"), describeError(err));
  } finally {
    $("live-login-open").disabled = false;
  }
});

document.addEventListener("hitl:event", (e) => {
  const ev = e.detail;
  if (ev.intervention_id === id && (ev.type.startsWith("live.") || ev.type.startsWith("intervention."))) {
    refresh().then(offerLogin);
  }
});

refresh();
offerLogin();
