"""scrapy_hitl.state.selectors: overrides versioned, audited, revertible; refusals; pages,
fingerprints and previews."""

from __future__ import annotations

import pytest

from scrapy_hitl.state import selectors
from scrapy_hitl.state.events import EventStream

DECL = {"": {"rows": "div.quote", "fields": {"text": {"css": "span.text::text"}, "author": {"css": "small.author::text"}}}}
OLD = ('<html><body><div class="quote"><span class="text">A</span><small class="author">Ann</small></div>'
       '</body></html>').encode()
NEW = ('<html><body><article class="q-card"><p class="q-body">B</p><span class="q-author">Bob</span></article>'
       '</body></html>').encode()
D = "drift.example"

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Overrides the conftest fixture: the newest-version query and the binary pages, on both databases."""
    return request.param


@pytest.fixture
def declared(state):
    selectors.publish_declaration(state.db, "quotes", DECL)
    selectors.save_page(state.db, "quotes", D, "/page/{n}", "good", "http://drift.example/page/1", OLD)
    for n in (3, 4):
        selectors.save_page(state.db, "quotes", D, "/page/{n}", "missed", f"http://drift.example/page/{n}", NEW)
    return state


def test_set_then_revert_restores_the_previous_selector_and_tells_crawlers(declared):
    st = declared
    last = st.events.last_id()
    selectors.set_override(st, spider="quotes", domain=D, field="_rows", css="article.q-card", actor="ann")
    v2 = selectors.set_override(st, spider="quotes", domain=D, field="_rows", css="article", actor="bob")
    assert (v2["version"], v2["before"]["css"]) == (2, "article.q-card")
    assert selectors.in_force(st.db, "quotes") == {D: {"_rows": {"css": "article", "xpath": None, "version": 2}}}
    back = selectors.revert(st, spider="quotes", domain=D, field="_rows", actor="ann", note="too broad")
    assert (back["version"], back["css"], back["action"]) == (3, "article.q-card", "revert")
    first = selectors.revert(st, spider="quotes", domain=D, field="_rows", actor="ann")  # a revert of a revert redoes
    assert first["css"] == "article"
    assert [h["version"] for h in selectors.history(st.db, "quotes", D, "_rows")] == [4, 3, 2, 1]
    events = [e for e in EventStream(st.redis).read(last) if e.type == "selector.overridden"]
    assert [(e.spider, e.domain, e.payload["css"], e.payload["version"]) for e in events] == [
        ("quotes", D, "article.q-card", 1), ("quotes", D, "article", 2), ("quotes", D, "article.q-card", 3),
        ("quotes", D, "article", 4)]


def test_reverting_the_first_override_goes_back_to_the_declaration(declared):
    selectors.set_override(declared, spider="quotes", domain=D, field="_rows", css="article.q-card", actor="ann")
    selectors.revert(declared, spider="quotes", domain=D, field="_rows", actor="ann")
    assert selectors.in_force(declared.db, "quotes") == {}
    assert selectors.list_overrides(declared.db, spider="quotes") == []


@pytest.mark.parametrize(("field", "css", "code", "message"), [
    pytest.param("price", "span.price::text", "unknown_field", "declares no field 'price'; declared: _rows, text, author",
                 id="unknown-field"),
    pytest.param("_rows", "div[[", "invalid_selector", "does not parse", id="no-parse"),
    pytest.param("_rows", "table.nothing", "matches_nothing", "extracts nothing from any of the 2 parked pages",
                 id="matches-nothing"),
    pytest.param("_rows", "", "invalid", "send a CSS selector", id="empty"),
])
def test_refusals_say_why_and_save_nothing(declared, field, css, code, message):
    with pytest.raises(selectors.SelectorRefused) as excinfo:
        selectors.set_override(declared, spider="quotes", domain=D, field=field, css=css, actor="ann")
    assert excinfo.value.code == code
    assert message in str(excinfo.value)
    assert selectors.in_force(declared.db, "quotes") == {}


def test_matching_nothing_is_saved_when_forced(declared):
    saved = selectors.set_override(declared, spider="quotes", domain=D, field="_rows", css="table.nothing",
                                   actor="ann", force=True)
    assert saved["version"] == 1


def test_preview_reads_every_parked_page_and_the_good_page(declared):
    selectors.set_override(declared, spider="quotes", domain=D, field="_rows", css="article.q-card", actor="ann")
    found = selectors.preview(declared.db, "quotes", D, "author", css="span.q-author::text")
    assert [(p["url"].rsplit("/", 1)[1], p["matched"], p["values"]) for p in found["pages"]] == [
        ("3", True, ["Bob"]), ("4", True, ["Bob"])]
    assert found["good"]["values"] == []  # the good page has the old rows


def test_fingerprints_keep_the_newest_few_and_pages_are_bounded(declared):
    for n in range(selectors.SAMPLES_KEPT + 2):
        selectors.save_fingerprints(declared.db, "quotes", D, "/page/{n}", {"text": [{"tag": "span", "n": n}]})
    kept = selectors.fingerprints(declared.db, "quotes", D, "/other")  # unknown pattern: every pattern's
    assert [fp["n"] for fp in kept["text"]] == list(range(2, selectors.SAMPLES_KEPT + 2))
    for n in range(selectors.MISSED_KEPT + 3):
        selectors.save_page(declared.db, "quotes", D, "/page/{n}", "missed", f"http://drift.example/x/{n}", NEW)
    assert len(selectors.pages(declared.db, "quotes", D, "missed")) == selectors.MISSED_KEPT


def test_export_prints_a_python_dict(declared):
    selectors.set_override(declared, spider="quotes", domain=D, field="author", css="span.q-author::text",
                           actor="ann", force=True)
    text = selectors.export(declared.db, "quotes")
    namespace: dict = {}
    exec(text, namespace)  # noqa: S102 - the point: a developer pastes it
    assert namespace["HITL_OVERRIDES"] == {D: {"author": {"css": "span.q-author::text"}}}



def test_a_first_declaration_published_meanwhile_is_merged_into(state, backend):
    """Two crawls of a spider nobody has published yet publish their first declarations at
    once: neither fails (PostgreSQL's FOR UPDATE locks no row before it exists), both are kept."""
    import threading

    from sqlalchemy import insert

    from scrapy_hitl.state import tables

    errors = []

    def publish():
        try:
            selectors.publish_declaration(state.db, "fresh", {"Item.": DECL[""]})
        except Exception as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=publish)
    with state.db.begin() as conn:  # the other crawl's first publish, not committed yet
        conn.execute(insert(tables.selector_declarations).values(spider="fresh", declaration={"Other.": DECL[""]}))
        thread.start()
        if backend == "postgres":  # until its INSERT waits for this one's (SQLite: its BEGIN IMMEDIATE waits)
            _until_a_statement_waits_for_a_lock(state.db)
    thread.join(timeout=60)
    assert errors == []
    assert sorted(selectors.declarations(state.db, "fresh")) == ["Item.", "Other."]



