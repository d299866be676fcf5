"""SiteConfig alone: defaults, environment variables, CLI overrides, validation."""

from __future__ import annotations

import pytest
from sandbox import SiteConfig
from sandbox.__main__ import parse_args

pytestmark = pytest.mark.filterwarnings("error")


def test_defaults() -> None:
    config = SiteConfig.from_env({})
    assert (config.pages, config.static_pages, config.drift_after) == (5, 5000, 2)
    assert (config.vip_pass, config.login_user, config.login_password) == ("letmein", "demo", "demo")
    assert (config.mixed_items, config.mixed_js_share, config.mixed_seed) == (500, 0.2, 7)
    assert not config.force_captcha and not config.cf_bind_ua
    assert len(config.secret) == 32 and config.secret != SiteConfig.from_env({}).secret


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_force_captcha_from_env(value: str, expected: bool) -> None:
    assert SiteConfig.from_env({"HITL_FORCE_CAPTCHA": value}).force_captcha is expected


def test_env_values() -> None:
    env = {"SANDBOX_VIP_PASS": "opensesame", "SANDBOX_SECRET": "s3cret", "SANDBOX_CF_BIND_UA": "1"}
    config = SiteConfig.from_env(env)
    assert (config.vip_pass, config.secret, config.cf_bind_ua) == ("opensesame", "s3cret", True)


def test_cli_options_override_env_and_absent_flags_do_not() -> None:
    args = parse_args(["--pages", "7", "--static-pages", "20000", "--vip-pass", "cli"])
    assert args.force_captcha is None  # absent flag: the environment decides
    config = SiteConfig.from_env(
        {"SANDBOX_VIP_PASS": "env", "HITL_FORCE_CAPTCHA": "1"},
        pages=args.pages, static_pages=args.static_pages, vip_pass=args.vip_pass, force_captcha=args.force_captcha,
    )  # fmt: skip
    assert (config.pages, config.static_pages, config.vip_pass, config.force_captcha) == (7, 20000, "cli", True)


def test_mixed_cli_options() -> None:
    args = parse_args(["--mixed-items", "60", "--mixed-js-share", "0.25", "--mixed-seed", "3"])
    config = SiteConfig.from_env(
        {}, mixed_items=args.mixed_items, mixed_js_share=args.mixed_js_share, mixed_seed=args.mixed_seed
    )
    assert (config.mixed_items, config.mixed_js_share, config.mixed_seed) == (60, 0.25, 3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"pages": 0}, "pages must be >= 1"), ({"static_pages": -1}, "static_pages must be >= 1"),
     ({"drift_after": -1}, "drift_after must be >= 0"), ({"vip_pass": ""}, "SANDBOX_VIP_PASS"),
     ({"mixed_items": 0}, "mixed_items must be >= 1"), ({"mixed_js_share": 1.5}, "mixed_js_share must be between"),
     ({"mixed_js_share": -0.1}, "mixed_js_share must be between")],
)  # fmt: skip
def test_invalid_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SiteConfig(**overrides)  # type: ignore[arg-type]
