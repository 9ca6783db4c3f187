import base64
import hashlib
import hmac

import pytest

from vtax.auth import TokenIssuer, Unauthorized, hash_password, verify_password
from vtax.config import Settings, SettingsError
from vtax.ice import ice_servers, turn_credentials

KEY = "k" * 32


def test_password_hashes_are_argon2_and_verify():
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong")
    assert not verify_password("garbage", "x")


def test_tokens_carry_role_and_expire():
    issuer = TokenIssuer(KEY, ttl_s=60)
    p = issuer.verify(issuer.issue("u1", "agent"))
    assert (p.subject, p.role) == ("u1", "agent")
    old = issuer.issue("u1", "agent", now=1000)
    with pytest.raises(Unauthorized, match="expired"):
        issuer.verify(old)


@pytest.mark.parametrize("token", [None, "", 42, "abc", "a.b.c"])
def test_bad_tokens_are_refused(token):
    with pytest.raises(Unauthorized):
        TokenIssuer(KEY, 60).verify(token)


def test_a_token_signed_with_another_key_is_refused():
    forged = TokenIssuer("x" * 32, 60).issue("u1", "supervisor")
    with pytest.raises(Unauthorized, match="not valid"):
        TokenIssuer(KEY, 60).verify(forged)


def test_turn_rest_credentials():
    user, password = turn_credentials("s3cret", "p-1", 600, now=1000)
    assert user == "1600:p-1"
    expected = base64.b64encode(hmac.new(b"s3cret", b"1600:p-1", hashlib.sha1).digest()).decode()
    assert password == expected


def test_ice_servers_from_settings():
    s = Settings.from_env(
        {"VTAX_STUN_URLS": "stun:a:3478", "VTAX_TURN_URLS": "turn:b:3478", "VTAX_TURN_SECRET": "x"}
    )
    servers = ice_servers(s, "p-1")
    assert servers[0] == {"urls": ["stun:a:3478"]}
    assert servers[1]["urls"] == ["turn:b:3478"] and servers[1]["username"].endswith(":p-1")
    assert ice_servers(Settings.from_env({}), "p") == []


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"VTAX_PORT": "eighty"}, "VTAX_PORT"),
        ({"VTAX_OFFER_TIMEOUT_S": "-1"}, "VTAX_OFFER_TIMEOUT_S"),
        ({"VTAX_DATABASE_URL": "mysql://x"}, "VTAX_DATABASE_URL"),
    ],
)
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


def test_signing_key_is_kept_in_the_data_dir(tmp_path):
    s = Settings.from_env({"VTAX_DATA_DIR": str(tmp_path)})
    key = s.signing_key()
    assert len(key) >= 32 and s.signing_key() == key
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
