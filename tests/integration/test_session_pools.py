"""Session pools in real crawls: several sessions per domain, one retired when the site bans it.

The sandbox's members section accepts any ``member_session=valid-...`` cookie, and bans
(403) a ``valid-limit<N>-...`` one after N requests, like a site suspending an account that
crawls too much.
"""

from __future__ import annotations

from tests.integration.conftest import wait_for

DOMAIN = "members.sandbox.test"
PAGES = 6  # the sandbox fixture's listing pages per section, 10 quotes each


def import_session(cli, cookie_file, name: str, value: str) -> None:
    code, out = cli("sessions", "import", DOMAIN, str(cookie_file("cookie-header", DOMAIN, "member_session", value)),
                    "--name", name)
    assert code == 0, out


def test_a_banned_session_is_retired_and_the_crawl_goes_on_with_the_other(crawl, cli, cookie_file, fresh_sandbox):
    import_session(cli, cookie_file, "alice", "valid-limit1-alice")
    import_session(cli, cookie_file, "bob", "valid-bob")

    result = crawl(args={"sections": "members", "details": "0"},
                   settings={"CONCURRENT_REQUESTS_PER_DOMAIN": 1}).wait()

    assert result.stats["finish_reason"] == "finished", result.log[-3000:]
    assert len(result.items_in("members")) == PAGES * 10
    assert cli.json("interventions", "list") == []  # no human was asked
    stats = result.stats
    assert stats[f"hitl/sessions/{DOMAIN}/retired"] == 1
    assert stats[f"hitl/sessions/{DOMAIN}/rotated"] == 1
    assert stats[f"hitl/sessions/{DOMAIN}/used"] == PAGES + 1  # the refused request went twice
    pool = {s["name"]: s for s in cli.json("sessions", "list", DOMAIN)}
    assert (pool["alice"]["health"], pool["alice"]["health_reason"]) == ("invalid", "http_403_with_session")
    assert pool["bob"]["health"] == "valid"
    assert pool["alice"]["uses"] + pool["bob"]["uses"] == PAGES + 1
    # Round robin: alice page 1, bob page 2, alice page 3 (banned: sent again with bob), then bob.
    sent = [r["cookies"]["member_session"] for n in range(1, PAGES + 1)
            for r in fresh_sandbox.requests(f"/members/page/{n}")]
    assert sent == ["valid-limit1-alice", "valid-bob", "valid-limit1-alice", "valid-bob", "valid-bob",
                    "valid-bob", "valid-bob"]


def test_when_every_session_is_banned_one_login_refresh_lists_them_all(crawl, cli, cookie_file, fresh_sandbox):
    import_session(cli, cookie_file, "alice", "valid-limit1-alice")
    import_session(cli, cookie_file, "bob", "valid-limit2-bob")

    run = crawl(args={"sections": "members", "details": "0"}, settings={"CONCURRENT_REQUESTS_PER_DOMAIN": 1})
    (i,) = wait_for(lambda: cli.json("interventions", "list"), what="an intervention")
    assert (i["type"], i["reason"], i["domain"]) == ("login_refresh", "http_403_with_session", DOMAIN)
    run.wait_for_log("Waiting for a human")
    retired = cli.json("interventions", "show", str(i["id"]))["evidence"]["retired_sessions"]
    assert sorted((r["name"], r["reason"]) for r in retired) == [
        ("alice", "http_403_with_session"), ("bob", "http_403_with_session")]

    code, out = cli("interventions", "resolve", str(i["id"]), "--cookies",
                    str(cookie_file("cookie-header", DOMAIN, "member_session", "valid-carol")))
    assert code == 0, out
    result = run.wait()
    assert result.stats["finish_reason"] == "finished", result.log[-3000:]
    assert len(result.items_in("members")) == PAGES * 10
    assert result.stats[f"hitl/sessions/{DOMAIN}/retired"] == 2
    assert len(cli.json("interventions", "list", "--status", "all")) == 1  # one for both sessions
