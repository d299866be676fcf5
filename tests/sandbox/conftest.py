"""Fixtures for the sandbox site tests: one real server per test module, state reset per test."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

SANDBOX_DIR = Path(__file__).resolve().parents[2] / "projects" / "sandbox"
if str(SANDBOX_DIR) not in sys.path:
    sys.path.insert(0, str(SANDBOX_DIR))

from sandbox import SandboxServer  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    """A sandbox with few static pages (fast to crawl whole) and default everything else."""
    with SandboxServer(static_pages=120) as server:
        yield server
    # The server logs only warnings and errors, e.g. a traceback from a page that crashed.
    assert server.stderr() == "", f"sandbox server wrote to stderr:\n{server.stderr()}"


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The module's server with hit counts and request records cleared."""
    sandbox_server.reset()
    return sandbox_server
