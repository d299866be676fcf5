"""The multi-host rig (tests/support/rig.py) for the tests of this folder: one per module.

The tests here are marked ``multihost`` and ``slow``: ``make test-slow`` runs them (as root),
on one xdist worker, and ``make test`` (CI) does not, to stay under 10 minutes on 2 cores.
``-m multihost`` selects them alone.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.support.rig import RIG_PROJECT, Rig, available

PASSWORD = "rig reviewer password"
REVIEWER = "reviewer@rig.test"


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which turns the marks into groups
def pytest_collection_modifyitems(config, items):
    """One xdist group, so one worker runs them all on one rig: spread over the workers
    (as pytest 9.2 made them, see setup.cfg), each built a rig of its own (four namespaces,
    PostgreSQL, Redis, the sandbox, a console) at the same time as the others, on two cores."""
    for item in items:
        if "tests/multihost/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.multihost)
            item.add_marker(pytest.mark.slow)  # `make test-slow`: the rig alone is ~2 min of the 2 cores
            if config.pluginmanager.has_plugin("xdist"):  # -p no:xdist knows no such mark
                item.add_marker(pytest.mark.xdist_group("multihost"))


@pytest.fixture(scope="module")
def rig():
    why = available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the multi-host tests: {why}")
        pytest.skip(why)
    rig = Rig()
    try:  # the finalizer: namespaces and processes go however the module ends
        rig.start()
        rig.hitl("projects", "add", str(RIG_PROJECT), "--name", "rig")
        rig.hitl("user", "create", REVIEWER, "--role", "reviewer", "--password", PASSWORD)
        yield rig
    finally:
        rig.stop()


def worker_ready(host) -> bool:
    """A live ``hitl worker`` on the host whose crawl worker listens for jobs."""
    return any(w.popen.poll() is None and "Listening on hitl-crawls" in w.log() for w in host.workers)


@pytest.fixture
def hosts(rig):
    """Every host with a running ``hitl worker`` (one crawl at a time), ready to take jobs."""
    for host in rig.hosts:
        host.workers = [w for w in host.workers if w.popen.poll() is None]  # a killed host's are gone
        if not host.workers:
            host.start_worker(HITL_JOB_HEARTBEAT="1", HITL_JOB_LIMIT_CRAWLS="1")
    deadline = time.monotonic() + 120
    while not all(worker_ready(h) for h in rig.hosts):
        assert time.monotonic() < deadline, "\n".join(w.log()[-2000:] for h in rig.hosts for w in h.workers)
        time.sleep(0.2)
    return rig.hosts


@pytest.fixture(scope="module")
def token(rig):
    status, body = rig.api("POST", "/api/v1/auth/login", {"email": REVIEWER, "password": PASSWORD})
    assert status == 200, body
    return body["access_token"]


@pytest.fixture
def state(rig):
    st = rig.state()
    yield st
    st.close()
