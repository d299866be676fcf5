"""The state layer both the crawler and the console share.

``HitlState.open(config)`` gives one object with the database, Redis, the event stream, the
parking lot and the session vault. Service functions (``interventions``, ``runs``,
``domains``) take it and do the work; the CLI, the console and the crawler call the same ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from scrapy_hitl.state import lazy_mapping

lazy_mapping.install()  # before any model module is imported: see lazy_mapping

from scrapy_hitl.state.db import Database, SchemaError  # noqa: E402
from scrapy_hitl.state.events import EventStream  # noqa: E402
from scrapy_hitl.state.parking import ParkingLot  # noqa: E402
from scrapy_hitl.state.redis_server import RedisUnavailable, connect, persistence_warning  # noqa: E402
from scrapy_hitl.state.vault import SessionVault  # noqa: E402

if TYPE_CHECKING:
    import redis

    from scrapy_hitl.config import StateConfig

__all__ = ["HitlState", "RedisUnavailable", "SchemaError"]

logger = logging.getLogger(__name__)


@dataclass
class HitlState:
    config: StateConfig
    db: Database
    redis: redis.Redis
    events: EventStream
    parking: ParkingLot
    vault: SessionVault

    @classmethod
    def open(
        cls,
        config: StateConfig,
        *,
        start_redis: bool = True,
        create_schema: bool = True,
        events_maxlen: int = 100_000,
    ) -> HitlState:
        """Connect (starting the embedded Redis if needed) and check the schema.

        Raises RedisUnavailable or SchemaError with a message that says what to do.
        """
        client = connect(config.redis_url, config.data_dir, start_embedded=start_redis,
                         server=config.redis_server)
        warning = persistence_warning(client)
        if warning:
            logger.warning(warning)
        db = Database(config.database_url)
        db.ensure_schema(create_if_empty=create_schema)
        return cls(
            config=config,
            db=db,
            redis=client,
            events=EventStream(client, maxlen=events_maxlen),
            parking=ParkingLot(client),
            vault=SessionVault(db, partial(_vault_fernet, config.secret_key)),
        )

    def close(self) -> None:
        self.db.dispose()
        self.redis.close()


def _vault_fernet(secret_key: str) -> Any:
    from scrapy_hitl.state.crypto import fernet_for  # cryptography: once a session is stored or read

    return fernet_for(secret_key)
