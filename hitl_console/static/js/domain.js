// One domain: what was learned, the 403 rate over time (an SVG drawn here), engines, the
// escalation tiers learned per path pattern, and the admin override of its access class and
// session requirement. Everything from the API goes in as text (el() never parses HTML).
import { $, ApiFailure, Live, ago, api, debounce, describeError, el, fmtNumber, fmtRate, page, parseTime, say } from "./common.js";

const domain = $("domain").dataset.domain;
const path = `/api/v1/domains/${encodeURIComponent(domain)}`;
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A line chart of block_rate (0..1) per sample, with the time range under it. */
function drawChart(points) {
  const box = $("chart");
  box.replaceChildren();
  $("chart-empty").hidden = points.length > 0;
  if (!points.length) return;
  const W = 600, H = 180, L = 40, R = 10, T = 10, B = 24;
  const max = Math.max(0.05, ...points.map((p) => p.block_rate));
  const x = (i) => L + (points.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (points.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", id: "block-rate-chart",
    "aria-label": `403 rate of ${domain} over ${points.length} samples` });
  chart.append(
    svg("line", { class: "axis", x1: L, y1: y(0), x2: W - R, y2: y(0) }),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: y(0) }),
    svg("text", { x: 2, y: T + 8 }, fmtRate(max)),
    svg("text", { x: 2, y: y(0) }, "0%"),
    svg("text", { x: L, y: H - 6 }, new Date(parseTime(points[0].at)).toLocaleString()),
    svg("text", { x: W - R, y: H - 6, "text-anchor": "end" },
      new Date(parseTime(points[points.length - 1].at)).toLocaleString()),
    svg("polyline", { class: "line", points: points.map((p, i) => `${x(i)},${y(p.block_rate)}`).join(" ") }));
  points.forEach((p, i) => {
    const dot = svg("circle", { class: "dot", cx: x(i), cy: y(p.block_rate), r: 3 });
    dot.append(svg("title", {}, `${p.at}: ${fmtRate(p.block_rate)} of ${p.attempts} (${p.blocked_403} 403s, `
      + `${p.captchas} captchas)`));
    chart.append(dot);
  });
  box.append(chart);
}

function render(d) {
  $("d-access-class").textContent = d.access_class;
  const health = d.session_health || {};
  // Why a session is required, in words (a person's fix teaches it at once: docs/sessions.md)
  $("d-requires-session").replaceChildren(d.requires_session,
    health.required_reason ? el("span", { class: "hint" }, ` — ${health.required_reason}`) : "");
  $("d-sessions").replaceChildren(el("a", { href: "/sessions" },
    `${fmtNumber(health.usable_sessions ?? 0)} usable of ${fmtNumber(health.sessions ?? 0)}`));
  const probe = health.probe;
  const result = health.probe_result;
  $("d-probe").replaceChildren(!probe ? "none" : `${probe.url}${probe.selector ? ` shows ${probe.selector}` : ""}`
    + `${probe.status ? ` answers ${probe.status}` : ""}`
    + `${probe.browser ? ", checked in a browser" : ", checked with a plain HTTP request"}: `,
  probe && result ? el("span", { dataset: { result: result.result } }, `${result.result} `) : (probe ? "not run yet" : ""),
  probe && result ? ago(result.at) : "",
  probe && result && result.detail ? el("span", { class: "hint" }, ` (${result.detail})`) : "");
  $("d-attempts").textContent = fmtNumber(d.attempts);
  $("d-successes").textContent = fmtNumber(d.successes);
  $("d-blocked").textContent = `${fmtNumber(d.blocked_403)} / ${fmtNumber(d.blocked_401)}`;
  $("d-block-rate").textContent = fmtRate(d.block_rate_403);
  $("d-captcha-rate").textContent = fmtRate(d.captcha_rate);
  $("d-open").replaceChildren(el("a", { href: `/interventions?domain=${encodeURIComponent(domain)}&status=open` },
    fmtNumber(d.open_interventions)));
  $("d-updated").replaceChildren(ago(d.updated_at));
  $("d-paused").hidden = !d.paused;
  $("engines-body").replaceChildren(...Object.entries(d.engine_stats || {}).map(([name, e]) =>
    el("tr", { dataset: { engine: name } }, el("td", {}, name), el("td", { class: "num" }, fmtNumber(e.attempts)),
      el("td", { class: "num" }, fmtNumber(e.successes)),
      el("td", { class: "num" }, fmtRate(e.attempts ? e.successes / e.attempts : null)))));
  renderTiers(d.tiers || { patterns: {}, floor: null });
  if ($("domain-form")) {
    $("edit-access-class").value = d.access_class;
    $("edit-requires-session").value = d.requires_session;
  }
}

/** Pattern, tier and age of each learned tier, the most recently updated first. */
function renderTiers(tiers) {
  const rows = Object.entries(tiers.patterns || {}).sort(([, a], [, b]) => b.updated - a.updated);
  $("tiers-floor").textContent = tiers.floor || "the first tier";
  $("tiers-empty").hidden = rows.length > 0;
  $("tiers-body").replaceChildren(...rows.map(([pattern, e]) =>
    el("tr", { dataset: { pattern } }, el("td", {}, el("code", {}, pattern)), el("td", {}, e.tier),
      el("td", {}, ago(Number.isFinite(e.updated) ? new Date(e.updated * 1000).toISOString() : null)))));
}

async function load() {
  try {
    const [d, history] = await Promise.all([api(path), api(`${path}/history`, { query: { limit: 200 } })]);
    render(d);
    drawChart(history.items);
  } catch (err) {
    // A domain with an intervention but no request counted yet is not an error: say so plainly.
    if (err instanceof ApiFailure && err.status === 404) {
      say($("d-error"), "");
      say($("d-empty"), "No request to this domain has been counted yet: its numbers show once a crawl "
        + "reports them. You can still set its access class and session below.");
    } else {
      say($("d-error"), describeError(err));
    }
  }
}

const form = $("domain-form"); // rendered for admins only; the API checks the role anyway
if (form && page.role === "admin") {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say($("edit-result"), "");
    say($("edit-error"), "");
    try {
      const d = await api(path, { method: "PATCH", json: {
        access_class: $("edit-access-class").value, requires_session: $("edit-requires-session").value } });
      say($("edit-result"), `Saved: ${d.access_class}, session ${d.requires_session}.`);
      load();
    } catch (err) {
      say($("edit-error"), describeError(err));
    }
  });
}

const refresh = debounce(load, 1000);
new Live().on((ev) => {
  if (ev.domain === domain) refresh();
}).start();
load();
