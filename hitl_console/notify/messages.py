"""What a notification says (pure): what is blocked and why in words, how many requests are
parked, how long it has waited, who owns it, and a link to the console page.

``compose`` takes the item as the state layer describes it *now* (the message is written at
delivery, so a grouped or retried message is current) and returns a title, a plain-text
body (chat services) and an HTML body (email, with the evidence screenshot inline). The
raw codes stay in small print at the end, for searching logs.
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass
from typing import Any

from hitl_console import words

SCREENSHOT_NAME = "screenshot.png"


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    text: str
    html: str
    link: str


def waited(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 5 min``, ``3 days``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def _intervention(i: dict[str, Any], age: float) -> tuple[str, list[str], str]:
    label = words.type_label(i.get("type"))
    title = f"{label}: {i.get('domain') or '?'}"
    lines = [f"{words.reason_label(i.get('reason'))} on {i.get('domain') or '?'}: "
             f"{words.NEEDS.get(str(i.get('type')), 'needs a person')}."]
    if i.get("type") != "run_anomaly":
        lines.append(f"{words.plural(int(i.get('parked_count') or 0), 'request')} parked, "
                     f"waiting for {waited(age)}.")
    else:
        lines.append(f"Opened {waited(age)} ago.")
    if i.get("url"):
        lines.append(f"Blocked page: {i['url']}")
    codes = f"{i.get('type')} · {i.get('reason')} · spider {i.get('spider') or '-'} · intervention #{i.get('id')}"
    return title, lines, codes


def _consultation(c: dict[str, Any], age: float) -> tuple[str, list[str], str]:
    title = f"Question: {c.get('title') or '?'}"
    lines = [f"{c.get('asked_by') or 'An agent'} asks: {c.get('title')}",
             f"Priority {c.get('priority')}, waiting for an answer for {waited(age)}."]
    codes = f"consultation #{c.get('id')} · priority {c.get('priority')}"
    return title, lines, codes


def compose(kind: str, item: dict[str, Any], *, link: str, age: float, grouped: int = 1, window: float = 0.0,
            escalation_step: int = 0, status: str = "open", extra: dict[str, Any] | None = None) -> Message:
    """The message about ``item`` (an intervention, consultation, run, ...).

    ``age``: seconds since the item was opened; ``grouped``: events this message stands
    for (a storm within ``window`` seconds); ``escalation_step``: 1 and up when nobody took
    the item and the rule's chain reached this channel; ``status``: the item's state now."""
    extra = extra or {}
    if kind == "intervention":
        title, lines, codes = _intervention(item, age)
    elif kind == "consultation":
        title, lines, codes = _consultation(item, age)
    elif kind == "run":
        title = f"Run failed: {item.get('spider') or '?'}"
        lines = [f"The run of {item.get('spider') or '?'} ended as failed "
                 f"({item.get('finish_reason') or 'no finish reason'}), {waited(age)} ago."]
        codes = f"run.failed · run {item.get('id')}"
    elif kind == "items":
        n = int(extra.get("pending") or 0)
        title = f"Review queue: {words.plural(n, 'item')} waiting"
        lines = [f"{words.plural(n, 'item')} {'is' if n == 1 else 'are'} held for review "
                 f"(the rule's threshold is {extra.get('threshold', 1)})."]
        codes = "review_queue"
    elif kind == "job":
        what = f"Crawl job #{item.get('job_id') or item.get('id') or '?'} of {item.get('spider') or '?'}"
        title = f"Job failed: {item.get('spider') or '?'}"
        lines = [f"{what}{' (project ' + str(item['project']) + ')' if item.get('project') else ''} failed"
                 f"{': ' + words.reason_label(item.get('reason')) if item.get('reason') else ''}."]
        if item.get("message"):
            lines.append(str(item["message"]))
        codes = f"job.failed · job {item.get('job_id')} · {item.get('reason') or '-'}"
    elif kind == "test":
        title = "Test message from scrapy-hitl"
        lines = [f"If you can read this, the channel {item.get('channel') or ''} works.",
                 f"Sent by {item.get('actor') or 'someone'} from the console or `hitl notify test`."]
        codes = "test"
    else:  # job.failed and anything newer: say what the event says
        title = f"{extra.get('event_type', kind)}: {item.get('spider') or item.get('id') or ''}".rstrip(": ")
        lines = [f"{extra.get('event_type', kind)}: {item.get('error') or item.get('reason') or 'see the console'}"]
        codes = str(extra.get("event_type", kind))
    if grouped > 1:
        title += f" (+{grouped - 1} more)"
        span = f" in the last {waited(window)}" if window else ""
        lines.append(f"{words.plural(grouped, 'event')} like this{span}, grouped into this one message.")
    if status not in ("open", "pending"):
        lines.append(f"It is {words.STATUSES.get(status, status)} now.")
    owner = item.get("owner")
    if kind in ("intervention", "consultation") and status in ("open", "pending"):
        lines.append(f"{owner} is on it." if owner else "Nobody has taken it yet.")
    if escalation_step:
        title = f"Escalated: {title}"
        lines.insert(0, f"Nobody has taken this for {waited(age)}; you are next in line "
                        f"(escalation step {escalation_step}).")
    text = "\n".join([*lines, f"Open: {link}", f"({codes})"])
    body = "".join(f"<p>{_html.escape(line)}</p>" for line in lines)
    page = f'<p><a href="{_html.escape(link, quote=True)}">{_html.escape(link)}</a></p>'
    shot = (f'<p><img src="cid:{SCREENSHOT_NAME}" alt="the blocked page" style="max-width:100%"></p>'
            if extra.get("screenshot") else "")
    small = f'<p style="color:#666;font-size:12px">{_html.escape(codes)}</p>'
    return Message(title=title, text=text, html=body + page + shot + small, link=link)
