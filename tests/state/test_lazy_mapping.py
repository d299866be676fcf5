"""Model modules a crawl imports late are mapped whole (scrapy_hitl/state/lazy_mapping.py):
another thread's query never configures the mappers between two of their classes."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

RACE = """
import sys, threading, time
import scrapy_hitl.state.crawler_models
from sqlalchemy.orm import configure_mappers

stop, errors = False, []

def query_meanwhile():  # what the crawl's other threads do: any ORM call may configure
    while not stop:
        try:
            configure_mappers()
        except Exception as exc:
            errors.append(repr(exc))
            return

thread = threading.Thread(target=query_meanwhile)
thread.start()
time.sleep(0.05)
sys.setswitchinterval(1e-6)  # switch threads as often as possible during the import
import {module}
stop = True
thread.join()
configure_mappers()
print(errors or "ok")
"""


@pytest.mark.parametrize("module", ["scrapy_hitl.state.incident_models", "scrapy_hitl.state.models"])
def test_a_late_model_module_is_never_configured_half_imported(module):
    for _ in range(3):  # unguarded, it failed every time
        done = subprocess.run([sys.executable, "-c", RACE.format(module=module)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "ok", done.stdout[-2000:]


def test_the_guarded_modules_keep_their_source_and_file():
    from scrapy_hitl.state import incident_models, models

    assert "class Intervention(Base)" in inspect.getsource(incident_models)
    assert models.__file__.endswith("models.py") and models.__spec__.origin == models.__file__
