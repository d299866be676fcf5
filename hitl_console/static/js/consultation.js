// One consultation: the question, its context (untrusted JSON, shown as a tree of text), the
// answer form (option buttons, a form built from the response schema, JSON, or free text),
// the history, and the callback deliveries with "redeliver"; kept current by the event stream.
import { $, Live, api, badge, confirmAction, describeError, el, fmtDuration, page, say, setBadge, when } from "./common.js";
import "./ownership.js"; // "I'm on it" (templates/_owner.html)

const id = Number($("consultation").dataset.consultationId);
const TREE_OPEN_DEPTH = 3; // levels of the context tree open at first
const TREE_MAX_CHILDREN = 500; // per object or list; the JSON text has the rest
const DETAIL_CHARS = 200; // of a history detail value
const DELIVERY_POLL_MS = 5000; // while a webhook is on its way

let current = null;
let form = null; // the answer form built for this consultation: {kind, fields?, read?}
const keyNames = new Map(); // api key id -> name (admins only)

// --- untrusted values, as text ----------------------------------------------------------------

/** A JSON scalar as one element; strings go in textContent only, whatever they contain. */
function scalar(value) {
  if (value === null || value === undefined) return el("span", { class: "tv tv-null" }, "null");
  if (typeof value === "string") {
    return el(value.includes("\n") ? "pre" : "span", { class: "tv tv-string" }, value);
  }
  return el("span", { class: `tv tv-${typeof value === "number" ? "number" : "other"}` }, String(value));
}

/** Any JSON value as a collapsible tree of <details>, built from DOM nodes and text. */
function tree(value, depth = 0) {
  if (value === null || typeof value !== "object") return scalar(value);
  const list = Array.isArray(value);
  const entries = list ? value.map((v, i) => [i, v]) : Object.entries(value);
  if (!entries.length) return el("span", { class: "tv tv-empty" }, list ? "[ ]" : "{ }");
  const children = el("ul", { class: "tree-children" });
  for (const [key, child] of entries.slice(0, TREE_MAX_CHILDREN)) {
    children.append(el("li", { dataset: { key: String(key) } },
      el("span", { class: list ? "tk tk-index" : "tk" }, String(key)), el("span", { class: "tsep" }, ": "),
      tree(child, depth + 1)));
  }
  if (entries.length > TREE_MAX_CHILDREN) {
    children.append(el("li", { class: "hint" }, `… ${entries.length - TREE_MAX_CHILDREN} more (see the JSON text)`));
  }
  const n = entries.length;
  const summary = el("summary", { class: "tree-summary" },
    list ? `list of ${n} item${n === 1 ? "" : "s"}` : `object, ${n} key${n === 1 ? "" : "s"}`);
  return el("details", { class: "tree-node", open: depth < TREE_OPEN_DEPTH }, summary, children);
}

/** A top-level value: text as pre-formatted text, anything else as a tree. */
function showValue(container, value, emptyText) {
  if (value === null || value === undefined) {
    container.replaceChildren(el("p", { class: "empty" }, emptyText));
  } else if (typeof value === "string") {
    container.replaceChildren(el("pre", { class: "tv-text" }, value));
  } else {
    container.replaceChildren(tree(value));
  }
}

function short(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > DETAIL_CHARS ? `${text.slice(0, DETAIL_CHARS)}…` : text;
}

// --- the consultation -------------------------------------------------------------------------

function text(idName, value) {
  $(idName).textContent = value === null || value === undefined || value === "" ? "–" : String(value);
}

function optionLabel(c, value) {
  const option = (c.options || []).find((o) => o.value === value);
  return option && option.label !== option.value ? `${option.label} (${option.value})` : String(value);
}

async function keyName(keyId) {
  if (page.role !== "admin" || !keyId) return "";
  if (!keyNames.has(keyId)) {
    keyNames.set(keyId, api(`/api/v1/api-keys/${keyId}`).then((k) => k.name, () => ""));
  }
  return keyNames.get(keyId);
}

async function renderAskedBy(c) {
  const created = (c.history || []).find((h) => h.action === "created");
  const who = c.api_key_id ? `API key #${c.api_key_id}` : (created ? created.actor : "–");
  $("c-asked-by").textContent = who;
  const name = await keyName(c.api_key_id);
  if (name && current && current.id === c.id) $("c-asked-by").textContent = `${who}: ${name}`;
}

