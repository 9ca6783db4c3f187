"""Taxpayer tokens: acting for an enterprise only under a grant in force, refresh with
rotation and reuse detection, sign-out of one sign-in or everywhere, a disabled person's
tokens dead at once, step-up by level and age. On both state backends."""

from __future__ import annotations

import time
from datetime import date

import pytest
import sqlalchemy as sa

from tests.identity.numbers import resident_id
from tests.identity.world import ACME, BETA, OTHER, TODAY, WANG_PHONE, make_world
from vtax.app.identity import IdentityError
from vtax.auth import Principal, TokenIssuer, Unauthorized
from vtax.contract.identity import ActFor, Logout, Refresh
from vtax.identity.tokens import SignIn


@pytest.fixture
async def world(sqlite_db, state):
    return await make_world(sqlite_db, state)


async def signed_in(world, acr=3, auth_time=None):
    person = await world.db.registry.person_by_phone(WANG_PHONE)
    return await world.signin.start(person, SignIn("sms", acr, auth_time or time.time()))


def option(session, uscc, role):
    return next(o for o in session.options if o.uscc == uscc and o.role == role)


async def test_a_signed_in_person_is_a_taxpayer_of_the_sessions(world):
    s = await signed_in(world)
    async with world.db.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT id_type, id_number, name FROM taxpayers WHERE id = :id"),
                {"id": s.person.person_id},
            )
        ).one()
    assert tuple(row) == ("resident_id", resident_id(), "Wang Fang")
    await signed_in(world)  # a second sign-in finds it


async def test_act_for_an_enterprise_under_a_grant(world):
    s = await signed_in(world)
    me = await world.signin.authenticate(s.access_token)
    assert (me.role, me.acting_for, me.method, me.acr) == ("taxpayer", "", "sms", 3)
    acme = option(s, ACME, "legal_representative")
    acting = await world.signin.act_for(
        ActFor(
            refresh_token=s.refresh_token,
            enterprise_id=acme.enterprise_id,
            role="legal_representative",
        )
    )
    assert acting.acting.uscc == ACME and acting.acting.role == "legal_representative"
    p = await world.signin.authenticate(acting.access_token)
    assert (p.acting_for, p.acting_role, p.subject) == (
        acme.enterprise_id,
        "legal_representative",
        me.subject,
    )
    assert p.auth_time == me.auth_time  # the sign-in is the same one


async def test_no_act_for_without_a_grant(world):
    s = await signed_in(world)
    beta = option(s, BETA, "tax_handler")
    for enterprise, role in (
        (beta.enterprise_id, "legal_representative"),
        ("0" * 36, "tax_handler"),
    ):
        with pytest.raises(IdentityError) as e:
            await world.signin.act_for(
                ActFor(refresh_token=s.refresh_token, enterprise_id=enterprise, role=role)
            )
        assert e.value.code == "act_for_denied"
    # the refused switch left the refresh token usable
    assert (await world.signin.refresh(Refresh(refresh_token=s.refresh_token))).acting is None


async def test_knowing_another_enterprise_gives_nothing(world):
    s = await signed_in(world)
    other = await world.db.registry.person_by_document("passport", "UTO:L898902C3")
    other_grants = await world.db.registry.active_grants(other.id, TODAY)
    assert other_grants[0].uscc == OTHER
    with pytest.raises(IdentityError) as e:
        await world.signin.act_for(
            ActFor(
                refresh_token=s.refresh_token,
                enterprise_id=other_grants[0].enterprise_id,
                role="legal_representative",
            )
        )
    assert e.value.code == "act_for_denied"


async def test_a_forged_act_claim_is_refused(world):
    s = await signed_in(world)
    p = await world.signin.authenticate(s.access_token)
    other = await world.db.registry.person_by_document("passport", "UTO:L898902C3")
    (g,) = await world.db.registry.active_grants(other.id, TODAY)
    claims = {"amr": "sms", "acr": 3, "auth_time": int(p.auth_time), "ver": p.version}
    # signed with the real key (an insider bug): the grant check still refuses it
    token = world.issuer.issue(
        p.subject, "taxpayer", claims={**claims, "act": g.enterprise_id, "act_role": g.role}
    )
    with pytest.raises(IdentityError):
        await world.signin.authenticate(token)
    forged = TokenIssuer("another-key-" * 3, 60).issue(p.subject, "taxpayer", claims=claims)
    with pytest.raises(IdentityError):
        await world.signin.authenticate(forged)


async def test_refresh_rotates_and_reuse_revokes_the_family(world):
    s = await signed_in(world)
    r1 = await world.signin.refresh(Refresh(refresh_token=s.refresh_token))
    assert r1.refresh_token != s.refresh_token
    with pytest.raises(IdentityError) as e:
        await world.signin.refresh(Refresh(refresh_token=s.refresh_token))  # the stolen copy
    assert e.value.code == "refresh_reused"
    with pytest.raises(IdentityError) as e:  # ... and the thief's or owner's newer one dies too
        await world.signin.refresh(Refresh(refresh_token=r1.refresh_token))
    assert e.value.code == "unauthorized"


