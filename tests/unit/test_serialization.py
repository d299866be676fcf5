"""Tests for scrapy_hitl.state.serialization: parked requests to JSON and back."""

from __future__ import annotations

import json
import sys

import pytest
import scrapy
from scrapy import Request
from scrapy.http import FormRequest, JsonRequest

from scrapy_hitl.state.crypto import fernet_for
from scrapy_hitl.state.serialization import (
    SEAL_PURPOSE,
    SEALED,
    TRANSIENT_META,
    UnsafeRequestClass,
    UnserializableRequest,
    request_from_json,
    request_to_json,
)

SEALER = fernet_for("test-secret", purpose=SEAL_PURPOSE)


class ShopSpider(scrapy.Spider):
    name = "shop"

    def parse_product(self, response, category=None):
        pass

    def on_error(self, failure):
        pass

    def __parse_hidden(self, response):
        pass

    def hidden_request(self):
        return Request("https://shop.example.com/hidden", callback=self.__parse_hidden)


class OtherSpider(scrapy.Spider):
    name = "other"

    def parse_product(self, response):
        pass


class CustomRequest(Request):
    """A project's own Request subclass: must come back as itself."""


@pytest.fixture
def spider():
    return ShopSpider()


def roundtrip(request, spider, sealer=SEALER):
    data = request_to_json(request, spider, sealer=sealer)
    # what is stored is plain JSON text
    data = json.loads(json.dumps(data))
    return data, request_from_json(data, spider, sealer=sealer)


def test_roundtrip_keeps_every_attribute(spider):
    request = Request(
        "https://shop.example.com/p/1?x=1",
        callback=spider.parse_product,
        errback=spider.on_error,
        method="POST",
        body=b"\x00\xffbinary body",
        headers={"X-Token": "abc", "Accept-Language": ["en", "fr"]},
        cookies={"sid": "s1"},
        meta={"page": 3, "tags": ["a", "b"], "nested": {"k": None, "f": 1.5, "ok": True}},
        cb_kwargs={"category": "shoes", "raw": b"\x01\x02"},
        priority=7,
        dont_filter=True,
        flags=["resumable"],
        encoding="latin-1",
    )
    data, back = roundtrip(request, spider)
    assert "_class" not in data
    assert type(back) is Request
    assert back.url == request.url
    assert back.method == "POST"
    assert back.body == b"\x00\xffbinary body"
    assert back.callback == spider.parse_product
    assert back.callback.__self__ is spider
    assert back.errback == spider.on_error
    assert back.headers.getlist("X-Token") == [b"abc"]
    assert back.headers.getlist("Accept-Language") == [b"en", b"fr"]
    assert back.cookies == {"sid": "s1"}
    assert back.meta == {"page": 3, "tags": ["a", "b"], "nested": {"k": None, "f": 1.5, "ok": True}}
    assert back.cb_kwargs == {"category": "shoes", "raw": b"\x01\x02"}
    assert back.priority == 7
    assert back.dont_filter is True
    assert back.flags == ["resumable"]
    assert back.encoding == "latin-1"


def test_bytes_are_tagged_not_lost(spider):
    data = request_to_json(Request("https://a.example/", body=b"\xde\xad"), spider)
    assert data["body"] == {"__b64__": "3q0="}
    assert data["callback"] is None and data["errback"] is None


def test_bytes_dict_keys_roundtrip(spider):
    request = Request("https://a.example/", meta={"by_bytes": {b"\x00k": 1}})
    _data, back = roundtrip(request, spider)
    assert back.meta["by_bytes"] == {b"\x00k": 1}


def test_list_cookies_roundtrip(spider):
    cookies = [{"name": "sid", "value": "v", "domain": ".example.com", "path": "/"}]
    _data, back = roundtrip(Request("https://a.example.com/", cookies=cookies), spider)
    assert back.cookies == cookies