function renderFacts(c) {
  $("c-title").textContent = c.title;
  document.title = `${c.title} · scrapy-hitl console`;
  setBadge($("c-state"), c.state);
  $("consultation").dataset.state = c.state;
  $("c-description").textContent = c.description || "";
  $("c-description").hidden = !c.description;
  text("c-priority", c.priority);
  $("c-created").replaceChildren(when(c.created_at));
  $("c-deadline").replaceChildren(when(c.deadline_at), c.timeout_seconds ? ` (${fmtDuration(c.timeout_seconds)} after asking)` : "");
  text("c-callback", c.callback_url || "none: the agent polls for the answer");
  const answer = $("c-response");
  if (c.responded_at) {
    const value = c.options ? el("span", { class: "tv tv-string" }, optionLabel(c, c.response)) : null;
    answer.replaceChildren(value || el("div"), el("div", { class: "meta" }, `by ${c.responded_by || "?"} · `,
      when(c.responded_at)));
    if (!value) showValue(answer.firstChild, c.response, "–");
  } else {
    answer.textContent = c.state === "pending" ? "not yet" : "none";
  }
  renderAskedBy(c);
}

function renderContext(c) {
  showValue($("context-tree"), c.context, "No context was given.");
  $("context-raw").textContent = c.context === null || c.context === undefined ? "null"
    : JSON.stringify(c.context, null, 2);
  const meta = c.metadata && Object.keys(c.metadata).length ? c.metadata : null;
  showValue($("metadata-tree"), meta, "none");
}

function renderHistory(c) {
  $("history").replaceChildren(...(c.history || []).map((h) => {
    const detail = h.detail && typeof h.detail === "object" ? h.detail : {};
    const bits = Object.entries(detail).map(([k, v]) => `${k}: ${short(v)}`);
    return el("li", { dataset: { action: h.action } },
      el("span", { class: "what" }, h.action.replaceAll("_", " ")),
      el("span", { class: "meta" }, `${h.actor} · `, when(h.at)),
      bits.length ? el("div", { class: "meta wrap" }, bits.join(" · ")) : null);
  }));
}

function render(c) {
  current = c;
  renderFacts(c);
  renderContext(c);
  renderHistory(c);
  const open = c.state === "pending";
  if (open && !form) buildForm(c);
  $("respond-panel").hidden = !open;
}

async function reload() {
  try {
    render(await api(`/api/v1/consultations/${id}`));
    say($("c-error"), "");
  } catch (err) {
    say($("c-error"), describeError(err));
  }
}

// --- the answer form --------------------------------------------------------------------------

const SIMPLE_TYPES = new Set(["string", "number", "integer", "boolean"]);
const COMPOSITE_KEYWORDS = ["$ref", "$dynamicRef", "oneOf", "anyOf", "allOf", "not", "if", "then", "else"];

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** What input a (sub)schema gets: "enum", a simple type, or null if a form cannot express it. */
function fieldKind(schema) {
  if (!isObject(schema) || COMPOSITE_KEYWORDS.some((k) => k in schema)) return null;
  if (Array.isArray(schema.enum)) {
    return schema.enum.length && schema.enum.every((v) => v === null || typeof v !== "object") ? "enum" : null;
  }
  let type = schema.type;
  if (Array.isArray(type)) {
    const rest = type.filter((t) => t !== "null");
    type = rest.length === 1 ? rest[0] : null;
  }
  return SIMPLE_TYPES.has(type) ? type : null;
}

/** The fields for the schema, or null when it needs the JSON fallback. Supported: an object
 * whose properties are all strings, numbers, integers, booleans or enums; or one such value. */
function schemaFields(schema) {
  if (!isObject(schema)) return null;
  const kind = fieldKind(schema);
  if (kind) return { single: true, fields: [{ name: null, schema, kind, required: true }] };
  const props = schema.properties;
  const objectType = schema.type === "object" || (schema.type === undefined && isObject(props));
  if (!objectType || !isObject(props) || !Object.keys(props).length) return null;
  if (COMPOSITE_KEYWORDS.some((k) => k in schema) || schema.patternProperties) return null;
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  if ([...required].some((name) => !(name in props))) return null; // required but not described
  const fields = [];
  // The fields in the order the agent wrote its schema (the API keeps JSON key order).
  const names = Object.keys(props);
  for (const [name, sub] of names.map((n) => [n, props[n]])) {
    const subKind = fieldKind(sub);
    if (!subKind) return null;
    fields.push({ name, schema: sub, kind: subKind, required: required.has(name) });
  }
  return { single: false, fields };
}

function input(f, n) {
  const s = f.schema;
  const attrs = { id: `field-${n}`, name: f.name ?? "answer", required: f.required,
    "aria-required": f.required ? "true" : null, dataset: { kind: f.kind } };
  if (f.kind === "enum") {
    const select = el("select", attrs, el("option", { value: "" }, "– choose –"));
    for (const v of s.enum) select.append(el("option", { value: JSON.stringify(v) }, v === null ? "null" : String(v)));
    if ("default" in s) select.value = JSON.stringify(s.default);
    return select;
  }
  if (f.kind === "boolean") {
    const box = el("input", { ...attrs, type: "checkbox" });
    box.checked = s.default === true;
    return box;
  }
  const number = f.kind === "number" || f.kind === "integer";
  const long = !number && (Number(s.maxLength) > 200 || s.format === "textarea");
  const node = long ? el("textarea", { ...attrs, rows: 4 })
    : el("input", { ...attrs, type: number ? "number" : "text", step: number ? (f.kind === "integer" ? "1" : "any") : null,
      placeholder: s.format ? s.format : null });
  if (s.default !== undefined && s.default !== null) node.value = String(s.default);
  return node;
}

