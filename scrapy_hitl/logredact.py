"""Credentials out of the crawl's log.

Scrapy logs every setting a project changed at start ("Overridden settings"), and so its
AWS keys, FTP, HTTP-auth, mail and telnet passwords when a project sets them. A crawl run as
a job has its log kept in Redis and shown to every console user, and plain ``scrapy crawl``
logs end up in files and log shippers, so the add-on masks those values in that one message.
"""

from __future__ import annotations

import logging
import re

# Scrapy's own settings that hold credentials (other settings are not in that message).
SECRET_SETTINGS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "FTP_PASSWORD",
                   "HTTPAUTH_PASS", "MAIL_PASS", "TELNETCONSOLE_PASSWORD")
MASK = "'****'"
OVERRIDDEN = "Overridden settings:\n%(settings)s"  # scrapy.crawler's message

_STRING = r"""[rbuRBU]{0,2}(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
# pprint.pformat's value: a string, or a long one split into several in parentheses
_SECRET_VALUE = re.compile(
    r"(?P<key>'(?:" + "|".join(SECRET_SETTINGS) + r")':\s*)"
    r"(?P<value>\(\s*" + _STRING + r"(?:\s+" + _STRING + r")*\s*\)|" + _STRING + r")"
)


def mask(text: str) -> str:
    """``text`` (a pretty-printed settings dict) with the secret settings' values masked."""
    return _SECRET_VALUE.sub(lambda m: m["key"] + MASK, text)


class SecretSettingsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == OVERRIDDEN and isinstance(record.args, dict):
            shown = record.args.get("settings")
            if isinstance(shown, str):
                record.args = {**record.args, "settings": mask(shown)}
        return True


def install() -> None:
    """On scrapy.crawler's logger, once per process (before the crawler logs its settings)."""
    logger = logging.getLogger("scrapy.crawler")
    if not any(isinstance(f, SecretSettingsFilter) for f in logger.filters):
        logger.addFilter(SecretSettingsFilter())
