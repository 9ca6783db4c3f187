"""Redis live-session store: the nodes of a scaled-out deployment share sessions, so a
participant on node A talks to one on node B and can resume on any node. Every multi-key
change is one Lua script (atomic); no KEYS, no SCAN on the hot path."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from vtax.live import keys
from vtax.live.model import AMBIGUOUS, VISIBLE_ROLES, LiveParticipant, LiveSession, SignalAppend

SESSION_TTL_S = 24 * 3600  # a safety net: a session's keys never outlive a day

_APPEND = """
local parts = redis.call('HGETALL', KEYS[1])
if #parts == 0 then return nil end
local sender, to = ARGV[1], ARGV[2]
if redis.call('HEXISTS', KEYS[1], sender) == 0 then return nil end
if to ~= '' and (to == sender or redis.call('HEXISTS', KEYS[1], to) == 0) then return nil end
-- ARGV[7]: the visible roles, space-separated; without `to`, the one other visible participant
local visible = {}
for role in string.gmatch(ARGV[7], '%S+') do visible[role] = true end
local targets, sids = {}, {}
for i = 1, #parts, 2 do
  local pid = parts[i]
  if pid ~= sender and (to == '' or to == pid) then
    local p = cjson.decode(parts[i + 1])
    if to ~= '' or visible[p.role] then
      targets[#targets + 1] = pid
      if p.state == 'connected' and type(p.sid) == 'string' then sids[#sids + 1] = p.sid end
    end
  end
end
if to == '' and #targets ~= 1 then return {0} end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local entry = cjson.encode({t = targets, s = seq, m = ARGV[3]})
redis.call('RPUSH', KEYS[3], entry)
-- Bounded in count (ARGV[4]) and in bytes (ARGV[6]): drop the oldest; the newest stays.
local bytes = redis.call('HINCRBY', KEYS[2], 'bufbytes', #entry)
local n = redis.call('LLEN', KEYS[3])
local max_n, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[6])
while n > 1 and (n > max_n or bytes > max_bytes) do
  local old = redis.call('LPOP', KEYS[3])
  bytes = redis.call('HINCRBY', KEYS[2], 'bufbytes', -#old)
  n = n - 1
end
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[5]))
local out = {seq}
for i = 1, #sids do out[#out + 1] = sids[i] end
return out
"""

# KEYS: parts, deadlines, new node set; ARGV: pid, sid, node, member, old-node-set prefix
_BIND = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local p = cjson.decode(raw)
if type(p.node) == 'string' and p.node ~= '' and p.node ~= ARGV[3] then
  redis.call('SREM', ARGV[5] .. p.node, ARGV[4])
end
p.sid, p.node, p.state, p.deadline = ARGV[2], ARGV[3], 'connected', 0
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(p))
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[4])
return 1
"""

# KEYS: parts, deadlines; ARGV: pid, sid, deadline, member
_RECONNECTING = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local p = cjson.decode(raw)
if p.sid ~= ARGV[2] then return 0 end
p.state, p.deadline = 'reconnecting', tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(p))
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[4])
return 1
"""

# KEYS: zset; ARGV: max score, limit -> the members taken (removed) by this caller
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due do redis.call('ZREM', KEYS[1], due[i]) end
return due
"""


# KEYS: meta, parts, buffer, deadlines; ARGV: session id, node-set prefix, subject prefix
# -> nil if another caller ended it first, else {meta pairs, participant pairs}
_CLAIM_END = """
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return nil end
local parts = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
for i = 1, #parts, 2 do
  local member = ARGV[1] .. '|' .. parts[i]
  local p = cjson.decode(parts[i + 1])
  redis.call('ZREM', KEYS[4], member)
  if type(p.node) == 'string' and p.node ~= '' then
    redis.call('SREM', ARGV[2] .. p.node, member)
  end
  if p.role == 'taxpayer' or p.role == 'agent' or p.role == 'supervisor' then
    local index = ARGV[3] .. p.subject
    if redis.call('GET', index) == ARGV[1] then redis.call('DEL', index) end
  end
end
return {meta, parts}
"""


