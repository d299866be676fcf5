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


# Thread A imports ``first`` and stops where it holds that module's import lock but not yet the
# configure lock; B imports ``second``, which imports ``first`` too. A goes on once B holds the
# configure lock or waits for ``first``'s import lock (``importlib._bootstrap._blocking_on``).
# If B took the configure lock before importing ``first``, A and B each wait for the other.
ORDER_RACE = """
import importlib._bootstrap as bootstrap, sys, threading, time
import scrapy_hitl.state
from scrapy_hitl.state import lazy_mapping
from sqlalchemy.orm.mapper import _CONFIGURE_MUTEX

first, second = {first!r}, {second!r}
holding = threading.Event()
create_module = lazy_mapping._LockedLoader.create_module

def b_waits():
    if not _CONFIGURE_MUTEX.acquire(blocking=False):
        return True
    _CONFIGURE_MUTEX.release()
    locks = bootstrap._blocking_on.get(tb.ident)
    return any(getattr(lock, "name", None) == first for lock in (locks if isinstance(locks, list) else [locks]))

def paused(self, spec):
    if spec.name == first and threading.current_thread() is ta:
        holding.set()
        for _ in range(10_000):  # 10 s at most
            if b_waits():
                break
            time.sleep(0.001)
    return create_module(self, spec)

lazy_mapping._LockedLoader.create_module = paused
ta = threading.Thread(target=lambda: __import__(first), daemon=True)
tb = threading.Thread(target=lambda: (holding.wait(), __import__(second)), daemon=True)
ta.start(); tb.start()
ta.join(20); tb.join(20)
print("deadlock" if ta.is_alive() or tb.is_alive() else "ok")
"""


@pytest.mark.parametrize(("first", "second"), [
    ("scrapy_hitl.state.crawler_models", "scrapy_hitl.state.models"),  # a first Database.session, and a rerun
    ("scrapy_hitl.state.incident_models", "scrapy_hitl.state.models"),
])
def test_two_threads_importing_late_model_modules_never_deadlock(first, second):
    done = subprocess.run([sys.executable, "-c", ORDER_RACE.format(first=first, second=second)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok", done.stdout[-2000:]
