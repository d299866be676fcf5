"""Requests to JSON and back, in the shape of Scrapy's ``Request.to_dict`` / ``request_from_dict``.

JSON rather than pickle: a parked request is data, and loading it must never run code.
Bytes are tagged (``{"__b64__": ...}``); anything else that JSON cannot hold makes the
request unserializable, which is reported at park time, never dropped silently.

A parked request carries no secret in clear (it sits in Redis, and so in its AOF file):

- What the session vault put on it is left out: its cookies (the session middleware gives
  a request the session's cookies in place of its own), the ``Cookie`` header Scrapy's
  CookiesMiddleware built from them, and the session's proxy with its
  ``Proxy-Authorization``. The session middleware attaches the vault's *current* session
  when the request goes out again, so a request parked for a login refresh leaves with
  the new session.
- The request's own secrets (its cookies and ``Cookie`` header when no session was
  attached, ``Authorization``, ``Proxy-Authorization``, a ``meta["proxy"]`` with a user
  and password) are kept, encrypted: one Fernet token under ``"hitl_sealed"``, keyed from
  HITL_SECRET_KEY (purpose ``SEAL_PURPOSE``), opened again when the request is loaded.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.request import request_from_dict

if TYPE_CHECKING:
    from cryptography.fernet import Fernet
    from scrapy import Spider

logger = logging.getLogger(__name__)

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
        "hitl_session_jar",
        "hitl_session_name",
        "hitl_session_proxy",
        "hitl_resumed",
    }
)

SEALED = "hitl_sealed"  # the key of the encrypted secrets in a stored request
SEAL_PURPOSE = b"scrapy-hitl parked request secrets v1"  # HKDF purpose of their key
# Headers that are credentials. (Scrapy's Headers store names title-cased, as bytes.)
SECRET_HEADERS = (b"Authorization", b"Cookie", b"Proxy-Authorization")


class UnserializableRequest(ValueError):
    """Raised at park time when a request cannot be stored; the request is counted and logged."""


class UnsafeRequestClass(ValueError):
    """Raised when a stored request names a class that is not a scrapy Request subclass."""


def sealer_for(spider: Spider | None) -> Fernet | None:
    """The key that seals the secrets of the spider's parked requests: its crawler's
    HitlRuntime's (from HITL_SECRET_KEY), or None outside a crawl with the add-on."""
    runtime = getattr(getattr(spider, "crawler", None), "_hitl_runtime", None)
    return getattr(runtime, "sealer", None)


def _went_with_session(request: Request) -> bool:
    """The session middleware attached the session of the request's domain (or of a parent
    domain). A spider that copies ``response.meta`` into a request for another site copies
    ``hitl_session`` too: that request's cookies are its own."""
    session_domain = request.meta.get("hitl_session")
    if not isinstance(session_domain, str):
        return False
    host = (urlparse_cached(request).hostname or "").lower()
    return host == session_domain or host.endswith("." + session_domain)


def _take_secrets(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    """Remove the vault's secrets from ``data`` (``request_to_dict``'s, meta already
    filtered), and move the request's own into the returned dict (empty if none)."""
    meta, headers = data["meta"], data["headers"]
    request_meta = request.meta
    if _went_with_session(request) and not request_meta.get("dont_merge_cookies"):
        # The session middleware replaced the request's cookies with the vault's, and
        # CookiesMiddleware built the Cookie header from its jar: both are rebuilt on the
        # way out from the vault's current session.
        data.pop("cookies", None)
        headers.pop(b"Cookie", None)
    if request_meta.get("hitl_session_jar"):
        meta.pop("cookiejar", None)  # the session's own jar: chosen again with the session
    if request_meta.get("hitl_session_proxy"):
        meta.pop("proxy", None)  # the session's proxy: attached again with the session
        headers.pop(b"Proxy-Authorization", None)
    secrets: dict[str, Any] = {}
    taken = {name: headers.pop(name) for name in SECRET_HEADERS if name in headers}
    if taken:
        secrets["headers"] = taken
    if data.get("cookies"):
        secrets["cookies"] = data.pop("cookies")
    proxy = meta.get("proxy")
    if isinstance(proxy, str) and "@" in proxy:  # scheme://user:password@host:port
        secrets["proxy"] = meta.pop("proxy")
    return secrets


def _put_secrets(data: dict[str, Any], secrets: dict[str, Any]) -> None:
    if "headers" in secrets:
        data.setdefault("headers", {}).update(secrets["headers"])
    if "cookies" in secrets:
        data["cookies"] = secrets["cookies"]
    if "proxy" in secrets:
        data.setdefault("meta", {})["proxy"] = secrets["proxy"]


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


def request_to_json(request: Request, spider: Spider, *, sealer: Fernet | None = None) -> dict[str, Any]:
    """A JSON-safe dict of the request, without the vault's secrets and with its own
    sealed (see the module's docstring). ``sealer`` defaults to ``sealer_for(spider)``.

    Raises UnserializableRequest with the reason.
    """
    data = request_to_dict(request, spider)
    data["meta"] = {k: v for k, v in data.get("meta", {}).items() if k not in TRANSIENT_META}
    secrets = _take_secrets(request, data)
    try:
        out = _encode(data)
        if secrets:
            sealer = sealer or sealer_for(spider)
            if sealer is None:
                raise UnserializableRequest(
                    f"{request} carries credentials ({', '.join(sorted(secrets))}) and there is "
                    "no key to encrypt them: park requests from a crawl with the scrapy-hitl add-on"
                )
            out[SEALED] = sealer.encrypt(json.dumps(_encode(secrets)).encode()).decode("ascii")
        return out
    except TypeError as exc:
        raise UnserializableRequest(
            f"{request}: cannot store {exc} in JSON; keep request.meta and cb_kwargs to "
            "JSON types (str, int, float, bool, None, bytes, list, dict)"
        ) from exc


def _open_secrets(sealed: str, sealer: Fernet | None, url: str) -> dict[str, Any]:
    """The request's own secrets; none (logged) if they cannot be decrypted: the request is
    still fetched, and a site that wanted them answers 401 or 403, which asks a human."""
    from cryptography.fernet import InvalidToken

    if sealer is None:
        logger.warning("Loading the parked request %s without its credentials: no key to decrypt "
                       "them outside a crawl with the scrapy-hitl add-on", url)
        return {}
    try:
        return dict(_decode(json.loads(sealer.decrypt(sealed.encode("ascii")))))
    except (InvalidToken, ValueError):
        logger.warning("Loading the parked request %s without its credentials: they were "
                       "encrypted with another HITL_SECRET_KEY", url)
        return {}


def request_from_json(data: dict[str, Any], spider: Spider, *, sealer: Fernet | None = None) -> Request:
    """Rebuild a request, its sealed secrets decrypted (``sealer`` defaults to
    ``sealer_for(spider)``); refuses any ``_class`` that is not a Request subclass."""
    sealed = data.get(SEALED)
    data = _decode({k: v for k, v in data.items() if k != SEALED} if sealed is not None else data)
    if sealed:
        _put_secrets(data, _open_secrets(sealed, sealer or sealer_for(spider), str(data.get("url"))))
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
