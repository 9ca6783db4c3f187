"""The identity state's contract, run on the memory backend and on the real Redis: code
issue with the resend throttle and the window limits, tries, single use, expiry, one-time
values, replay marks, refresh families with reuse detection. Timers are shortened to
fractions of a second (both backends expire by real time)."""

from __future__ import annotations

import asyncio

from tests.conftest import poll_until
from vtax.identity.state import CodeLimits

# Margins hold on a loaded machine: what must still be there lives seconds, what must
# have gone lives a fraction of a second and is looked at later.
FAST = CodeLimits(ttl_s=5, resend_s=1.0, window_s=60, per_number=3, per_address=5)
SHORT = CodeLimits(ttl_s=0.2, resend_s=0, window_s=60, per_number=3, per_address=5)


async def test_issue_try_consume_once(state):
    assert (await state.issue_code("+8613800138000", "1.2.3.4", "d1", FAST)).status == "issued"
    first = await state.attempt_code("+8613800138000")
    assert (first.digest, first.attempts) == ("d1", 1)
    assert (await state.attempt_code("+8613800138000")).attempts == 2
    assert not await state.consume_code("+8613800138000", "other")
    results = await asyncio.gather(*(state.consume_code("+8613800138000", "d1") for _ in range(5)))
    assert sorted(results) == [False] * 4 + [True]
    assert await state.attempt_code("+8613800138000") is None


async def test_codes_expire(state):
    await state.issue_code("+85291234567", "1.2.3.4", "d", SHORT)
    await poll_until(lambda: _gone(state, "+85291234567"), timeout=3)


async def _gone(state, phone):
    return await state.attempt_code(phone) is None


async def test_resend_throttle_then_a_new_code_replaces_the_old(state):
    phone = "+85366123456"
    assert (await state.issue_code(phone, "a", "d1", FAST)).status == "issued"
    refused = await state.issue_code(phone, "a", "d2", FAST)
    assert refused.status == "throttled" and 0 < refused.retry_after_s <= 1.0
    await state.attempt_code(phone)
    await asyncio.sleep(1.05)
    assert (await state.issue_code(phone, "a", "d2", FAST)).status == "issued"
    again = await state.attempt_code(phone)
    assert (again.digest, again.attempts) == ("d2", 1)  # the tries start over


async def test_per_number_and_per_address_limits(state):
    limits = CodeLimits(ttl_s=5, resend_s=0, window_s=30, per_number=2, per_address=3)
    assert (await state.issue_code("+8613800000001", "ip1", "d", limits)).status == "issued"
    assert (await state.issue_code("+8613800000001", "ip2", "d", limits)).status == "issued"
    limited = await state.issue_code("+8613800000001", "ip3", "d", limits)
    assert limited.status == "number_limited" and 25 < limited.retry_after_s <= 30
    assert (await state.issue_code("+8613800000002", "ip1", "d", limits)).status == "issued"
    assert (await state.issue_code("+8613800000003", "ip1", "d", limits)).status == "issued"
    limited = await state.issue_code("+8613800000004", "ip1", "d", limits)
    assert limited.status == "address_limited"
    # a refused request counts toward nothing
    assert (await state.issue_code("+8613800000004", "ip9", "d", limits)).status == "issued"


async def test_window_ends(state):
    limits = CodeLimits(ttl_s=5, resend_s=0, window_s=1.0, per_number=1, per_address=10)
    await state.issue_code("+8613800000005", "ip", "d", limits)
    assert (await state.issue_code("+8613800000005", "ip", "d", limits)).status != "issued"
    await asyncio.sleep(1.05)
    assert (await state.issue_code("+8613800000005", "ip", "d", limits)).status == "issued"


async def test_burn(state):
    await state.issue_code("+8613800000006", "ip", "d", FAST)
    await state.burn_code("+8613800000006")
    assert await state.attempt_code("+8613800000006") is None


async def test_once_values_are_taken_once_and_expire(state):
    await state.put_once("oidc", "s1", '{"nonce": "n"}', 5)
    results = await asyncio.gather(*(state.take_once("oidc", "s1") for _ in range(4)))
    assert sorted(r or "" for r in results) == ["", "", "", '{"nonce": "n"}']
    await state.put_once("oidc", "s2", "v", 0.1)
    await asyncio.sleep(0.15)
    assert await state.take_once("oidc", "s2") is None
    assert await state.take_once("kiosk", "s1") is None  # kinds are apart


async def test_claim_once(state):
    claims = await asyncio.gather(*(state.claim_once("jti", "x", 5) for _ in range(4)))
    assert sorted(claims) == [False, False, False, True]
    assert await state.claim_once("jti", "y", 0.1)
    await asyncio.sleep(0.15)
    assert await state.claim_once("jti", "y", 0.1)


async def test_refresh_family_rotation_and_reuse(state):
    await state.put_family("f1", '{"p": 1}', "t1", 5)
    rotated = await state.rotate_family("f1", "t1", "t2", 5)
    assert (rotated.status, rotated.record) == ("rotated", '{"p": 1}')
    # t1 again: a copy is in use; the whole family goes, t2 with it
    assert (await state.rotate_family("f1", "t1", "t3", 5)).status == "reused"
    assert (await state.rotate_family("f1", "t2", "t3", 5)).status == "unknown"


async def test_concurrent_rotations_one_wins(state):
    await state.put_family("f2", "{}", "t1", 5)
    results = await asyncio.gather(*(state.rotate_family("f2", "t1", f"n{i}", 5) for i in range(4)))
    statuses = sorted(r.status for r in results)
    # one rotates; the next presents a rotated token (reuse: the family goes); the rest
    # find no family
    assert statuses == ["reused", "rotated", "unknown", "unknown"]


async def test_family_expires_and_drops(state):
    await state.put_family("f3", "{}", "t1", 0.1)
    await asyncio.sleep(0.15)
    assert (await state.rotate_family("f3", "t1", "t2", 5)).status == "unknown"
    await state.put_family("f4", "{}", "t1", 5)
    await state.drop_family("f4")
    assert (await state.rotate_family("f4", "t1", "t2", 5)).status == "unknown"


async def test_family_alive(state):
    await state.put_family("f5", "{}", "t1", 5)
    assert await state.family_alive("f5")
    await state.drop_family("f5")
    assert not await state.family_alive("f5")


async def test_member_sets(state):
    await state.add_member("sid", "s1", "f1", 5)
    await state.add_member("sid", "s1", "f2", 5)
    await state.add_member("sid", "s1", "f1", 5)
    await state.add_member("sid", "s2", "f3", 5)
    assert await state.take_members("sid", "s1") == ["f1", "f2"]
    assert await state.take_members("sid", "s1") == []
    assert await state.take_members("sub", "s2") == []
    await state.add_member("sid", "s3", "f4", 0.1)
    await asyncio.sleep(0.15)
    assert await state.take_members("sid", "s3") == []


async def test_hit_windows(state):
    assert [await state.hit("kiosk", "k1", 3, 1.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await state.hit("kiosk", "k1", 3, 1.0)
    assert 0 < wait <= 1.0
    assert await state.hit("kiosk", "k2", 3, 1.0) == 0.0  # keys are apart
    assert await state.hit("oidc", "k1", 3, 1.0) == 0.0  # kinds too
    await asyncio.sleep(1.05)
    assert await state.hit("kiosk", "k1", 3, 1.0) == 0.0
