"""Tests for scrapy_hitl.state.interventions, on SQLite and on PostgreSQL, with real Redis."""

from __future__ import annotations

import threading

import pytest

from scrapy_hitl.cookies import Cookie
from scrapy_hitl.state import interventions, pauses, runs
from scrapy_hitl.state.interventions import InterventionClosed, InterventionNotFound
from scrapy_hitl.state.parking import ParkEntry

pytestmark = pytest.mark.postgres

DOMAIN = "shop.example.com"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Overrides the conftest fixture: every test here runs on both databases."""
    return request.param


def open_(state, type="manual_access", domain=DOMAIN, **kwargs):
    kwargs.setdefault("reason", "forbidden")
    kwargs.setdefault("spider", "shop")
    return interventions.open_or_update(state, type=type, domain=domain, **kwargs)


def park(state, spider, n, domain=DOMAIN):
    entries = [
        ParkEntry.build(domain=domain, fingerprint=f"{spider}-{domain}-{i}",
                  request={"url": f"https://{domain}/{spider}/{i}"}, reason="forbidden")
        for i in range(n)
    ]
    return state.parking.park(spider, entries)


def events(state, *types):
    return [e for e in state.events.read(count=10_000) if not types or e.type in types]


def test_open_creates_once_then_updates(state):
    data, created = open_(state, url="https://shop.example.com/1", response_status=403,
                          response_headers={"server": "cloudflare"}, evidence={"a": 1}, vendor="cloudflare")
    assert created is True
    assert data["status"] == "open"
    assert (data["type"], data["reason"], data["domain"], data["spider"]) == ("manual_access", "forbidden", DOMAIN, "shop")
    assert (data["url"], data["response_status"], data["vendor"]) == ("https://shop.example.com/1", 403, "cloudflare")
    assert data["response_headers"] == {"server": "cloudflare"}

    again, created_again = open_(state, url="https://shop.example.com/2", evidence={"b": 2})
    assert created_again is False
    assert again["id"] == data["id"]
    assert again["evidence"] == {"a": 1, "b": 2}
    assert again["url"] == "https://shop.example.com/1"  # the first sighting is kept

    full = interventions.get(state, data["id"])
    assert [h["action"] for h in full["history"]] == ["created", "updated"]
    assert full["history"][1]["detail"]["url"] == "https://shop.example.com/2"
    assert full["history"][0]["actor"] == "crawler"


def test_open_pauses_the_domain_and_emits_events(state):
    data, _ = open_(state, url="https://shop.example.com/1")
    assert pauses.paused_domains(state.redis)[DOMAIN]["interventions"] == [data["id"]]
    evs = events(state)
    assert [e.type for e in evs] == ["intervention.created", "domain.paused"]
    created, paused = evs
    assert (created.intervention_id, created.domain, created.spider) == (data["id"], DOMAIN, "shop")
    assert created.payload == {"type": "manual_access", "reason": "forbidden", "vendor": None,
                               "url": "https://shop.example.com/1"}
    assert (paused.domain, paused.payload) == (DOMAIN, {"interventions": [data["id"]]})
    open_(state)
    assert [e.type for e in events(state)] == ["intervention.created", "domain.paused", "intervention.updated"]


def test_second_type_on_the_same_domain_is_separate(state):
    first, _ = open_(state, type="manual_access")
    second, created = open_(state, type="captcha_solve", reason="datadome")
    assert created is True
    assert second["id"] != first["id"]
    assert pauses.paused_domains(state.redis)[DOMAIN]["interventions"] == [first["id"], second["id"]]
    other, created = open_(state, type="manual_access", domain="other.example")
    assert created is True and other["id"] not in (first["id"], second["id"])
    assert [e.type for e in events(state, "intervention.created")] == ["intervention.created"] * 3


def test_concurrent_opens_create_exactly_one(state):
    n = 8
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker(i):
        barrier.wait()
        try:
            results.append(open_(state, url=f"https://shop.example.com/{i}"))
        except Exception as exc:  # reported below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(created for _, created in results) == 1
    assert len({d["id"] for d, _ in results}) == 1
    (only,) = interventions.list_interventions(state)
    history = [h["action"] for h in interventions.get(state, only["id"])["history"]]
    assert sorted(history) == ["created"] + ["updated"] * (n - 1)
    assert len(events(state, "intervention.created")) == 1
    assert len(events(state, "domain.paused")) == 1


def test_resolve_with_cookies(state):
    data, _ = open_(state)
    park(state, "shop", 3)
    park(state, "shop-api", 2)
    park(state, "shop", 4, domain="other.example")
    after = state.events.last_id()
    cookies = [Cookie("sid", "v1", DOMAIN), Cookie("cf_clearance", "v2", ".example.com"), Cookie("x", "y", ".evil.test")]
    result = interventions.resolve(state, data["id"], cookies=cookies, user_agent="UA/1",
                                   source_format="cookie-editor-json", note="logged in", actor="ann")
    assert result["requests_to_resume"] == 5
    assert result["session"]["cookie_names"] == ["cf_clearance", "sid"]
    assert result["run"] is None and result["run_status"] is None
    i = result["intervention"]
    assert (i["status"], i["resolved_by"], i["note"], i["parked_count"]) == ("resolved", "ann", "logged in", 5)
    assert i["resolution"] == {"action": "cookies", "cookie_names": ["cf_clearance", "sid"]}
    assert i["resolved_at"] is not None
    assert DOMAIN not in pauses.paused_domains(state.redis)
    assert state.vault.get(DOMAIN).user_agent == "UA/1"
    evs = state.events.read(after)
    assert [e.type for e in evs] == ["session.captured", "intervention.resolved", "domain.resumed"]
    assert evs[0].payload == {"name": "default", "cookie_names": ["cf_clearance", "sid"], "origins": [],
                              "expires_at": None}
    assert evs[1].payload == {"type": "manual_access", "action": "cookies", "parked": 5,
                              "domain_released": True, "note": "logged in"}
    assert (evs[2].domain, evs[2].payload) == (DOMAIN, {"parked": 5})
    # the parked requests stay parked: the crawlers claim them on domain.resumed
    assert state.parking.domain_count(DOMAIN) == 5
    history = interventions.get(state, data["id"])["history"]
    assert [h["action"] for h in history] == ["created", "resolved"]
    assert history[1]["detail"] == {"note": "logged in", "action": "cookies",
                                    "cookie_names": ["cf_clearance", "sid"], "parked": 5}


def test_session_is_in_the_vault_before_the_resolved_event(state):
    """A crawler reacting to intervention.resolved must find the session already stored."""
    data, _ = open_(state)
    after = state.events.last_id()
    seen = {}

    def crawler_listener():
        last = after
        while "session" not in seen:
            for ev in state.events.read(last, block_ms=5000):
                last = ev.id
                if ev.type == "intervention.resolved":
                    seen["session"] = state.vault.get(DOMAIN)
                    return

    listener = threading.Thread(target=crawler_listener)
    listener.start()
    interventions.resolve(state, data["id"], cookies=[Cookie("sid", "v", DOMAIN)])
    listener.join(timeout=10)
    assert seen["session"] is not None
    assert seen["session"].cookies == (Cookie("sid", "v", DOMAIN),)


def test_resolve_releases_only_when_no_other_intervention_is_open(state):
    access, _ = open_(state, type="manual_access")
    captcha, _ = open_(state, type="captcha_solve", reason="datadome")
    park(state, "shop", 2)
    after = state.events.last_id()

    first = interventions.resolve(state, access["id"], note="done")
    assert first["requests_to_resume"] == 0
    assert first["session"] is None
    assert first["intervention"]["resolution"] == {"action": "done"}
    assert pauses.paused_domains(state.redis)[DOMAIN]["interventions"] == [captcha["id"]]
    evs = state.events.read(after)
    assert [e.type for e in evs] == ["intervention.resolved"]
    assert evs[0].payload["domain_released"] is False

    after = evs[-1].id
    second = interventions.resolve(state, captcha["id"])
    assert second["requests_to_resume"] == 2
    assert DOMAIN not in pauses.paused_domains(state.redis)
    evs = state.events.read(after)
    assert [e.type for e in evs] == ["intervention.resolved", "domain.resumed"]
    assert evs[0].payload["domain_released"] is True


def test_resolve_reports_the_run(state):
    runs.create_run(state.db, "run-1", "shop", {"page": 1}, "/proj")
    data, _ = open_(state, run_id="run-1")
    result = interventions.resolve(state, data["id"])
    assert result["run"]["id"] == "run-1"
    assert result["run_status"] == "running"


def test_resolving_twice_is_refused(state):
    data, _ = open_(state)
    interventions.resolve(state, data["id"])
    with pytest.raises(InterventionClosed) as excinfo:
        interventions.resolve(state, data["id"], cookies=[Cookie("sid", "v", DOMAIN)])
    assert str(excinfo.value) == f"Intervention {data['id']} is already resolved; nothing to do."
    assert state.vault.get(DOMAIN) is None  # refused before anything was stored
    with pytest.raises(InterventionClosed, match="already resolved"):
        interventions.cancel(state, data["id"])
    assert len(events(state, "intervention.resolved")) == 1


@pytest.mark.parametrize("action", ["get", "resolve", "cancel"])
def test_unknown_id(state, action):
    with pytest.raises(InterventionNotFound) as excinfo:
        getattr(interventions, action)(state, 424242)
    assert str(excinfo.value) == "No intervention with id 424242. List them with `hitl interventions list`."
    assert excinfo.value.intervention_id == 424242
    assert isinstance(excinfo.value, LookupError)


def test_cancel_discards_parked_requests_across_spiders(state):
    data, _ = open_(state)
    park(state, "shop", 3)
    park(state, "shop-api", 2)
    park(state, "shop", 4, domain="other.example")
    after = state.events.last_id()
    result = interventions.cancel(state, data["id"], note="site gone", actor="bob")
    assert result["failed"] == 5
    assert result["failed_by_spider"] == {"shop": 3, "shop-api": 2}
    i = result["intervention"]
    assert (i["status"], i["resolved_by"], i["note"], i["parked_count"]) == ("cancelled", "bob", "site gone", 5)
    assert i["resolution"] == {"action": "cancel", "failed": 5}
    assert state.parking.domain_count(DOMAIN) == 0
    assert state.parking.fingerprints("shop-api") == set()
    assert state.parking.counts() == {("shop", "other.example"): 4}
    assert DOMAIN not in pauses.paused_domains(state.redis)
    evs = state.events.read(after)
    assert [e.type for e in evs] == ["intervention.cancelled", "requests.failed", "requests.failed", "domain.resumed"]
    assert evs[0].payload == {"type": "manual_access", "failed": 5, "failed_by_spider": {"shop": 3, "shop-api": 2},
                              "reason": "intervention_cancelled", "domain_released": True, "note": "site gone"}
    failed = {e.spider: e.payload for e in evs[1:3]}
    assert failed == {"shop": {"count": 3, "reason": "intervention_cancelled"},
                      "shop-api": {"count": 2, "reason": "intervention_cancelled"}}
    assert all(e.intervention_id == data["id"] for e in evs[:3])
    assert evs[3].payload == {"parked": 0}


def test_cancel_keeps_the_domain_paused_while_another_is_open(state):
    access, _ = open_(state, type="manual_access")
    captcha, _ = open_(state, type="captcha_solve", reason="datadome")
    after = state.events.last_id()
    result = interventions.cancel(state, access["id"])
    assert result["failed"] == 0 and result["failed_by_spider"] == {}
    assert pauses.paused_domains(state.redis)[DOMAIN]["interventions"] == [captcha["id"]]
    assert [e.type for e in state.events.read(after)] == ["intervention.cancelled"]


@pytest.fixture
def many(state):
    """Eleven interventions: d0..d8.example, then d0 and d1 again with the other type;
    even i manual_access, odd i captcha_solve; i < 6 in run-a, the rest in run-b.
    #0 and #3 resolved, #4 cancelled."""
    runs.create_run(state.db, "run-a", "shop", {}, "/p")
    runs.create_run(state.db, "run-b", "shop", {}, "/p")
    ids = []
    for i in range(11):
        data, _ = open_(state, type="captcha_solve" if i % 2 else "manual_access",
                        domain=f"d{i}.example" if i < 9 else "d0.example" if i == 9 else "d1.example",
                        run_id="run-a" if i < 6 else "run-b")
        ids.append(data["id"])
    interventions.resolve(state, ids[0])
    interventions.resolve(state, ids[3])
    interventions.cancel(state, ids[4])
    return ids


