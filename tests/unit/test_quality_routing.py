"""Confidence -> route, and the quality settings that drive it."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from scrapy_hitl.quality.config import QualityConfigError, QualitySettings
from scrapy_hitl.quality.routing import route


@pytest.mark.parametrize(("confidence", "critical", "expected"), [
    (1.0, False, "delivered"),
    (0.9, False, "delivered"),
    (0.8999, False, "optional_review"),
    (0.5, False, "optional_review"),
    (0.4999, False, "pending_review"),
    (0.0, False, "pending_review"),
    (1.0, True, "pending_review"),  # a critical field missing holds whatever the score
])
def test_route(confidence, critical, expected):
    assert route(confidence, critical_missing=critical, deliver_score=0.9, review_score=0.5) == expected


@pytest.mark.parametrize("confidence", [1.0, 0.7, 0.0])
def test_an_incomplete_item_is_held_whatever_its_score(confidence):
    assert route(confidence, critical_missing=False, deliver_score=0.9, review_score=0.5,
                 incomplete=True) == "pending_review"


def test_equal_thresholds_leave_no_optional_band():
    assert route(0.7, critical_missing=False, deliver_score=0.7, review_score=0.7) == "delivered"
    assert route(0.69, critical_missing=False, deliver_score=0.7, review_score=0.7) == "pending_review"


def test_defaults():
    cfg = QualitySettings.from_settings(Settings())
    assert (cfg.deliver_score, cfg.review_score, cfg.review_timeout, cfg.timeout_action) == (0.9, 0.5, 86400, "drop")
    assert cfg.weights == {"completeness": 0.4, "schema": 0.3, "consistency": 0.2, "extraction": 0.1}
    assert (cfg.critical_fields, cfg.item_schemas, cfg.failing_requests) == ({}, {}, 2)
    assert cfg.min_completeness == 0.5


def test_values_from_the_command_line():
    cfg = QualitySettings.from_settings(Settings({
        "HITL_CRITICAL_FIELDS": "price,sku", "HITL_ITEM_SCHEMAS": '{"*": {"type": "object"}}',
        "HITL_QUALITY_WEIGHTS": '{"schema": 0}', "HITL_REVIEW_TIMEOUT_ACTION": "deliver"}))
    assert cfg.critical_fields == {"*": ("price", "sku")}
    assert cfg.item_schemas == {"*": {"type": "object"}}
    assert cfg.weights["schema"] == 0 and cfg.weights["completeness"] == 0.4
    assert cfg.timeout_action == "deliver"


@pytest.mark.parametrize(("settings", "message"), [
    ({"HITL_QUALITY_WEIGHTS": {"speed": 1}}, "unknown parts"),
    ({"HITL_QUALITY_WEIGHTS": {"completeness": 0, "schema": 0, "consistency": 0, "extraction": 0}},
     "positive sum"),
    ({"HITL_QUALITY_DELIVER_SCORE": 1.5}, "between 0 and 1"),
    ({"HITL_QUALITY_REVIEW_SCORE": 0.95}, "must not be above HITL_QUALITY_DELIVER_SCORE"),
    ({"HITL_REVIEW_TIMEOUT_ACTION": "keep"}, "'deliver' or 'drop'"),
    ({"HITL_REVIEW_TIMEOUT": 0}, "HITL_REVIEW_TIMEOUT must be greater than 0"),
    ({"HITL_REVIEW_WAIT": -1}, "HITL_REVIEW_WAIT must be 0 or more"),
    ({"HITL_MIN_COMPLETENESS": 1.5}, "HITL_MIN_COMPLETENESS must be between 0 and 1"),
    ({"HITL_CRITICAL_FIELDS": {"Product": "price"}}, r"HITL_CRITICAL_FIELDS\['Product'\] must be a list"),
    ({"HITL_ITEM_SCHEMAS": "{not json"}, "HITL_ITEM_SCHEMAS is not valid JSON"),
])
def test_bad_settings_are_refused_naming_the_setting(settings, message):
    with pytest.raises(QualityConfigError, match=message):
        QualitySettings.from_settings(Settings(settings))
