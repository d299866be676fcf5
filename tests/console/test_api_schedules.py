"""`/api/v1/schedules`: cron schedules of jobs over the API, on the real state layer."""

from __future__ import annotations

import json

import pytest

from scrapy_hitl.state.models import Project


@pytest.fixture
def project(hitl, tmp_path):
    with hitl.db.session() as s:
        s.add(Project(name="shop", path=str(tmp_path), spiders=["shop"]))


def test_create_list_show_remove(client, reviewer, project):
    made = client.post("/api/v1/schedules", headers=reviewer,
                       json={"project": "shop", "spider": "shop", "cron": "0 3 * * *", "args": {"a": "1"}})
    assert made.status_code == 201, made.json
    sched = made.json
    assert (sched["cron"], sched["args"], sched["created_by"]) == ("0 3 * * *", {"a": "1"}, "user:reviewer@example.com")
    assert sched["next_run_at"].endswith("03:00:00+00:00")
    assert client.get("/api/v1/schedules", headers=reviewer).json["items"] == [sched]
    assert client.get(f"/api/v1/schedules/{sched['id']}", headers=reviewer).json == sched
    assert client.delete(f"/api/v1/schedules/{sched['id']}", headers=reviewer).json == sched
    assert client.get("/api/v1/schedules", headers=reviewer).json["items"] == []
    gone = client.delete(f"/api/v1/schedules/{sched['id']}", headers=reviewer)
    assert (gone.status_code, gone.json["error"]) == (404, "not_found")


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"project": "shop", "spider": "shop", "cron": "every night"}, "cron", "is not a cron expression"),
    ({"project": "shop", "spider": "shop", "cron": "61 * * * *"}, "cron", '"0 3 * * *"'),
    ({"project": "shop", "spider": "shop", "cron": "0 0 31 2 *"}, "cron", "never fires"),  # was a 500
    ({"project": "nope", "spider": "shop", "cron": "@daily"}, "project", "hitl projects add"),
    ({"project": "shop", "spider": "nope", "cron": "@daily"}, "spider", "has no spider 'nope'"),
    ({"project": "shop", "spider": "shop", "cron": "@daily", "args": {"n": 1}}, "args", "must be a string"),
    ({"project": "shop", "spider": "shop"}, "cron", "required"),
])
def test_bad_schedules_get_a_422_naming_the_field(client, reviewer, project, body, field, words):
    answer = client.post("/api/v1/schedules", headers=reviewer, json=body)
    assert answer.status_code == 422, answer.json
    assert answer.json["error"] == "invalid" and words in answer.json["detail"][field]


def test_schedules_need_a_login(client):
    assert client.get("/api/v1/schedules").status_code == 401
    assert client.post("/api/v1/schedules", json={}).status_code == 401


def test_cli_schedule_list_unschedule(hitl, project):
    from click.testing import CliRunner

    from hitl_console.cli import main as cli

    runner = CliRunner()
    made = runner.invoke(cli, ["jobs", "schedule", "shop", "shop", "--cron", "*/10 * * * *", "-a", "section=vip",
                               "--json"], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    sched = json.loads(made.output)
    assert (sched["cron"], sched["args"], sched["created_by"]) == ("*/10 * * * *", {"section": "vip"}, "cli")
    listed = runner.invoke(cli, ["jobs", "schedules"], catch_exceptions=False)
    assert f"#{sched['id']}" in listed.output and "shop/shop -a section=vip" in listed.output
    gone = runner.invoke(cli, ["jobs", "unschedule", str(sched["id"])], catch_exceptions=False)
    assert gone.exit_code == 0 and "Removed schedule" in gone.output
    assert "No schedules." in runner.invoke(cli, ["jobs", "schedules"]).output


@pytest.mark.parametrize(("argv", "words"), [
    (["jobs", "schedule", "shop", "shop", "--cron", "nightly"], "is not a cron expression"),
    (["jobs", "schedule", "nope", "shop", "--cron", "@daily"], "hitl projects add"),
    (["jobs", "schedule", "shop", "shop", "--cron", "@daily", "-a", "novalue"], "is not NAME=VALUE"),
    (["jobs", "unschedule", "42"], "no schedule 42"),
    (["jobs", "unschedule", "99999999999999999999"], "is not in the range"),  # an id no row can have
    (["jobs", "show", "99999999999999999999"], "is not in the range"),
    (["jobs", "cancel", "99999999999999999999"], "is not in the range"),
    (["jobs", "log", "99999999999999999999"], "is not in the range"),
    (["jobs", "run", "shop", "shop", "-s", "DOWNLOAD_DELAY=NaN"], "NaN or Infinity"),
])
def test_cli_bad_input_is_a_message_not_a_traceback(hitl, project, argv, words):
    from click.testing import CliRunner

    from hitl_console.cli import main as cli

    result = CliRunner().invoke(cli, argv)
    assert result.exit_code != 0 and words in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (KeyError, TypeError, AttributeError))