async def test_malformed_refresh_tokens(world):
    for bad in ("x" * 20, "vrt1.a", "vrt1..b", "vrt1.nosuchfamily.secretsecret"):
        with pytest.raises(IdentityError) as e:
            await world.signin.refresh(Refresh(refresh_token=bad.ljust(16, "x")))
        assert e.value.code == "unauthorized"


async def test_ended_grant_ends_the_acting_token_and_refresh(sqlite_db, state):
    days = [TODAY]
    world = await make_world(sqlite_db, state, today=days)
    s = await signed_in(world)
    beta = option(s, BETA, "tax_handler")  # valid until 2026-12-31
    acting = await world.signin.act_for(
        ActFor(refresh_token=s.refresh_token, enterprise_id=beta.enterprise_id, role="tax_handler")
    )
    await world.signin.authenticate(acting.access_token)
    days[0] = date(2027, 1, 1)
    with pytest.raises(IdentityError):
        await world.signin.authenticate(acting.access_token)
    with pytest.raises(IdentityError):
        await world.signin.refresh(Refresh(refresh_token=acting.refresh_token))


async def test_logout_this_sign_in(world):
    s = await signed_in(world)
    other = await signed_in(world)
    caller = await world.signin.authenticate(s.access_token)
    out = await world.signin.logout(caller, Logout(refresh_token=s.refresh_token))
    assert out.everywhere is False
    with pytest.raises(IdentityError):
        await world.signin.refresh(Refresh(refresh_token=s.refresh_token))
    with pytest.raises(IdentityError):  # its access token ended with it
        await world.signin.authenticate(s.access_token)
    await world.signin.authenticate(other.access_token)
    await world.signin.refresh(Refresh(refresh_token=other.refresh_token))  # untouched


async def test_logout_everywhere_and_disable_revoke_every_token_at_once(world):
    cut: list[str] = []

    async def cut_sockets(person_id: str) -> None:
        cut.append(person_id)

    world.signin.on_revoked = cut_sockets
    a, b = await signed_in(world), await signed_in(world)
    caller = await world.signin.authenticate(a.access_token)
    await world.signin.logout(caller, Logout(everywhere=True))
    assert cut == [caller.subject]
    for s in (a, b):
        with pytest.raises(IdentityError):
            await world.signin.authenticate(s.access_token)
        with pytest.raises(IdentityError):
            await world.signin.refresh(Refresh(refresh_token=s.refresh_token))
    c = await signed_in(world)  # a new sign-in works again
    await world.signin.authenticate(c.access_token)
    with pytest.raises(IdentityError) as e:
        await world.signin.disable_person(caller, caller.subject)  # a taxpayer may not
    assert e.value.code == "forbidden"
    boss = Principal("boss-id", "supervisor", time.time() + 60)
    await world.signin.disable_person(boss, caller.subject)
    assert cut == [caller.subject, caller.subject]
    async with world.db.engine.connect() as conn:
        audit = (
            await conn.execute(sa.text("SELECT kind, actor_id, subject FROM identity_audit"))
        ).all()
    assert [tuple(a) for a in audit] == [("person_disabled", "boss-id", caller.subject)]
    with pytest.raises(IdentityError):
        await world.signin.authenticate(c.access_token)
    person = await world.db.registry.person(caller.subject)
    with pytest.raises(IdentityError):
        await world.signin.start(person, SignIn("sms", 3, time.time()))


async def test_step_up(world):
    now = time.time()
    low = await world.signin.authenticate((await signed_in(world, acr=3)).access_token)
    high = await world.signin.authenticate(
        (await signed_in(world, acr=4, auth_time=now)).access_token
    )
    stale = await world.signin.authenticate(
        (await signed_in(world, acr=5, auth_time=now - 301)).access_token
    )
    world.signin.require_step_up(high, now=now + 10)
    for p in (low, stale):
        with pytest.raises(IdentityError) as e:
            world.signin.require_step_up(p, now=now)
        assert e.value.code == "step_up_required" and e.value.step_up.acr == 4


async def test_staff_tokens_are_not_taxpayer_sessions(world):
    with pytest.raises(IdentityError):
        await world.signin.authenticate(world.issuer.issue("u1", "agent"))
    with pytest.raises(IdentityError):  # a legacy taxpayer token (no version) is not enough
        await world.signin.authenticate(world.issuer.issue("t1", "taxpayer"))


def test_token_issuer_keeps_todays_callers_working():
    issuer = TokenIssuer("z" * 32, 60)
    p = issuer.verify(issuer.issue("u1", "agent", "Ann"))
    assert (p.subject, p.role, p.name, p.version, p.acting_for) == ("u1", "agent", "Ann", -1, "")
    with pytest.raises(ValueError):
        issuer.issue("u1", "agent", claims={"role": "supervisor"})
    with pytest.raises(ValueError):
        issuer.issue("u1", "agent", claims={"anything": 1})
    import jwt

    bad_type = jwt.encode(
        {"sub": "u", "role": "taxpayer", "exp": int(time.time()) + 60, "acr": "5"},
        "z" * 32,
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        issuer.verify(bad_type)
    purposed = jwt.encode(
        {"sub": "u", "role": "agent", "exp": int(time.time()) + 60, "typ": "kiosk"},
        "z" * 32,
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        issuer.verify(purposed)
