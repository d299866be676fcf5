// The selector fixer: a parked page (sandboxed, numbered elements) beside the spider's
// declared fields. Pick an element or accept a suggestion, preview the values on every
// parked page and the good page, save (an override, versioned), resolve: the crawl resumes.
import { $, api, debounce, describeError, el, say, setBadge, badge } from "./common.js";

const root = $("fixer");
const id = Number(root.dataset.interventionId);
const spider = root.dataset.spider;
const domain = root.dataset.domain;
const frame = $("fx-frame");
let ctx = null;
let currentPage = null;
let picking = null; // the field key being picked
let focused = null; // the field whose matches the frame outlines

/** Outline the elements the focused field's selector matches in the page (the picker draws them). */
function mark(indices) {
  if (frame.contentWindow) frame.contentWindow.postMessage({ type: "hitl-mark", indices }, "*");
  frame.dataset.marked = String(indices.length);
}

function focus(r) {
  focused = r.key;
  for (const o of rows.values()) o.li.dataset.focused = String(o === r);
  preview(r);
}
const rows = new Map(); // key -> {li, input, ...}

const isXpath = (s) => /^(\/|\.\/|\()/.test(s.trim());
const prefixOf = (key) => (key.includes(".") ? key.slice(0, key.lastIndexOf(".") + 1) : "");
const nameOf = (key) => key.slice(key.lastIndexOf(".") + 1);
const shortUrl = (url) => { try { const u = new URL(url); return u.pathname + u.search; } catch { return url; } };
const show = (v) => (Array.isArray(v) ? v.map(show).join(" · ") : v === null || v === undefined || v === "" ? "∅" : String(v));

function rowsDraft(key) {
  if (nameOf(key) === "_rows") return undefined;
  const r = rows.get(`${prefixOf(key)}_rows`);
  return r ? r.input.value.trim() || undefined : undefined;
}

function selectPage(p, button) {
  currentPage = p;
  for (const b of $("fx-tabs").querySelectorAll("button")) b.setAttribute("aria-selected", String(b === button));
  frame.src = `/interventions/${id}/fixer/pages/${p.id}`;
}

function renderTabs() {
  const tabs = $("fx-tabs");
  const pages = ctx.pages.map((p, i) => ({ ...p, label: `Parked ${i + 1}` }));
  if (ctx.good) pages.push({ ...ctx.good, label: "Good page" });
  for (const p of pages) {
    const b = el("button", { type: "button", role: "tab", title: p.url, dataset: { pageId: p.id } }, p.label);
    b.addEventListener("click", () => selectPage(p, b));
    tabs.append(b);
  }
  const first = tabs.querySelector("button");
  if (first) selectPage(pages[0], first);
}

function renderPreview(r, data) {
  const body = el("tbody");
  for (const p of data.pages) {
    body.append(el("tr", { dataset: { matched: String(p.matched) } },
      el("td", { title: p.url }, shortUrl(p.url)), el("td", {}, show(p.values))));
  }
  if (data.good) {
    body.append(el("tr", { dataset: { matched: String(data.good.matched), good: "true" } },
      el("td", { title: data.good.url }, `good: ${shortUrl(data.good.url)}`), el("td", {}, show(data.good.values))));
  }
  r.preview.replaceChildren(el("thead", {}, el("tr", {}, el("th", {}, "Page"), el("th", {}, "Values"))), body);
  r.li.dataset.previewed = "true";
  r.li.dataset.matches = String(data.pages.filter((p) => p.matched).length);
}

async function preview(r) {
  const value = r.input.value.trim();
  if (!value) return;
  const json = { field: r.key, [isXpath(value) ? "xpath" : "css"]: value, rows: rowsDraft(r.key),
    page_id: currentPage ? currentPage.id : undefined };
  const seq = (r.seq = (r.seq || 0) + 1);
  try {
    const data = await api(`/api/v1/interventions/${id}/selector-preview`, { method: "POST", json });
    if (seq !== r.seq) return; // a newer preview of this field was asked for meanwhile
    renderPreview(r, data);
    if (r.key === focused) mark(data.marks || []);
    say(r.error, "");
  } catch (err) {
    say(r.error, describeError(err));
  }
}

async function save(r) {
  const value = r.input.value.trim();
  const json = { spider, domain, field: r.key, [isXpath(value) ? "xpath" : "css"]: value, intervention_id: id,
    force: r.force.checked };
  try {
    const saved = await api("/api/v1/selectors", { method: "POST", json });
    setBadge(r.state, "saved");
    r.state.textContent = `saved v${saved.version}`;
    r.li.dataset.saved = String(saved.version);
    r.forceBox.hidden = true;
    r.li.querySelector(".fx-revert").hidden = false;
    say(r.error, "");
    for (const other of rows.values()) if (other !== r) preview(other);
  } catch (err) {
    if (err.error === "matches_nothing") r.forceBox.hidden = false;
    say(r.error, describeError(err));
  }
}

async function revert(r) {
  try {
    const back = await api("/api/v1/selectors/revert", { method: "POST",
      json: { spider, domain, field: r.key, note: "reverted in the selector fixer" } });
    r.input.value = back.css || back.xpath || r.declared;
    setBadge(r.state, "reverted");
    r.state.textContent = `reverted: v${back.version}`;
    r.li.dataset.saved = String(back.version);
    r.li.querySelector(".fx-revert").hidden = !(back.css || back.xpath);
    say(r.error, "");
    preview(r);
  } catch (err) {
    say(r.error, describeError(err));
  }
}

function startPicking(r) {
  picking = picking === r.key ? null : r.key;
  for (const o of rows.values()) o.li.dataset.picking = String(o.key === picking);
  say($("fx-picking"), picking ? `Click the element of “${r.key}” in the page.` : "Press “Pick in page” on a field, then click its element here.");
}

function useSelector(r, css) {
  r.input.value = css;
  focus(r);
}

function renderField(f, suggested) {
  const key = f.key;
  const input = el("input", { class: "fx-input", value: f.override ? (f.override.css || f.override.xpath) : f.selector,
    "aria-label": `Selector of ${key}`, spellcheck: "false", autocomplete: "off" });
  const state = badge(f.broken ? "broken" : "ok");
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const force = el("input", { type: "checkbox", class: "fx-force-check" });
  const forceBox = el("label", { class: "fx-force", hidden: true }, force, " Save anyway (it extracts nothing now)");
  const preview_ = el("table", { class: "fx-preview" });
  const suggestions = el("div", { class: "fx-suggestions" });
  const picks = el("div", { class: "fx-suggestions fx-picks" });
  const li = el("li", { class: "fx-field", dataset: { key, broken: String(f.broken) } },
    el("h3", {}, el("code", {}, key), state),
    el("p", { class: "hint" }, "Declared: ", el("code", {}, f.declared || f.selector || "?"),
      f.override ? ` · override v${f.override.version} in force` : ""),
    suggestions, picks,
    el("label", {}, "Selector ", input),
    el("div", { class: "fx-actions" },
      el("button", { type: "button", class: "fx-pick" }, "Pick in page"),
      el("button", { type: "button", class: "fx-save" }, "Save"),
      el("button", { type: "button", class: "fx-revert", hidden: !f.override,
        title: "Undo the last change: the selector before it is used for the next pages" }, "Revert"), forceBox),
    error, preview_);
  const r = { key, li, input, state, error, force, forceBox, preview: preview_, picks, declared: f.declared };
  rows.set(key, r);
  if ((suggested || []).length) suggestions.append(el("p", { class: "hint" }, "Suggested (similar to the good pages):"));
  for (const s of suggested || []) {
    const b = el("button", { type: "button", class: "option fx-suggestion", dataset: { css: s.css },
      title: `score ${s.score}` }, `Use ${s.css}`, el("small", { class: "code-note" }, ` ${Math.round(s.score * 100)}%`));
    b.addEventListener("click", () => useSelector(r, s.css));
    suggestions.append(b);
  }
  if (!(suggested || []).length && f.broken) suggestions.append(el("p", { class: "hint" }, "No suggestion: pick the element in the page."));
  li.querySelector(".fx-pick").addEventListener("click", () => startPicking(r));
  li.querySelector(".fx-save").addEventListener("click", () => save(r));
  li.querySelector(".fx-revert").addEventListener("click", () => revert(r));
  input.addEventListener("input", debounce(() => focus(r), 300));
  input.addEventListener("focus", () => focus(r));
  return li;
}

window.addEventListener("message", async (event) => {
  if (event.source !== frame.contentWindow || !event.data || event.data.type !== "hitl-pick") return;
  const index = Number(event.data.index);
  if (!picking || !Number.isInteger(index) || index < 0 || !currentPage) return;
  const r = rows.get(picking);
  try {
    const found = await api(`/api/v1/interventions/${id}/selector-pick`, { method: "POST",
      json: { field: r.key, page_id: currentPage.id, index, rows: rowsDraft(r.key) } });
    r.picks.replaceChildren(el("p", { class: "hint" }, "From your click:"), ...found.selectors.slice(0, 3).map((css) => {
      const b = el("button", { type: "button", class: "option fx-picked", dataset: { css } }, `Use ${css}`);
      b.addEventListener("click", () => useSelector(r, css));
      return b;
    }));
    useSelector(r, found.selectors[0]);
    say(r.error, "");
    startPicking(r); // done: picking off
    say($("fx-picking"), `Picked <${String(event.data.tag || "")}> for “${r.key}”: ${found.selectors[0]}`);
  } catch (err) {
    say(r.error, describeError(err));
  }
});

$("fx-resolve").addEventListener("click", async () => {
  try {
    const done = await api(`/api/v1/interventions/${id}/resolve`, { method: "POST", json: { note: $("fx-note").value } });
    say($("fx-resolved"), `Resolved: ${done.requests_resumed} parked pages are fetched again with the saved selectors.`);
    $("fx-resolved").dataset.resumed = String(done.requests_resumed);
  } catch (err) {
    say($("fx-error"), describeError(err));
  }
});

async function load() {
  try {
    const [context, suggestions] = await Promise.all([
      api(`/api/v1/interventions/${id}/selector-fixer`),
      api(`/api/v1/interventions/${id}/selector-suggestions`)]);
    ctx = context;
    if (!ctx.declared) {
      $("fx-undeclared").hidden = false;
      $("fx-evidence").src = $("fx-evidence").dataset.src; // the evidence route: sandboxed, no script at all
      root.querySelector(".fixer-grid").hidden = true;
    }
    renderTabs();
    $("fx-fields").replaceChildren(...ctx.fields.map((f) => renderField(f, suggestions.fields[f.key])));
    for (const r of rows.values()) preview(r);
    if (ctx.intervention.status !== "open") {
      $("fx-resolve").disabled = true;
      say($("fx-resolved"), `This intervention is ${ctx.intervention.status}.`);
    }
    root.dataset.ready = "true";
  } catch (err) {
    say($("fx-error"), describeError(err));
  }
}

frame.addEventListener("load", () => { // a new page in the frame: outline the focused field's matches there
  const r = focused && rows.get(focused);
  if (r) preview(r);
});

load();