def _ids(rows):
    return [r["id"] for r in rows]


def test_list_filters(state, many):
    ids = many
    assert _ids(interventions.list_interventions(state)) == ids[::-1]
    still_open = [i for i in ids[::-1] if i not in (ids[0], ids[3], ids[4])]
    assert _ids(interventions.list_interventions(state, status="open")) == still_open
    assert _ids(interventions.list_interventions(state, status="resolved")) == [ids[3], ids[0]]
    assert _ids(interventions.list_interventions(state, status="cancelled")) == [ids[4]]
    assert _ids(interventions.list_interventions(state, type="captcha_solve")) == [ids[i] for i in (9, 7, 5, 3, 1)]
    assert _ids(interventions.list_interventions(state, domain="d0.example")) == [ids[9], ids[0]]
    assert _ids(interventions.list_interventions(state, run_id="run-b")) == [ids[i] for i in (10, 9, 8, 7, 6)]
    assert _ids(interventions.list_interventions(state, status="open", type="manual_access", run_id="run-a")) == [ids[2]]
    assert interventions.list_interventions(state, domain="nowhere.example") == []


def test_list_shows_live_parked_counts_for_open_ones(state, many):
    park(state, "shop", 3, domain="d2.example")
    park(state, "shop-api", 1, domain="d2.example")
    rows = {r["id"]: r for r in interventions.list_interventions(state)}
    assert rows[many[2]]["parked_count"] == 4
    assert rows[many[5]]["parked_count"] == 0
    assert rows[many[0]]["parked_count"] == 0  # resolved: what it had when closed


