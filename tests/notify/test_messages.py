"""What a message says (pure): words, counts, waited time, owner, link, escalation."""

from __future__ import annotations

import pytest

from hitl_console.notify.config import NotifyConfig
from hitl_console.notify.messages import compose, waited

BLOCK = {"id": 7, "type": "manual_access", "reason": "http_403", "domain": "shop.example.com", "spider": "shop",
         "parked_count": 1834, "url": "https://shop.example.com/p/1", "owner": None}
LINK = "https://hitl.example.com/interventions/7"


@pytest.mark.parametrize(("seconds", "expected"), [
    (0, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"), (3900, "1 h 5 min"),
    (47 * 3600, "47 h"), (3 * 86400, "3 days"), (-5, "0 s"),
])
def test_waited(seconds, expected):
    assert waited(seconds) == expected


def test_an_intervention_in_words_with_parked_count_wait_and_link():
    m = compose("intervention", BLOCK, link=LINK, age=720)
    assert m.title == "Needs access: shop.example.com"
    assert m.text.splitlines() == [
        "403 Forbidden on shop.example.com: needs a logged-in session.",
        "1,834 requests parked, waiting for 12 min.",
        "Blocked page: https://shop.example.com/p/1",
        "Nobody has taken it yet.",
        f"Open: {LINK}",
        "(manual_access · http_403 · spider shop · intervention #7)",
    ]
    assert f'<a href="{LINK}">{LINK}</a>' in m.html and "cid:" not in m.html


def test_a_grouped_owned_escalated_message_with_a_screenshot():
    m = compose("intervention", {**BLOCK, "owner": "ann@example.com"}, link=LINK, age=1800, grouped=50,
                window=600, escalation_step=2, extra={"screenshot": True})
    assert m.title == "Escalated: Needs access: shop.example.com (+49 more)"
    assert m.text.splitlines()[0] == ("Nobody has taken this for 30 min; you are next in line "
                                      "(escalation step 2).")
    assert "50 events like this in the last 10 min, grouped into this one message." in m.text
    assert "ann@example.com is on it." in m.text
    assert '<img src="cid:screenshot.png"' in m.html


def test_untrusted_text_is_escaped_in_the_html():
    m = compose("consultation", {"id": 3, "title": "<script>x</script>", "asked_by": "agent:1", "priority": 60},
                link="https://h/consultations/3", age=5)
    assert "<script>" not in m.html and "&lt;script&gt;" in m.html
    assert m.title == "Question: <script>x</script>"  # plain text channels get it as text


def test_a_closed_item_says_so():
    m = compose("intervention", BLOCK, link=LINK, age=60, status="cancelled")
    assert "It is cancelled now." in m.text and "Nobody has taken it" not in m.text


@pytest.mark.parametrize(("env", "message"), [
    ({"HITL_NOTIFY_THROTTLE": "-1"}, "HITL_NOTIFY_THROTTLE must be 0"),
    ({"HITL_NOTIFY_THROTTLE": "soon"}, "HITL_NOTIFY_THROTTLE must be a number"),
    ({"HITL_NOTIFY_MAX_ATTEMPTS": "0"}, "HITL_NOTIFY_MAX_ATTEMPTS must be at least 1"),
    ({"HITL_NOTIFY_RETRY_SCHEDULE": "5,x"}, "HITL_NOTIFY_RETRY_SCHEDULE must be comma-separated"),
    ({"HITL_PUBLIC_URL": "hitl.example.com"}, "HITL_PUBLIC_URL must be the console's address"),
    ({"HITL_PUBLIC_URL": "ftp://hitl.example.com"}, "HITL_PUBLIC_URL must be the console's address"),
])
def test_bad_settings_name_the_setting(env, message):
    with pytest.raises(ValueError, match=message):
        NotifyConfig.from_env(env)


def test_settings():
    config = NotifyConfig.from_env({"HITL_PUBLIC_URL": "https://hitl.example.com/", "HITL_NOTIFY_THROTTLE": "60",
                                    "HITL_NOTIFY_RETRY_SCHEDULE": "1,2"})
    assert config.link("/interventions/1") == "https://hitl.example.com/interventions/1"
    assert config.throttle == 60.0 and config.retry_schedule == (1.0, 2.0)
    assert NotifyConfig.from_env({}).link("/") == "http://127.0.0.1:8000/"


def test_a_failed_job_says_which_crawl_and_why():
    m = compose("job", {"job_id": 12, "project": "demo", "spider": "shop", "reason": "page_cap",
                        "message": "stopped at 10,000 pages (HITL_JOB_LIMIT_PAGES)"},
                link="https://h/jobs/12", age=5, extra={"event_type": "job.failed"})
    assert m.title == "Job failed: shop"
    assert m.text.splitlines()[:2] == ["Crawl job #12 of shop (project demo) failed: page cap.",
                                       "stopped at 10,000 pages (HITL_JOB_LIMIT_PAGES)"]
    assert "Open: https://h/jobs/12" in m.text
