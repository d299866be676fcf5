"""The block middleware's judge(): what it tells the classifier about the spider's hitl_expect."""

from __future__ import annotations

import pytest
from scrapy import Request, Spider
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from scrapy_hitl.classifier import Verdict
from scrapy_hitl.middlewares.blocks import HitlBlockMiddleware
from tests.unit.test_classifier import page

URL = "https://quotes.example.com/botd/page/1"


@pytest.mark.parametrize(
    ("expect", "verdict"),
    [
        # The page holds what the spider expects: a generic in-page refusal is not the page.
        pytest.param("div#app h2", Verdict.ok(), id="expectation-met"),
        pytest.param("div.quote", Verdict.pause("captcha_solve", "automation_refused", "generic"),
                     id="expectation-missing"),
        pytest.param(None, Verdict.pause("captcha_solve", "automation_refused", "generic"), id="no-expectation"),
    ],
)
def test_a_met_expectation_outweighs_a_generic_refusal(hitl_env, expect: str | None, verdict: Verdict) -> None:
    crawler = get_crawler(Spider, settings_dict={"ADDONS": {"scrapy_hitl.Addon": 500}})
    middleware = HitlBlockMiddleware.from_crawler(crawler)
    try:
        request = Request(URL, meta={"hitl_expect": expect, "hitl_tier": "stealth"})
        response = HtmlResponse(URL, body=page("botd_refusal_rendered.html"), encoding="utf-8", request=request)
        assert middleware.judge(request, response).verdict == verdict
    finally:
        middleware.rt.state.close()
