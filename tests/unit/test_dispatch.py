"""The add-on's per-page methods are handed to Scrapy in the form it dispatches cheapest
(scrapy_hitl/dispatch.py): coroutine methods on Scrapy 2.14+, plain ones on 2.13."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from scrapy.utils.deprecate import argument_is_required

from scrapy_hitl import dispatch
from scrapy_hitl.middlewares.blocks import HitlBlockMiddleware
from scrapy_hitl.middlewares.escalation import HitlEscalationMiddleware
from scrapy_hitl.middlewares.failures import HitlFailureMiddleware
from scrapy_hitl.middlewares.session import HitlSessionMiddleware
from scrapy_hitl.quality.pipeline import HitlQualityPipeline

PER_PAGE = [
    (HitlSessionMiddleware, "process_request"),
    (HitlEscalationMiddleware, "process_request"),
    (HitlEscalationMiddleware, "process_response"),
    (HitlBlockMiddleware, "process_response"),
    (HitlFailureMiddleware, "process_response"),
    (HitlQualityPipeline, "process_item"),
]
NOT_PER_PAGE = [
    (HitlEscalationMiddleware, "process_exception"),
    (HitlBlockMiddleware, "process_exception"),
    (HitlFailureMiddleware, "process_exception"),
]


def test_this_scrapy_dispatches_coroutines_cheapest():
    import scrapy

    major, minor = (int(part) for part in scrapy.__version__.split(".")[:2])
    assert dispatch.COROUTINE_DISPATCH is ((major, minor) >= (2, 14))


@pytest.mark.parametrize(("cls", "name"), PER_PAGE)
def test_per_page_methods_are_coroutines_where_that_is_cheaper(cls, name):
    method = getattr(cls, name)
    assert inspect.iscoroutinefunction(method) is dispatch.COROUTINE_DISPATCH
    assert method.__name__ == name and method.__doc__ == inspect.unwrap(method).__doc__
    # Scrapy passes ``spider`` only to a method that requires it (and warns then)
    assert not argument_is_required(method, "spider")


@pytest.mark.parametrize(("cls", "name"), NOT_PER_PAGE)
def test_other_methods_stay_plain(cls, name):
    assert not inspect.iscoroutinefunction(getattr(cls, name))


class _Component:
    def __init__(self) -> None:
        self.seen: list = []

    @dispatch.request_method
    def process_request(self, request, spider=None):
        self.seen.append(request)
        if request == "refuse":
            raise ValueError("refused")
        return None

    @dispatch.response_method
    def process_response(self, request, response, spider=None):
        if response == "wait":  # a page that needs to wait: a coroutine, awaited for Scrapy
            return self._later(request)
        return (request, response)

    async def _later(self, request):
        await asyncio.sleep(0)
        return (request, "waited")

    @dispatch.item_method
    def process_item(self, item, spider=None):
        return {**item, "scored": True}


def _result(value):
    """What the method gives Scrapy, its coroutine driven here to its end (not with
    asyncio.run: a test before this one in the same process may have left a loop running)."""
    if not inspect.iscoroutine(value):
        return value
    try:
        while True:
            value.send(None)  # asyncio.sleep(0) yields once
    except StopIteration as stop:
        return stop.value


@pytest.mark.parametrize(("call", "expected"), [
    (lambda c: c.process_request(request="r"), None),
    (lambda c: c.process_response(request="r", response="s"), ("r", "s")),  # Scrapy passes keywords
    (lambda c: c.process_response(request="r", response="wait"), ("r", "waited")),
    (lambda c: c.process_item({"a": 1}), {"a": 1, "scored": True}),
])
def test_the_wrapped_method_returns_what_the_plain_one_does(call, expected):
    component = _Component()
    assert _result(call(component)) == expected


def test_an_exception_reaches_scrapy_when_awaited():
    component = _Component()
    with pytest.raises(ValueError, match="refused"):
        _result(component.process_request(request="refuse"))
    assert component.seen == ["refuse"]