def test_keyset_pagination_covers_everything_once(state, many):
    pages, cursor = [], None
    while True:
        page = interventions.list_interventions(state, limit=4, cursor=cursor)
        if not page:
            break
        pages.append(_ids(page))
        cursor = page[-1]["id"]
    assert [len(p) for p in pages] == [4, 4, 3]
    flat = [i for p in pages for i in p]
    assert flat == many[::-1]
    assert len(set(flat)) == len(flat)
    # with a filter too
    open_pages, cursor = [], None
    while page := interventions.list_interventions(state, status="open", limit=3, cursor=cursor):
        open_pages.append(_ids(page))
        cursor = page[-1]["id"]
    assert [i for p in open_pages for i in p] == _ids(interventions.list_interventions(state, status="open"))
    assert [len(p) for p in open_pages] == [3, 3, 2]


def test_get_includes_history_and_parked_preview(state):
    data, _ = open_(state, url="https://shop.example.com/first")
    open_(state, url="https://shop.example.com/second", actor="crawler-2")
    shop_ids = park(state, "shop", 3)
    api_ids = park(state, "shop-api", 1)
    park(state, "shop", 2, domain="other.example")
    full = interventions.get(state, data["id"], parked_limit=2)
    assert full["id"] == data["id"]
    assert full["parked_count"] == 4
    assert [(h["action"], h["actor"]) for h in full["history"]] == [("created", "crawler"), ("updated", "crawler-2")]
    assert all(h["at"] for h in full["history"])
    # per (spider, domain) pair in name order, the oldest first, up to parked_limit each
    assert full["parked_requests"] == [
        {"park_id": shop_ids[0], "url": f"https://{DOMAIN}/shop/0", "spider": "shop", "reason": "forbidden"},
        {"park_id": shop_ids[1], "url": f"https://{DOMAIN}/shop/1", "spider": "shop", "reason": "forbidden"},
        {"park_id": api_ids[0], "url": f"https://{DOMAIN}/shop-api/0", "spider": "shop-api", "reason": "forbidden"},
    ]

    interventions.resolve(state, data["id"])
    closed = interventions.get(state, data["id"])
    assert "parked_requests" not in closed
    assert closed["parked_count"] == 4  # frozen at resolution
    assert [h["action"] for h in closed["history"]] == ["created", "updated", "resolved"]


