"""The memory backend forgets what expired (bounded memory on a long-running node)."""

from __future__ import annotations

from vtax.identity.state import CodeLimits, MemoryIdentityState


async def test_expired_entries_are_swept():
    now = [0.0]
    state = MemoryIdentityState(clock=lambda: now[0])
    limits = CodeLimits(ttl_s=5, resend_s=5, window_s=5, per_number=10, per_address=10_000)
    for i in range(600):
        await state.issue_code(f"+86138{i:08d}", "ip", "d", limits)
        await state.put_once("oidc", str(i), "v", 5)
        await state.put_family(f"f{i}", "{}", "t", 5)
        await state.add_member("sid", str(i), "f", 5)
    assert len(state._codes) == 600 and len(state._families) == 600
    now[0] = 10.0
    for i in range(1000):  # the sweep runs every 1000 operations
        await state.claim_once("jti", str(i), 1)
    assert not state._codes and not state._families and not state._sets
    assert not state._marks and not state._counts
    assert not [k for k in state._once if k[0] == "oidc"]
