// One item under review: the page it came from (sandboxed) beside its fields, the failing
// checks highlighted; edit, approve, reject, next (with keyboard shortcuts, since
// reviewers go through hundreds), and the version history with its diffs and restore.
import { $, Live, ago, api, describeError, el, link, say, setBadge, when } from "./common.js";

const root = $("item");
const id = Number(root.dataset.itemId);
const queue = { status: root.dataset.queueStatus, run_id: root.dataset.queueRun, spider: root.dataset.queueSpider };
const path = `/api/v1/items/${id}`;
const FINAL = new Set(["approved", "rejected", "skipped"]);

let current = null; // the item as the API last answered
const inputs = new Map(); // field -> {input, kind: "text" | "json", original}

// --- rendering --------------------------------------------------------------------------------

function show(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function renderFacts(item) {
  setBadge($("it-status"), item.status);
  root.dataset.status = item.status;
  root.dataset.version = item.version;
  $("it-score").textContent = item.score.toFixed(2);
  $("it-url").replaceChildren(item.url ? link(item.url, item.url) : "–");
  $("it-run").replaceChildren(item.spider || "–", " / ",
    item.run_id ? link(`/runs/${encodeURIComponent(item.run_id)}`, item.run_id.slice(0, 8)) : "–");
  $("it-type").textContent = item.item_type || "–";
  $("it-breakdown").textContent = Object.entries(item.breakdown || {})
    .map(([k, v]) => `${k} ${Number(v).toFixed(2)}`).join(" · ") || "–";
  $("it-version").textContent = String(item.version);
  $("it-deadline").replaceChildren(item.review_deadline && !FINAL.has(item.status) ? when(item.review_deadline) : "–");
  $("it-reviewed").replaceChildren(item.reviewed_at ? when(item.reviewed_at) : "–",
    item.reviewed_by ? ` by ${item.reviewed_by}` : "");
  $("approve").disabled = item.status === "approved";
  $("reject").disabled = item.status === "rejected";
}

/** Failing checks by field ("" for the item as a whole). */
function failingByField(item) {
  const out = new Map();
  for (const f of item.failing || []) {
    const key = f.field || "";
    if (!out.has(key)) out.set(key, []);
    out.get(key).push(f);
  }
  return out;
}

/** Text fields are edited as text, the others as JSON; a field the item lacks ("auto") is
 * JSON if it parses (12.5, true, [..]), else text. */
function fieldInput(name, value) {
  const kind = value === undefined ? "auto" : typeof value === "string" ? "text" : "json";
  const text = value === undefined ? "" : show(value);
  const attrs = { id: `field-${name}`, name, dataset: { field: name, kind }, "aria-label": name };
  const input = text.length > 80 || text.includes("\n")
    ? el("textarea", { ...attrs, rows: Math.min(8, Math.ceil(text.length / 70) + 1) })
    : el("input", attrs);
  input.value = text;
  inputs.set(name, { input, kind, original: text, present: value !== undefined });
  return input;
}

function renderFields(item) {
  inputs.clear();
  const failing = failingByField(item);
  const names = Object.keys(item.data);
  // A required field the crawler did not extract gets a row too, to be filled in.
  for (const key of failing.keys()) if (key && !names.includes(key)) names.push(key);
  const rows = names.map((name) => {
    const checks = failing.get(name) || [];
    return el("tr", { class: checks.length ? "failing" : null, dataset: { field: name } },
      el("th", { scope: "row" }, el("label", { for: `field-${name}` }, name)),
      el("td", {}, fieldInput(name, item.data[name]),
        ...checks.map((c) => el("div", { class: "check", dataset: { check: c.check } }, `${c.check}: ${c.message}`))),
    );
  });
  $("fields-body").replaceChildren(...rows);
  const general = failing.get("") || [];
  $("failing").replaceChildren(...general.map((c) =>
    el("li", { class: "check", dataset: { check: c.check } }, `${c.check}${c.rule ? ` (${c.rule})` : ""}: ${c.message}`)));
}

function diffList(diff) {
  return el("table", { class: "grid compact diff" }, el("tbody", {}, ...diff.map((d) =>
    el("tr", { dataset: { field: d.field, op: d.op } },
      el("td", {}, d.field), el("td", {}, d.op),
      el("td", { class: "old" }, d.op === "added" ? "–" : show(d.old)),
      el("td", {}, "→"),
      el("td", { class: "new" }, d.op === "removed" ? "–" : show(d.new))))));
}

function renderVersions(versions) {
  const newest = versions.length ? versions[versions.length - 1].version : 1;
  $("versions").replaceChildren(...[...versions].reverse().map((v) => {
    const restore = v.version === newest ? el("span", { class: "badge" }, "current")
      : el("button", { type: "button", class: "restore", dataset: { version: v.version } }, `Restore version ${v.version}`);
    return el("li", { dataset: { version: v.version } },
      el("span", { class: "what" }, `Version ${v.version}`),
      el("span", { class: "meta" }, `${v.actor} · `, when(v.at), v.note ? ` · ${v.note}` : ""), " ", restore,
      v.diff && v.diff.length ? diffList(v.diff) : el("div", { class: "meta" }, "as the crawler extracted it"));
  }));
}

function renderHistory(events) {
  $("history").replaceChildren(...events.map((e) => el("li", { dataset: { action: e.action } },
    el("span", { class: "what" }, e.action),
    el("span", { class: "meta" }, `${e.actor} · `, ago(e.at)),
    e.detail && e.detail.note ? el("div", { class: "meta" }, e.detail.note) : null)));
}

function render(item) {
  current = item;
  renderFacts(item);
  renderFields(item);
}

async function load() {
  try {
    render(await api(path));
    await loadTrail();
  } catch (err) {
    say($("it-error"), describeError(err));
  }
}

async function loadTrail() {
  const [versions, history] = await Promise.all([api(`${path}/versions`), api(`${path}/history`)]);
  renderVersions(versions.items);
  renderHistory(history.items);
}

// --- actions ----------------------------------------------------------------------------------

/** The fields the reviewer changed, parsed; throws naming the field when JSON is bad. */
function changes() {
  const out = {};
  for (const [name, f] of inputs) {
    const text = f.input.value;
    f.input.removeAttribute("aria-invalid");
    if (text === f.original) continue;
    if (!f.present && text === "") continue;
    if (f.kind === "text") {
      out[name] = text;
      continue;
    }
    if (f.kind === "auto") {
      try {
        out[name] = JSON.parse(text);
      } catch {
        out[name] = text;
      }
      continue;
    }
    try {
      out[name] = JSON.parse(text);
    } catch {
      f.input.setAttribute("aria-invalid", "true");
      f.input.focus();
      throw new Error(`${name}: not valid JSON (text fields are quoted: "like this")`);
    }
  }
  return out;
}

function done(message) {
  say($("action-error"), "");
  say($("action-result"), message);
}

async function act(kind) {
  if (!current) return null; // not loaded (yet): nothing to act on
  say($("action-result"), "");
  say($("action-error"), "");
  let edits;
  try {
    edits = changes();
  } catch (err) {
    say($("action-error"), err.message);
    return null;
  }
  const note = $("review-note").value.trim();
  const hasEdits = Object.keys(edits).length > 0;
  const body = { note, expected_version: current.version };
  try {
    let item;
    if (kind === "save") {
      if (!hasEdits) {
        done("Nothing changed.");
        return current;
      }
      item = await api(path, { method: "PATCH", json: { data: edits, ...body } });
      done(`Saved as version ${item.version}.`);
    } else if (kind === "approve") {
      item = await api(`${path}/approve`, { method: "POST", json: hasEdits ? { data: edits, ...body } : body });
      done(`Approved${hasEdits ? ` with your edits (version ${item.version})` : ""}.`);
    } else {
      if (hasEdits && !confirm("Reject and drop your unsaved edits?")) return null;
      item = await api(`${path}/reject`, { method: "POST", json: { note } });
      done("Rejected.");
    }
    $("review-note").value = "";
    render(item);
    await loadTrail();
    return item;
  } catch (err) {
    say($("action-error"), describeError(err));
    return null;
  }
}

async function next() {
  try {
    // Built by hand: api()'s query drops empty values, and "status=" (any) must reach the API.
    const found = await api(`${path}/next?${new URLSearchParams({ ...queue, order: "score" })}`);
    if (found.item) location.assign(`/items/${found.item.id}?${new URLSearchParams(queue)}`);
    else done("That was the last item in this queue.");
  } catch (err) {
    say($("action-error"), describeError(err));
  }
}

/** Approve or reject, then go on to the next item: the reviewer's loop. */
async function decideAndNext(kind) {
  if (await act(kind)) next();
}

$("approve").addEventListener("click", () => decideAndNext("approve"));
$("reject").addEventListener("click", () => decideAndNext("reject"));
$("save").addEventListener("click", () => act("save"));
$("next").addEventListener("click", () => next());
$("fields-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act("save");
});

