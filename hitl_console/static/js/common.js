// Shared by every page: the API client, DOM building, time formatting, toasts, and the
// live event stream. Untrusted text only ever goes into textContent or setAttribute;
// nothing here assigns innerHTML.
import { STATUSES } from "/words.js";

const body = document.body;

/** The logged-in user and page data the server put on <body data-*>. */
export const page = {
  name: body.dataset.page || "",
  role: body.dataset.userRole || "",
  email: body.dataset.userEmail || "",
  lastEventId: body.dataset.lastEventId || "",
};

export const $ = (id) => document.getElementById(id);

// --- API --------------------------------------------------------------------------------------

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** An API answer other than 2xx: ``status``, ``error`` and ``detail`` of the JSON error. */
export class ApiFailure extends Error {
  constructor(status, data) {
    const error = (data && data.error) || `http_${status}`;
    super(typeof data?.detail === "string" ? data.detail : error);
    this.status = status;
    this.error = error;
    this.detail = data ? data.detail : null;
  }
}

export function loginUrl() {
  return "/login?next=" + encodeURIComponent(location.pathname + location.search);
}

/**
 * Call the JSON API with the session cookie. Writes echo the CSRF cookie in X-CSRF-Token.
 * ``json`` sends a JSON body, ``form`` a FormData (multipart); ``query`` drops empty values.
 * A 401 outside the login page means the login expired: go log in again.
 */
export async function api(path, { method = "GET", json, form, query } = {}) {
  const headers = { Accept: "application/json" };
  let payload;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  } else if (form) {
    payload = form;
  }
  if (method !== "GET" && method !== "HEAD") {
    const token = cookie("hitl_csrf");
    if (token) headers["X-CSRF-Token"] = token;
  }
  let url = path;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== "") qs.set(k, v);
    }
    if (qs.toString()) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
  if (response.status === 401 && page.name !== "login") {
    location.assign(loginUrl());
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiFailure(response.status, data);
  return data;
}

/** Human words for an API error detail: a string, a cookie-file problem, or field errors. */
export function describeError(err) {
  if (!(err instanceof ApiFailure)) return String(err && err.message ? err.message : err);
  const d = err.detail;
  if (d && typeof d === "object" && !Array.isArray(d)) {
    if (d.problem || d.fix || d.line) {
      const where = [d.source, d.line ? `line ${d.line}` : ""].filter(Boolean).join(", ");
      return [where && `${where}: ${d.problem || ""}`.trim(), d.fix && `Fix: ${d.fix}`]
        .filter(Boolean).join("\n") || d.message || err.error;
    }
    if (d.message) return d.message;
    return Object.entries(d).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join("\n");
  }
  return d ? String(d) : `${err.error} (HTTP ${err.status})`;
}

/** Show ``text`` in an error/result element (or hide it when empty). */
export function say(element, text) {
  element.textContent = text || "";
  element.hidden = !text;
}

// --- DOM --------------------------------------------------------------------------------------

/**
 * Build an element. ``attrs``: ``text`` sets textContent, ``dataset`` sets data-*, ``class``
 * the class name; other keys are attributes (true means present, null/false absent).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") {
      for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) node.dataset[k] = v;
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A link only to our own pages or to http(s) URLs; anything else is shown as plain text. */
export function link(href, text) {
  const value = String(href || "");
  const ok = /^\/(?!\/)/.test(value) || /^https?:\/\//i.test(value);
  return ok ? el("a", { href: value }, text ?? value) : el("span", {}, text ?? value);
}

const CLASS_SAFE = /[^a-z0-9_-]/gi;

/** A status in words ("waiting for a person"); the code itself is the badge's tooltip. */
export function statusWords(status) {
  const value = String(status || "");
  return STATUSES[value] || value.replaceAll("_", " ");
}

/** A status badge: class badge-<status>, data-status for tests and CSS. */
export function badge(status, attrs = {}) {
  const value = String(status || "");
  return el("span", { class: `badge badge-${value.replace(CLASS_SAFE, "")}`, dataset: { status: value },
    title: value || null, ...attrs }, statusWords(value));
}

export function setBadge(node, status) {
  const value = String(status || "");
  node.className = `badge badge-${value.replace(CLASS_SAFE, "")}`;
  node.dataset.status = value;
  node.title = value;
  node.textContent = statusWords(value);
}

