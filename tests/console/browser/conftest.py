"""Browser fixtures: the system Chromium under Playwright and a browser tab on the
``console_server`` of tests/console/conftest.py (``hitl console`` under gunicorn, on the
test's isolated state).

Each test gets its own browser context (cookies, storage) and console process; Chromium
itself starts once per session. Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.console import PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TIMEOUT_MS = 60_000  # default wait for a selector: a hang guard, not a timing assertion


@pytest.fixture(scope="session")
def browser(playwright):
    chromium = playwright.chromium.launch(executable_path=playwright.executable)
    yield chromium
    chromium.close()


class Tab:
    """One browser page on the console, recording dialogs and uncaught script errors."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.set_default_timeout(TIMEOUT_MS)
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def login(self, email: str, password: str = PASSWORD, then: str = "/") -> None:
        self.page.goto(f"{self.base_url}{then}")
        self.page.wait_for_selector("#login-form")  # sent to the login page first
        self.page.fill("#login-email", email)
        self.page.fill("#login-password", password)
        self.page.click("#login-submit")
        self.page.wait_for_url(f"{self.base_url}{then}")
        if self.page.query_selector('#live-status:not([data-state="off"])'):  # a live page
            self.page.wait_for_selector('#live-status[data-state="live"]')

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def tab(browser, console_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield Tab(context.new_page(), console_server.url)
    finally:
        context.close()


@pytest.fixture(scope="session")
def sandbox_site():
    from sandbox.control import SandboxServer

    server = SandboxServer(pages=3)
    server.start()
    yield server
    server.stop()
