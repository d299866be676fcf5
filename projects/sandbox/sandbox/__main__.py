"""``python -m sandbox --port 0``: serve the sandbox and print ``SANDBOX_URL=...`` once.

Tests and benchmarks read that single stdout line; everything else (warnings and errors only)
goes to stderr. SIGTERM or SIGINT stop the reactor and exit with status 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .config import SiteConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default)")
    parser.add_argument("--pages", type=int, help="pages per paginated section (default 5)")
    parser.add_argument("--static-pages", type=int, help="pages under /static/page/<n> (default 5000)")
    parser.add_argument("--static-page-kb", type=int,
                        help="approximate size of each static page in KB (default 1; real pages are ~30)")
    parser.add_argument("--drift-after", type=int, help="last /drift page with the old markup (default 2)")
    parser.add_argument("--mixed-items", type=int, help="items in the /mixed shop, 25 per listing (default 500)")
    parser.add_argument("--mixed-js-share", type=float,
                        help="exact share of /mixed items rendered by JavaScript (default 0.2)")
    parser.add_argument("--mixed-guarded-share", type=float,
                        help="exact share of /mixed items behind the BotD bot detector (default 0)")
    parser.add_argument("--mixed-seed", type=int, help="seed choosing the JavaScript /mixed items (default 7)")
    parser.add_argument("--vip-pass", help="vip_pass cookie value (default $SANDBOX_VIP_PASS or letmein)")
    parser.add_argument(
        "--force-captcha", action="store_true", default=None,
        help="challenge every page without clearance (default $HITL_FORCE_CAPTCHA)",
    )  # fmt: skip
    parser.add_argument(
        "--cf-bind-ua", action="store_true", default=None,
        help="cf_clearance only valid with the User-Agent that solved the challenge ($SANDBOX_CF_BIND_UA)",
    )  # fmt: skip
    parser.add_argument(
        "--latency-ms", type=int, default=None,
        help="delay every page by this many milliseconds, like a remote site (default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--data-latency-ms", type=int, default=None,
        help="delay the guarded section's data API by this many milliseconds more (default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--robots-disallow", default=None, metavar="PATH[,PATH...]",
        help="paths /robots.txt disallows for every user agent (default: none)",
    )  # fmt: skip
    parser.add_argument(
        "--exit-with-parent", action="store_true",
        help="stop when the parent process dies (SandboxServer passes it: no orphan servers)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = SiteConfig.from_env(
            pages=args.pages, static_pages=args.static_pages, static_page_kb=args.static_page_kb,
            drift_after=args.drift_after,
            mixed_items=args.mixed_items, mixed_js_share=args.mixed_js_share, mixed_seed=args.mixed_seed,
            mixed_guarded_share=args.mixed_guarded_share,
            vip_pass=args.vip_pass, force_captcha=args.force_captcha, cf_bind_ua=args.cf_bind_ua,
            latency_ms=args.latency_ms, data_latency_ms=args.data_latency_ms, robots_disallow=args.robots_disallow,
        )  # fmt: skip
    except ValueError as exc:
        print(f"sandbox: invalid option: {exc}", file=sys.stderr)
        return 2

    from twisted.internet import reactor
    from twisted.logger import FilteringLogObserver, LogLevel, LogLevelFilterPredicate
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from .site import build_site

    # Warnings and errors (e.g. a traceback in a page) to stderr; no "Starting factory" chatter.
    level = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    observer = FilteringLogObserver(textFileLogObserver(sys.stderr), [level])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)

    # SIGINT stops the server even when it was started with SIGINT ignored (a background job,
    # or a parent that ignores it): an ignored SIGINT is inherited across exec, and Twisted then
    # installs no handler for it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.exit_with_parent:
        _exit_with_parent(reactor)
    site = build_site(config)
    port = reactor.listenTCP(args.port, site, backlog=1024, interface=args.host)  # type: ignore[attr-defined]
    address = port.getHost()
    host = f"[{address.host}]" if ":" in address.host else address.host
    # One write, newline included: with PYTHONUNBUFFERED a print() is two (text, then "\n").
    sys.stdout.write(f"SANDBOX_URL=http://{host}:{address.port}\n")
    sys.stdout.flush()
    reactor.run()  # type: ignore[attr-defined]  # installs SIGINT/SIGTERM handlers that stop it
    return 0


def _exit_with_parent(reactor: object) -> None:
    from twisted.internet.task import LoopingCall

    parent = os.getppid()

    def check() -> None:
        if os.getppid() != parent:  # re-parented: whoever started us is gone
            reactor.stop()  # type: ignore[attr-defined]

    LoopingCall(check).start(1.0, now=False)


if __name__ == "__main__":
    sys.exit(main())