export function fmtNumber(n) {
  return n === undefined || n === null || n === "" ? "–" : Number(n).toLocaleString();
}

export function fmtRate(r) {
  return r === undefined || r === null ? "–" : `${(Number(r) * 100).toFixed(1)}%`;
}

// --- time -------------------------------------------------------------------------------------

/** Milliseconds since the epoch of an API time (ISO 8601 with microseconds and an offset). */
export function parseTime(iso) {
  if (!iso) return NaN;
  return Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
}

/** A span of time in the largest units that matter: "45 s", "3 min", "2 h 5 min", "1 d 3 h". */
export function fmtDuration(totalSeconds) {
  const s = Math.round(Number(totalSeconds));
  if (!Number.isFinite(s) || s < 0) return "–";
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h${s % 3600 >= 60 ? ` ${Math.floor((s % 3600) / 60)} min` : ""}`;
  return `${Math.floor(s / 86400)} d${s % 86400 >= 3600 ? ` ${Math.floor((s % 86400) / 3600)} h` : ""}`;
}

/** "3 min ago", or "in 2 h" for a time still to come (a deadline, an expiry). */
export function timeAgo(iso) {
  if (!iso) return "–";
  const seconds = (Date.now() - parseTime(iso)) / 1000;
  if (Number.isNaN(seconds)) return "–";
  const future = seconds < -1;
  const span = Math.abs(seconds);
  const text = span < 60 ? `${Math.floor(span)} s` : span < 3600 ? `${Math.floor(span / 60)} min`
    : span < 86400 ? `${Math.floor(span / 3600)} h` : `${Math.floor(span / 86400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

// The one absolute format, on hover: "6 Dec 2026, 05:12:09" in the reader's locale and zone.
const ABSOLUTE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function absoluteTime(iso) {
  const ms = parseTime(iso);
  return Number.isNaN(ms) ? "" : ABSOLUTE.format(new Date(ms));
}

/** A <time> that says "3 min ago" (or "in 2 h"), the absolute time on hover, and keeps saying
 * the right thing (see refreshAges). */
export function ago(iso) {
  if (!iso) return el("span", {}, "–");
  return el("time", { datetime: iso, title: absoluteTime(iso), dataset: { ago: "" } }, timeAgo(iso));
}

/** Every time in the console reads the same way: relative, the absolute time on hover. */
export const when = ago;

function refreshAges() {
  for (const node of document.querySelectorAll("time[data-ago]")) {
    node.textContent = timeAgo(node.getAttribute("datetime"));
  }
}
setInterval(refreshAges, 15000);

// --- toasts -----------------------------------------------------------------------------------

/** A short note in the corner; ``href`` adds an "open" link. Goes away by itself. */
export function toast(message, { href, type = "" } = {}) {
  const box = $("toasts");
  if (!box) return null;
  const node = el("div", { class: "toast", role: "status", dataset: { toastType: type } }, message);
  if (href) node.append(link(href, "open"));
  box.append(node);
  setTimeout(() => node.remove(), 10000);
  return node;
}

// --- live events ------------------------------------------------------------------------------

/** Compare two stream ids ("<ms>-<seq>") numerically. */
export function compareIds(a, b) {
  const [am, as] = String(a).split("-").map(Number);
  const [bm, bs] = String(b).split("-").map(Number);
  return am - bm || (as || 0) - (bs || 0);
}

/**
 * The event stream over /ws/events. Keeps the last event id and reconnects with backoff from
 * it, so a dropped connection neither loses nor repeats an event.
 */
export class Live {
  constructor(after = page.lastEventId) {
    this.lastId = after || "";
    this.handlers = [];
    this.delay = 1000;
    this.socket = null;
    this.stopped = false;
    this.indicator = $("live-status");
  }

  on(handler) {
    this.handlers.push(handler);
    return this;
  }

  start() {
    addEventListener("pagehide", () => this.stop());
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.socket) this.socket.close();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const after = this.lastId ? "?after=" + encodeURIComponent(this.lastId) : "";
    return `${scheme}://${location.host}/ws/events${after}`;
  }

  state(value) {
    if (!this.indicator) return;
    this.indicator.hidden = false;
    this.indicator.dataset.state = value;
    this.indicator.textContent = value;
  }

  connect() {
    this.state(this.delay > 1000 ? "reconnecting" : "connecting");
    let opened = false;
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.addEventListener("open", () => {
      opened = true;
      this.delay = 1000;
      this.state("live");
    });
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", () => {
      if (this.stopped) return;
      this.state("reconnecting");
      // Refused before the upgrade: maybe the login expired (api() then goes to /login).
      if (!opened) api("/api/v1/auth/me").catch(() => {});
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 15000);
    });
  }

  receive(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (!event || typeof event !== "object" || typeof event.type !== "string") return;
    if (event.id) {
      if (this.lastId && compareIds(event.id, this.lastId) <= 0) return; // already seen
      this.lastId = event.id;
    }
    for (const handler of this.handlers) {
      try {
        handler(event);
      } catch (err) {
        console.error("event handler failed", event.type, err);
      }
    }
  }
}

