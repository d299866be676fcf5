"""scrapy-hitl: Scrapy crawls that pause instead of failing, and ask a human for help.

Add ``ADDONS = {"scrapy_hitl.Addon": 500}`` to a project's settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Addon", "CaptchaExpired", "RequestAbandoned", "RequestParked", "__version__", "hitl_extract"]

if TYPE_CHECKING:
    from scrapy_hitl.addon import Addon
    from scrapy_hitl.exceptions import CaptchaExpired, RequestAbandoned, RequestParked
    from scrapy_hitl.fields import hitl_extract


def __getattr__(name: str) -> Any:
    # Lazy, so the console can import the state layer without importing Scrapy components.
    if name == "Addon":
        from scrapy_hitl.addon import Addon

        return Addon
    if name in ("RequestParked", "RequestAbandoned", "CaptchaExpired"):
        from scrapy_hitl import exceptions

        return getattr(exceptions, name)
    if name == "hitl_extract":
        from scrapy_hitl.fields import hitl_extract

        return hitl_extract
    raise AttributeError(name)