def test_callbacks_are_stored_by_method_name(spider):
    request = Request("https://a.example/", callback=spider.parse_product, errback=spider.on_error)
    data = request_to_json(request, spider)
    assert (data["callback"], data["errback"]) == ("parse_product", "on_error")


def test_private_method_callback_roundtrips(spider):
    """Scrapy's own ``Request.to_dict`` stores a name-mangled private method (Scrapy's
    test_private_callback_serialization); the docstring of ``_method_name`` promises the
    same contract."""
    request = spider.hidden_request()
    data, back = roundtrip(request, spider)
    assert data["callback"] == "_ShopSpider__parse_hidden"
    assert back.callback == request.callback


def test_form_request_keeps_its_class(spider):
    request = FormRequest(
        "https://shop.example.com/login",
        formdata={"user": "ann", "q": "a b"},
        callback=spider.parse_product,
    )
    data, back = roundtrip(request, spider)
    assert data["_class"] == "scrapy.http.request.form.FormRequest"
    assert type(back) is FormRequest
    assert back.method == "POST"
    assert back.body == b"user=ann&q=a+b"
    assert back.headers[b"Content-Type"] == b"application/x-www-form-urlencoded"
    assert back.callback == spider.parse_product


def test_json_request_keeps_its_class(spider):
    request = JsonRequest("https://api.example.com/q", data={"q": "shoes"}, dumps_kwargs={"sort_keys": True})
    data, back = roundtrip(request, spider)
    assert data["_class"] == "scrapy.http.request.json_request.JsonRequest"
    assert type(back) is JsonRequest
    assert json.loads(back.body) == {"q": "shoes"}


def test_project_request_subclass_keeps_its_class(spider):
    data, back = roundtrip(CustomRequest("https://a.example/"), spider)
    assert data["_class"] == f"{CustomRequest.__module__}.CustomRequest"
    assert type(back) is CustomRequest


def test_transient_meta_is_stripped(spider):
    meta = {k: 1 for k in TRANSIENT_META} | {"page": 2, "download_timeout": 30}
    data = request_to_json(Request("https://a.example/", meta=meta), spider)
    assert data["meta"] == {"page": 2, "download_timeout": 30}
    assert {"download_slot", "download_latency", "retry_times", "hitl_park_id",
            "is_start_request"} <= TRANSIENT_META


def test_stripping_does_not_touch_the_live_request(spider):
    request = Request("https://a.example/", meta={"download_slot": "a.example", "page": 1})
    request_to_json(request, spider)
    assert request.meta == {"download_slot": "a.example", "page": 1}


@pytest.mark.parametrize(
    "callback",
    [
        pytest.param(lambda response: None, id="lambda"),
        pytest.param(print, id="builtin"),
        pytest.param(OtherSpider().parse_product, id="another-spiders-method"),
        pytest.param(ShopSpider().parse_product, id="another-instances-method"),
    ],
)
def test_callback_that_is_not_a_spider_method_is_refused(spider, callback):
    request = Request("https://a.example/p", callback=callback)
    with pytest.raises(UnserializableRequest) as excinfo:
        request_to_json(request, spider)
    message = str(excinfo.value)
    assert message.startswith("<GET https://a.example/p>: its callback ")
    assert "is not a method of the spider" in message
    assert "use a spider method (self.parse_x)" in message


