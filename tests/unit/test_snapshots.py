"""Error snapshots: which failures are the first of their kind, the budget, the settings, and
the plain words the run page shows."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from scrapy_hitl.snapshots import SnapshotConfig, SnapshotKinds
from scrapy_hitl.state.snapshots import describe

A, B = "shop.example.com", "blog.example.com"


@pytest.mark.parametrize(("budget", "failures", "kept", "over_limit"), [
    pytest.param(5, [(A, "spider_error", "ValueError")] * 3, [True, False, False], 0, id="repeats-keep-one"),
    pytest.param(5, [(A, "spider_error", "ValueError"), (A, "spider_error", "KeyError")], [True, True], 0,
                 id="another-exception-class"),
    pytest.param(5, [(A, "pause", "http_403"), (B, "pause", "http_403")], [True, True], 0,
                 id="same-reason-other-domain"),
    pytest.param(5, [(A, "fail", "http_404"), (A, "download_error", "http_404")], [True, True], 0,
                 id="same-code-other-source"),
    pytest.param(2, [(A, "pause", "http_403"), (A, "fail", "http_404"), (A, "spider_error", "KeyError"),
                     (A, "spider_error", "KeyError"), (B, "fail", "http_410")],
                 [True, True, False, False, False], 2, id="budget-spent-counts-new-kinds-once"),
    pytest.param(0, [(A, "spider_error", "ValueError")], [False], 1, id="no-budget"),
])
def test_first_of_each_kind_within_the_budget(budget, failures, kept, over_limit):
    kinds = SnapshotKinds(budget)
    assert [kinds.take(*f) for f in failures] == kept
    assert kinds.kept == sum(kept)
    assert kinds.over_limit == over_limit


def test_is_new_asks_without_recording():
    kinds = SnapshotKinds(1)
    assert kinds.is_new(A, "escalate", "js_shell") and kinds.is_new(A, "escalate", "js_shell")
    assert kinds.take(A, "escalate", "js_shell")
    assert not kinds.is_new(A, "escalate", "js_shell")
    assert not kinds.is_new(B, "escalate", "js_shell")  # budget spent


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, SnapshotConfig(True, 100, 1_000_000)),
    ({"HITL_SNAPSHOTS_ENABLED": False}, SnapshotConfig(False, 100, 1_000_000)),
    ({"HITL_SNAPSHOTS_MAX": 0}, SnapshotConfig(False, 0, 1_000_000)),
    ({"HITL_SNAPSHOTS_MAX": "7", "HITL_SNAPSHOTS_MAX_BYTES": "4096"}, SnapshotConfig(True, 7, 4096)),
])
def test_config(settings, expected):
    assert SnapshotConfig.from_settings(Settings(settings)) == expected


@pytest.mark.parametrize(("settings", "named"), [
    ({"HITL_SNAPSHOTS_MAX": -1}, "HITL_SNAPSHOTS_MAX"),
    ({"HITL_SNAPSHOTS_MAX_BYTES": 0}, "HITL_SNAPSHOTS_MAX_BYTES"),
])
def test_bad_config_names_the_setting(settings, named):
    with pytest.raises(ValueError, match=named):
        SnapshotConfig.from_settings(Settings(settings))


@pytest.mark.parametrize(("source", "code", "message", "status", "words"), [
    ("spider_error", "KeyError", "'price'", 200, "The spider's callback raised KeyError: 'price'"),
    ("download_error", "http_503", "", 503, "The site answered 503 after every retry"),
    ("download_error", "ConnectionRefusedError", "Connection was refused by other side", None,
     "The page could not be downloaded: Connection was refused by other side"),
    ("pause", "http_403", "manual_access", 403, "Blocked, a human was asked: access was refused"),
    ("pause", "cloudflare_challenge", "captcha_solve", 403,
     "Blocked, a human was asked: a captcha or challenge stood in the way"),
    ("escalate", "js_shell", "", 200, "The page needed a stronger tier (a browser or the stealth browser)"),
    ("fail", "http_404", "", 404, "The site answered 404"),
])
def test_plain_words(source, code, message, status, words):
    assert describe(source, code, message, status) == words