function fieldRow(f, n) {
  const control = input(f, n);
  f.input = control;
  f.error = el("span", { class: "field-error error", role: "alert", hidden: true });
  const title = s => s.title || f.name || "Answer";
  const label = el("label", { for: control.id }, title(f.schema), f.required ? el("span", { class: "req" }, " *") : null);
  const help = f.schema.description ? el("small", { class: "hint help" }, f.schema.description) : null;
  const box = el("div", { class: `field field-${f.kind}`, dataset: { field: f.name ?? "" } });
  if (f.kind === "boolean") box.append(el("label", { for: control.id, class: "check" }, control, " ", title(f.schema),
    f.required ? el("span", { class: "req" }, " *") : null));
  else box.append(label, control);
  box.append(help || "", f.error);
  return box;
}

/** Read one field: {set: false} when left empty (the key is then left out), else its value. */
function readField(f) {
  const node = f.input;
  if (f.kind === "boolean") return { set: true, value: node.checked };
  if (node.validity && node.validity.badInput) throw new Error(`${f.schema.title || f.name || "The answer"}: not a number`);
  const raw = node.value;
  if (raw === "") return { set: false };
  if (f.kind === "enum") return { set: true, value: JSON.parse(raw) };
  if (f.kind === "number" || f.kind === "integer") return { set: true, value: Number(raw) };
  return { set: true, value: raw };
}

function buildForm(c) {
  if (c.options) {
    const buttons = c.options.map((o) => {
      const button = el("button", { type: "button", class: "option", dataset: { option: o.value },
        title: o.label !== o.value ? o.value : null }, o.label);
      button.addEventListener("click", async () => {
        // One click must not answer: the answer goes to the agent at once and cannot be taken back.
        const ok = await confirmAction({ title: `Answer "${o.label}"?`, confirm: `Answer "${o.label}"`,
          body: `${current && current.callback_url ? "The agent is called back with it at once" : "The agent reads it at once"}; `
            + "an answer cannot be changed afterwards." });
        if (ok) respond(o.value, button);
      });
      return button;
    });
    $("options").replaceChildren(...buttons);
    $("options").hidden = false;
    form = { kind: "options" };
    return;
  }
  if (c.response_schema) {
    $("schema-text").textContent = JSON.stringify(c.response_schema, null, 2);
    $("schema-details").hidden = false;
    const spec = schemaFields(c.response_schema);
    if (spec) {
      $("schema-fields").replaceChildren(...spec.fields.map(fieldRow));
      $("schema-form").hidden = false;
      form = { kind: "schema", ...spec };
    } else {
      $("json-form").hidden = false;
      $("schema-details").open = true;
      form = { kind: "json" };
    }
    return;
  }
  $("free-form").hidden = false;
  form = { kind: "free" };
}

function clearErrors() {
  say($("respond-error"), "");
  for (const f of form && form.fields ? form.fields : []) {
    say(f.error, "");
    f.input.removeAttribute("aria-invalid");
  }
}

/** A 422 next to the form, and next to the field it is about when there is one. */
function showError(err) {
  let message = describeError(err);
  const d = err && err.detail;
  if (isObject(d) && d.json_path && d.json_path !== "$") message += ` (at ${d.json_path})`;
  say($("respond-error"), message);
  if (form && form.fields && isObject(d) && Array.isArray(d.path)) {
    const f = form.single ? form.fields[0] : form.fields.find((x) => x.name === d.path[0]);
    if (f && (form.single || d.path.length)) {
      say(f.error, d.message || message);
      f.input.setAttribute("aria-invalid", "true");
    }
  }
}

async function respond(answer, button) {
  clearErrors();
  const buttons = [button, ...document.querySelectorAll("#options button")];
  for (const b of buttons) b.disabled = true;
  try {
    await api(`/api/v1/consultations/${id}/respond`, { method: "POST", json: { answer } });
    await reload();
  } catch (err) {
    showError(err);
    if (err.status === 409) reload(); // answered, cancelled or timed out meanwhile
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

$("schema-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearErrors();
  let answer;
  try {
    if (form.single) {
      const got = readField(form.fields[0]);
      answer = got.set ? got.value : null;
    } else {
      answer = {};
      for (const f of form.fields) {
        const got = readField(f);
        if (got.set) answer[f.name] = got.value;
      }
    }
  } catch (err) {
    say($("respond-error"), err.message);
    return;
  }
  respond(answer, $("schema-submit"));
});

$("json-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearErrors();
  let answer;
  try {
    answer = JSON.parse($("json-answer").value);
  } catch (err) {
    say($("respond-error"), `That is not valid JSON: ${err.message}`);
    return;
  }
  respond(answer, $("json-submit"));
});

