"""Tests for scrapy_hitl.parkbuffer's pure part: the delay before a retry while Redis is away."""

from __future__ import annotations

import pytest

from scrapy_hitl.parkbuffer import retry_delay


@pytest.mark.parametrize(
    ("failures", "deadline", "delay"),
    [
        pytest.param(1, 60.0, 0.5, id="first-retry"),
        pytest.param(2, 60.0, 1.0, id="doubles"),
        pytest.param(4, 60.0, 4.0, id="doubles-again"),
        pytest.param(5, 60.0, 8.0, id="under-the-cap"),
        pytest.param(6, 60.0, 10.0, id="capped-at-10s"),
        pytest.param(10_000, 60.0, 10.0, id="stays-capped-however-long"),
        pytest.param(3, 5.0, 1.25, id="cap-a-quarter-of-a-short-deadline"),
        pytest.param(9, 5.0, 1.25, id="short-deadline-stays-capped"),
        pytest.param(1, 0.4, 0.5, id="never-below-the-first-delay"),
        pytest.param(7, 0.4, 0.5, id="tiny-deadline-cap-is-the-first-delay"),
        pytest.param(0, 60.0, 0.5, id="no-failure-yet-is-the-first-delay"),
    ],
)
def test_retry_delay_is_capped_exponential(failures, deadline, delay):
    assert retry_delay(failures, deadline) == delay