def _until_a_statement_waits_for_a_lock(db):
    """PostgreSQL: until another connection's statement waits for a lock (at most 30 s).

    Each look is its own transaction: pg_stat_activity is read once per transaction, so
    looking again in the same one sees the same rows, and a wait that began after the first
    look was never seen (the whole 30 s went by whenever the other thread started late)."""
    import time

    from sqlalchemy import text

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watch:
        for _ in range(3000):
            if watch.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND datname = current_database()")):
                return
            time.sleep(0.01)
    # Never waited: the race this test is about did not happen, and passing would say nothing.
    raise AssertionError("no statement waited for this transaction's lock within 30 s")


def test_two_reviewers_setting_one_field_at_once_both_get_a_version(declared, backend):
    """The second one's version follows the first one's (and names it as ``before``): no
    IntegrityError on the version's unique index."""
    import threading

    from sqlalchemy import insert

    from scrapy_hitl.state import tables

    errors, saved = [], []

    def set_text():
        try:
            saved.append(selectors.set_override(declared, spider="quotes", domain=D, field="text",
                                                css="p.body::text", actor="bob", force=True))
        except Exception as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=set_text)
    with declared.db.begin() as conn:  # alice's version 1, not committed yet
        conn.execute(insert(tables.selector_overrides).values(
            spider="quotes", domain=D, field="text", version=1, css="div.text::text", action="set", actor="alice"))
        thread.start()
        if backend == "postgres":
            _until_a_statement_waits_for_a_lock(declared.db)
    thread.join(timeout=60)
    assert errors == []
    assert (saved[0]["version"], saved[0]["before"]) == (2, {"css": "div.text::text", "xpath": None, "version": 1})



def test_crawls_saving_a_keys_first_fingerprints_at_once_keep_both(declared, backend):
    import threading

    from sqlalchemy import insert

    from scrapy_hitl.state import tables

    errors = []

    def save():
        try:
            selectors.save_fingerprints(declared.db, "quotes", D, "/new/{n}", {"text": [{"n": 2}]})
        except Exception as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=save)
    with declared.db.begin() as conn:  # another crawl's first fingerprints of the key, not committed yet
        conn.execute(insert(tables.selector_fingerprints).values(
            spider="quotes", domain=D, pattern="/new/{n}", field="text", samples=[{"n": 1}]))
        thread.start()
        if backend == "postgres":
            _until_a_statement_waits_for_a_lock(declared.db)
    thread.join(timeout=60)
    assert errors == []
    assert selectors.fingerprints(declared.db, "quotes", D, "/new/{n}") == {"text": [{"n": 1}, {"n": 2}]}
