"""The live view: a reviewer solves a captcha in the crawler's own browser page (docs/live.md).

- :mod:`~scrapy_hitl.live.holder`: the crawler keeps a captcha page open and carries on from it.
- :mod:`~scrapy_hitl.live.screencast`: that page's frames out and the reviewer's input in (CDP).
- :mod:`~scrapy_hitl.live.relay`: the Redis keys and messages between crawler and console.
- :mod:`~scrapy_hitl.live.tokens`: one-time tokens that let one reviewer watch and drive it.
"""
