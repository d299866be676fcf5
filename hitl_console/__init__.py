"""hitl_console: everything that serves humans and agents (the ``hitl`` CLI for now).

It imports ``scrapy_hitl``'s state layer; ``scrapy_hitl`` never imports this package.
"""
