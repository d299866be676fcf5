"""What an item should carry: its type name, its required and its critical fields.

- **Required** (completeness): the spider's ``hitl_required_fields`` (a list, or a dict item
  type -> list); else the fields declared with ``required=True`` or ``critical=True``
  metadata (``scrapy.Field(required=True)``, ``dataclasses.field(metadata={...})``, attrs);
  else every field the item class declares; for dict items without any of these, every key
  the item carries (a key with an empty value counts as missing).
- **Critical** (missing -> held, whatever the score): ``HITL_CRITICAL_FIELDS``, the spider's
  ``hitl_critical_fields`` and fields with ``critical=True`` metadata. Critical fields are
  required too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any


from scrapy_hitl.quality.config import field_map

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scrapy import Spider


@dataclass(frozen=True, slots=True)
class FieldSpec:
    required: tuple[str, ...] | None  # None: the item's own keys (dict items, nothing declared)
    critical: tuple[str, ...]


def item_type(item: Any, spider: Spider | None) -> str:
    if isinstance(item, dict):
        return str(getattr(spider, "hitl_item_type", None) or "dict")
    return type(item).__name__


def _for_type(mapping: Mapping[str, tuple[str, ...]], name: str) -> tuple[str, ...]:
    return mapping.get(name, ()) + (mapping.get("*", ()) if name != "*" else ())


def field_spec(item: Any, type_name: str, spider: Spider | None,
               critical_setting: Mapping[str, tuple[str, ...]]) -> FieldSpec:
    """Work out the spec of one item class (the pipeline caches it per class and type)."""
    cls = type(item)
    if isinstance(item, dict):
        declared = None
    else:
        from itemadapter import ItemAdapter  # here: it imports pydantic (+6 MB at start-up)

        declared = ItemAdapter.get_field_names_from_class(cls)
    meta_required: list[str] = []
    meta_critical: list[str] = []
    for name in declared or ():
        meta = ItemAdapter.get_field_meta_from_class(cls, name)
        if meta.get("critical"):
            meta_critical.append(name)
        if meta.get("required") or meta.get("critical"):
            meta_required.append(name)
    spider_required = field_map(getattr(spider, "hitl_required_fields", None), "hitl_required_fields")
    spider_critical = field_map(getattr(spider, "hitl_critical_fields", None), "hitl_critical_fields")
    critical = _unique(_for_type(critical_setting, type_name) + _for_type(spider_critical, type_name)
                       + tuple(meta_critical))
    required = (_for_type(spider_required, type_name) or tuple(meta_required) or tuple(declared or ())
                or None)
    if required is not None:
        required = _unique(required + critical)
    return FieldSpec(required=required, critical=critical)


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))
