"""Tests for scrapy_hitl.addon, and the NotConfigured switch of each component it adds."""

from __future__ import annotations

import inspect

import pytest
from scrapy import Spider
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.exceptions import NotConfigured
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from scrapy_hitl import defaults
from scrapy_hitl.addon import (
    BLOCK_MW_PRIORITY,
    ESCALATION_MW_PRIORITY,
    EXTENSION_PRIORITY,
    SESSION_MW_PRIORITY,
    Addon,
)
from scrapy_hitl.browser.handler import HitlDownloadHandler, HitlHttpsDownloadHandler
from scrapy_hitl.extension import HitlExtension
from scrapy_hitl.middlewares.blocks import HitlBlockMiddleware
from scrapy_hitl.middlewares.compression import HitlHttpCompressionMiddleware
from scrapy_hitl.middlewares.escalation import HitlEscalationMiddleware
from scrapy_hitl.middlewares.failures import HitlFailureMiddleware
from scrapy_hitl.middlewares.session import HitlSessionMiddleware
from scrapy_hitl.middlewares.start import HitlStartMiddleware
from scrapy_hitl.quality.pipeline import HitlQualityPipeline
from scrapy_hitl.quality.source import HitlItemSourceMiddleware

ADDON = {"scrapy_hitl.Addon": 500}


def run_now(result):
    """What a per-page method returned: on Scrapy 2.14+ it is a coroutine (scrapy_hitl.dispatch)
    that awaits nothing, run here to its end."""
    if not inspect.iscoroutine(result):
        return result
    try:
        result.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the method awaited something")
STATE_NAMES = {"HITL_DATA_DIR", "HITL_DATABASE_URL", "HITL_REDIS_SERVER", "HITL_REDIS_URL", "HITL_SECRET_KEY"}
TUNABLE_NAMES = sorted(n for n in dir(defaults) if n.startswith("HITL_") and n not in STATE_NAMES)

SESSION_PATH = "scrapy_hitl.middlewares.session.HitlSessionMiddleware"
BLOCK_PATH = "scrapy_hitl.middlewares.blocks.HitlBlockMiddleware"
EXTENSION_PATH = "scrapy_hitl.extension.HitlExtension"
MWS = "DOWNLOADER_MIDDLEWARES"
ALL_MWS = {HitlSessionMiddleware: 540, HitlBlockMiddleware: 650, HitlEscalationMiddleware: 660,
           HitlFailureMiddleware: 545, HttpCompressionMiddleware: None, HitlHttpCompressionMiddleware: 670}
COMPRESSION_PATH = "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware"


@pytest.fixture
def crawler_settings(hitl_env):
    """Build a crawler with the add-on and return its settings.

    ``get_crawler`` applies the settings *and* builds the extensions, so HitlExtension opens
    the state: ``hitl_env`` points it at the test Redis and a per-test SQLite database
    (never at ``./.hitl``), and the state is closed afterwards.
    """
    crawlers = []

    def make(**settings):
        crawler = get_crawler(Spider, settings_dict={"ADDONS": ADDON, **settings})
        crawlers.append(crawler)
        return crawler.settings

    yield make
    for crawler in crawlers:
        runtime = getattr(crawler, "_hitl_runtime", None)
        if runtime is not None:
            runtime.state.close()


def test_priorities_are_where_the_docstrings_say():
    assert (SESSION_MW_PRIORITY, BLOCK_MW_PRIORITY, ESCALATION_MW_PRIORITY, EXTENSION_PRIORITY) == (
        540, 650, 660, 500)


def test_defaults_are_applied_with_addon_priority(crawler_settings):
    settings = crawler_settings()
    assert len(TUNABLE_NAMES) > 40 and "HITL_REVIEW_WAIT" in TUNABLE_NAMES  # the loop below is not vacuous
    for name in TUNABLE_NAMES:
        if "_FALLBACK_" in name:  # set from the project's own handlers (tested below)
            continue
        assert settings[name] == getattr(defaults, name), name
        assert settings.getpriority(name) == 15, name  # SETTINGS_PRIORITIES["addon"]