/** Run ``fn`` once, ``ms`` after the last call: many events, one refresh. */
export function debounce(fn, ms = 250) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A "load more" button driving a keyset-paginated list endpoint. */
export class Pager {
  constructor(path, button, onItems) {
    this.path = path;
    this.button = button;
    this.onItems = onItems;
    this.cursor = null;
    this.query = {};
    button.addEventListener("click", () => this.more());
  }

  async reset(query = {}) {
    this.query = query;
    this.cursor = null;
    return this.load(true);
  }

  more() {
    return this.load(false);
  }

  async load(first) {
    this.button.disabled = true;
    try {
      const data = await api(this.path, { query: { ...this.query, cursor: first ? null : this.cursor } });
      this.cursor = data.next_cursor;
      this.onItems(data.items, first);
      this.button.hidden = !this.cursor;
      return data;
    } finally {
      this.button.disabled = false;
    }
  }
}

// --- every page: log out ----------------------------------------------------------------------

const logout = $("logout");
if (logout) {
  logout.addEventListener("click", async () => {
    try {
      await api("/api/v1/auth/logout", { method: "POST" });
    } finally {
      location.assign("/login");
    }
  });
}

// --- every page: the navigation menu on narrow screens ----------------------------------------

const navToggle = $("nav-toggle");
if (navToggle) {
  navToggle.addEventListener("click", () => {
    const open = navToggle.closest(".topbar").classList.toggle("nav-open");
    navToggle.setAttribute("aria-expanded", String(open));
  });
}

// --- confirming what cannot be undone ---------------------------------------------------------

/**
 * Ask before a destructive action, naming what will happen. Resolves to ``null`` when the
 * reviewer backs out ("Keep it" or Escape), else to ``{ reason }``. With
 * ``reason`` (a label), the dialog asks for one and will not confirm without it.
 */
export function confirmAction({ title, body = "", confirm = "Confirm", reason = null, reasonValue = "" }) {
  document.getElementById("confirm-dialog")?.remove();
  const input = reason ? el("input", { id: "confirm-reason", required: true, maxlength: "2000", value: reasonValue || null }) : null;
  const yes = el("button", { type: "submit", id: "confirm-yes", class: "danger", value: "yes" }, confirm);
  const no = el("button", { type: "button", id: "confirm-no", autofocus: true }, "Keep it");
  const form = el("form", { method: "dialog" },
    el("h2", { id: "confirm-title" }, title),
    body ? el("p", { id: "confirm-body", class: "prose" }, body) : null,
    input ? el("label", {}, reason, input) : null,
    el("div", { class: "buttons" }, no, yes));
  const dialog = el("dialog", { id: "confirm-dialog", class: "confirm", "aria-labelledby": "confirm-title" }, form);
  document.body.append(dialog);
  if (input) {
    const sync = () => { yes.disabled = !input.value.trim(); };
    input.addEventListener("input", sync);
    sync();
  }
  return new Promise((resolve) => {
    let answer = null;
    no.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", (event) => {
      if (input && !input.value.trim()) {
        event.preventDefault();
        return;
      }
      answer = { reason: input ? input.value.trim() : "" };
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    dialog.showModal();
    (input || no).focus();
  });
}
