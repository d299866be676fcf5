"""Local target site for scrapy-hitl demos, tests and benchmarks (see projects/sandbox/README.md).

``python -m sandbox`` serves it; :class:`SandboxServer` runs it in a subprocess. The Twisted
site itself is ``sandbox.site.build_site(SiteConfig(...))``.
"""

from __future__ import annotations

from .config import SiteConfig
from .control import SandboxServer, SandboxStartError

__all__ = ["SandboxServer", "SandboxStartError", "SiteConfig"]
