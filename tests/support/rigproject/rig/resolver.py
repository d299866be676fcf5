"""Resolve ``*.sandbox.test`` to the sandbox's namespace address (RIG_SANDBOX_ADDRESS)."""

from __future__ import annotations

import os
from typing import Any

from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer

SUFFIX = ".sandbox.test"


class RigResolver(CachingThreadedResolver):
    def getHostByName(self, name: str, timeout: Any = ()) -> defer.Deferred[str]:
        if name.endswith(SUFFIX):
            return defer.succeed(os.environ.get("RIG_SANDBOX_ADDRESS", "127.0.0.1"))
        return super().getHostByName(name, timeout)