$("free-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearErrors();
  const answer = $("free-text").value;
  if (!answer.trim()) {
    say($("respond-error"), "Write an answer first.");
    return;
  }
  respond(answer, $("free-submit"));
});

// --- deliveries -------------------------------------------------------------------------------

function statusCell(d) {
  if (d.status_code === null || d.status_code === undefined) return el("span", { class: "badge badge-failed" }, "no answer");
  const ok = d.status_code >= 200 && d.status_code < 300;
  return el("span", { class: `badge ${ok ? "badge-completed" : "badge-failed"}` }, String(d.status_code));
}

function deliveryRow(d) {
  return el("tr", { dataset: { deliveryId: d.id, webhookId: d.webhook_id, statusCode: d.status_code ?? "" } },
    el("td", { class: "num" }, String(d.attempt ?? "–")),
    el("td", {}, d.event_type || "–"),
    el("td", { class: "wrap" }, d.url || "–"),
    el("td", { dataset: { field: "status" } }, statusCell(d)),
    el("td", { class: "num" }, d.duration_ms === null || d.duration_ms === undefined ? "–" : `${d.duration_ms} ms`),
    el("td", { class: "wrap", dataset: { field: "outcome" } },
      d.error ? el("span", { class: "error" }, d.error) : null,
      d.response_excerpt ? el("code", { class: "excerpt" }, d.response_excerpt) : null),
    el("td", {}, when(d.created_at)));
}

function webhookItem(w) {
  const bits = [`${w.attempts} attempt${w.attempts === 1 ? "" : "s"}`];
  if (w.last_status_code !== null && w.last_status_code !== undefined) bits.push(`last answer ${w.last_status_code}`);
  if (w.last_error) bits.push(`last error: ${w.last_error}`);
  return el("li", { dataset: { webhookId: w.webhook_id, state: w.state } },
    el("code", {}, w.webhook_id), " ", w.event_type, " ", badge(w.state), " ",
    el("span", { class: "meta wrap" }, bits.join(" · ")),
    w.next_attempt_at ? el("span", { class: "meta" }, " · next attempt ", when(w.next_attempt_at)) : null,
    w.delivered_at ? el("span", { class: "meta" }, " · delivered ", when(w.delivered_at)) : null);
}

let deliveriesTimer = null;

/** The webhooks (newest first) and every attempt (oldest first). Attempts bring no event, so
 * while a webhook is still pending (retrying, or queued) the log is read again every few s. */
async function loadDeliveries() {
  clearTimeout(deliveriesTimer);
  let data;
  try {
    data = await api(`/api/v1/consultations/${id}/deliveries`);
    say($("deliveries-error"), "");
  } catch (err) {
    say($("deliveries-error"), err.status === 404 && err.error === "not_found"
      ? "This console does not keep a deliveries log." : `The deliveries log could not be read: ${describeError(err)}`);
    return;
  }
  const webhooks = Array.isArray(data.webhooks) ? data.webhooks : [];
  const attempts = Array.isArray(data.attempts) ? data.attempts : [];
  $("webhooks").replaceChildren(...webhooks.map(webhookItem));
  $("deliveries-body").replaceChildren(...attempts.map(deliveryRow));
  $("deliveries-empty").hidden = attempts.length > 0;
  $("redeliver").hidden = webhooks.length === 0;
  if (webhooks.some((w) => w.state === "pending")) deliveriesTimer = setTimeout(loadDeliveries, DELIVERY_POLL_MS);
}

$("redeliver").addEventListener("click", async () => {
  const button = $("redeliver");
  say($("redeliver-result"), "");
  say($("deliveries-error"), "");
  button.disabled = true;
  try {
    const { webhook } = await api(`/api/v1/consultations/${id}/redeliver`, { method: "POST" });
    say($("redeliver-result"), `Sending ${webhook.webhook_id} again; its attempts appear above.`);
    await Promise.all([loadDeliveries(), reload()]);
  } catch (err) {
    say($("deliveries-error"), describeError(err));
  } finally {
    button.disabled = false;
  }
});

// --- start ------------------------------------------------------------------------------------

new Live().on((ev) => {
  document.dispatchEvent(new CustomEvent("hitl:event", { detail: ev })); // for ownership.js
  if (ev.type.startsWith("consultation.") && ev.payload && ev.payload.consultation_id === id) {
    reload();
    loadDeliveries();
  }
}).start();

reload();
loadDeliveries();
