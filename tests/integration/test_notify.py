"""A crawl blocks, and people are told: a real ``scrapy crawl`` pauses on a captcha in the
browser tier, a real ``hitl worker`` sends one email to a local SMTP server (aiosmtpd), with
the deep link and the evidence screenshot inline, and the ``json://`` message to a local
receiver."""

from __future__ import annotations

import json

import pytest

from scrapy_hitl.state import notifications
from tests.integration.conftest import wait_for
from tests.notify.conftest import PUBLIC_URL, add_channel, json_url, notify_env, notify_worker, smtp  # noqa: F401
from tests.webhooks.conftest import receiver  # noqa: F401

pytestmark = pytest.mark.browser


def test_a_block_sends_one_email_with_the_link_and_the_screenshot_and_the_json_message(
        crawl, cli, state, smtp, receiver, notify_worker):  # noqa: F811 (fixtures)
    rec = receiver()
    add_channel(state, smtp.url(), "mail")
    add_channel(state, json_url(rec), "hook")
    worker = notify_worker()
    run = crawl(args={"sections": "protected", "details": "0"},
                settings={"HITL_STEALTH_DELAY": "0,0", "HITL_TIERS": "static,browser,human"})
    opened = wait_for(lambda: cli.json("interventions", "list"), timeout=60, what="an intervention")
    intervention_id = opened[0]["id"]
    wait_for(lambda: smtp.messages and rec.requests, timeout=30,
             what=f"the email and the JSON message; worker log:\n{worker.log()[-3000:]}")

    (mail,) = smtp.messages
    assert mail["Subject"] == "Captcha to solve: protected.sandbox.test"
    assert mail["To"] == "ops@example.org"
    link = f"{PUBLIC_URL}/interventions/{intervention_id}"
    html = mail.get_body(("html",)).get_content()
    assert f'<a href="{link}">{link}</a>' in html
    assert '<img src="cid:screenshot.png"' in html
    (image,) = [part for part in mail.walk() if part.get_content_type() == "image/png"]
    assert image["Content-ID"] == "<screenshot.png>" and image.get_content_disposition() == "inline"
    assert image.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    text = mail.get_body(("plain",)).get_content()
    assert "needs a captcha solved" in text and "waiting for" in text

    (posted,) = rec.requests
    body = json.loads(posted["body"])
    assert body["title"] == "Captcha to solve: protected.sandbox.test"
    assert f"Open: {link}" in body["message"]

    sent = wait_for(lambda: (lambda rows: rows if all(n["state"] == "delivered" for n in rows) else None)(
        notifications.list_(state.db)), what="both attempts recorded")
    assert sorted(n["channel"] for n in sent) == ["hook", "mail"]
    code, out = cli("interventions", "cancel", str(intervention_id))
    assert code == 0, out
    result = run.wait()
    assert result.returncode == 0, result.log[-3000:]
