// Admins: notification channels (Apprise URLs, shown redacted), rules, and every message
// sent with its attempts. Everything comes from /api/v1/notify/... and /api/v1/notifications.
import { $, Pager, ago, api, badge, describeError, el, link, say } from "./common.js";

const list = (value) => value.split(",").map((s) => s.trim()).filter(Boolean);
let channelNames = new Map(); // id -> name

function button(label, data, onClick, cls = null) {
  const node = el("button", { type: "button", class: cls, dataset: data }, label);
  node.addEventListener("click", () => onClick(node));
  return node;
}

/** Two clicks for what cannot be undone: the first asks, the second does it. */
function twice(node, question, action) {
  if (node.dataset.armed === "true") return action();
  node.dataset.armed = "true";
  const label = node.textContent;
  node.textContent = question;
  setTimeout(() => { node.dataset.armed = "false"; node.textContent = label; }, 4000);
  return null;
}

// --- channels -----------------------------------------------------------------------------------

function health(c) {
  if (c.failing) return el("span", {}, badge("failing"), el("span", { class: "hint" }, ` ${c.failures} failed in a row: ${c.last_error || ""}`));
  if (c.failures) return el("span", {}, badge("ok"), el("span", { class: "hint" }, ` last attempt failed: ${c.last_error || ""}`));
  return el("span", {}, badge("ok"), c.last_success_at ? el("span", { class: "hint" }, " last sent ", ago(c.last_success_at)) : null);
}

async function loadChannels() {
  const data = await api("/api/v1/notify/channels");
  channelNames = new Map(data.items.map((c) => [c.id, c.name]));
  const body = $("channels-body");
  body.replaceChildren(...data.items.map((c) => el("tr", { dataset: { channelId: c.id } },
    el("td", {}, `#${c.id}`),
    el("td", { class: "wrap" }, c.name),
    el("td", { class: "wrap" }, el("code", {}, c.url)),
    el("td", { dataset: { field: "health" } }, health(c)),
    el("td", { class: "buttons" },
      button("Send a test", { test: c.id }, (b) => testChannel(c, b)),
      button("Remove", { remove: c.id }, (b) => twice(b, "Really remove?", () => removeChannel(c)), "danger")))));
  $("channels-empty").hidden = data.items.length > 0;
}

async function testChannel(c, node) {
  node.disabled = true;
  try {
    const r = await api(`/api/v1/notify/channels/${c.id}/test`, { method: "POST" });
    say($("channel-result"), r.outcome === "delivered" ? `Test message sent to ${c.name}.`
      : `Could not send to ${c.name}: ${r.error}`);
  } catch (err) {
    say($("channel-result"), describeError(err));
  } finally {
    node.disabled = false;
    await Promise.all([loadChannels(), messages.reset()]);
  }
}

async function removeChannel(c) {
  try {
    await api(`/api/v1/notify/channels/${c.id}`, { method: "DELETE" });
  } catch (err) {
    say($("channel-error"), describeError(err));
  }
  await Promise.all([loadChannels(), loadRules()]);
}

$("channel-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say($("channel-error"), "");
  const name = $("channel-name").value.trim();
  try {
    await api("/api/v1/notify/channels", { method: "POST", json: { url: $("channel-url").value.trim(), ...(name ? { name } : {}) } });
    $("channel-form").reset();
  } catch (err) {
    say($("channel-error"), describeError(err));
  }
  await Promise.all([loadChannels(), loadRules()]);
});

// --- rules --------------------------------------------------------------------------------------

function duration(seconds) {
  return seconds >= 3600 && seconds % 3600 === 0 ? `${seconds / 3600} h` : seconds >= 60 ? `${Math.round(seconds / 60)} min` : `${seconds} s`;
}

function describeFilters(f) {
  const parts = [];
  if (f.types) parts.push(`types ${f.types.join(", ")}`);
  if (f.domains) parts.push(`domains ${f.domains.join(", ")}`);
  if (f.min_priority !== undefined) parts.push(`priority ≥ ${f.min_priority}`);
  if (f.threshold !== undefined) parts.push(`${f.threshold}+ items held`);
  return parts.join("; ");
}

