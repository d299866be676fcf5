// Every domain the crawlers learned about: access class, session need, block rates, engines.
import { $, Pager, ago, describeError, el, fmtNumber, fmtRate, link, say } from "./common.js";

function engineSummary(stats) {
  return Object.entries(stats || {}).map(([name, e]) => `${name} ${fmtNumber(e.successes)}/${fmtNumber(e.attempts)}`)
    .join(", ") || "–";
}

function row(d) {
  return el("tr", { dataset: { domain: d.domain, accessClass: d.access_class } },
    el("td", {}, link(`/domains/${encodeURIComponent(d.domain)}`, d.domain)),
    el("td", { dataset: { field: "access-class" } }, d.access_class),
    el("td", { dataset: { field: "requires-session" } }, d.requires_session),
    el("td", { class: "num" }, fmtNumber(d.attempts)),
    el("td", { class: "num" }, fmtRate(d.block_rate_403)),
    el("td", { class: "num" }, fmtRate(d.captcha_rate)),
    el("td", {}, engineSummary(d.engine_stats)),
    el("td", {}, ago(d.updated_at)));
}

function show(items, first) {
  if (first) $("domains-body").replaceChildren();
  $("domains-body").append(...items.map(row));
  $("domains-empty").hidden = $("domains-body").children.length > 0;
}

new Pager("/api/v1/domains", $("load-more"), show).reset()
  .catch((err) => say($("domains-error"), describeError(err)));