def test_concurrent_closes_let_exactly_one_win(state):
    """Two reviewers (or the CLI and the console) resolve / cancel the same intervention at
    once: one must win, the others get InterventionClosed. ``_close`` reads the status and
    updates it without a lock or a conditional UPDATE, so today every caller "wins": the
    history shows several closings, a cancel can discard requests a resolve promised to
    resume, and intervention.resolved / domain.resumed go out several times."""
    for round_ in range(3):
        data, _ = open_(state, domain=f"race{round_}.example")
        park(state, "shop", 2, domain=f"race{round_}.example")
        n = 8
        barrier = threading.Barrier(n)
        won, refused, errors = [], [], []

        def worker(i, iid=data["id"]):
            barrier.wait()
            try:
                if i % 2:
                    won.append(("cancel", interventions.cancel(state, iid, actor=f"r{i}")))
                else:
                    won.append(("resolve", interventions.resolve(state, iid, actor=f"r{i}")))
            except InterventionClosed:
                refused.append(i)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        closings = [h["action"] for h in interventions.get(state, data["id"])["history"]][1:]
        assert (len(won), len(refused), len(closings)) == (1, n - 1, 1), f"round {round_}"


def test_every_pause_type_is_an_intervention_type():
    from scrapy_hitl.classifier import PAUSE_TYPES

    assert set(PAUSE_TYPES) <= set(interventions.TYPES)
    assert set(interventions.TYPES) - set(PAUSE_TYPES) == interventions.NON_PAUSING_TYPES == {"run_anomaly"}


