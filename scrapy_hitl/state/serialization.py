"""Requests to JSON and back, in the shape of Scrapy's ``Request.to_dict`` / ``request_from_dict``.

JSON rather than pickle: a parked request is data, and loading it must never run code.
Bytes are tagged (``{"__b64__": ...}``); anything else that JSON cannot hold makes the
request unserializable, which is reported at park time, never dropped silently.
"""

from __future__ import annotations

import base64
import inspect
import json
import sys
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.utils.request import request_from_dict

if TYPE_CHECKING:
    from scrapy import Spider

# meta keys that describe one trip through the downloader, not the request itself
TRANSIENT_META = frozenset(
    {
        "download_slot",
        "download_latency",
        "retry_times",
        "_auth_proxy",
        "_scheme_proxy",
        "is_start_request",
        "hitl_park_id",
        "hitl_session",
        "hitl_resumed",
    }
)


class UnserializableRequest(ValueError):
    """Raised at park time when a request cannot be stored; the request is counted and logged."""


class UnsafeRequestClass(ValueError):
    """Raised when a stored request names a class that is not a scrapy Request subclass."""


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__b64__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, bytes):
                k = "__b64__:" + base64.b64encode(k).decode("ascii")
            elif not isinstance(k, str):
                raise TypeError(f"dict key {k!r} of type {type(k).__name__}")
            out[k] = _encode(v)
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"value {value!r} of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        out = {}
        for k, v in value.items():
            if k.startswith("__b64__:"):
                k = base64.b64decode(k[len("__b64__:") :])
            out[k] = _decode(v)
        return out
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _method_name(spider: Spider, func: Any, what: str, request: Request) -> str | None:
    """The spider method's name. Same contract as Scrapy's ``Request.to_dict``, without
    its scan of every spider attribute (this runs for each parked request)."""
    if func is None or isinstance(func, str):
        return func
    name = getattr(func, "__name__", None)
    if getattr(func, "__self__", None) is spider and name:
        bound = getattr(spider, name, None)
        if getattr(bound, "__func__", None) is getattr(func, "__func__", None):
            return name
        # A name-mangled private method (self.__parse): scan, as Scrapy's _find_method does.
        for member, method in inspect.getmembers(spider, predicate=inspect.ismethod):
            if method.__func__ is func.__func__:
                return member
    raise UnserializableRequest(
        f"{request}: its {what} {func!r} is not a method of the spider, so it cannot be "
        "stored; use a spider method (self.parse_x) as the callback of requests that may be parked"
    )


def request_to_dict(request: Request, spider: Spider) -> dict[str, Any]:
    """``Request.to_dict(spider=...)`` (same keys, same ``_class`` rule)."""
    data: dict[str, Any] = {
        "url": request.url,
        "callback": _method_name(spider, request.callback, "callback", request),
        "errback": _method_name(spider, request.errback, "errback", request),
        "headers": dict(request.headers),
    }
    for attr in request.attributes:
        data.setdefault(attr, getattr(request, attr))
    if type(request) is not Request:
        data["_class"] = type(request).__module__ + "." + type(request).__name__
    return data


def request_to_json(request: Request, spider: Spider) -> dict[str, Any]:
    """A JSON-safe dict of the request. Raises UnserializableRequest with the reason."""
    data = request_to_dict(request, spider)
    data["meta"] = {k: v for k, v in data.get("meta", {}).items() if k not in TRANSIENT_META}
    try:
        return _encode(data)
    except TypeError as exc:
        raise UnserializableRequest(
            f"{request}: cannot store {exc} in JSON; keep request.meta and cb_kwargs to "
            "JSON types (str, int, float, bool, None, bytes, list, dict)"
        ) from exc


def request_from_json(data: dict[str, Any], spider: Spider) -> Request:
    """Rebuild a request; refuses any ``_class`` that is not a Request subclass."""
    data = _decode(data)
    cls_path = data.get("_class")
    if cls_path is not None:
        # Only look the class up in modules already imported: importing a module named by
        # stored data would run its code.
        module_name, _, attr = str(cls_path).rpartition(".")
        module = sys.modules.get(module_name)
        cls = getattr(module, attr, None) if module is not None else None
        if not (isinstance(cls, type) and issubclass(cls, Request)):
            raise UnsafeRequestClass(
                f"Refusing to load {cls_path!r}: not a scrapy Request subclass of an "
                "imported module"
            )
    return request_from_dict(data, spider=spider)


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
