// The session vault: health, dates and cookie names (never values); replace or delete.
import { $, Live, Pager, ago, api, badge, confirmAction, describeError, el, say, when } from "./common.js";

const rows = new Map(); // domain -> row

function row(s) {
  const replace = el("button", { type: "button", dataset: { replace: s.domain } }, "Replace");
  replace.addEventListener("click", () => {
    $("session-domain").value = s.domain;
    $("session-file").focus();
  });
  const remove = el("button", { type: "button", class: "danger", dataset: { delete: s.domain } }, "Delete");
  remove.addEventListener("click", () => forget(s.domain, remove));
  return el("tr", { dataset: { domain: s.domain, health: s.health } },
    el("td", {}, s.domain),
    el("td", {}, badge(s.health), s.health_reason ? el("span", { class: "hint" }, ` ${s.health_reason}`) : null),
    el("td", {}, ago(s.captured_at)),
    el("td", {}, when(s.expires_at)),
    el("td", { dataset: { field: "cookie-names" } }, (s.cookie_names || []).join(", ") || "–"),
    el("td", {}, s.captured_by || "–"),
    el("td", { class: "buttons" }, replace, remove));
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
  const old = rows.get(s.domain);
  if (old) old.replaceWith(node);
  else $("sessions-body").append(node);
  rows.set(s.domain, node);
}

function empty() {
  $("sessions-empty").hidden = rows.size > 0;
}

async function forget(domain, button) {
  const ok = await confirmAction({ title: `Delete the saved session of ${domain}?`, confirm: "Delete the session",
    body: "Its cookies are erased from the vault. Crawls of this domain go without them, and a domain that "
      + "needs a login will stop for a person again." });
  if (!ok) return;
  say($("sessions-error"), "");
  button.disabled = true;
  try {
    await api(`/api/v1/sessions/${encodeURIComponent(domain)}`, { method: "DELETE" });
    rows.get(domain)?.remove();
    rows.delete(domain);
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

new Live().on(async (ev) => {
  if (!ev.domain) return;
  if (ev.type === "session.captured" || (ev.type === "session.invalidated" && rows.has(ev.domain))) {
    try {
      put(await api(`/api/v1/sessions/${encodeURIComponent(ev.domain)}`));
    } catch {
      rows.get(ev.domain)?.remove(); // deleted: invalidated with reason "deleted"
      rows.delete(ev.domain);
    }
    empty();
  }
}).start();
