"""The live-session store contract, run against every backend (memory and real Redis)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from vtax.live.memory import MemoryLiveStore
from vtax.live.model import LiveParticipant, LiveSession
from vtax.live.redis_store import RedisLiveStore

REDIS_URL = "redis://127.0.0.1:6379/0"
BUFFER_BYTES = 64 * 1024


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        yield MemoryLiveStore(buffer_size=4, buffer_bytes=BUFFER_BYTES)
        return
    prefix = f"vtaxtest:{uuid.uuid4().hex[:8]}:"
    redis = Redis.from_url(REDIS_URL)
    store = RedisLiveStore(redis, prefix, buffer_size=4, buffer_bytes=BUFFER_BYTES)
    try:
        yield store
    finally:
        async for key in redis.scan_iter(match=prefix + "*"):
            await redis.delete(key)
        await store.close()


def session(sid="s1"):
    s = LiveSession(
        id=sid, agent_id="a1", taxpayer_id="t1", started_at=100.0, info={"category": "invoices"}
    )
    s.participants = {
        "pt": LiveParticipant("pt", "taxpayer", "t1", "", "sid-t", "n1"),
        "pa": LiveParticipant("pa", "agent", "a1", "Agent", "sid-a", "n1"),
    }
    return s


async def test_create_get_and_index_by_subject(store):
    await store.create(session())
    got = await store.get("s1")
    assert got.participants["pa"].display_name == "Agent" and got.info == {"category": "invoices"}
    assert await store.session_of("t1") == "s1" and await store.session_of("a1") == "s1"
    assert await store.session_of("nobody") is None
    assert await store.get("nope") is None


async def test_signals_get_increasing_seq_and_go_to_the_others_only(store):
    await store.create(session())
    first = await store.append_signal("s1", "pa", None, {"type": "offer"})
    second = await store.append_signal("s1", "pt", None, {"type": "answer"})
    assert (first.seq, first.sids) == (1, ["sid-t"])
    assert (second.seq, second.sids) == (2, ["sid-a"])


async def test_outsiders_and_bad_targets_are_refused(store):
    await store.create(session())
    assert await store.append_signal("s1", "intruder", None, {}) is None
    assert await store.append_signal("s1", "pa", "pa", {}) is None
    assert await store.append_signal("s1", "pa", "nobody", {}) is None
    assert await store.append_signal("nope", "pa", None, {}) is None


async def test_replay_returns_what_a_participant_missed_in_order_within_the_buffer(store):
    await store.create(session())
    for i in range(6):
        await store.append_signal("s1", "pa", None, {"type": "candidate", "n": i})
    await store.append_signal("s1", "pt", None, {"type": "answer"})
    missed = await store.replay("s1", "pt", 3)
    # buffer holds the last 4 entries: seq 4..7; seq 7 was sent by pt itself
    assert [(m["seq"], m["n"]) for m in missed] == [(4, 3), (5, 4), (6, 5)]
    assert await store.replay("s1", "pa", 0) == [{"type": "answer", "seq": 7}]


async def test_reconnect_grace_bind_and_expiry(store):
    await store.create(session())
    assert not await store.mark_reconnecting("s1", "pt", "old-sid", 50.0)  # not bound to it
    assert await store.mark_reconnecting("s1", "pt", "sid-t", 50.0)
    # while reconnecting, signals to it are buffered but not sent
    sent = await store.append_signal("s1", "pa", None, {"type": "candidate"})
    assert sent.sids == []
    assert await store.claim_expired(49.0) == []
    assert await store.bind("s1", "pt", "sid-new", "n2")
    got = await store.get("s1")
    assert (got.participants["pt"].sid, got.participants["pt"].state) == ("sid-new", "connected")
    assert await store.claim_expired(100.0) == []  # bound again: no expiry
    await store.mark_reconnecting("s1", "pt", "sid-new", 60.0)
    assert await store.claim_expired(61.0) == [("s1", "pt")]
    assert await store.claim_expired(62.0) == []  # taken once


async def test_end_happens_once_and_clears_the_index(store):
    await store.create(session())
    ended = await store.claim_end("s1")
    assert ended is not None and set(ended.participants) == {"pt", "pa"}
    assert await store.claim_end("s1") is None
    assert await store.get("s1") is None and await store.session_of("t1") is None


async def test_concurrent_ends_end_once_and_leave_no_deadline_or_node_membership(store):
    await store.create(session())
    assert await store.mark_reconnecting("s1", "pt", "sid-t", 50.0)
    results = await asyncio.gather(*(store.claim_end("s1") for _ in range(20)))
    assert sum(r is not None for r in results) == 1
    assert await store.claim_expired(1e9) == []
    assert await store.participants_on_node("n1") == []


async def test_end_keeps_the_index_of_a_newer_session_of_the_same_subject(store):
    await store.create(session("s1"))
    newer = session("s2")
    newer.participants = {"pt2": LiveParticipant("pt2", "taxpayer", "t1", "", "sid-t2", "n1")}
    await store.create(newer)  # the taxpayer is in s2 now (s1 is ending)
    assert await store.claim_end("s1") is not None
    assert await store.session_of("t1") == "s2"
    assert await store.session_of("a1") is None


async def test_hidden_participants_can_be_added_and_removed(store):
    await store.create(session())
    rec = LiveParticipant("pr", "recorder", "rec-1", "", "sid-r", "n1")
    assert await store.add_participant("s1", rec)
    to_rec = await store.append_signal("s1", "pt", "pr", {"type": "offer"})
    assert to_rec.sids == ["sid-r"]
    assert await store.remove_participant("s1", "pr")
    assert await store.append_signal("s1", "pt", "pr", {}) is None
    assert not await store.add_participant("nope", rec)


async def test_a_participant_created_reconnecting_expires(store):
    s = session()
    s.participants["pt"].sid, s.participants["pt"].state = None, "reconnecting"
    s.participants["pt"].deadline = 10.0
    await store.create(s)
    assert await store.claim_expired(11.0) == [("s1", "pt")]


async def test_connections_know_their_node(store):
    await store.register_connection("sid-x", "n7")
    assert await store.node_of("sid-x") == "n7"
    await store.unregister_connection("sid-x")
    assert await store.node_of("sid-x") is None


async def test_dead_nodes_are_claimed_once_with_their_participants():
    import uuid as _uuid

    from redis.asyncio import Redis as _Redis

    prefix = f"vtaxtest:{_uuid.uuid4().hex[:8]}:"
    redis = _Redis.from_url(REDIS_URL)
    store = RedisLiveStore(redis, prefix)
    try:
        await store.create(session())
        await store.node_heartbeat("n1", 100.0)
        await store.node_heartbeat("n2", 108.0)
        assert await store.claim_dead_nodes(110.0, 5.0) == ["n1"]
        assert await store.claim_dead_nodes(110.0, 5.0) == []
        assert sorted(await store.participants_on_node("n1")) == [
            ("s1", "pa", "sid-a"),
            ("s1", "pt", "sid-t"),
        ]
    finally:
        async for key in redis.scan_iter(match=prefix + "*"):
            await redis.delete(key)
        await store.close()


async def test_the_resume_buffer_is_bounded_in_bytes_too(store):
    """One participant sending big signals cannot make the other's resume answer huge: the
    oldest entries go once the buffer's bytes exceed the bound (the newest always stays)."""
    await store.create(session())
    big = "x" * 30_000
    for i in range(3):
        await store.append_signal("s1", "pa", None, {"type": "offer", "data": {"sdp": big, "i": i}})
    replay = await store.replay("s1", "pt", 0)
    assert [m["data"]["i"] for m in replay] == [1, 2]  # 3 x 30 KB > 64 KiB: the first went
    assert sum(len(m["data"]["sdp"]) for m in replay) <= BUFFER_BYTES
    small = await store.append_signal("s1", "pa", None, {"type": "candidate", "data": {}})
    assert [m["seq"] for m in await store.replay("s1", "pt", 0)] == [2, 3, small.seq]


async def test_the_generation_marker_is_set_once_and_changes_only_when_the_data_is_lost(store):
    assert await store.epoch("first") == ("first", True)
    assert await store.epoch("second") == ("first", False)  # another node: the same marker
    if isinstance(store, RedisLiveStore):  # the data lost (a Redis restarted empty)
        await store.redis.delete(f"{store.p}live:epoch")
        assert await store.epoch("third") == ("third", True)
        assert await store.epoch("fourth") == ("third", False)


async def test_a_sessions_open_invitations_are_taken_once_when_it_ends(store):
    for i, sid in enumerate(("s1", "s1", "s2")):
        await store.put_invite(f"inv-{i}", {"id": f"inv-{i}", "session_id": sid}, 1e12)
    await store.take_invite("inv-1")  # answered before the end: not withdrawn again
    assert [i["id"] for i in await store.take_session_invites("s1")] == ["inv-0"]
    assert await store.take_session_invites("s1") == []
    assert await store.get_invite("inv-0") is None
    assert await store.claim_expired_invites(2e12) == [{"id": "inv-2", "session_id": "s2"}]
    assert await store.take_session_invites("s2") == []
