"""SMS sign-in codes through the use case: sent in the page's language, stored only as a
keyed digest, used once, at most 5 tries, expiry, throttles, and the same answers for
registered and unknown numbers (no enumeration). On both state backends."""

from __future__ import annotations

import asyncio

import pytest

from tests.identity.world import LEONG_PHONE, STRANGER_PHONE, WANG_PHONE, make_world
from vtax.app.identity import IdentityError
from vtax.contract.identity import SmsCodeRequest, SmsCodeVerify


@pytest.fixture
async def world(sqlite_db, state):
    w = await make_world(sqlite_db, state)
    yield w
    await w.sms.drain()


async def ask(world, phone, language="zh-CN", address="203.0.113.7"):
    sent = await world.sms.request_code(SmsCodeRequest(phone=phone, language=language), address)
    await world.sms.drain()
    return sent


async def test_code_sent_and_signs_in_once(world):
    sent = await ask(world, "138 0013 8000")
    assert (sent.phone, sent.expires_in_s) == ("+86138****8000", 300)
    code = world.code_sent_to(WANG_PHONE)
    assert "验证码" in world.sender.sent[-1][1] and "5 分钟" in world.sender.sent[-1][1]
    session = await world.sms.verify(SmsCodeVerify(phone=WANG_PHONE, code=code))
    assert session.person.name == "Wang Fang" and session.method == "sms" and session.acr == 3
    assert session.acting is None and session.person.document.startswith("1101")
    assert "*" in session.person.document
    assert [(o.enterprise_name, o.role) for o in session.options] == [
        ("Acme Ltd", "legal_representative"),
        ("Beta Co", "tax_handler"),
    ]
    with pytest.raises(IdentityError) as used:
        await world.sms.verify(SmsCodeVerify(phone=WANG_PHONE, code=code))
    assert used.value.code == "invalid_code"


@pytest.mark.parametrize(
    ("language", "word"),
    [("zh-HK", "驗證碼"), ("en", "sign-in code"), ("pt", "código de acesso")],
)
async def test_texts_in_each_language(world, language, word):
    await ask(world, LEONG_PHONE, language)
    assert word in world.sender.sent[-1][1]


async def test_the_code_is_never_stored_in_clear(world):
    await ask(world, WANG_PHONE)
    code = world.code_sent_to(WANG_PHONE)
    pending = await world.state.attempt_code(WANG_PHONE)
    assert code not in pending.digest and len(pending.digest) == 64


async def test_five_tries_then_the_code_is_void(world):
    await ask(world, WANG_PHONE)
    code = world.code_sent_to(WANG_PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    codes = []
    for _ in range(5):
        with pytest.raises(IdentityError) as e:
            await world.sms.verify(SmsCodeVerify(phone=WANG_PHONE, code=wrong))
        codes.append(e.value.code)
    assert codes == ["invalid_code"] * 4 + ["too_many_attempts"]
    with pytest.raises(IdentityError) as e:
        await world.sms.verify(SmsCodeVerify(phone=WANG_PHONE, code=code))
    assert e.value.code == "invalid_code"  # the right code no longer helps


async def test_codes_expire(sqlite_db, state):
    world = await make_world(sqlite_db, state, ttl_s=0.2)
    await ask(world, WANG_PHONE)
    code = world.code_sent_to(WANG_PHONE)
    await asyncio.sleep(0.3)
    with pytest.raises(IdentityError) as e:
        await world.sms.verify(SmsCodeVerify(phone=WANG_PHONE, code=code))
    assert e.value.code == "invalid_code"


async def test_no_enumeration(sqlite_db, state):
    """A registered and an unknown number get the same answers, throttles and tries."""
    world = await make_world(sqlite_db, state, resend_s=60, per_number=2)
    answers = {}
    for phone in (WANG_PHONE, STRANGER_PHONE):
        first = await ask(world, phone)
        with pytest.raises(IdentityError) as throttled:
            await ask(world, phone)
        tries = []
        for _ in range(5):
            with pytest.raises(IdentityError) as e:
                await world.sms.verify(SmsCodeVerify(phone=phone, code="000000"))
            tries.append(e.value.code)
        answers[phone] = (
            first.expires_in_s,
            first.resend_in_s,
            throttled.value.code,
            50 < throttled.value.retry_after_s <= 60,
            tries,
        )
    assert answers[WANG_PHONE] == answers[STRANGER_PHONE]
    # only the registered number was texted
    assert [p for p, _ in world.sender.sent] == [WANG_PHONE]


async def test_per_address_limit(sqlite_db, state):
    world = await make_world(sqlite_db, state, per_address=2)
    await ask(world, WANG_PHONE, address="198.51.100.1")
    await ask(world, LEONG_PHONE, address="198.51.100.1")
    with pytest.raises(IdentityError) as e:
        await ask(world, STRANGER_PHONE, address="198.51.100.1")
    assert e.value.code == "rate_limited" and e.value.retry_after_s > 0
    # an IPv6 subscriber's /64 is one address
    await ask(world, STRANGER_PHONE, address="2001:db8:1:2::1")
    await ask(world, "+8613700137000", address="2001:db8:1:2::ffff")
    with pytest.raises(IdentityError):
        await ask(world, "+8613600136000", address="2001:db8:1:2:abcd::1")


async def test_bad_numbers(world):
    with pytest.raises(IdentityError) as e:
        await ask(world, "+1 415 555 0100")
    assert e.value.code == "invalid_phone"


async def test_disabled_person_cannot_finish(world):
    await ask(world, WANG_PHONE)
    code = world.code_sent_to(WANG_PHONE)
    person = await world.db.registry.person_by_phone(WANG_PHONE)
    await world.db.registry.set_disabled(person.id, True)
    with pytest.raises(IdentityError) as e:
        await world.sms.verify(SmsCodeVerify(phone=WANG_PHONE, code=code))
    assert e.value.code == "invalid_code"


async def test_tries_per_address_across_numbers(sqlite_db, state):
    """Guessing one try at each of many numbers from one address is limited too."""
    world = await make_world(sqlite_db, state, tries_per_address=3)
    codes = []
    for phone in (WANG_PHONE, LEONG_PHONE, STRANGER_PHONE, "+8613700137000"):
        await ask(world, phone)
        with pytest.raises(IdentityError) as e:
            await world.sms.verify(SmsCodeVerify(phone=phone, code="000000"), "192.0.2.9")
        codes.append(e.value.code)
    assert codes == ["invalid_code"] * 3 + ["rate_limited"]
    # another address still may
    with pytest.raises(IdentityError) as e:
        await world.sms.verify(SmsCodeVerify(phone=WANG_PHONE, code="000000"), "192.0.2.10")
    assert e.value.code == "invalid_code"
