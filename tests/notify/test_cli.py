"""``hitl notify`` and ``hitl status`` on the real state layer (in process, CliRunner)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hitl_console.cli import main
from tests.notify.conftest import free_port

SECRET_URL = "mailto://user:Sup3rS3cret@127.0.0.1:{port}?from=hitl@example.org&to=ops@example.org&mode=insecure"


def hitl(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_add_list_test_remove_a_channel(state):
    port = free_port()
    code, out = hitl("notify", "add", SECRET_URL.format(port=port), "--name", "mail")
    assert code == 0, out
    assert out.startswith("Added channel #1 'mail': mailto://user:****@127.0.0.1:")
    assert "Sup3rS3cret" not in out
    code, out = hitl("notify", "list")
    assert code == 0 and "mail" in out and "Sup3rS3cret" not in out
    # an unreachable SMTP server: the test fails, and says what the socket said
    code, out = hitl("notify", "test", "mail")
    assert code == 1
    assert "Could not send to 'mail':" in out and "Connection refused" in out
    code, out = hitl("notify", "log", "--json")
    (sent,) = json.loads(out)
    assert sent["event_type"] == "test" and sent["state"] == "failed"
    code, out = hitl("notify", "rules")
    assert code == 0 and "'Every intervention': intervention.created to every channel" in out
    code, out = hitl("notify", "remove", "mail")
    assert code == 0 and out.strip() == "Removed channel #1 'mail'."
    code, out = hitl("notify", "test", "mail")
    assert code == 1 and "No notification channel 'mail'" in out


def test_bad_urls_and_rules_are_refused_with_the_reason(state):
    code, out = hitl("notify", "add", "foo://bar")
    assert code == 1 and "Apprise does not know the scheme foo://" in out
    code, out = hitl("notify", "add", "no-scheme")
    assert code == 1 and "it needs a scheme such as slack://" in out
    code, out = hitl("notify", "add", "json://127.0.0.1:9/x")
    assert code == 0 and "Added channel #1 'json'" in out
    code, out = hitl("notify", "rules", "add", "intervention.exploded")
    assert code == 1 and "unknown event 'intervention.exploded'" in out
    code, out = hitl("notify", "rules", "add", "intervention.created", "--channel", "nowhere")
    assert code == 1 and "unknown channel 'nowhere'" in out
    code, out = hitl("notify", "rules", "add", "intervention.created", "--escalate", "soon")
    assert code == 2 and "write DELAY:CHANNEL" in out
    code, out = hitl("notify", "rules", "add", "intervention.created", "--type", "captcha_solve",
                     "--channel", "json", "--escalate", "15m:json", "--name", "captchas")
    assert code == 0, out
    assert "'captchas': intervention.created [types=captcha_solve] to json; escalate 15m:json" in out
    code, out = hitl("notify", "rules", "disable", "3")
    assert code == 0 and "disabled" in out


def test_status_flags_a_channel_that_keeps_failing(state):
    hitl("notify", "add", f"json://127.0.0.1:{free_port()}/x", "--name", "hook")
    for _ in range(3):  # HITL_NOTIFY_FAILING_AFTER
        hitl("notify", "test", "hook")
    code, out = hitl("status")
    assert code == 0
    assert "WARNING   Notification channel 'hook' is failing: 3 attempts in a row failed" in out
    assert "hitl notify test hook" in out
    code, out = hitl("notify", "list")
    assert "FAILING (3 failed in a row" in out


def test_a_rule_is_changed_field_by_field(state):
    hitl("notify", "add", "json://127.0.0.1:9/x", "--name", "team")
    hitl("notify", "add", "json://127.0.0.1:9/y", "--name", "lead")
    code, out = hitl("notify", "rules", "set", "1", "--domain", "*.shop.test", "--channel", "team",
                     "--escalate", "30m:lead")
    assert code == 0, out
    assert "'Every intervention': intervention.created [domains=*.shop.test] to team; escalate 30m:lead" in out
    code, out = hitl("notify", "rules", "set", "1", "--no-escalate", "--all-channels", "--clear-filters")
    assert code == 0 and out.strip().endswith("'Every intervention': intervention.created to every channel")
    code, out = hitl("notify", "rules", "set", "1", "--event", "run.exploded")
    assert code == 1 and "Rule not changed: event: unknown event 'run.exploded'" in out
    code, out = hitl("notify", "rules", "set", "9", "--name", "x")
    assert code == 1 and "No notification rule 9" in out


def test_ids_no_column_holds_and_odd_digits_get_a_message_not_a_traceback(state):
    hitl("notify", "add", "json://127.0.0.1:9/x", "--name", "team")
    for args in (("rules", "set", str(2**70), "--name", "x"), ("rules", "remove", str(2**70)),
                 ("rules", "disable", str(2**63))):
        result = CliRunner().invoke(main, ["notify", *args])
        assert result.exit_code == 2 and "not in the range" in result.output, (args, result.output)
    for args in (("rules", "add", "run.failed", "--channel", "²"),
                 ("rules", "add", "intervention.created", "--escalate", "5m:²"),
                 ("rules", "add", "run.failed", "--channel", str(2**70))):
        code, out = hitl("notify", *args)
        assert code == 1 and "unknown channel" in out, (args, out)
    code, out = hitl("notify", "test", "²")
    assert code == 1 and "No notification channel '²'" in out


def test_log_limit_out_of_range_gets_a_message(state):
    for value in ("0", "-5", str(2**70)):
        result = CliRunner().invoke(main, ["notify", "log", "--limit", value])
        assert result.exit_code == 2 and "not in the range" in result.output, (value, result.output)
