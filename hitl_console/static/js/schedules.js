// The Jobs page's schedules: periodic crawls from cron expressions (/api/v1/schedules), with
// remove asking first. The start form (jobs.js) makes one when its "Repeat" field is filled.
import { $, api, confirmAction, describeError, el, link, say, when } from "./common.js";

function row(s) {
  const args = Object.entries(s.args).map(([k, v]) => `${k}=${v}`).join(" ");
  const remove = el("button", { type: "button", class: "secondary", dataset: { scheduleId: s.id } }, "Remove");
  remove.addEventListener("click", async () => {
    const ok = await confirmAction({
      title: `Remove the schedule of ${s.project} / ${s.spider}?`,
      body: `No job is started for "${s.cron}" any more. Jobs it already started run on.`,
      confirm: "Remove the schedule",
    });
    if (!ok) return;
    try {
      await api(`/api/v1/schedules/${s.id}`, { method: "DELETE" });
      loadSchedules();
    } catch (err) {
      say($("schedules-error"), describeError(err));
    }
  });
  return el("tr", { dataset: { scheduleId: s.id } },
    el("td", {}, `${s.project} / ${s.spider}`, args ? el("small", { class: "hint" }, ` ${args}`) : ""),
    el("td", {}, el("code", {}, s.cron), el("small", { class: "hint" }, " UTC")),
    el("td", {}, when(s.next_run_at)),
    el("td", {}, s.last_job_id ? link(`/jobs/${s.last_job_id}`, `#${s.last_job_id}`) : "none yet"),
    el("td", {}, remove));
}

export async function loadSchedules() {
  try {
    const data = await api("/api/v1/schedules");
    $("schedules-body").replaceChildren(...data.items.map(row));
    $("schedules-empty").hidden = data.items.length > 0;
    $("schedules-table").hidden = data.items.length === 0;
  } catch (err) {
    say($("schedules-error"), describeError(err));
  }
}

/** Make a schedule from the start form's fields; throws the API's error for the form. */
export async function createSchedule(body, cron) {
  const made = await api("/api/v1/schedules", { method: "POST", json: { ...body, cron } });
  await loadSchedules();
  return made;
}

// The start button says what it will do: start now, or schedule.
$("start-cron").addEventListener("input", () => {
  $("start-submit").textContent = $("start-cron").value.trim() ? "Schedule" : "Start";
});
