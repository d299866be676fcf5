"""HITL_ITEM_SCHEMAS: compiled once, errors named by field, and the fast pre-check that must
never call an instance valid that jsonschema rejects."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from decimal import Decimal

import pytest
from jsonschema.validators import validator_for

from scrapy_hitl.quality.config import QualityConfigError
from scrapy_hitl.quality.schema_fast import compile_fast
from scrapy_hitl.quality.schemas import ItemSchemas

SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "string", "pattern": "^x", "minLength": 2, "maxLength": 4}},
     "required": ["a"]},
    {"properties": {"n": {"type": "integer", "minimum": 0, "exclusiveMaximum": 10}}},
    {"properties": {"n": {"type": ["number", "null"], "maximum": 5.5, "exclusiveMinimum": -1}}},
    {"properties": {"e": {"enum": ["a", 1, True, None]}, "c": {"const": 1}}},
    {"type": "object", "properties": {"t": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                                            "maxItems": 2}}, "additionalProperties": False},
    {"properties": {"d": {"type": "string", "format": "date"}, "o": {"type": "object", "required": ["k"],
                                                                    "properties": {"k": {"type": "boolean"}}}}},
    {"$schema": "http://json-schema.org/draft-04/schema#", "properties": {"i": {"type": "integer"}}},
    {"title": "annotations only", "description": "x"},
]
VALUES = ["x1", "xy", "xyz12", "ab", "", 0, 1, 1.0, 2.5, -1, 10, 9.99, 5.5, 5.6, True, False, None, Decimal("1"),
          [], ["a"], ["a", "b", "c"], [1], ("a",), {}, {"k": True}, {"k": 1}, "2025-02-28", "2025-02-30"]
KEYS = ["a", "n", "e", "c", "t", "d", "o", "i", "zzz"]


def instances():
    for key, value in itertools.product(KEYS, VALUES):
        yield {key: value}
    yield {}
    yield {"a": "x1", "zzz": 1}
    yield OrderedDict(a="x1")
    yield ["not", "an", "object"]
    yield "just a string"


@pytest.mark.parametrize("schema", SCHEMAS, ids=[str(i) for i in range(len(SCHEMAS))])
def test_fast_check_never_accepts_what_jsonschema_rejects(schema):
    cls = validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    fast = compile_fast(schema, cls.FORMAT_CHECKER)
    assert fast is not None
    agreed = 0
    for instance in instances():
        valid = validator.is_valid(instance)
        if fast(instance):
            assert valid, (schema, instance)
        agreed += fast(instance) == valid
    assert agreed >= 0.9 * len(list(instances()))  # and it is useful: it rarely defers when valid


@pytest.mark.parametrize("schema", [
    {"properties": {"a": {"$ref": "#/definitions/x"}}, "definitions": {"x": {"type": "string"}}},
    {"anyOf": [{"type": "string"}, {"type": "number"}]},
    {"patternProperties": {"^x": {"type": "string"}}, "additionalProperties": False},
    {"items": [{"type": "string"}]},
    {"properties": {"e": {"enum": [[1], {"a": 1}]}}},
    {"$schema": "http://json-schema.org/draft-04/schema#", "properties": {"n": {"exclusiveMinimum": True,
                                                                                 "minimum": 1}}},
    {"dependentRequired": {"a": ["b"]}},
])
def test_schemas_outside_the_subset_always_go_to_jsonschema(schema):
    assert compile_fast(schema) is None


def test_errors_name_their_field_and_valid_items_cost_no_jsonschema_call():
    schemas = ItemSchemas.compile({"Product": {
        "type": "object", "required": ["sku", "price"], "additionalProperties": False,
        "properties": {"sku": {"type": "string"}, "price": {"type": "number", "minimum": 0},
                       "tags": {"type": "array", "items": {"type": "string"}}}}})
    product = schemas.for_type("Product")
    assert product is not None and schemas.for_type("Other") is None
    assert product.check({"sku": "A", "price": 1}) == []
    failing = product.check({"price": -1, "tags": ["a", 2], "extra": 1})
    assert sorted((f["field"], f["message"]) for f in failing) == [
        ("extra", "Additional properties are not allowed ('extra' was unexpected)"),
        ("price", "-1 is less than the minimum of 0"),
        ("sku", "'sku' is a required property"),
        ("tags", "2 is not of type 'string'"),
    ]


def test_a_schema_file_and_the_star_default(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"type": "object", "required": ["id"]}')
    schemas = ItemSchemas.compile({"*": str(path)})
    assert schemas.for_type("Anything").check({})[0]["field"] == "id"


@pytest.mark.parametrize(("raw", "message"), [
    ({"Product": {"type": "no-such-type"}}, r"HITL_ITEM_SCHEMAS\['Product'\] is not a valid JSON Schema"),
    ({"Product": "/no/such/file.json"}, "cannot read the schema"),
    ({"Product": ["not", "a", "schema"]}, "must be a JSON Schema object"),
])
def test_bad_schemas_stop_the_crawl_naming_them(raw, message):
    with pytest.raises(QualityConfigError, match=message):
        ItemSchemas.compile(raw)
