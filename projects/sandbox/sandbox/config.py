"""Sandbox settings: one frozen dataclass, filled from CLI flags and environment variables."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """Return True when ``env[name]`` is one of 1/true/yes/on (any case)."""
    return env.get(name, "").strip().lower() in TRUE_VALUES


@dataclass(frozen=True)
class SiteConfig:
    """Everything the site needs to know; defaults match the README."""

    #: Pages in each paginated section except ``/static`` (``--pages``).
    pages: int = 5
    #: Pages of ``/static/page/<n>`` for benchmarks (``--static-pages``).
    static_pages: int = 5000
    #: Approximate size of each static page in KB; filler paragraphs pad it (``--static-page-kb``).
    static_page_kb: int = 1
    #: ``/drift/page/<n>`` uses the quotes markup up to this page, new markup after (``--drift-after``).
    drift_after: int = 2
    #: Items of the ``/mixed`` shop, 25 per listing page (``--mixed-items``).
    mixed_items: int = 500
    #: Exact share of ``/mixed`` items rendered by JavaScript, round(items * share) (``--mixed-js-share``).
    mixed_js_share: float = 0.2
    #: Exact share of ``/mixed`` items behind the BotD bot detector, round(items * share), picked
    #: after the JavaScript ones (``--mixed-guarded-share``).
    mixed_guarded_share: float = 0.0
    #: Seed of the shuffle that picks the JavaScript items (``--mixed-seed``).
    mixed_seed: int = 7
    #: Milliseconds every page waits before answering, like a remote site (``--latency-ms``).
    latency_ms: int = 0
    #: Milliseconds more the guarded section's data API takes, so its pages show their data
    #: well after their ``load`` event, like a slow API (``--data-latency-ms``).
    data_latency_ms: int = 0
    #: Value of the ``vip_pass`` cookie that unlocks ``/vip`` (env ``SANDBOX_VIP_PASS``).
    vip_pass: str = "letmein"
    #: Login accepted by ``POST /login``.
    login_user: str = "demo"
    login_password: str = "demo"
    #: Challenge every page without clearance, not only ``/protected`` (env ``HITL_FORCE_CAPTCHA``).
    force_captcha: bool = False
    #: Bind ``cf_clearance`` to the User-Agent that solved the challenge, like Cloudflare
    #: (env ``SANDBOX_CF_BIND_UA``).
    cf_bind_ua: bool = False
    #: Paths ``/robots.txt`` disallows for every user agent, comma-separated (``--robots-disallow``);
    #: none by default, so the site allows everything.
    robots_disallow: str = ""
    #: HMAC key for challenge codes and clearance tokens (env ``SANDBOX_SECRET``); a fixed
    #: secret keeps issued ``cf_clearance`` cookies valid across restarts.
    secret: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)

    def __post_init__(self) -> None:
        for name in ("pages", "static_pages", "static_page_kb", "mixed_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("latency_ms", "data_latency_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.mixed_js_share <= 1:
            raise ValueError(f"mixed_js_share must be between 0 and 1, got {self.mixed_js_share}")
        if not 0 <= self.mixed_guarded_share <= 1 - self.mixed_js_share:
            raise ValueError(f"mixed_guarded_share must be between 0 and 1 - mixed_js_share, "
                             f"got {self.mixed_guarded_share}")
        if self.drift_after < 0:
            raise ValueError(f"drift_after must be >= 0, got {self.drift_after}")
        if not self.vip_pass:
            raise ValueError("vip_pass must not be empty (check SANDBOX_VIP_PASS)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> SiteConfig:
        """Build a config from environment variables; ``overrides`` that are not None win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "force_captcha": env_flag(env, "HITL_FORCE_CAPTCHA"),
            "cf_bind_ua": env_flag(env, "SANDBOX_CF_BIND_UA"),
        }
        if env.get("SANDBOX_VIP_PASS"):
            values["vip_pass"] = env["SANDBOX_VIP_PASS"]
        if env.get("SANDBOX_SECRET"):
            values["secret"] = env["SANDBOX_SECRET"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