def test_project_settings_win_over_the_addon(crawler_settings):
    settings = crawler_settings(HITL_PAUSE_TIMEOUT=5, HITL_BLOCKS_ENABLED=False)
    assert settings.getfloat("HITL_PAUSE_TIMEOUT") == 5
    assert settings.getpriority("HITL_PAUSE_TIMEOUT") == 20  # project
    assert settings.getbool("HITL_BLOCKS_ENABLED") is False
    assert settings["HITL_RESUME_BATCH"] == 500  # untouched ones still come from the add-on


def test_update_settings_alone_keeps_higher_priorities():
    settings = Settings({"HITL_RESUME_BATCH": 9}, priority="project")
    Addon().update_settings(settings)
    assert settings["HITL_RESUME_BATCH"] == 9
    assert settings["HITL_RUN_HEARTBEAT"] == 10.0
    assert settings.getpriority("HITL_RUN_HEARTBEAT") == 15


@pytest.mark.parametrize("name", sorted(STATE_NAMES))
def test_state_settings_are_not_pinned(crawler_settings, name):
    """A setting would hide the environment variable of the same name (see StateConfig)."""
    settings = crawler_settings()
    assert settings.get(name) is None
    assert settings.getpriority(name) is None


def test_components_are_inserted_at_their_priorities(crawler_settings):
    settings = crawler_settings()
    mws = dict(settings["DOWNLOADER_MIDDLEWARES"])
    assert mws == ALL_MWS
    assert dict(settings["EXTENSIONS"]) == {HitlExtension: 500}
    assert dict(settings["SPIDER_MIDDLEWARES"]) == {HitlStartMiddleware: 50, HitlItemSourceMiddleware: 60}
    assert dict(settings["ITEM_PIPELINES"]) == {HitlQualityPipeline: 950}


def test_components_sit_between_scrapy_builtins(crawler_settings):
    """Session mw after UserAgent, before Cookies; block mw before Redirect and Retry."""
    settings = crawler_settings()
    base = settings.getdict("DOWNLOADER_MIDDLEWARES_BASE")
    ua = base["scrapy.downloadermiddlewares.useragent.UserAgentMiddleware"]
    cookies = base["scrapy.downloadermiddlewares.cookies.CookiesMiddleware"]
    redirect = base["scrapy.downloadermiddlewares.redirect.RedirectMiddleware"]
    retry = base["scrapy.downloadermiddlewares.retry.RetryMiddleware"]
    assert ua < SESSION_MW_PRIORITY < cookies
    # process_response runs from high to low: the escalation mw sees responses first, then
    # the block mw, both before Redirect and Retry, and after Cookies.
    assert cookies > ESCALATION_MW_PRIORITY > BLOCK_MW_PRIORITY > redirect > retry
    # The failure guardrail sees responses and errors after Retry gave up on them.
    assert retry > ALL_MWS[HitlFailureMiddleware] > SESSION_MW_PRIORITY
    # Bodies are decompressed before the escalation and block mws read them.
    assert base[COMPRESSION_PATH] < BLOCK_MW_PRIORITY < ESCALATION_MW_PRIORITY < ALL_MWS[HitlHttpCompressionMiddleware]


@pytest.mark.parametrize(
    ("setting", "user_key", "cls", "user_priority"),
    [
        pytest.param(MWS, HitlSessionMiddleware, HitlSessionMiddleware, 100, id="session-by-class"),
        pytest.param(MWS, SESSION_PATH, HitlSessionMiddleware, 100, id="session-by-path"),
        pytest.param(MWS, SESSION_PATH, HitlSessionMiddleware, None, id="session-disabled-by-path"),
        pytest.param(MWS, BLOCK_PATH, HitlBlockMiddleware, 910, id="block-by-path"),
        pytest.param(MWS, HitlBlockMiddleware, HitlBlockMiddleware, 910, id="block-by-class"),
        pytest.param("EXTENSIONS", EXTENSION_PATH, HitlExtension, 0, id="extension-by-path"),
        pytest.param("EXTENSIONS", HitlExtension, HitlExtension, 0, id="extension-by-class"),
        pytest.param(MWS, COMPRESSION_PATH, HttpCompressionMiddleware, 590, id="compression-kept-where-the-user-put-it"),
        pytest.param(MWS, COMPRESSION_PATH, HttpCompressionMiddleware, None, id="compression-disabled"),
    ],
)
def test_user_listed_component_is_not_added_twice(crawler_settings, setting, user_key, cls, user_priority):
    settings = crawler_settings(**{setting: {user_key: user_priority}})
    components = dict(settings[setting])
    keys = [k for k in components if k is cls or k == f"{cls.__module__}.{cls.__name__}"]
    assert keys == [user_key]
    assert components[user_key] == user_priority


