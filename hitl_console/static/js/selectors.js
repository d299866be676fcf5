// The selector overrides in force (/api/v1/selectors): filter, history, revert (docs/selectors.md).
import { $, api, confirmAction, describeError, el, say, ago } from "./common.js";

const params = new URLSearchParams(location.search);
$("f-spider").value = params.get("spider") || "";
$("f-domain").value = params.get("domain") || "";

const shown = (o) => o.css || o.xpath || "(the spider's own)";

async function showHistory(o) {
  try {
    const found = await api("/api/v1/selectors/history", { query: { spider: o.spider, domain: o.domain, field: o.field } });
    $("hist-key").textContent = `${o.field} · ${o.spider} · ${o.domain}`;
    $("hist-list").replaceChildren(...found.items.map((v) => el("li", { dataset: { version: v.version, action: v.action } },
      el("strong", {}, `v${v.version} ${v.action === "revert" ? "reverted" : "saved"}`), " ",
      el("code", {}, shown(v.before || {})), " → ", el("code", {}, shown(v)), " ",
      el("span", { class: "hint" }, `by ${v.actor}, `, ago(v.created_at)),
      v.note ? el("span", { class: "hint" }, ` · ${v.note}`) : null,
      v.intervention_id ? el("small", { class: "code-note" }, ` (intervention #${v.intervention_id})`) : null)));
    $("sel-history").hidden = false;
  } catch (err) {
    say($("sel-error"), describeError(err));
  }
}

async function revert(o) {
  const ok = await confirmAction({ title: `Revert ${o.field} of ${o.spider} on ${o.domain}?`,
    body: `The selector before v${o.version} comes back, and crawls read their next pages with it.`, confirm: "Revert" });
  if (!ok) return;
  try {
    const back = await api("/api/v1/selectors/revert", { method: "POST",
      json: { spider: o.spider, domain: o.domain, field: o.field, note: "reverted on the Selectors page" } });
    say($("sel-result"), `${o.field}: v${back.version}, now ${shown(back)}.`);
    await load();
  } catch (err) {
    say($("sel-error"), describeError(err));
  }
}

async function load() {
  try {
    const found = await api("/api/v1/selectors", { query: { spider: $("f-spider").value.trim(), domain: $("f-domain").value.trim() } });
    $("sel-body").replaceChildren(...found.items.map((o) => {
      const historyButton = el("button", { type: "button", class: "link", dataset: { history: o.field } }, "History");
      const revertButton = el("button", { type: "button", dataset: { revert: o.field } }, "Revert");
      historyButton.addEventListener("click", () => showHistory(o));
      revertButton.addEventListener("click", () => revert(o));
      return el("tr", { dataset: { spider: o.spider, domain: o.domain, field: o.field, version: o.version } },
        el("td", {}, o.spider), el("td", {}, o.domain), el("td", {}, el("code", {}, o.field)),
        el("td", {}, el("code", {}, shown(o))), el("td", {}, `v${o.version}`),
        el("td", {}, ago(o.created_at), ` by ${o.actor}`),
        el("td", {}, historyButton, " ", revertButton));
    }));
    $("sel-empty").hidden = found.items.length > 0;
    say($("sel-error"), "");
  } catch (err) {
    say($("sel-error"), describeError(err));
  }
}

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = new URLSearchParams();
  for (const [k, id] of [["spider", "f-spider"], ["domain", "f-domain"]]) if ($(id).value.trim()) q.set(k, $(id).value.trim());
  window.history.replaceState(null, "", q.toString() ? `?${q}` : location.pathname);
  load();
});

load();
