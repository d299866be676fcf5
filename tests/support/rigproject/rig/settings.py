"""The multi-host rig's Scrapy project (tests/support/rig.py): scrapy-hitl on, and the
sandbox's domains (``*.sandbox.test``) sent to the address the rig gives in RIG_SANDBOX_ADDRESS."""

import os

BOT_NAME = "rig"
SPIDER_MODULES = ["rig.spiders"]
NEWSPIDER_MODULE = "rig.spiders"

ADDONS = {"scrapy_hitl.Addon": 500}
TWISTED_DNS_RESOLVER = "rig.resolver.RigResolver"

ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
PLAYWRIGHT_LAUNCH_OPTIONS = {
    "args": [f"--host-resolver-rules=MAP *.sandbox.test {os.environ.get('RIG_SANDBOX_ADDRESS', '127.0.0.1')}"]}