def test_lambda_errback_is_refused(spider):
    request = Request("https://a.example/p", callback=spider.parse_product, errback=lambda f: None)
    with pytest.raises(UnserializableRequest, match=r"its errback <function .*<lambda>.* is not a method of the spider"):
        request_to_json(request, spider)


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        pytest.param({"meta": {"item": Opaque()}}, "value <Opaque> of type Opaque", id="object-in-meta"),
        pytest.param({"meta": {"seen": {1, 2}}}, "value {1, 2} of type set", id="set-in-meta"),
        pytest.param({"meta": {"by_id": {1: "x"}}}, "dict key 1 of type int", id="int-dict-key"),
        pytest.param({"cb_kwargs": {"obj": Opaque()}}, "value <Opaque> of type Opaque", id="object-in-cb-kwargs"),
    ],
)
def test_non_json_values_are_refused_with_the_reason(spider, kwargs, problem):
    request = Request("https://a.example/p", **kwargs)
    with pytest.raises(UnserializableRequest) as excinfo:
        request_to_json(request, spider)
    assert str(excinfo.value) == (
        f"<GET https://a.example/p>: cannot store {problem} in JSON; keep request.meta and "
        "cb_kwargs to JSON types (str, int, float, bool, None, bytes, list, dict)"
    )


def test_unserializable_is_a_value_error():
    assert issubclass(UnserializableRequest, ValueError)
    assert issubclass(UnsafeRequestClass, ValueError)


@pytest.mark.parametrize(
    "cls_path",
    [
        pytest.param("os.system", id="function"),
        pytest.param("builtins.dict", id="non-request-class"),
        pytest.param("subprocess.Popen", id="dangerous-class"),
        pytest.param("scrapy.http.Response", id="scrapy-non-request"),
    ],
)
def test_unsafe_class_is_refused(spider, cls_path):
    data = request_to_json(Request("https://a.example/"), spider) | {"_class": cls_path}
    with pytest.raises(UnsafeRequestClass) as excinfo:
        request_from_json(data, spider)
    assert str(excinfo.value) == (
        f"Refusing to load {cls_path!r}: not a scrapy Request subclass of an imported module"
    )


def test_unsafe_class_check_imports_nothing_new(spider):
    """Loading a parked request must never run code (module docstring). Naming a module that
    is not imported yet must not import it: an import runs the module's top-level code.

    ``this`` prints the Zen of Python when imported; nothing in a crawl imports it.
    """
    sys.modules.pop("this", None)
    data = request_to_json(Request("https://a.example/"), spider) | {"_class": "this.s"}
    try:
        with pytest.raises(UnsafeRequestClass):
            request_from_json(data, spider)
        assert "this" not in sys.modules, "request_from_json imported the module named by _class"
    finally:
        sys.modules.pop("this", None)


def test_missing_callback_method_is_a_value_error(spider):
    data = request_to_json(Request("https://a.example/"), spider) | {"callback": "parse_gone"}
    with pytest.raises(ValueError, match="Method 'parse_gone' not found"):
        request_from_json(data, spider)


# --- secrets: the vault's left out, the request's own sealed ----------------------------------

VAULT = "vault-cookie-value-7f3a"
OWN = "own-cookie-value-91c2"
BEARER = b"Bearer token-5e8d"
PROXY_AUTH = b"Basic dXNlcjpwcm94eS1wYXNz"
PROXY_CREDS = "http://user:proxy-pass-4b1c@proxy.example:8080"


def vault_request(**meta):
    """A request as it leaves the session middleware and CookiesMiddleware with the vault's session."""
    return Request("https://shop.example.com/a", cookies=[{"name": "sid", "value": VAULT}],
                   headers={"Cookie": f"sid={VAULT}", "Authorization": BEARER},
                   meta={"hitl_session": "shop.example.com", **meta})


