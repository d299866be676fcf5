// The interventions list: filters, "load more", live status changes, and bulk "mark done".
import { $, Live, Pager, ago, api, badge, confirmAction, describeError, el, fmtNumber, link, say } from "./common.js";
import { ownerHint } from "./ownership.js";
import { REASONS, TYPES } from "/words.js";

const FILTERS = ["status", "type", "domain", "run_id"];
const PAGE = 25;
const known = new Map(); // id -> row, for live updates

function filters() {
  const form = new FormData($("filters"));
  return Object.fromEntries(FILTERS.map((k) => [k, String(form.get(k) || "").trim()]));
}

/** A raw code in small type, under the words it stands for. */
function code(value) {
  return value ? el("small", { class: "code" }, el("code", {}, value)) : null;
}

function row(i) {
  const href = `/interventions/${i.id}`;
  return el("tr", { dataset: { interventionId: i.id, status: i.status, domain: i.domain } },
    el("td", {}, link(href, `#${i.id}`)),
    el("td", { dataset: { field: "status" } }, badge(i.status), ownerHint(i)),
    el("td", { dataset: { field: "type" } }, link(href, TYPES[i.type] ? TYPES[i.type].label : i.type), " ", code(i.type)),
    el("td", { dataset: { field: "reason" } }, REASONS[i.reason] || String(i.reason || "").replaceAll("_", " "), " ",
      code(i.reason)),
    el("td", {}, link(`/interventions?domain=${encodeURIComponent(i.domain)}`, i.domain)),
    el("td", { class: "num" }, fmtNumber(i.parked_count)),
    el("td", { class: "num" }, fmtNumber(i.priority)),
    el("td", {}, ago(i.created_at)),
    el("td", {}, i.run_id ? link(`/runs/${encodeURIComponent(i.run_id)}`, i.run_id.slice(0, 8)) : "–"));
}

function show(items, first) {
  const body = $("list-body");
  if (first) {
    body.replaceChildren();
    known.clear();
  }
  for (const i of items) {
    const node = row(i);
    known.set(i.id, node);
    body.append(node);
  }
  $("list-empty").hidden = body.children.length > 0;
}

const pager = new Pager("/api/v1/interventions", $("load-more"), show);

function load() {
  say($("list-error"), "");
  return pager.reset({ ...filters(), limit: PAGE }).catch((err) => say($("list-error"), describeError(err)));
}

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = new URLSearchParams(Object.entries(filters()).filter(([, v]) => v));
  history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
  load();
});

// --- live -------------------------------------------------------------------------------------

function matches(i) {
  const f = filters();
  return (!f.status || f.status === i.status) && (!f.type || f.type === i.type)
    && (!f.domain || f.domain === i.domain) && (!f.run_id || f.run_id === i.run_id);
}

async function upsert(id) {
  const i = await api(`/api/v1/interventions/${id}`);
  const old = known.get(id);
  const fits = matches(i);
  if (old && fits) {
    const node = row(i);
    old.replaceWith(node);
    known.set(id, node);
  } else if (old) {
    old.remove();
    known.delete(id);
  } else if (fits) {
    const node = row(i);
    node.classList.add("fresh");
    known.set(id, node);
    $("list-body").prepend(node);
  }
  $("list-empty").hidden = $("list-body").children.length > 0;
}

new Live().on((ev) => {
  if (ev.intervention_id && ev.type.startsWith("intervention.")) upsert(ev.intervention_id).catch(() => {});
}).start();

// --- bulk -------------------------------------------------------------------------------------

$("bulk-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say($("bulk-result"), "");
  say($("bulk-error"), "");
  const domain = $("bulk-domain").value.trim();
  const ok = await confirmAction({ title: `Mark every open intervention of ${domain || "this domain"} done?`,
    confirm: "Mark them all done", body: "They close at once, and the domain's parked requests are released "
      + "to resume as they are, with no new cookies." });
  if (!ok) return;
  const button = $("bulk-submit");
  button.disabled = true;
  try {
    const result = await api("/api/v1/interventions/bulk-resolve", { method: "POST", json: {
      domain: $("bulk-domain").value.trim(), resolution: { action: "done" }, note: $("bulk-note").value } });
    say($("bulk-result"), `Resolved ${result.resolved.length} intervention(s); `
      + `${result.requests_resumed} parked request(s) released to resume.`);
  } catch (err) {
    say($("bulk-error"), describeError(err));
  } finally {
    button.disabled = false;
  }
});

load();
