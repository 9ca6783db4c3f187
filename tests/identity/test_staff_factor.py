"""Staff second factor (TOTP) and lockout: enrolment takes effect once confirmed with a
code, a code's step is used once, a sign-in with it says so (`amr`),
five failures of either kind lock the account (audited) until it times out or a supervisor
unlocks it; the TOTP secret is stored sealed."""

from __future__ import annotations

import time

import pyotp
import pytest
import sqlalchemy as sa

from vtax.accounts import Accounts
from vtax.app.identity import STAFF_MFA, IdentityError, StaffLogin
from vtax.auth import Principal, TokenIssuer
from vtax.contract.identity import StaffLogin2, StaffUnlock, TotpConfirm
from vtax.identity.staff import StaffFactors


@pytest.fixture
async def staff(sqlite_db):
    clock = [time.time()]
    accounts = Accounts(sqlite_db.sessions)
    boss = await accounts.add_user("boss", "supervisor", "boss-password", display_name="Boss")
    agent = await accounts.add_user("ann", "agent", "ann-password", display_name="Ann")
    factors = StaffFactors(
        sqlite_db.sessions, "s" * 40, max_failures=5, lockout_s=900, clock=lambda: clock[0]
    )
    issuer = TokenIssuer("k" * 40, 600)
    login = StaffLogin(accounts, sqlite_db.sessions, factors, issuer)
    return login, issuer, boss, agent, clock, sqlite_db


def me(issuer, signed):
    return issuer.verify(signed.token)


async def attempt(login, username, password, code=None):
    return await login.login(StaffLogin2(username=username, password=password, code=code))


async def enrol(login, issuer, member, clock) -> pyotp.TOTP:
    caller = Principal(member.id, member.role, time.time() + 600)
    enrolment = await login.enroll(caller, member.username)
    assert enrolment.provisioning_uri.startswith("otpauth://totp/V-Tax:")
    totp = pyotp.TOTP(enrolment.secret)
    with pytest.raises(IdentityError):
        await login.confirm(caller, TotpConfirm(code=f"{(int(totp.at(clock[0])) + 1) % 10**6:06d}"))
    await login.confirm(caller, TotpConfirm(code=totp.at(clock[0])))
    clock[0] += 30  # the confirming step is used: sign in on the next one
    return totp


async def test_password_only_until_enrolled(staff):
    login, issuer, boss, _, clock, _ = staff
    signed = await attempt(login, "boss", "boss-password")
    # `amr` is what the route guard checks for recordings and exports
    # (tests/identity/test_records_second_factor.py)
    assert not signed.second_factor and me(issuer, signed).method == "pwd"
    totp = await enrol(login, issuer, boss, clock)
    with pytest.raises(IdentityError) as e:
        await attempt(login, "boss", "boss-password")
    assert e.value.code == "second_factor_required"
    code = totp.at(clock[0])
    signed = await attempt(login, "boss", "boss-password", code)
    assert signed.second_factor and me(issuer, signed).method == STAFF_MFA
    with pytest.raises(IdentityError) as e:  # the same code (step) again
        await attempt(login, "boss", "boss-password", code)
    assert e.value.code == "invalid_credentials"
    with pytest.raises(IdentityError) as e:  # a second enrolment over a live one
        await login.enroll(Principal(boss.id, "supervisor", time.time() + 60), "boss")
    assert e.value.code == "invalid_state"


async def test_secret_is_sealed(staff):
    login, _, boss, _, _, db = staff
    caller = Principal(boss.id, "supervisor", time.time() + 600)
    enrolment = await login.enroll(caller, "boss")
    async with db.engine.connect() as conn:
        stored = await conn.scalar(sa.text("SELECT totp_sealed FROM identity_staff_security"))
    assert stored.startswith("v1:") and enrolment.secret not in stored


async def test_lockout_audit_and_unlock(staff):
    login, _, boss, agent, _, db = staff
    for _ in range(5):
        with pytest.raises(IdentityError) as e:
            await attempt(login, "ann", "wrong")
        assert e.value.code == "invalid_credentials"
    with pytest.raises(IdentityError) as e:
        await attempt(login, "ann", "ann-password")  # even the right password
    assert e.value.code == "account_locked" and 890 < e.value.retry_after_s <= 900
    with pytest.raises(IdentityError) as e:
        await login.unlock(
            Principal(agent.id, "agent", time.time() + 60), StaffUnlock(user_id=agent.id)
        )
    assert e.value.code == "forbidden"
    await login.unlock(
        Principal(boss.id, "supervisor", time.time() + 60), StaffUnlock(user_id=agent.id)
    )
    await attempt(login, "ann", "ann-password")
    async with db.engine.connect() as conn:
        kinds = (
            await conn.execute(sa.text("SELECT kind, actor_id FROM identity_audit ORDER BY id"))
        ).all()
    assert [tuple(k) for k in kinds] == [("staff_locked", None), ("staff_unlocked", boss.id)]


async def test_wrong_codes_lock_and_the_lock_times_out(staff):
    login, issuer, boss, _, clock, _ = staff
    totp = await enrol(login, issuer, boss, clock)
    for _ in range(5):
        with pytest.raises(IdentityError):
            await attempt(
                login,
                "boss",
                "boss-password",
                "000000" if totp.at(clock[0]) != "000000" else "111111",
            )
    with pytest.raises(IdentityError) as e:
        await attempt(login, "boss", "boss-password", totp.at(clock[0]))
    assert e.value.code == "account_locked"
    clock[0] += 901
    await attempt(login, "boss", "boss-password", totp.at(clock[0]))


async def test_success_resets_the_count_and_unknown_users(staff):
    login, *_ = staff
    for _ in range(4):
        with pytest.raises(IdentityError):
            await attempt(login, "ann", "wrong")
    await attempt(login, "ann", "ann-password")
    for _ in range(4):
        with pytest.raises(IdentityError):
            await attempt(login, "ann", "wrong")
    await attempt(login, "ann", "ann-password")  # 4 + 4 failures never locked
    with pytest.raises(IdentityError) as e:
        await attempt(login, "nobody", "x")
    assert e.value.code == "invalid_credentials"
