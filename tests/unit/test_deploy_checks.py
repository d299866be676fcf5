"""Start-up checks for several hosts (docs/deploy.md): a worker with a shared database but an
embedded Redis of its own is warned about."""

from __future__ import annotations

from pathlib import Path

import pytest

from hitl_console.cli import lone_redis_warning
from scrapy_hitl.config import StateConfig


@pytest.mark.parametrize("database_url, redis_url, warned", [
    ("postgresql://hitl@db/hitl", "", True),  # the trap: a second host would start its own Redis
    ("postgresql://hitl@db/hitl", "redis://10.0.0.2:6379/0", False),
    ("sqlite:////var/lib/hitl/hitl.db", "", False),  # one machine: hitl up
    ("sqlite:////var/lib/hitl/hitl.db", "redis://10.0.0.2:6379/0", False),
])
def test_lone_redis_warning(database_url, redis_url, warned):
    config = StateConfig(data_dir=Path("/var/lib/hitl"), database_url=database_url, redis_url=redis_url,
                         secret_key="k")
    warning = lone_redis_warning(config)
    assert (warning is not None) is warned
    if warned:
        assert "Set HITL_REDIS_URL" in warning and "/var/lib/hitl" in warning
