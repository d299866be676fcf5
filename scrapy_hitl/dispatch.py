"""The add-on's per-page component methods, handed to Scrapy in the form it calls cheapest.

Scrapy 2.14+ awaits whatever a downloader-middleware or item-pipeline method returns
(``scrapy.utils.defer.ensure_awaitable``): a plain return value is first checked against
every awaitable type, an ABC included, then wrapped in a new coroutine. That costs about
4,600 instructions per call more than a coroutine method, whose result is awaited as it is.
Scrapy 2.13 is the other way round: each coroutine method becomes an asyncio task, a plain
one costs nothing extra. Six of the add-on's methods run for every page (two
``process_request``, three ``process_response``, one ``process_item``), so they are written
plain and decorated here: on Scrapy 2.14+ the decorator gives Scrapy a coroutine method
that calls the plain one, on 2.13 the plain method itself. About 28,000 instructions per
page on Scrapy 2.19 (bench/overhead.py --instructions).

There is one decorator per signature, each wrapper naming its arguments: a generic
``*args, **kwargs`` wrapper gave back about half of the saving (Scrapy passes keywords).

A plain method may still return a coroutine for the rare page that needs to wait (the
escalation middleware's browser capture): the coroutine method awaits it.

Methods that are not per page (``process_exception``, the open and close hooks) stay as
they are.
"""

from __future__ import annotations

from functools import wraps
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from scrapy.utils import defer

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from scrapy import Request
    from scrapy.http import Response

# Scrapy 2.14 added ensure_awaitable with the dispatch it prices (see above).
COROUTINE_DISPATCH = hasattr(defer, "ensure_awaitable")


def request_method(
    method: Callable[[Any, Request], Any],
) -> Callable[..., Any]:
    """``process_request(self, request)``."""
    if not COROUTINE_DISPATCH:
        return method

    @wraps(method)
    async def process_request(self: Any, request: Request) -> Any:
        result = method(self, request)
        return (await result) if type(result) is CoroutineType else result

    return process_request


def response_method(
    method: Callable[[Any, Request, Response], Any],
) -> Callable[..., Coroutine[Any, Any, Any]] | Callable[..., Any]:
    """``process_response(self, request, response)``."""
    if not COROUTINE_DISPATCH:
        return method

    @wraps(method)
    async def process_response(self: Any, request: Request, response: Response) -> Any:
        result = method(self, request, response)
        return (await result) if type(result) is CoroutineType else result

    return process_response


def item_method(method: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """``process_item(self, item)``."""
    if not COROUTINE_DISPATCH:
        return method

    @wraps(method)
    async def process_item(self: Any, item: Any) -> Any:
        result = method(self, item)
        return (await result) if type(result) is CoroutineType else result

    return process_item
