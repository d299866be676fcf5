"""Commands that may start the embedded Redis (``hitl status``, ``hitl interventions ...``,
``hitl console``) leave nothing running behind the user's back: when a command started the
server and nothing else uses it, it stops it again (the AOF keeps every event and parked
request for the next start); when others use it by then, it says so and how to stop it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

from scrapy_hitl.state.redis_server import EmbeddedRedis

if TYPE_CHECKING:
    from scrapy_hitl.config import StateConfig


class StartedHere:
    """Note whether the embedded Redis runs before a command; :meth:`finish` after it."""

    def __init__(self, config: StateConfig) -> None:
        self.embedded = None if config.redis_url else EmbeddedRedis(config.data_dir, server=config.redis_server)
        self.was_running = self.embedded is None or self.embedded.is_running()

    def finish(self) -> str | None:
        """Once the command closed its own connections: stop the server it started if no other
        client uses it, else answer a note that it keeps running (None when there is nothing to say)."""
        if self.was_running or self.embedded is None or not self.embedded.is_running():
            return None
        try:
            client = self.embedded.client()
            try:
                mine = str(client.client_id())
                others = [c for c in client.client_list() if str(c.get("id")) != mine]
            finally:
                client.close()
        except redis.RedisError:
            others = [{}]
        if not others:
            self.embedded.stop()
            return None
        return (f"This command started the embedded Redis of {self.embedded.data_dir}; other processes use it "
                "now (a crawl, the console), so it keeps running. `hitl down` stops it.")