def test_user_listing_one_component_still_gets_the_others(crawler_settings):
    settings = crawler_settings(DOWNLOADER_MIDDLEWARES={SESSION_PATH: 100})
    assert dict(settings["DOWNLOADER_MIDDLEWARES"]) == {
        SESSION_PATH: 100, HitlBlockMiddleware: 650, HitlEscalationMiddleware: 660, HitlFailureMiddleware: 545,
        HttpCompressionMiddleware: None, HitlHttpCompressionMiddleware: 670}
    assert dict(settings["EXTENSIONS"]) == {HitlExtension: 500}


def test_unrelated_and_broken_user_entries_are_kept(crawler_settings):
    settings = crawler_settings(
        DOWNLOADER_MIDDLEWARES={"myproject.middlewares.Missing": 300, "not a path": 301}
    )
    assert dict(settings["DOWNLOADER_MIDDLEWARES"]) == {
        "myproject.middlewares.Missing": 300,
        "not a path": 301,
        **ALL_MWS,
    }


def test_applying_the_addon_twice_adds_nothing():
    settings = Settings()
    Addon().update_settings(settings)
    Addon().update_settings(settings)
    assert dict(settings["DOWNLOADER_MIDDLEWARES"]) == ALL_MWS
    assert dict(settings["EXTENSIONS"]) == {HitlExtension: 500}
    assert settings["DOWNLOAD_HANDLERS"]["http"] is HitlDownloadHandler
    assert settings["HITL_FALLBACK_HTTP_HANDLER"] == ""  # not itself: no loop


def test_the_download_handlers_keep_the_projects_own_as_fallbacks():
    mine = "myproject.handlers.MyHttpHandler"
    settings = Settings({"DOWNLOAD_HANDLERS": {"http": mine, "https": mine}}, priority="project")
    Addon().update_settings(settings)
    assert settings["DOWNLOAD_HANDLERS"]["http"] is HitlDownloadHandler
    assert settings["DOWNLOAD_HANDLERS"]["https"] is HitlHttpsDownloadHandler
    assert (settings["HITL_FALLBACK_HTTP_HANDLER"], settings["HITL_FALLBACK_HTTPS_HANDLER"]) == (mine, mine)


def test_a_scheme_the_project_disabled_stays_disabled():
    settings = Settings({"DOWNLOAD_HANDLERS": {"https": None}}, priority="project")
    Addon().update_settings(settings)
    assert settings["DOWNLOAD_HANDLERS"]["https"] is None
    assert settings["DOWNLOAD_HANDLERS"]["http"] is HitlDownloadHandler


@pytest.mark.parametrize(
    ("cls", "flag"),
    [
        pytest.param(HitlSessionMiddleware, "HITL_SESSIONS_ENABLED", id="session-middleware"),
        pytest.param(HitlBlockMiddleware, "HITL_BLOCKS_ENABLED", id="block-middleware"),
        pytest.param(HitlExtension, "HITL_EXTENSION_ENABLED", id="extension"),
        pytest.param(HitlEscalationMiddleware, "HITL_ESCALATION_ENABLED", id="escalation-middleware"),
        pytest.param(HitlQualityPipeline, "HITL_QUALITY_ENABLED", id="quality-pipeline"),
        pytest.param(HitlItemSourceMiddleware, "HITL_QUALITY_ENABLED", id="item-source-middleware"),
    ],
)
def test_component_disabled_by_its_flag(cls, flag, monkeypatch, tmp_path):
    # State points at a Redis that does not exist: a disabled component must not even try.
    monkeypatch.setenv("HITL_DATA_DIR", str(tmp_path / "hitl"))
    monkeypatch.setenv("HITL_REDIS_URL", "redis://127.0.0.1:1/0")
    # (the extension is off too, or get_crawler would build it and open the state)
    crawler = get_crawler(
        Spider, settings_dict={"ADDONS": ADDON, "HITL_EXTENSION_ENABLED": False, flag: False}
    )
    with pytest.raises(NotConfigured, match=f"^{flag} is False$"):
        cls.from_crawler(crawler)
    assert getattr(crawler, "_hitl_runtime", None) is None
    assert not (tmp_path / "hitl").exists()


