// The session vault: a pool of named sessions per domain, each with its health, age, uses and
// errors, cookie names and localStorage origins (never values); replace, delete, or log in anew.
import { $, Live, Pager, ago, api, badge, confirmAction, describeError, el, say, when } from "./common.js";

const rows = new Map(); // "domain/name" -> row
const keyOf = (s) => `${s.domain}/${s.name || "default"}`;

function row(s) {
  const name = s.name || "default";
  const replace = el("button", { type: "button", dataset: { replace: s.domain } }, "Replace");
  replace.addEventListener("click", () => {
    $("session-domain").value = s.domain;
    $("session-name").value = name;
    $("session-file").focus();
  });
  const login = el("button", { type: "button", dataset: { login: s.domain } }, "Log in again");
  login.addEventListener("click", () => {
    $("login-domain").value = s.domain;
    $("login-name").value = name;
    $("login-url").focus();
  });
  const remove = el("button", { type: "button", class: "danger", dataset: { delete: s.domain } }, "Delete");
  remove.addEventListener("click", () => forget(s, remove));
  const storage = (s.origins || []).map((o) => `${o.origin} (${(o.keys || []).join(", ")})`).join("; ");
  return el("tr", { dataset: { domain: s.domain, name, health: s.health } },
    el("td", {}, s.domain),
    el("td", { dataset: { field: "name" } }, name),
    el("td", {}, badge(s.health), s.health_reason ? el("span", { class: "hint" }, ` ${s.health_reason}`) : null),
    el("td", {}, ago(s.captured_at)),
    el("td", { dataset: { field: "uses" } }, String(s.uses ?? 0)),
    el("td", { dataset: { field: "errors" } }, `${s.errors ?? 0}`,
      el("span", { class: "hint" }, ` score ${s.error_score ?? 0}`)),
    el("td", {}, when(s.expires_at)),
    el("td", { dataset: { field: "cookie-names" } }, (s.cookie_names || []).join(", ") || "–",
      storage ? el("div", { class: "hint", dataset: { field: "origins" } }, `localStorage: ${storage}`) : null),
    el("td", {}, s.captured_by || "–"),
    el("td", { class: "buttons" }, replace, login, remove));
}

function show(items, first) {
  if (first) {
    $("sessions-body").replaceChildren();
    rows.clear();
  }
  for (const s of items) put(s);
  empty();
}

function put(s) {
  const node = row(s);
  const old = rows.get(keyOf(s));
  if (old) old.replaceWith(node);
  else $("sessions-body").append(node);
  rows.set(keyOf(s), node);
}

function dropDomain(domain) {
  for (const [key, node] of rows) {
    if (key.startsWith(`${domain}/`)) {
      node.remove();
      rows.delete(key);
    }
  }
}

function empty() {
  $("sessions-empty").hidden = rows.size > 0;
}

async function forget(s, button) {
  const domain = s.domain;
  const name = s.name || "default";
  const ok = await confirmAction({ title: `Delete the saved session ${name} of ${domain}?`, confirm: "Delete the session",
    body: "Its cookies and localStorage are erased from the vault. Crawls of this domain go on with its other "
      + "sessions, or without one, and a domain that needs a login will stop for a person again." });
  if (!ok) return;
  say($("sessions-error"), "");
  button.disabled = true;
  try {
    await api(`/api/v1/sessions/${encodeURIComponent(domain)}/${encodeURIComponent(name)}`, { method: "DELETE" });
    rows.get(keyOf(s))?.remove();
    rows.delete(keyOf(s));
    empty();
  } catch (err) {
    say($("sessions-error"), describeError(err));
    button.disabled = false;
  }
}

$("session-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say($("session-result"), "");
  say($("session-error"), "");
  const domain = $("session-domain").value.trim();
  const form = new FormData(event.target);
  form.delete("domain");
  if (!$("session-file").files[0]) form.delete("cookies");
  const button = $("session-submit");
  button.disabled = true;
  try {
    const info = await api(`/api/v1/sessions/${encodeURIComponent(domain)}`, { method: "PUT", form });
    put(info);
    empty();
    say($("session-result"), `Saved the session for ${info.domain}: ${info.cookie_names.join(", ")}.`);
    event.target.reset();
  } catch (err) {
    say($("session-error"), describeError(err));
  } finally {
    button.disabled = false;
  }
});

const pager = new Pager("/api/v1/sessions", $("load-more"), show);
pager.reset().catch((err) => say($("sessions-error"), describeError(err)));

// "Log in through a live browser": a fresh crawler page on the domain, driven in the live view.
$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say($("login-error"), "");
  const domain = $("login-domain").value.trim();
  const body = { url: $("login-url").value.trim(), name: $("login-name").value.trim() || "default",
    tier: $("login-tier").value };
  const button = $("login-submit");
  button.disabled = true;
  try {
    const opened = await api(`/api/v1/sessions/${encodeURIComponent(domain)}/login`, { method: "POST", json: body });
    window.location.href = `/interventions/${opened.intervention_id}#live`;
  } catch (err) {
    say($("login-error"), describeError(err));
    button.disabled = false;
  }
});

const SESSION_EVENTS = new Set(["session.captured", "session.invalidated", "session.retired", "session.probed"]);

new Live().on(async (ev) => {
  if (!ev.domain || !SESSION_EVENTS.has(ev.type)) return;
  try {
    const found = await api(`/api/v1/sessions/${encodeURIComponent(ev.domain)}`);
    dropDomain(ev.domain);
    for (const s of found.sessions) put(s);
  } catch {
    dropDomain(ev.domain); // every session deleted: invalidated with reason "deleted"
  }
  empty();
}).start();
