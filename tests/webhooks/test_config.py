"""WebhookConfig: read once from the environment; bad values name the setting."""

from __future__ import annotations

import pytest

from hitl_console.webhooks.config import DEFAULT_RETRY_SCHEDULE, LEASE_MARGIN, WebhookConfig, parse_schedule


def test_defaults():
    config = WebhookConfig.from_env({})
    assert config == WebhookConfig()
    assert (config.timeout, config.max_attempts, config.retry_after_max) == (10.0, 8, 3600.0)
    assert config.retry_schedule == DEFAULT_RETRY_SCHEDULE and not config.allow_private
    assert config.sweep_interval == 5.0 and config.lease_seconds == 10.0 + LEASE_MARGIN


def test_from_env():
    config = WebhookConfig.from_env({
        "HITL_WEBHOOK_TIMEOUT": "2.5", "HITL_WEBHOOK_MAX_ATTEMPTS": "3",
        "HITL_WEBHOOK_RETRY_SCHEDULE": "1, 2,4", "HITL_WEBHOOK_RETRY_AFTER_MAX": "60",
        "HITL_WEBHOOK_ALLOW_PRIVATE": "yes", "HITL_WEBHOOK_SWEEP_INTERVAL": "0.5",
    })
    assert config == WebhookConfig(timeout=2.5, max_attempts=3, retry_schedule=(1.0, 2.0, 4.0),
                                   retry_after_max=60.0, allow_private=True, sweep_interval=0.5)
    assert WebhookConfig.from_env({"HITL_WEBHOOK_TIMEOUT": "3"}, timeout=1).timeout == 1
    assert not WebhookConfig.from_env({"HITL_WEBHOOK_ALLOW_PRIVATE": "0"}).allow_private


@pytest.mark.parametrize(("env", "message"), [
    ({"HITL_WEBHOOK_TIMEOUT": "fast"}, "HITL_WEBHOOK_TIMEOUT must be a number"),
    ({"HITL_WEBHOOK_TIMEOUT": "0"}, "HITL_WEBHOOK_TIMEOUT must be greater than 0"),
    ({"HITL_WEBHOOK_MAX_ATTEMPTS": "2.5"}, "HITL_WEBHOOK_MAX_ATTEMPTS must be an integer"),
    ({"HITL_WEBHOOK_MAX_ATTEMPTS": "0"}, "HITL_WEBHOOK_MAX_ATTEMPTS must be at least 1"),
    ({"HITL_WEBHOOK_RETRY_SCHEDULE": "5,x"}, "HITL_WEBHOOK_RETRY_SCHEDULE must be comma-separated"),
    ({"HITL_WEBHOOK_RETRY_SCHEDULE": "5,-1"}, "HITL_WEBHOOK_RETRY_SCHEDULE must be comma-separated"),
    ({"HITL_WEBHOOK_RETRY_SCHEDULE": "inf"}, "HITL_WEBHOOK_RETRY_SCHEDULE must be comma-separated"),
    ({"HITL_WEBHOOK_RETRY_AFTER_MAX": "-1"}, "HITL_WEBHOOK_RETRY_AFTER_MAX must be >= 0"),
    ({"HITL_WEBHOOK_SWEEP_INTERVAL": "0"}, "HITL_WEBHOOK_SWEEP_INTERVAL must be greater than 0"),
])
def test_bad_values_name_the_setting(env, message):
    with pytest.raises(ValueError, match=message):
        WebhookConfig.from_env(env)


def test_parse_schedule():
    assert parse_schedule("5,300,1800") == (5.0, 300.0, 1800.0)
    assert parse_schedule("0.05,") == (0.05,)
    with pytest.raises(ValueError):
        parse_schedule(" , ")