def test_a_run_anomaly_pauses_nothing_and_its_close_touches_no_parked_request(state):
    """A run monitor asks a human to look at a finished run's data: the domain's crawls go on,
    and neither resolving nor cancelling it moves the domain's parked requests."""
    access, _ = open_(state, type="manual_access")
    park(state, "shop", 3)
    after = state.events.last_id()
    anomaly, created = open_(state, type="run_anomaly", reason="item_count_drop",
                             evidence={"alerts": [{"monitor": "item_count_drop"}]})
    assert created is True
    assert pauses.paused_domains(state.redis)[DOMAIN]["interventions"] == [access["id"]]  # not the anomaly
    assert [e.type for e in state.events.read(after)] == ["intervention.created"]  # no domain.paused
    listed = {i["type"]: i["parked_count"] for i in interventions.list_interventions(state, status="open")}
    assert listed == {"manual_access": 3, "run_anomaly": 0}
    shown = interventions.get(state, anomaly["id"])
    assert (shown["parked_count"], shown["parked_requests"]) == (0, [])

    after = state.events.last_id()
    result = interventions.resolve(state, anomaly["id"], note="looked at the data")
    assert (result["requests_to_resume"], result["intervention"]["parked_count"]) == (0, 0)
    assert [e.type for e in state.events.read(after)] == ["intervention.resolved"]  # no domain.resumed
    assert pauses.paused_domains(state.redis)[DOMAIN]["interventions"] == [access["id"]]

    again, _ = open_(state, type="run_anomaly", reason="finish_reason")
    result = interventions.cancel(state, again["id"])
    assert (result["failed"], state.parking.domain_count(DOMAIN)) == (0, 3)  # the 403's requests stay parked
    assert pauses.paused_domains(state.redis)[DOMAIN]["interventions"] == [access["id"]]

    alone, _ = open_(state, type="run_anomaly", reason="item_count_drop", domain="quiet.example")
    assert "quiet.example" not in pauses.paused_domains(state.redis)
