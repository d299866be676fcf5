"""Score one item and choose its route: the pipeline's decision, without Scrapy or I/O.

Holds what a run accumulates (the consistency tracker) and what is worked out once (compiled
schemas, the required and critical fields of each item class), so a test can feed it a table
of items and check each score and route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


from scrapy_hitl.quality import scoring
from scrapy_hitl.quality.config import PARTS
from scrapy_hitl.quality.consistency import RunConsistency, check_rules
from scrapy_hitl.quality.fields import FieldSpec, field_spec, item_type
from scrapy_hitl.quality.routing import route
from scrapy_hitl.quality.schemas import ItemSchemas

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Spider

    from scrapy_hitl.quality.config import QualitySettings


_CLEAN_PARTS = dict.fromkeys(PARTS, 1.0)
_NONE: list[dict[str, Any]] = []  # no schema errors (never appended to)


class ItemScorer:
    def __init__(self, config: QualitySettings, spider: Spider | None = None) -> None:
        self.cfg = config
        self.spider = spider
        self.schemas = ItemSchemas.compile(config.item_schemas)
        self.consistency = RunConsistency(min_samples=config.min_samples, outlier_z=config.outlier_z)
        rules = getattr(spider, "hitl_item_rules", None) or {}
        if not isinstance(rules, dict) or not all(callable(r) for r in rules.values()):
            raise TypeError(f"{type(spider).__name__}.hitl_item_rules must be a dict: name -> "
                            "callable(item dict) returning True when the item is consistent")
        self.rules: dict[str, Callable[[dict[str, Any]], Any]] = rules
        self._specs: dict[tuple[type, str], FieldSpec] = {}
        self._dict_type = item_type({}, spider)  # the same for every dict item: worked out once
        # An item with nothing failing has every part at 1: its confidence and route are
        # the same for all of them, worked out once (with the configured weights).
        self._clean_confidence = scoring.confidence(_CLEAN_PARTS, config.weights)
        self._clean_route = route(self._clean_confidence, critical_missing=False,
                                  deliver_score=config.deliver_score, review_score=config.review_score,
                                  incomplete=1.0 < config.min_completeness)

    def score(self, item: Any, *, expect_matched: bool | None = None,
              data: dict[str, Any] | None = None) -> tuple[str, str, scoring.Score]:
        """(item type, route, score). ``data`` is ``ItemAdapter(item).asdict()`` if the caller
        has it already; ``expect_matched`` whether the page matched ``hitl_expect``."""
        if data is None:
            from itemadapter import ItemAdapter  # here: it imports pydantic (+6 MB at start-up)

            data = ItemAdapter(item).asdict()
        type_name = self._dict_type if type(item) is dict else item_type(item, self.spider)
        spec = self._spec(item, type_name)
        required = spec.required
        if required is None:  # a dict item with nothing declared: every key it carries
            required = tuple(dict.fromkeys((*data, *spec.critical))) if spec.critical else tuple(data)
        completeness, missing = scoring.completeness(data, required)
        schema = self.schemas.for_type(type_name) if self.schemas else None
        errors = schema.check(data) if schema is not None else _NONE
        inconsistent = self.consistency.check(type_name, data)
        if self.rules:
            inconsistent += check_rules(self.rules, data)
        if not (missing or errors or inconsistent or expect_matched is False):
            # The common case, an item that is clearly fine: every part is 1.
            return type_name, self._clean_route, scoring.Score(dict(_CLEAN_PARTS), self._clean_confidence, [], [])
        failing: list[dict[str, Any]] = [
            {"check": "missing", "field": name, "message": "required field missing or empty"} for name in missing]
        critical_missing = [name for name in spec.critical if name in missing]
        schema_part = 1.0
        if schema is not None:
            schema_part = scoring.schema_validity(len(errors))
            failing += errors
        failing += inconsistent
        if expect_matched is False:
            failing.append({"check": "extraction", "field": None,
                            "message": "the page did not match the spider's hitl_expect"})
        parts = {
            "completeness": round(completeness, 4),
            "schema": schema_part,
            "consistency": scoring.consistency(len(inconsistent)),
            "extraction": scoring.extraction(expect_matched),
        }
        score = scoring.Score(parts, scoring.confidence(parts, self.cfg.weights), failing, critical_missing)
        where = route(score.confidence, critical_missing=bool(critical_missing),
                      deliver_score=self.cfg.deliver_score, review_score=self.cfg.review_score,
                      incomplete=completeness < self.cfg.min_completeness)
        return type_name, where, score

    def _spec(self, item: Any, type_name: str) -> FieldSpec:
        key = (type(item), type_name)
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = field_spec(item, type_name, self.spider, self.cfg.critical_fields)
        return spec
