// "I'm on it": who owns an intervention or a consultation. Taking it tells the others (and
// stops its escalation: nobody else is notified); giving it back lets the escalation go on.
// The detail pages include templates/_owner.html; the lists show ownerHint() beside the status.
import { $, api, describeError, el, page, say } from "./common.js";

/** "· ann@example.com is on it" for a list row, or nothing. */
export function ownerHint(item) {
  if (!item.owner) return null;
  const who = item.owner === page.email ? "you are" : `${item.owner} is`;
  return el("span", { class: "hint owner-hint", dataset: { owner: item.owner } }, ` · ${who} on it`);
}

const box = $("owner");
if (box) {
  const kind = box.dataset.kind;
  const path = `/api/v1/${kind}s/${box.dataset.itemId}`;

  const show = (item) => {
    const open = kind === "intervention" ? item.status === "open" : item.state === "pending";
    box.hidden = !open && !item.owner;
    const mine = item.owner && item.owner === page.email;
    $("owner-text").textContent = !item.owner ? "Nobody has taken this yet."
      : mine ? "You are on it." : `${item.owner} is on it.`;
    box.dataset.owner = item.owner || "";
    $("owner-take").hidden = !open || mine;
    $("owner-take").textContent = item.owner && !mine ? "Take it over" : "I'm on it";
    $("owner-release").hidden = !open || !item.owner;
  };

  const refresh = async () => {
    try {
      show(await api(path));
    } catch (err) {
      say($("owner-error"), describeError(err));
    }
  };

  const act = (method) => async () => {
    say($("owner-error"), "");
    try {
      await api(`${path}/owner`, { method });
    } catch (err) {
      say($("owner-error"), describeError(err));
    }
    await refresh();
  };

  $("owner-take").addEventListener("click", act("POST"));
  $("owner-release").addEventListener("click", act("DELETE"));
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  // Someone else taking or giving it back shows at once: the page's own event stream
  // (intervention.js, consultation.js) hands each event on as "hitl:event".
  document.addEventListener("hitl:event", ({ detail: ev }) => {
    if (ev.type === `${kind}.owned` && ev.payload && String(ev.payload[`${kind}_id`]) === box.dataset.itemId) {
      refresh();
    }
  });
  refresh();
}
