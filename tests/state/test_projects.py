"""Registered projects (scrapy_hitl.state.projects), with a real `scrapy list` of the demo project."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scrapy_hitl.state import projects
from scrapy_hitl.state.models import Project, utcnow
from tests.support.crawl import DEMO_PROJECT


def test_add_lists_the_spiders_and_an_unknown_spider_refreshes_at_most_every_30_s(state):
    added = projects.add(state.db, DEMO_PROJECT)
    assert added["name"] == "demo" and "sandbox" in added["spiders"] and added["spiders_error"] is None
    listed_at = added["spiders_at"]

    with pytest.raises(projects.ProjectInvalid, match="has no spider 'nope'; its spiders: .*sandbox"):
        projects.check_spider(state.db, "demo", "nope")
    assert projects.get(state.db, "demo")["spiders_at"] == listed_at  # a fresh list is not run again

    with state.db.session() as s:
        s.query(Project).filter_by(name="demo").update({"spiders_at": utcnow() - timedelta(seconds=31)})
    with pytest.raises(projects.ProjectInvalid):
        projects.check_spider(state.db, "demo", "nope")
    assert projects.get(state.db, "demo")["spiders_at"] > listed_at  # an older one is: a deploy may add it
    assert projects.check_spider(state.db, "demo", "sandbox")["name"] == "demo"


@pytest.mark.parametrize(("path", "words"), [
    ("/nonexistent/folder", "is not a folder"),
    ("/tmp", "has no scrapy.cfg"),
])
def test_a_path_that_is_not_a_project_is_refused_with_the_fix(state, path, words):
    with pytest.raises(projects.ProjectInvalid, match=words) as exc:
        projects.add(state.db, path)
    assert exc.value.field == "path"