# KEYS: parts, deadlines, subject index; ARGV: pid, member, session id -> 1 if removed
_REMOVE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
local p = cjson.decode(raw)
if type(p.subject) == 'string' then
  local index = KEYS[3] .. p.subject
  if redis.call('GET', index) == ARGV[3] then redis.call('DEL', index) end
end
return 1
"""


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _member(session_id: str, participant_id: str) -> str:
    return f"{session_id}|{participant_id}"


class RedisLiveStore:
    def __init__(
        self,
        redis: Redis,
        prefix: str = "vtax:",
        buffer_size: int = 256,
        buffer_bytes: int = 256 * 1024,
    ) -> None:
        self.redis = redis
        self.p = prefix
        self.buffer_size = buffer_size
        self.buffer_bytes = buffer_bytes
        self._append = redis.register_script(_APPEND)
        self._bind = redis.register_script(_BIND)
        self._reconnecting = redis.register_script(_RECONNECTING)
        self._claim_due = redis.register_script(_CLAIM_DUE)
        self._claim_end = redis.register_script(_CLAIM_END)
        self._remove = redis.register_script(_REMOVE)

    async def create(self, session: LiveSession) -> None:
        p = self.p
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.session(p, session.id),
                mapping={
                    "id": session.id,
                    "agent_id": session.agent_id,
                    "taxpayer_id": session.taxpayer_id,
                    "started_at": repr(session.started_at),
                    "seq": session.seq,
                    "info": json.dumps(session.info),
                },
            )
            pipe.hset(
                keys.participants(p, session.id),
                mapping={pid: json.dumps(x.to_dict()) for pid, x in session.participants.items()},
            )
            for x in session.participants.values():
                if x.node:
                    pipe.sadd(keys.node_participants(p, x.node), _member(session.id, x.id))
                if x.state == "reconnecting":
                    pipe.zadd(keys.deadlines(p), {_member(session.id, x.id): x.deadline})
            for x in session.media_participants():
                pipe.set(keys.subject(p, x.subject), session.id, ex=SESSION_TTL_S)
            pipe.expire(keys.session(p, session.id), SESSION_TTL_S)
            pipe.expire(keys.participants(p, session.id), SESSION_TTL_S)
            await pipe.execute()

    async def get(self, session_id: str) -> LiveSession | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.session(self.p, session_id))
            pipe.hgetall(keys.participants(self.p, session_id))
            meta, parts = await pipe.execute()
        return self._session(meta, parts)

    @staticmethod
    def _session(meta: dict[bytes, bytes], parts: dict[bytes, bytes]) -> LiveSession | None:
        if not meta:
            return None
        m = {k.decode(): v.decode() for k, v in meta.items()}
        session = LiveSession(
            id=m["id"],
            agent_id=m["agent_id"],
            taxpayer_id=m["taxpayer_id"],
            started_at=float(m["started_at"]),
            seq=int(m.get("seq", 0)),
            info=json.loads(m.get("info", "{}")),
        )
        for pid, raw in parts.items():
            session.participants[pid.decode()] = LiveParticipant(**json.loads(raw))
        return session

    async def session_of(self, subject: str) -> str | None:
        value = await self.redis.get(keys.subject(self.p, subject))
        return value.decode() if isinstance(value, bytes) else value

    async def add_participant(self, session_id: str, participant: LiveParticipant) -> bool:
        if not await self.redis.exists(keys.session(self.p, session_id)):
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.participants(self.p, session_id),
                participant.id,
                json.dumps(participant.to_dict()),
            )
            if participant.node:
                pipe.sadd(
                    keys.node_participants(self.p, participant.node),
                    _member(session_id, participant.id),
                )
            if participant.role in VISIBLE_ROLES:
                pipe.set(keys.subject(self.p, participant.subject), session_id, ex=SESSION_TTL_S)
            await pipe.execute()
        return True

    async def remove_participant(self, session_id: str, participant_id: str) -> bool:
        """Remove one participant, its grace deadline and (where it names this session) its
        subject index, in one script."""
        removed = await self._remove(
            keys=[
                keys.participants(self.p, session_id),
                keys.deadlines(self.p),
                keys.subject(self.p, ""),
            ],
            args=[participant_id, _member(session_id, participant_id), session_id],
        )
        return bool(removed)

    async def set_owner(self, session_id: str, agent_id: str) -> bool:
        key = keys.session(self.p, session_id)
        if not await self.redis.exists(key):
            return False
        await self.redis.hset(key, "agent_id", agent_id)  # type: ignore[misc]
        return True

    async def put_invite(self, invite_id: str, invite: dict[str, Any], expires_at: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.invite(self.p, invite_id), json.dumps(invite), ex=SESSION_TTL_S)
            pipe.zadd(keys.invite_deadlines(self.p), {invite_id: expires_at})
            mine = keys.session_invites(self.p, str(invite["session_id"]))
            pipe.sadd(mine, invite_id)
            pipe.expire(mine, SESSION_TTL_S)
            await pipe.execute()

    async def get_invite(self, invite_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.invite(self.p, invite_id))
        return json.loads(raw) if raw else None

    async def take_invite(self, invite_id: str) -> dict[str, Any] | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.getdel(keys.invite(self.p, invite_id))
            pipe.zrem(keys.invite_deadlines(self.p), invite_id)
            raw, _ = await pipe.execute()
        if not raw:
            return None
        invite: dict[str, Any] = json.loads(raw)
        await self.redis.srem(  # type: ignore[misc]
            keys.session_invites(self.p, str(invite["session_id"])), invite_id
        )
        return invite

    async def claim_expired_invites(self, now: float) -> list[dict[str, Any]]:
        taken = await self._claim_due(keys=[keys.invite_deadlines(self.p)], args=[repr(now), 100])
        out = []
        for invite_id in taken:
            raw = await self.redis.getdel(keys.invite(self.p, invite_id.decode()))
            if raw:
                invite = json.loads(raw)
                await self.redis.srem(  # type: ignore[misc]
                    keys.session_invites(self.p, str(invite["session_id"])), invite_id
                )
                out.append(invite)
        return out

    async def take_session_invites(self, session_id: str) -> list[dict[str, Any]]:
        ids = await self.redis.smembers(keys.session_invites(self.p, session_id))  # type: ignore[misc]
        out = []
        for invite_id in sorted(i.decode() if isinstance(i, bytes) else i for i in ids):
            invite = await self.take_invite(invite_id)  # GETDEL: taken once, whoever races
            if invite is not None:
                out.append(invite)
        await self.redis.delete(keys.session_invites(self.p, session_id))
        return out

    async def append_signal(
        self, session_id: str, sender_id: str, to: str | None, message: dict[str, Any]
    ) -> SignalAppend | None:
        p = self.p
        result = await self._append(
            keys=[
                keys.participants(p, session_id),
                keys.session(p, session_id),
                keys.buffer(p, session_id),
            ],
            args=[
                sender_id,
                to or "",
                json.dumps(message, separators=(",", ":")),
                self.buffer_size,
                SESSION_TTL_S,
                self.buffer_bytes,
                " ".join(VISIBLE_ROLES),
            ],
        )
        if result is None:
            return None
        seq = int(result[0])
        if seq == 0:
            return AMBIGUOUS
        message["seq"] = seq
        return SignalAppend(seq, [s.decode() for s in result[1:]])

    async def replay(
        self, session_id: str, participant_id: str, after_seq: int
    ) -> list[dict[str, Any]]:
        out = []
        for raw in await self.redis.lrange(keys.buffer(self.p, session_id), 0, -1):
            entry = json.loads(raw)
            targets = entry["t"] if isinstance(entry["t"], list) else []
            if entry["s"] > after_seq and participant_id in targets:
                message = json.loads(entry["m"])
                message["seq"] = entry["s"]
                out.append(message)
        return out

    async def bind(self, session_id: str, participant_id: str, sid: str, node: str) -> bool:
        p = self.p
        member = _member(session_id, participant_id)
        done = await self._bind(
            keys=[
                keys.participants(p, session_id),
                keys.deadlines(p),
                keys.node_participants(p, node),
            ],
            args=[participant_id, sid, node, member, keys.node_participants(p, "")],
        )
        return bool(done)

    async def mark_reconnecting(
        self, session_id: str, participant_id: str, sid: str, deadline: float
    ) -> bool:
        done = await self._reconnecting(
            keys=[keys.participants(self.p, session_id), keys.deadlines(self.p)],
            args=[participant_id, sid, repr(deadline), _member(session_id, participant_id)],
        )
        return bool(done)

    async def claim_expired(self, now: float) -> list[tuple[str, str]]:
        taken = await self._claim_due(keys=[keys.deadlines(self.p)], args=[repr(now), 100])
        pairs = []
        for member in taken:
            session_id, _, participant_id = member.decode().partition("|")
            pairs.append((session_id, participant_id))
        return pairs

    async def claim_end(self, session_id: str) -> LiveSession | None:
        """Only the caller whose script removes the meta hash ends the session; its keys, its
        grace deadlines, its node memberships and the subject index (where it still names
        this session) go in the same atomic step."""
        p = self.p
        found = await self._claim_end(
            keys=[
                keys.session(p, session_id),
                keys.participants(p, session_id),
                keys.buffer(p, session_id),
                keys.deadlines(p),
            ],
            args=[session_id, keys.node_participants(p, ""), keys.subject(p, "")],
        )
        if not found:
            return None
        meta, parts = found
        return self._session(_pairs(meta), _pairs(parts))

    async def register_connection(self, sid: str, node: str) -> None:
        await self.redis.hset(keys.connections(self.p), sid, node)  # type: ignore[misc]

    async def unregister_connection(self, sid: str) -> None:
        await self.redis.hdel(keys.connections(self.p), sid)  # type: ignore[misc]

    async def node_of(self, sid: str) -> str | None:
        value = await self.redis.hget(keys.connections(self.p), sid)  # type: ignore[misc]
        return value.decode() if isinstance(value, bytes) else value

    async def node_heartbeat(self, node: str, now: float) -> None:
        await self.redis.zadd(keys.nodes(self.p), {node: now})

    async def epoch(self, proposal: str) -> tuple[str, bool]:
        key = keys.epoch(self.p)
        created = bool(await self.redis.set(key, proposal, nx=True))
        current = await self.redis.get(key)
        if current is None:  # gone again between the two commands: this node proposes anew
            return proposal, created
        return (current.decode() if isinstance(current, bytes) else str(current)), created

    async def claim_dead_nodes(self, now: float, timeout_s: float) -> list[str]:
        taken = await self._claim_due(keys=[keys.nodes(self.p)], args=[repr(now - timeout_s), 100])
        return [t.decode() for t in taken]

    async def participants_on_node(self, node: str) -> list[tuple[str, str, str]]:
        out = []
        members: set[bytes] = await self.redis.smembers(keys.node_participants(self.p, node))  # type: ignore[misc,assignment]
        for member in members:
            session_id, _, participant_id = member.decode().partition("|")
            raw = await self.redis.hget(keys.participants(self.p, session_id), participant_id)
            if raw is None:
                continue
            x = json.loads(raw)
            if x.get("node") == node and x.get("sid"):
                out.append((session_id, participant_id, x["sid"]))
        await self.redis.delete(keys.node_participants(self.p, node))
        # Forget the dead node's connections (rare: HSCAN is fine here).
        stale = [
            sid
            async for sid, holder in self.redis.hscan_iter(keys.connections(self.p))
            if holder.decode() == node
        ]
        if stale:
            await self.redis.hdel(keys.connections(self.p), *stale)  # type: ignore[misc]
        return out

    async def close(self) -> None:
        await self.redis.aclose()
