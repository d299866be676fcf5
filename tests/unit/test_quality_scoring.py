"""The quality gate's scores and routes, by a table of realistic items (scoring + scorer)."""

from __future__ import annotations

import dataclasses

import pytest
import scrapy
from scrapy.settings import Settings

from scrapy_hitl.quality import scoring
from scrapy_hitl.quality.config import QualitySettings
from scrapy_hitl.quality.scorer import ItemScorer

PRODUCT_SCHEMA = {
    "type": "object",
    "properties": {
        "sku": {"type": "string", "pattern": "^SKU-[0-9]{5}$"},
        "name": {"type": "string", "minLength": 1},
        "price": {"type": "number", "minimum": 0},
        "url": {"type": "string"},
    },
    "required": ["sku", "name", "price"],
}


class Product(scrapy.Item):
    sku = scrapy.Field(required=True)
    name = scrapy.Field(required=True)
    price = scrapy.Field(critical=True)
    url = scrapy.Field()


@dataclasses.dataclass
class Review:
    author: str | None = dataclasses.field(default=None, metadata={"required": True})
    stars: int | None = dataclasses.field(default=None, metadata={"critical": True})
    text: str | None = None


class Spider:
    """Just the attributes the scorer reads from a spider."""

    def __init__(self, **attrs):
        self.__dict__.update(attrs)


def config(**settings) -> QualitySettings:
    return QualitySettings.from_settings(Settings({"HITL_ITEM_SCHEMAS": {"Product": PRODUCT_SCHEMA}, **settings}))


def product(**fields) -> Product:
    base = {"sku": "SKU-00001", "name": "Copper Lamp", "price": 12.5, "url": "http://shop.example/p/1"}
    return Product(**{**base, **fields})


# (id, item, expect_matched, route, confidence, failing checks)
CASES = [
    ("complete", product(), True, "delivered", 1.0, set()),
    ("no hitl_expect declared", product(), None, "delivered", 1.0, set()),
    ("page missed hitl_expect: 0.9 still delivers", product(), False, "delivered", 0.9, {"extraction"}),
    ("critical price missing holds", product(price=None), True, "pending_review", 0.5667,
     {"missing:price", "schema:price"}),
    ("required name missing: optional review", product(name=""), True, "optional_review", 0.5667,
     {"missing:name", "schema:name"}),
    ("schema violation alone: optional review", product(price=-3), True, "optional_review", 0.7,
     {"schema:price"}),
    ("wrong type", product(url=3), True, "optional_review", 0.7, {"schema:url"}),
    ("name missing + bad sku + no expect match: held", product(name=None, sku="X"), False, "pending_review",
     0.4667, {"missing:name", "schema:name", "schema:sku", "extraction"}),
    ("dict, nothing declared: its own keys", {"title": "A", "price": None}, True, "optional_review", 0.8,
     {"missing:price"}),
    ("dict, complete", {"title": "A", "price": "£3.00"}, True, "delivered", 1.0, set()),
    ("dataclass metadata: critical stars missing", Review(author="Ann", text="ok"), True, "pending_review",
     0.8, {"missing:stars"}),
    ("dataclass metadata: text is not required", Review(author="Ann", stars=4), True, "delivered", 1.0, set()),
]


def checks(score: scoring.Score) -> set[str]:
    return {f"{f['check']}:{f['field']}" if f.get("field") else f["check"] for f in score.failing}


