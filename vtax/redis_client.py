"""Redis clients whose pools wait for a free connection instead of failing.

redis-py 8 gives `Redis.from_url` a pool of at most 100 connections that raises
`MaxConnectionsError` the moment a 101st command is in flight. On a busy node (hundreds of
clients, one core) that happens in a burst of joins and hang-ups, and a failed command there
is a lost registration or a refused join. A `BlockingConnectionPool` makes the burst wait for
a connection (a transaction holds one from WATCH to EXEC) and fails only after `timeout_s`.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

# python-socketio's AsyncRedisManager builds its own client with `Redis.from_url(url,
# **redis_options)`, a non-blocking pool; when a publish fails twice it logs "giving up" and
# the message is lost. Its pool gets a ceiling far above any burst a node can produce.
SOCKETIO_MAX_CONNECTIONS = 2048


def connect(
    url: str, *, max_connections: int, timeout_s: float = 10.0, decode_responses: bool = False
) -> Redis:
    """A client on a blocking pool of at most `max_connections` connections."""
    pool: Any = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        decode_responses=decode_responses,
    )
    return Redis.from_pool(pool)
