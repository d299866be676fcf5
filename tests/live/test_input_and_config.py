"""The live view's pure parts: turning a reviewer's input messages into CDP ``Input.*``
parameters (scaled, clamped, special keys), and the crawler's live settings."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from scrapy_hitl.live.holder import LiveConfig
from scrapy_hitl.live.screencast import key_event, mouse_event


@pytest.mark.parametrize(("msg", "expected"), [
    ({"op": "key", "type": "down", "key": "a", "code": "KeyA"},
     {"type": "keyDown", "key": "a", "code": "KeyA", "text": "a", "unmodifiedText": "a", "windowsVirtualKeyCode": 65,
      "modifiers": 0}),
    ({"op": "key", "type": "up", "key": "a", "code": "KeyA"},
     {"type": "keyUp", "key": "a", "code": "KeyA", "windowsVirtualKeyCode": 65, "modifiers": 0}),
    ({"op": "key", "type": "down", "key": "Enter", "code": "Enter"},  # submits a form: text "\r"
     {"type": "keyDown", "key": "Enter", "code": "Enter", "text": "\r", "unmodifiedText": "\r",
      "windowsVirtualKeyCode": 13, "modifiers": 0}),
    ({"op": "key", "type": "down", "key": "Backspace", "code": "Backspace"},
     {"type": "rawKeyDown", "key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8, "modifiers": 0}),
    ({"op": "key", "type": "down", "key": "a", "code": "KeyA", "modifiers": 2},  # Ctrl+A: a shortcut, no text
     {"type": "rawKeyDown", "key": "a", "code": "KeyA", "windowsVirtualKeyCode": 65, "modifiers": 2}),
    ({"op": "key", "type": "down", "key": "é", "code": "KeyE"},
     {"type": "keyDown", "key": "é", "code": "KeyE", "text": "é", "unmodifiedText": "é", "windowsVirtualKeyCode": 0,
      "modifiers": 0}),
])
def test_keys_become_cdp_key_events(msg, expected):
    assert key_event(msg) == expected


@pytest.mark.parametrize("msg", [{"op": "key", "key": ""}, {"op": "key", "key": "F13-and-more-than-twenty"},
                                 {"op": "key", "key": "Unidentified"}])
def test_unknown_keys_are_dropped(msg):
    assert key_event(msg) is None


def test_mouse_events_are_clamped_to_the_viewport_and_typed():
    down = mouse_event({"op": "mouse", "type": "down", "x": 5000, "y": -3, "button": "left", "buttons": 1,
                        "clicks": 2}, 1280, 720)
    assert down == {"type": "mousePressed", "x": 1279, "y": 0, "modifiers": 0, "button": "left", "buttons": 1,
                    "clickCount": 2}
    move = mouse_event({"op": "mouse", "type": "move", "x": "12.5", "y": float("nan"), "button": "evil"}, 1280, 720)
    assert move == {"type": "mouseMoved", "x": 12.5, "y": 0, "modifiers": 0, "button": "none", "buttons": 0}
    wheel = mouse_event({"op": "wheel", "x": 10, "y": 20, "dy": 120}, 1280, 720)
    assert wheel == {"type": "mouseWheel", "x": 10, "y": 20, "deltaX": 0, "deltaY": 120, "modifiers": 0}
    assert mouse_event({"op": "mouse", "type": "drag"}, 1280, 720) is None


def test_live_settings_are_read_once_and_checked():
    config = LiveConfig.from_settings(Settings())
    assert (config.enabled, config.max_pages, config.timeout, config.jpeg_quality) == (True, 1, 1800.0, 60)
    assert not LiveConfig.from_settings(Settings({"HITL_LIVE_MAX_PAGES": 0})).enabled
    assert not LiveConfig.from_settings(Settings({"HITL_LIVE_ENABLED": False})).enabled
    with pytest.raises(ValueError, match="HITL_LIVE_TIMEOUT must be greater than 0"):
        LiveConfig.from_settings(Settings({"HITL_LIVE_TIMEOUT": 0}))
    with pytest.raises(ValueError, match="HITL_LIVE_JPEG_QUALITY must be between 1 and 100"):
        LiveConfig.from_settings(Settings({"HITL_LIVE_JPEG_QUALITY": 101}))
    with pytest.raises(ValueError, match="HITL_LIVE_MAX_PAGES must be 0 or more"):
        LiveConfig.from_settings(Settings({"HITL_LIVE_MAX_PAGES": -1}))
