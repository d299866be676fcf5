"""A worker or console whose HITL_SECRET_KEY cannot decrypt the session vault refuses to
start, naming the fix (several hosts must share one key: docs/deploy.md)."""

from __future__ import annotations

from click.testing import CliRunner

from hitl_console.cli import main
from scrapy_hitl.cookies import Cookie


def test_worker_and_console_refuse_a_secret_key_that_cannot_decrypt_the_vault(state, monkeypatch):
    state.vault.put("shop.example.com", [Cookie("sid", "s3cret", "shop.example.com", "/")])
    monkeypatch.setenv("HITL_SECRET_KEY", "another-hosts-own-key")
    for args in (["console", "--port", "1"], ["worker", "--burst"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, (args, result.output)
        assert "HITL_SECRET_KEY cannot decrypt the session vault" in result.output
        assert "copy it from the hosts already running" in result.output and "Traceback" not in result.output