def test_failure_guardrail_off_with_zero(monkeypatch, tmp_path):
    monkeypatch.setenv("HITL_REDIS_URL", "redis://127.0.0.1:1/0")
    crawler = get_crawler(Spider, settings_dict={"ADDONS": ADDON, "HITL_EXTENSION_ENABLED": False,
                                                 "HITL_FAILING_REQUESTS": 0})
    with pytest.raises(NotConfigured, match="^HITL_FAILING_REQUESTS is 0$"):
        HitlFailureMiddleware.from_crawler(crawler)


def test_with_the_guardrail_off_robots_refusals_are_still_counted_and_failures_are_not(hitl_env):
    from scrapy import Request
    from scrapy.exceptions import IgnoreRequest
    from scrapy.http import Response

    crawler = get_crawler(Spider, settings_dict={"ADDONS": ADDON, "HITL_FAILING_REQUESTS": 0,
                                                 "ROBOTSTXT_OBEY": True})
    try:
        mw = HitlFailureMiddleware.from_crawler(crawler)
        refused = Request("http://example.com/private")
        assert mw.process_exception(refused, IgnoreRequest("Forbidden by robots.txt")) is None
        for _ in range(3):
            failed = Request("http://example.com/down")
            assert run_now(mw.process_response(failed, Response(failed.url, status=503))).status == 503
            assert mw.process_exception(failed, TimeoutError("timed out")) is None
        stats = crawler.stats
        assert stats.get_value("hitl/robots/refused") == 1
        assert stats.get_value("hitl/robots/refused_urls") == "http://example.com/private"
        assert stats.get_value("hitl/failing_requests") is None and not mw.streaks
    finally:
        crawler._hitl_runtime.state.close()


def test_enabled_extension_opens_the_configured_state(hitl_env):
    """The counterpart: enabled, the extension is built and opens the state from the env."""
    crawler = get_crawler(Spider, settings_dict={"ADDONS": ADDON})
    runtime = crawler._hitl_runtime
    try:
        assert runtime.config.redis_url == hitl_env["HITL_REDIS_URL"]
        assert runtime.config.database_url == hitl_env["HITL_DATABASE_URL"]
        assert runtime.config.secret_key == hitl_env["HITL_SECRET_KEY"]
    finally:
        runtime.state.close()


def test_a_resumed_request_whose_body_cannot_be_decompressed_is_done_not_parked_again(hitl_env):
    """The compression middleware runs before the block middleware now: its failure (here a
    body over DOWNLOAD_MAXSIZE once unpacked) is recorded as the block middleware records a
    download error, then raised on as Scrapy raises it."""
    import gzip

    from scrapy import Request
    from scrapy.exceptions import IgnoreRequest
    from scrapy.http import HtmlResponse

    crawler = get_crawler(Spider, settings_dict={"ADDONS": ADDON})
    try:
        mw = HitlHttpCompressionMiddleware.from_crawler(crawler)
        rt = crawler._hitl_runtime
        request = Request("http://shop.example.com/p/1", meta={"hitl_park_id": "p-1", "download_maxsize": 1000})
        body = gzip.compress(b"<html>" + b"x" * 100_000 + b"</html>")
        response = HtmlResponse(request.url, body=body, headers={"Content-Encoding": "gzip"}, request=request)
        with pytest.raises(IgnoreRequest, match="exceeded DOWNLOAD_MAXSIZE"):
            mw.process_response(request, response)
        assert rt.errored_resumed == {"p-1"}
        assert rt.counters["shop.example.com"].attempts == 1

        fine = HtmlResponse(request.url, body=gzip.compress(b"<html>ok</html>"), headers={"Content-Encoding": "gzip"},
                            request=Request(request.url))
        assert mw.process_response(fine.request, fine).body == b"<html>ok</html>"
    finally:
        crawler._hitl_runtime.state.close()
