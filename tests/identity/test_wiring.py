"""The composition root chooses the state by the deployment and the providers by the
settings; the CLI's registry import runs over the settings' database."""

from __future__ import annotations

import pytest

from tests.conftest import test_settings
from tests.identity.conftest import REDIS_URL
from tests.identity.test_registry_import import GOOD
from vtax.accounts import Accounts
from vtax.app.identity_wiring import build_identity, import_registry, report_lines
from vtax.auth import TokenIssuer
from vtax.identity.redis_state import RedisIdentityState
from vtax.identity.state import MemoryIdentityState
from vtax.redis_client import connect


def settings(url, tmp_path, **kw):
    return test_settings(url, tmp_path, **kw)


async def test_defaults_and_redis(sqlite_db, tmp_path, redis_prefix):
    s = settings("sqlite+aiosqlite:///x.db", tmp_path)
    issuer = TokenIssuer("k" * 40, 60)
    services = build_identity(s, sqlite_db.sessions, issuer)
    assert isinstance(services.state, MemoryIdentityState)
    assert services.sms is not None and services.oidc is None
    assert services.kiosk is None and services.staff is None
    with_staff = build_identity(
        settings("sqlite+aiosqlite:///x.db", tmp_path, identity_providers=["sms", "kiosk"]),
        sqlite_db.sessions,
        issuer,
        accounts=Accounts(sqlite_db.sessions),
    )
    assert with_staff.kiosk is not None and with_staff.staff is not None
    redis = connect(REDIS_URL, max_connections=4)
    try:
        scaled = build_identity(
            settings("sqlite+aiosqlite:///x.db", tmp_path, redis_prefix=redis_prefix),
            sqlite_db.sessions,
            issuer,
            redis=redis,
        )
        assert isinstance(scaled.state, RedisIdentityState) and scaled.state.p == redis_prefix
    finally:
        await redis.aclose()
    with pytest.raises(ValueError, match="OIDC_ISSUER"):
        build_identity(
            settings("sqlite+aiosqlite:///x.db", tmp_path, identity_providers=["oidc"]),
            sqlite_db.sessions,
            issuer,
        )
    with pytest.raises(ValueError, match="unknown identity providers"):
        build_identity(
            settings("sqlite+aiosqlite:///x.db", tmp_path, identity_providers=["password"]),
            sqlite_db.sessions,
            issuer,
        )
    oidc = build_identity(
        settings(
            "sqlite+aiosqlite:///x.db",
            tmp_path,
            identity_providers=["oidc"],
            oidc_issuer="https://id.example",
            oidc_client_id="vtax",
            oidc_redirect_uri="https://vtax.example/cb",
        ),
        sqlite_db.sessions,
        issuer,
    )
    assert oidc.sms is None and oidc.oidc is not None
    await oidc.aclose()


async def test_cli_import(migrated_url, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(GOOD)
    s = settings(migrated_url, tmp_path)
    first = await import_registry(s, path)
    assert report_lines(first)[0].startswith("5 rows: people 4 new")
    again = await import_registry(s, path)
    assert again.changes == 0
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "x"}]')
    lines = report_lines(await import_registry(s, bad))
    assert lines[0] == "not imported: 1 error(s)" and lines[1].startswith("line 1:")
