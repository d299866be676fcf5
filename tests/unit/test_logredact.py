"""Credentials masked in Scrapy's "Overridden settings" message (scrapy_hitl/logredact.py)."""

from __future__ import annotations

import logging
import pprint

import pytest
from scrapy import Spider
from scrapy.utils.test import get_crawler

from scrapy_hitl.logredact import mask

LONG_TOKEN = "FwoGZXIvYXdzE" * 40  # a session token: pformat splits it over several lines


@pytest.mark.parametrize(("settings", "kept", "hidden", "masked"), [
    ({"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG", "BOT_NAME": "shop"}, ["'BOT_NAME': 'shop'"],
     ["wJalrXUtnFEMI"], 1),
    ({"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7", "AWS_SESSION_TOKEN": LONG_TOKEN}, [], ["AKIAIOSFODNN7", "FwoGZXIvYXdzE"], 2),
    ({"FTP_PASSWORD": "it's \"quoted\"", "FTP_USER": "anon"}, ["'FTP_USER': 'anon'"], ["quoted"], 1),
    ({"HTTPAUTH_PASS": "p4ss", "MAIL_PASS": "m41l", "TELNETCONSOLE_PASSWORD": "t3ln3t"}, [],
     ["p4ss", "m41l", "t3ln3t"], 3),
    ({"USER_AGENT": "bot (+https://example.com/HTTPAUTH_PASS)", "LOG_LEVEL": "INFO"},
     ["HTTPAUTH_PASS)'", "'LOG_LEVEL': 'INFO'"], [], 0),  # a name inside another value is no key
    ({"MAIL_PASS": None}, ["'MAIL_PASS': None"], [], 0),
])
def test_secret_settings_are_masked_and_the_rest_kept(settings, kept, hidden, masked):
    shown = mask(pprint.pformat(settings))
    for text in kept:
        assert text in shown
    for text in hidden:
        assert text not in shown
    assert shown.count("'****'") == masked


def test_a_crawl_with_the_add_on_logs_its_settings_without_the_credentials(hitl_env, caplog):
    with caplog.at_level(logging.INFO, logger="scrapy.crawler"):
        crawler = get_crawler(Spider, settings_dict={
            "ADDONS": {"scrapy_hitl.Addon": 500}, "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
            "FTP_PASSWORD": "ftp-secret", "DOWNLOAD_DELAY": 2})
    try:
        (message,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Overridden settings")]
        assert "'AWS_SECRET_ACCESS_KEY': '****'" in message and "'FTP_PASSWORD': '****'" in message
        assert "wJalrXUtnFEMI" not in message and "ftp-secret" not in message
        assert "'DOWNLOAD_DELAY': 2" in message
    finally:
        crawler._hitl_runtime.state.close()
