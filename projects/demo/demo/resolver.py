"""Resolve ``*.sandbox.test`` to 127.0.0.1, so the local sandbox can play many domains."""

from __future__ import annotations

from typing import Any

from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer

SANDBOX_SUFFIX = ".sandbox.test"


class SandboxResolver(CachingThreadedResolver):
    def getHostByName(self, name: str, timeout: Any = ()) -> defer.Deferred[str]:
        if name == SANDBOX_SUFFIX[1:] or name.endswith(SANDBOX_SUFFIX):
            return defer.succeed("127.0.0.1")
        return super().getHostByName(name, timeout)