@pytest.mark.parametrize(("item", "matched", "route", "confidence", "failing"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_scores_and_routes(item, matched, route, confidence, failing):
    _, where, score = ItemScorer(config()).score(item, expect_matched=matched)
    assert (where, score.confidence, checks(score)) == (route, confidence, failing)


QUOTE = Spider(hitl_required_fields=["text", "author"])
# (id, required fields, settings, item, route, confidence): HITL_MIN_COMPLETENESS (0.5) holds an item that
# lacks more than half of its required fields, whatever the other parts make its score
COMPLETENESS_CASES = [
    ("every required field", QUOTE, {}, {"text": "To be.", "author": "Ann"}, "delivered", 1.0),
    ("half of them: optional review", QUOTE, {}, {"text": "To be."}, "optional_review", 0.8),
    ("no required field present: held at 0.6", QUOTE, {}, {"tags": ["life"]}, "pending_review", 0.6),
    ("required fields empty: held", QUOTE, {}, {"text": " ", "author": None, "tags": ["a"]}, "pending_review", 0.6),
    ("one of three: held at 0.73", Spider(hitl_required_fields=["text", "author", "tags"]), {}, {"text": "To be."},
     "pending_review", 0.7333),
    ("rule off with 0", QUOTE, {"HITL_MIN_COMPLETENESS": 0}, {"tags": ["life"]}, "optional_review", 0.6),
    ("1 asks for every field", QUOTE, {"HITL_MIN_COMPLETENESS": 1}, {"text": "To be."}, "pending_review", 0.8),
]


@pytest.mark.parametrize(("spider", "settings", "item", "route", "confidence"),
                         [pytest.param(*c[1:], id=c[0]) for c in COMPLETENESS_CASES])
def test_min_completeness_holds_items_missing_most_required_fields(spider, settings, item, route, confidence):
    _, where, score = ItemScorer(config(**settings), spider).score(item, expect_matched=True)
    assert (where, score.confidence) == (route, confidence)


def test_spider_declarations_win_over_item_metadata():
    spider = Spider(hitl_required_fields=["sku", "url"], hitl_critical_fields={"Product": ["url"]})
    _, where, score = ItemScorer(config(), spider).score(product(url=None, name=None))
    assert where == "pending_review" and score.critical_missing == ["url"]
    # sku and url required per the spider, price still critical per the Item; name is not required
    assert score.parts["completeness"] == 0.6667


def test_critical_fields_setting_for_dict_items():
    scorer = ItemScorer(config(HITL_CRITICAL_FIELDS=["price"]), Spider(hitl_item_type="offer"))
    type_name, where, score = scorer.score({"title": "A"})  # price absent altogether
    assert (type_name, where, score.critical_missing) == ("offer", "pending_review", ["price"])


def test_outlier_after_enough_samples_goes_to_optional_review():
    scorer = ItemScorer(config(HITL_QUALITY_MIN_SAMPLES=20))
    for i in range(30):
        _, where, _ = scorer.score(product(price=10.0 + i % 7))
        assert where == "delivered"
    _, where, score = scorer.score(product(price=9_999.0))
    assert (where, score.parts["consistency"], checks(score)) == ("optional_review", 0.0, {"outlier:price"})


def test_formats_are_checked_and_star_schema_applies_to_every_type():
    cfg = config(HITL_ITEM_SCHEMAS={"*": {"properties": {"day": {"type": "string", "format": "date"}}}})
    _, where, score = ItemScorer(cfg).score({"day": "2025-02-30"})
    assert where == "optional_review" and checks(score) == {"schema:day"}
    assert ItemScorer(cfg).score({"day": "2025-02-28"})[1] == "delivered"


def test_spider_rules_are_consistency_checks():
    spider = Spider(hitl_item_rules={"sku matches url": lambda item: item["sku"][-1] == item["url"][-1],
                                     "broken": lambda item: item["missing"]})
    _, where, score = ItemScorer(config(), spider).score(product())
    assert where == "optional_review" and score.parts["consistency"] == 0.0
    assert [f["rule"] for f in score.failing] == ["broken"]
    assert "KeyError" in score.failing[0]["message"]


def test_bad_rules_are_refused():
    with pytest.raises(TypeError, match="hitl_item_rules must be a dict"):
        ItemScorer(config(), Spider(hitl_item_rules=["not", "a", "dict"]))


def test_weights_and_thresholds_are_settings():
    cfg = config(HITL_QUALITY_WEIGHTS={"extraction": 0.6}, HITL_QUALITY_DELIVER_SCORE=0.95)
    _, where, score = ItemScorer(cfg).score(product(), expect_matched=False)
    assert score.confidence == round(0.9 / 1.5, 4) and where == "optional_review"


@pytest.mark.parametrize(("value", "empty"), [
    (None, True), ("", True), ("  \n", True), ([], True), ({}, True), ((), True),
    (0, False), (0.0, False), (False, False), ("0", False), ([None], False),
])
def test_is_empty(value, empty):
    assert scoring.is_empty(value) is empty


@pytest.mark.parametrize(("data", "required", "share", "missing"), [
    ({"a": 1, "b": 2}, ("a", "b"), 1.0, []),
    ({"a": 1}, ("a", "b"), 0.5, ["b"]),
    ({"a": "", "b": [], "c": 3}, ("a", "b", "c"), 1 / 3, ["a", "b"]),
    ({}, (), 1.0, []),
])
def test_completeness(data, required, share, missing):
    assert scoring.completeness(data, required) == (share, missing)


@pytest.mark.parametrize(("confidence", "bucket"), [
    (0.0, 0), (0.0999, 0), (0.1, 1), (0.5, 5), (0.8999, 8), (0.9, 9), (1.0, 9)])
def test_bucket(confidence, bucket):
    assert scoring.bucket(confidence) == bucket


def test_confidence_is_the_weighted_mean_rounded():
    weights = {"completeness": 0.4, "schema": 0.3, "consistency": 0.2, "extraction": 0.1}
    parts = {"completeness": 1.0, "schema": 1.0, "consistency": 1.0, "extraction": 0.0}
    assert scoring.confidence(parts, weights) == 0.9  # not 0.8999999999999999
    assert scoring.confidence(parts, {k: 2 * v for k, v in weights.items()}) == 0.9