async function loadRules() {
  const data = await api("/api/v1/notify/rules");
  $("rules-body").replaceChildren(...data.items.map((r) => el("tr", { dataset: { ruleId: r.id, enabled: String(r.enabled) } },
    el("td", {}, `#${r.id}`),
    el("td", { class: "wrap" }, r.name, r.enabled ? null : el("span", { class: "hint" }, " (off)")),
    el("td", {}, el("code", {}, r.event), el("div", { class: "hint" }, describeFilters(r.filters))),
    el("td", { class: "wrap" }, r.channels.length ? r.channels.map((c) => channelNames.get(c) || `#${c}`).join(", ") : "every channel"),
    el("td", { class: "wrap" }, r.escalate.map((s) => `after ${duration(s.after)}: ${channelNames.get(s.channel) || `#${s.channel}`}`).join(" → ") || "–"),
    el("td", { class: "buttons" },
      button("Edit", { edit: r.id }, () => editRule(r)),
      button(r.enabled ? "Turn off" : "Turn on", { toggle: r.id }, () => toggleRule(r)),
      button("Remove", { removeRule: r.id }, (b) => twice(b, "Really remove?", () => removeRule(r)), "danger")))));
  $("rules-empty").hidden = data.items.length > 0;
}

async function toggleRule(r) {
  try {
    await api(`/api/v1/notify/rules/${r.id}`, { method: "PATCH", json: { enabled: !r.enabled } });
  } catch (err) {
    say($("rule-error"), describeError(err));
  }
  await loadRules();
}

async function removeRule(r) {
  await api(`/api/v1/notify/rules/${r.id}`, { method: "DELETE" });
  await loadRules();
}

/** Fill the form with a rule; the form's submit then changes it (PATCH) instead of adding one. */
function editRule(r) {
  const form = $("rule-form");
  form.dataset.editing = String(r.id);
  $("rule-form-title").textContent = `Change rule #${r.id}`;
  $("rule-add").textContent = "Save the rule";
  $("rule-cancel").hidden = false;
  $("rule-event").value = r.event;
  $("rule-name").value = r.name;
  $("rule-channels").value = r.channels.map((c) => channelNames.get(c) || String(c)).join(", ");
  $("rule-types").value = (r.filters.types || []).join(", ");
  $("rule-domains").value = (r.filters.domains || []).join(", ");
  $("rule-min-priority").value = r.filters.min_priority ?? "";
  $("rule-threshold").value = r.filters.threshold ?? "";
  $("rule-escalate").value = r.escalate.map((s) => `${s.after}s:${channelNames.get(s.channel) || s.channel}`).join(", ");
  form.scrollIntoView({ block: "nearest" });
}

function stopEditing() {
  const form = $("rule-form");
  delete form.dataset.editing;
  form.reset();
  $("rule-form-title").textContent = "Add a rule";
  $("rule-add").textContent = "Add rule";
  $("rule-cancel").hidden = true;
}

$("rule-cancel").addEventListener("click", stopEditing);

function parseStep(text) {
  const m = /^(\d+(?:\.\d+)?)\s*([smh]?):(.+)$/.exec(text.trim());
  if (!m) throw new Error(`${text}: write DELAY:CHANNEL, such as 15m:oncall`);
  return { after: Number(m[1]) * { s: 1, m: 60, "": 60, h: 3600 }[m[2]], channel: m[3].trim() };
}

$("rule-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say($("rule-error"), "");
  const filters = {};
  const types = list($("rule-types").value);
  const domains = list($("rule-domains").value);
  if (types.length) filters.types = types;
  if (domains.length) filters.domains = domains;
  if ($("rule-min-priority").value !== "") filters.min_priority = Number($("rule-min-priority").value);
  if ($("rule-threshold").value !== "") filters.threshold = Number($("rule-threshold").value);
  try {
    const rule = {
      event: $("rule-event").value, filters, channels: list($("rule-channels").value),
      escalate: list($("rule-escalate").value).map(parseStep),
    };
    if ($("rule-name").value.trim()) rule.name = $("rule-name").value.trim();
    const editing = $("rule-form").dataset.editing;
    if (editing) await api(`/api/v1/notify/rules/${editing}`, { method: "PATCH", json: rule });
    else await api("/api/v1/notify/rules", { method: "POST", json: rule });
    stopEditing();
  } catch (err) {
    say($("rule-error"), describeError(err));
  }
  await loadRules();
});

// --- messages -----------------------------------------------------------------------------------

function about(n) {
  const id = n.subject_id;
  const target = { intervention: `/interventions/${id}`, consultation: `/consultations/${id}`, run: `/runs/${id}`, items: "/items" }[n.subject_kind];
  const label = n.title || `${n.event_type} ${n.subject_kind} ${id}`.trim();
  return el("span", {}, target ? link(target, label) : label,
    n.grouped > 1 ? el("span", { class: "hint" }, ` (${n.grouped} events grouped)`) : null,
    n.escalation_step ? el("span", { class: "hint" }, ` escalation step ${n.escalation_step}`) : null,
    el("div", { class: "hint" }, el("code", {}, n.event_type)));
}

async function showAttempts(n, cell) {
  const data = await api(`/api/v1/notifications/${n.id}/attempts`);
  cell.replaceChildren(el("ol", { class: "attempts" }, ...data.items.reverse().map((a) =>
    el("li", { dataset: { outcome: a.outcome } }, badge(a.outcome), " ", ago(a.created_at),
      a.duration_ms !== null ? ` · ${a.duration_ms} ms` : "", a.error ? el("div", { class: "hint wrap" }, a.error) : null))));
}

function messageRow(n) {
  const attempts = el("td", {}, button(`${n.attempts}`, { attempts: n.id }, () => showAttempts(n, attempts), "link"));
  return el("tr", { dataset: { notificationId: n.id, state: n.state } },
    el("td", {}, `#${n.id}`),
    el("td", {}, ago(n.delivered_at || n.created_at)),
    el("td", { class: "wrap" }, n.channel || `#${n.channel_id}`),
    el("td", { class: "wrap" }, about(n)),
    el("td", {}, badge(n.state), n.last_error && n.state !== "delivered" ? el("div", { class: "hint wrap" }, n.last_error) : null),
    attempts);
}

const messages = new Pager("/api/v1/notifications", $("load-more"), (items, first) => {
  const body = $("messages-body");
  if (first) body.replaceChildren();
  body.append(...items.map(messageRow));
  $("messages-empty").hidden = body.children.length > 0;
});

(async () => {
  await loadChannels();
  await Promise.all([loadRules(), messages.reset()]);
})();