@pytest.mark.parametrize(
    ("request_", "dropped", "sealed", "back_headers", "back_cookies", "back_proxy"),
    [
        pytest.param(
            Request("https://a.example/", cookies={"sid": OWN}, headers={"Cookie": f"sid={OWN}",
                    "Authorization": BEARER, "Proxy-Authorization": PROXY_AUTH},
                    meta={"proxy": PROXY_CREDS}),
            set(), {"headers", "cookies", "proxy"},
            {b"Cookie": [f"sid={OWN}".encode()], b"Authorization": [BEARER],
             b"Proxy-Authorization": [PROXY_AUTH]}, {"sid": OWN}, PROXY_CREDS,
            id="no-session-everything-own-is-sealed"),
        pytest.param(
            vault_request(), {VAULT}, {"headers"},
            {b"Authorization": [BEARER]}, {}, None,
            id="session-cookies-and-header-dropped-authorization-sealed"),
        pytest.param(
            Request("https://www.shop.example.com/", cookies=[{"name": "sid", "value": VAULT}],
                    headers={"Cookie": f"sid={VAULT}"}, meta={"hitl_session": "shop.example.com"}),
            {VAULT}, set(), {}, {}, None,
            id="a-parent-domains-session-is-dropped-too"),
        pytest.param(
            Request("https://other.example/", cookies={"sid": OWN},
                    meta={"hitl_session": "shop.example.com"}),
            set(), {"cookies"}, {}, {"sid": OWN}, None,
            id="session-meta-copied-to-another-site-so-the-cookies-are-its-own"),
        pytest.param(
            vault_request(dont_merge_cookies=True), set(), {"headers", "cookies"},
            {b"Cookie": [f"sid={VAULT}".encode()], b"Authorization": [BEARER]},
            [{"name": "sid", "value": VAULT}], None,
            id="session-not-merged-so-the-cookies-are-the-requests-own"),
        pytest.param(
            Request("https://a.example/", headers={"Proxy-Authorization": PROXY_AUTH},
                    meta={"hitl_session": "a.example", "hitl_session_proxy": True,
                          "proxy": "http://proxy.example:8080"}),
            {"proxy.example", PROXY_AUTH.decode()}, set(), {}, {}, None,
            id="the-sessions-proxy-is-dropped"),
        pytest.param(
            Request("https://a.example/", meta={"proxy": "http://proxy.example:8080"}),
            set(), set(), {}, {}, "http://proxy.example:8080",
            id="a-proxy-without-credentials-stays-plain"),
    ],
)
def test_secrets_are_dropped_or_sealed(spider, request_, dropped, sealed, back_headers, back_cookies,
                                       back_proxy):
    data, back = roundtrip(request_, spider)
    text = json.dumps(data)
    for secret in (VAULT, OWN, "token-5e8d", "proxy-pass-4b1c", "dXNlcjpwcm94eS1wYXNz", *dropped):
        assert secret not in text
    if sealed:
        opened = json.loads(SEALER.decrypt(data[SEALED].encode()))
        assert set(opened) == sealed
    else:
        assert SEALED not in data
    secret_names = {b"Cookie", b"Authorization", b"Proxy-Authorization"}
    assert {k: v for k, v in back.headers.items() if k in secret_names} == back_headers
    assert back.cookies == back_cookies
    assert back.meta.get("proxy") == back_proxy
    assert not {"hitl_session", "hitl_session_proxy"} & set(back.meta)


def test_sealing_does_not_touch_the_live_request(spider):
    request = vault_request()
    request_to_json(request, spider, sealer=SEALER)
    assert request.cookies == [{"name": "sid", "value": VAULT}]
    assert request.headers[b"Cookie"] == f"sid={VAULT}".encode()
    assert request.headers[b"Authorization"] == BEARER


def test_credentials_without_a_key_are_refused(spider):
    with pytest.raises(UnserializableRequest, match=r"carries credentials \(headers\) and there is no key"):
        request_to_json(Request("https://a.example/", headers={"Authorization": BEARER}), spider)


def test_sealed_with_another_key_loads_without_them(spider, caplog):
    data = request_to_json(Request("https://a.example/x", headers={"Authorization": BEARER},
                                   meta={"page": 2}), spider, sealer=SEALER)
    other = fernet_for("another-secret", purpose=SEAL_PURPOSE)
    back = request_from_json(data, spider, sealer=other)
    assert b"Authorization" not in back.headers
    assert back.meta == {"page": 2}
    assert "encrypted with another HITL_SECRET_KEY" in caplog.text
