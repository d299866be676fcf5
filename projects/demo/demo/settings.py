"""Settings of the demo project: one line turns scrapy-hitl on."""

BOT_NAME = "demo"
SPIDER_MODULES = ["demo.spiders"]
NEWSPIDER_MODULE = "demo.spiders"

ADDONS = {"scrapy_hitl.Addon": 500}

# The sandbox site answers on 127.0.0.1; its sections live on their own domains
# (quotes.sandbox.test, vip.sandbox.test, ...) so one blocked section pauses only itself.
TWISTED_DNS_RESOLVER = "demo.resolver.SandboxResolver"

ROBOTSTXT_OBEY = False
CONCURRENT_REQUESTS = 16
DOWNLOAD_DELAY = 0
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"

# Chromium (the browser tiers) resolves names itself: send the sandbox's domains to it too.
PLAYWRIGHT_LAUNCH_OPTIONS = {"args": ["--host-resolver-rules=MAP *.sandbox.test 127.0.0.1"]}
