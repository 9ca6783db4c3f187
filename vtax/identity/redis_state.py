"""`IdentityState` over Redis: each operation one Lua script (or one atomic command), so the
nodes share codes, throttles, one-time values and refresh families."""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from vtax.identity import keys
from vtax.identity.state import Attempt, CodeLimits, Issued, IssueStatus, Rotated

_ISSUE = """
local wait = redis.call('PTTL', KEYS[2])
if wait > 0 then return {'throttled', wait} end
local n = tonumber(redis.call('GET', KEYS[3]) or '0')
if n >= tonumber(ARGV[4]) then return {'number_limited', redis.call('PTTL', KEYS[3])} end
local a = tonumber(redis.call('GET', KEYS[4]) or '0')
if a >= tonumber(ARGV[5]) then return {'address_limited', redis.call('PTTL', KEYS[4])} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'a', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[3]) end
if redis.call('INCR', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[6]) end
if redis.call('INCR', KEYS[4]) == 1 then redis.call('PEXPIRE', KEYS[4], ARGV[6]) end
return {'issued', 0}
"""

_ATTEMPT = """
local h = redis.call('HGET', KEYS[1], 'h')
if not h then return false end
return {h, redis.call('HINCRBY', KEYS[1], 'a', 1)}
"""

_CONSUME = """
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_ROTATE = """
local cur = redis.call('HGET', KEYS[1], 'cur')
if not cur then return {'unknown', ''} end
if cur ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {'reused', ''}
end
redis.call('HSET', KEYS[1], 'cur', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'rotated', redis.call('HGET', KEYS[1], 'rec')}
"""


_TAKE_SET = """
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members
"""


_HIT = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return math.max(redis.call('PTTL', KEYS[1]), 1) end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisIdentityState:
    def __init__(self, redis: Redis, prefix: str = "vtax:") -> None:
        self.redis, self.p = redis, prefix
        self._issue = redis.register_script(_ISSUE)
        self._attempt = redis.register_script(_ATTEMPT)
        self._consume = redis.register_script(_CONSUME)
        self._rotate = redis.register_script(_ROTATE)
        self._take_set = redis.register_script(_TAKE_SET)
        self._hit = redis.register_script(_HIT)

    async def issue_code(self, phone: str, address: str, digest: str, limits: CodeLimits) -> Issued:
        status, wait_ms = await self._issue(
            keys=[
                keys.code(self.p, phone),
                keys.resend(self.p, phone),
                keys.number_count(self.p, phone),
                keys.address_count(self.p, address),
            ],
            args=[
                digest,
                _ms(limits.ttl_s),
                int(limits.resend_s * 1000),  # 0: no throttle
                limits.per_number,
                limits.per_address,
                _ms(limits.window_s),
            ],
        )
        return Issued(cast(IssueStatus, _s(status)), max(0, int(wait_ms)) / 1000)

    async def attempt_code(self, phone: str) -> Attempt | None:
        found = await self._attempt(keys=[keys.code(self.p, phone)])
        if not found:
            return None
        return Attempt(_s(found[0]), int(found[1]))

    async def consume_code(self, phone: str, digest: str) -> bool:
        return bool(await self._consume(keys=[keys.code(self.p, phone)], args=[digest]))

    async def burn_code(self, phone: str) -> None:
        await self.redis.delete(keys.code(self.p, phone))

    async def put_once(self, kind: str, key: str, value: str, ttl_s: float) -> None:
        await self.redis.set(keys.once(self.p, kind, key), value, px=_ms(ttl_s))

    async def take_once(self, kind: str, key: str) -> str | None:
        value = await self.redis.getdel(keys.once(self.p, kind, key))
        return None if value is None else _s(value)

    async def claim_once(self, kind: str, key: str, ttl_s: float) -> bool:
        return bool(await self.redis.set(keys.once(self.p, kind, key), "1", px=_ms(ttl_s), nx=True))

    async def put_family(self, family: str, record: str, current: str, ttl_s: float) -> None:
        k = keys.family(self.p, family)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(k)
            pipe.hset(k, mapping={"rec": record, "cur": current})
            pipe.pexpire(k, _ms(ttl_s))
            await pipe.execute()

    async def rotate_family(self, family: str, presented: str, new: str, ttl_s: float) -> Rotated:
        status, record = await self._rotate(
            keys=[keys.family(self.p, family)], args=[presented, new, _ms(ttl_s)]
        )
        status = _s(status)
        if status == "rotated":
            return Rotated("rotated", _s(record))
        return Rotated("reused" if status == "reused" else "unknown")

    async def drop_family(self, family: str) -> None:
        await self.redis.delete(keys.family(self.p, family))

    async def family_alive(self, family: str) -> bool:
        return bool(await self.redis.exists(keys.family(self.p, family)))

    async def add_member(self, kind: str, key: str, member: str, ttl_s: float) -> None:
        k = keys.members(self.p, kind, key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(k, member)
            pipe.pexpire(k, _ms(ttl_s))
            await pipe.execute()

    async def take_members(self, kind: str, key: str) -> list[str]:
        members = await self._take_set(keys=[keys.members(self.p, kind, key)])
        return sorted(_s(m) for m in members)

    async def hit(self, kind: str, key: str, limit: int, window_s: float) -> float:
        wait_ms = await self._hit(keys=[keys.hits(self.p, kind, key)], args=[limit, _ms(window_s)])
        return int(wait_ms) / 1000
