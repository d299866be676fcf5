"""A spider asks a human with ``await scrapy_hitl.consult.ask(...)`` in a real ``scrapy crawl``:
the crawl goes on while it waits, and the item carries the answer."""

from __future__ import annotations

from scrapy_hitl.state import consultations
from tests.integration.conftest import wait_for

PAGES = 6


def pending(state):
    return consultations.list_(state, state="pending")


def test_a_spider_waits_for_the_answer_without_blocking_the_crawl(crawl, fresh_sandbox, state):
    run = crawl(spider="ask", args={"pages": str(PAGES)})
    (asked,) = wait_for(lambda: pending(state), timeout=60, what="the spider's question")
    assert (asked["title"], asked["asked_by"], asked["api_key_id"], asked["priority"]) == (
        "Does page 1 look right?", "spider:ask", None, 5)
    assert asked["context"]["url"].endswith("/static/page/1")
    # The reactor is not blocked: every other page is fetched while the question waits.
    wait_for(lambda: all(fresh_sandbox.hits().get(f"/static/page/{n}") for n in range(2, PAGES + 1)),
             timeout=60, what="the other pages")
    assert consultations.get(state, asked["id"])["state"] == "pending"

    consultations.respond(state, asked["id"], "no", actor="user:reviewer@example.com")
    result = run.wait()

    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["finish_reason"] == "finished"
    (first,) = [i for i in result.items if i["page"] == 1]
    assert first == {"page": 1, "consultation_id": asked["id"], "state": "responded", "answer": "no",
                     "responded_by": "user:reviewer@example.com"}
    assert sorted(i["page"] for i in result.items) == list(range(1, PAGES + 1))
    assert (result.stats["hitl/consultations/asked"], result.stats["hitl/consultations/responded"]) == (1, 1)
    history = consultations.get(state, asked["id"])["history"]
    assert [(h["action"], h["actor"]) for h in history] == [
        ("created", "spider:ask"), ("responded", "user:reviewer@example.com")]


def test_nobody_answers_in_time(crawl, state):
    """No scheduler runs here: the spider itself times the consultation out at its deadline."""
    result = crawl(spider="ask", args={"pages": "1", "timeout": "1"}).wait()
    assert result.returncode == 0, result.log[-3000:]
    (item,) = result.items
    assert (item["state"], item["answer"]) == ("timed_out", None)
    assert consultations.get(state, item["consultation_id"])["state"] == "timed_out"
    assert result.stats["hitl/consultations/timed_out"] == 1


def test_a_crawl_stopped_while_waiting_withdraws_its_question(crawl, state):
    run = crawl(spider="ask", args={"pages": "1"})
    (asked,) = wait_for(lambda: pending(state), timeout=60, what="the spider's question")
    run.proc.send_signal(2)  # Ctrl-C: a graceful stop must not wait for the human
    result = run.wait(timeout=60)
    final = consultations.get(state, asked["id"])
    assert final["state"] == "cancelled"
    assert final["history"][-1]["actor"] == "spider:ask"
    assert result.stats["finish_reason"] == "shutdown"
    assert result.stats["hitl/consultations/cancelled"] == 1