$("versions").addEventListener("click", async (event) => {
  const button = event.target.closest("button.restore");
  if (!button) return;
  const version = Number(button.dataset.version);
  say($("action-error"), "");
  try {
    const item = await api(`${path}/restore`, { method: "POST", json: { version } });
    render(item);
    await loadTrail();
    done(`Restored version ${version} as version ${item.version}.`);
  } catch (err) {
    say($("action-error"), describeError(err));
  }
});

// --- keyboard ---------------------------------------------------------------------------------

function typing(target) {
  return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement
    || target instanceof HTMLSelectElement || (target instanceof HTMLElement && target.isContentEditable);
}

document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
    event.preventDefault();
    act("save");
    return;
  }
  if (event.key === "Escape" && typing(event.target)) {
    event.target.blur();
    return;
  }
  if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key === "a") decideAndNext("approve");
  else if (key === "r") decideAndNext("reject");
  else if (key === "n" || key === "j") next();
  else if (key === "e") {
    const first = $("fields-body").querySelector("tr.failing input, tr.failing textarea")
      || $("fields-body").querySelector("input, textarea");
    if (first) first.focus();
  } else return;
  event.preventDefault();
});

// Someone else acting on this item: show it, unless the reviewer is mid-edit.
new Live().on((ev) => {
  if (ev.type !== "item.reviewed" || !ev.payload || ev.payload.item_id !== id) return;
  if (current && ev.payload.version === current.version && ev.payload.status === current.status) return;
  let edits = {};
  try {
    edits = changes();
  } catch {
    edits = { unparsable: true };
  }
  if (Object.keys(edits).length) {
    say($("action-error"), `Someone else changed this item (now ${ev.payload.status}, version ${ev.payload.version}).`
      + " Saving your edits will be refused; reload to see theirs.");
    return;
  }
  load();
}).start();

load();
