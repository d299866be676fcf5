"""Bad input gets a clear message that says what to do, and nothing parked is lost."""

from __future__ import annotations

import sqlalchemy as sa

from tests.integration.conftest import wait_for


def test_crawl_with_unreachable_redis_names_the_setting(crawl, hitl_env, monkeypatch):
    monkeypatch.setitem(hitl_env, "HITL_REDIS_URL", "redis://127.0.0.1:1/0")
    result = crawl(args={"sections": "quotes"}).wait()
    assert result.returncode == 1
    assert "Cannot reach Redis at redis://127.0.0.1:1/0 (HITL_REDIS_URL)" in result.log
    assert "unset it to use the embedded Redis" in result.log


def test_crawl_refuses_a_database_schema_it_does_not_know(crawl, state, hitl_env):
    with state.db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    result = crawl(args={"sections": "quotes"}).wait()
    assert result.returncode == 1
    assert "is at schema ffff, which this version of scrapy-hitl does not know" in result.log


def test_crawl_refuses_an_older_schema_until_hitl_db_upgrade(crawl, hitl_env, cli):
    from scrapy_hitl.state.db import Database

    db = Database(hitl_env["HITL_DATABASE_URL"])
    db.upgrade("0001")  # a database left by an older scrapy-hitl
    head = db.head_revision()
    db.dispose()
    result = crawl(args={"sections": "quotes"}).wait()
    assert result.returncode == 1
    assert f"older schema (0001; this version needs {head}). Run `hitl db upgrade`." in result.log
    code, out = cli("db", "upgrade")
    assert code == 0 and f"upgraded: 0001 -> {head}" in out, out
    assert crawl(args={"sections": "quotes"}).wait().returncode == 0


def test_unknown_intervention_id(cli):
    for args in (("interventions", "show", "999"), ("interventions", "resolve", "999"),
                 ("interventions", "cancel", "999")):
        code, out = cli(*args)
        assert code == 1
        assert "No intervention with id 999. List them with `hitl interventions list`." in out


def test_malformed_cookie_file_names_file_line_and_problem(crawl, cli, tmp_path):
    run = crawl(args={"sections": "vip"})
    (i,) = wait_for(lambda: cli.json("interventions", "list"), what="an intervention")
    # The intervention is recorded a moment before its parked request is written.
    wait_for(lambda: cli.json("interventions", "list")[0]["parked_count"] == 1, what="the request parked")
    bad = tmp_path / "cookies.txt"
    bad.write_text("# Netscape HTTP Cookie File\n"
                   "vip.sandbox.test\tFALSE\t/\tFALSE\t0\tvip_pass\tletmein\n"
                   "vip.sandbox.test\tFALSE\t/\tFALSE\n")
    code, out = cli("interventions", "resolve", str(i["id"]), "--cookies", str(bad))
    assert code == 1
    assert f"{bad}, line 3" in out and "netscape" in out.lower()
    # Nothing was lost: still open, still parked; a good file then resolves it.
    (still,) = cli.json("interventions", "list")
    assert still["status"] == "open" and still["parked_count"] == 1
    good = tmp_path / "good.txt"
    good.write_text("vip_pass=letmein")
    code, out = cli("interventions", "resolve", str(i["id"]), "--cookies", str(good))
    assert code == 0, out
    result = run.wait()
    assert len(result.items) == 60

    code, out = cli("interventions", "resolve", str(i["id"]))
    assert code == 1 and "already resolved" in out


def test_missing_cookie_file(cli, crawl):
    code, out = cli("sessions", "import", "example.com", "/nonexistent/cookies.txt")
    assert code == 1 and "Cannot read /nonexistent/cookies.txt" in out
