// A job's status in plain words, with its code beside it in small type (jobs.js, job.js).
import { el } from "./common.js";

export const JOB_STATUS = {
  queued: "waiting for a worker",
  running: "crawling",
  waiting_for_human: "waiting for a person",
  finished: "finished",
  failed: "failed",
  cancelled: "cancelled",
};
export const FINAL = ["finished", "failed", "cancelled"];
const BADGE = { finished: "completed" }; // the colour of a completed run

/** Set a badge node to the status's words (its class and data-status keep the code). */
export function setStatusBadge(node, status) {
  const value = String(status || "");
  node.className = `badge badge-${(BADGE[value] || value).replace(/[^a-z_]/g, "")}`;
  node.dataset.status = value;
  node.textContent = JOB_STATUS[value] || value.replaceAll("_", " ");
}

/** The status as words in a badge, and the raw code in small type. */
export function statusCell(status) {
  const words = el("span", {});
  setStatusBadge(words, status);
  return [words, " ", el("small", { class: "code" }, el("code", {}, status))];
}

/** "name=value" lines to an object (arguments stay strings; setting values are JSON when they parse). */
export function parseLines(text, { json = false } = {}) {
  const out = {};
  for (const raw of String(text || "").split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`"${line}": write one name=value per line`);
    const name = line.slice(0, at).trim();
    const value = line.slice(at + 1).trim();
    if (!json) {
      out[name] = value;
      continue;
    }
    try {
      out[name] = JSON.parse(value);
    } catch {
      out[name] = value;
    }
  }
  return out;
}

export function asLines(obj) {
  const entries = Object.entries(obj || {});
  return entries.length ? entries.map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("  ") : "–";
}
