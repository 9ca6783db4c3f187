"""The identity domain's composition root: settings in, the use cases out (the state in
memory on one node, on Redis when the node is scaled out), and the registry import the CLI
calls (`vtax registry import PATH`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from vtax.accounts import Accounts
from vtax.app.identity import (
    KioskSignIn,
    OidcSignIn,
    SmsPolicy,
    SmsSignIn,
    StaffLogin,
    TaxpayerSignIn,
    today_in,
)
from vtax.auth import TokenIssuer
from vtax.config import Settings
from vtax.db import make_engine, session_factory
from vtax.identity.importer import ImportReport, import_file
from vtax.identity.kiosk import Kiosks
from vtax.identity.oidc import OidcClient, OidcConfig
from vtax.identity.redis_state import RedisIdentityState
from vtax.identity.registry import Registry
from vtax.identity.staff import StaffFactors
from vtax.identity.state import CodeLimits, IdentityState, MemoryIdentityState
from vtax.identity.tokens import TaxpayerTokens
from vtax.sms import SmsSender, sms_sender


@dataclass
class IdentityServices:
    state: IdentityState
    registry: Registry
    tokens: TaxpayerTokens
    signin: TaxpayerSignIn
    sms: SmsSignIn | None  # "sms" in identity_providers
    oidc: OidcSignIn | None  # "oidc" in identity_providers and an issuer set
    kiosk: KioskSignIn | None  # "kiosk" in identity_providers
    staff: StaffLogin | None  # when the accounts are given

    async def aclose(self) -> None:
        if self.sms is not None:
            await self.sms.drain()
        if self.oidc is not None:
            await self.oidc.client.aclose()


def oidc_config(settings: Settings) -> OidcConfig:
    return OidcConfig(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        redirect_uri=settings.oidc_redirect_uri,
        post_logout_redirect_uri=settings.oidc_post_logout_redirect_uri,
        scopes=tuple(settings.oidc_scopes),
        clock_skew_s=settings.oidc_clock_skew_s,
        flow_ttl_s=settings.oidc_flow_ttl_s,
    )


def build_identity(
    settings: Settings,
    sessions: async_sessionmaker[Any],
    issuer: TokenIssuer,
    *,
    redis: Redis | None = None,
    sender: SmsSender | None = None,
    accounts: Accounts | None = None,
    on_revoked: Callable[[str], Awaitable[None]] | None = None,
) -> IdentityServices:
    """Every identity use case over one state: Redis (shared by the nodes) when given."""
    unknown = set(settings.identity_providers) - {"sms", "oidc", "kiosk"}
    if unknown:
        raise ValueError(f"unknown identity providers: {', '.join(sorted(unknown))}")
    state: IdentityState = (
        RedisIdentityState(redis, settings.redis_prefix)
        if redis is not None
        else MemoryIdentityState()
    )
    registry = Registry(sessions)
    kiosks = Kiosks(
        sessions,
        state,
        nonce_ttl_s=settings.kiosk_nonce_ttl_s,
        max_age_s=settings.kiosk_assertion_max_age_s,
    )
    tokens = TaxpayerTokens(
        issuer,
        registry,
        state,
        access_ttl_s=settings.taxpayer_access_ttl_s,
        refresh_ttl_s=settings.taxpayer_refresh_ttl_s,
        today=today_in(settings.service_timezone),
        device_active=kiosks.active,
    )
    signin = TaxpayerSignIn(
        tokens,
        registry,
        step_up_acr=settings.step_up_acr,
        step_up_max_age_s=settings.step_up_max_age_s,
        on_revoked=on_revoked,
    )
    sms = None
    if "sms" in settings.identity_providers:
        sms = SmsSignIn(
            registry,
            state,
            sender
            or sms_sender(settings.sms_http_url, settings.sms_http_token, settings.sms_timeout_s),
            signin,
            secret=settings.signing_key(),
            policy=SmsPolicy(
                CodeLimits(
                    ttl_s=settings.sign_in_code_ttl_s,
                    resend_s=settings.sign_in_code_resend_s,
                    window_s=settings.sign_in_code_window_s,
                    per_number=settings.sign_in_code_per_number,
                    per_address=settings.sign_in_code_per_address,
                ),
                max_attempts=settings.sign_in_code_attempts,
                tries_per_address=settings.sign_in_code_tries_per_address,
            ),
        )
    oidc = None
    if "oidc" in settings.identity_providers:
        if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_uri):
            raise ValueError(
                "the oidc provider needs VTAX_OIDC_ISSUER, VTAX_OIDC_CLIENT_ID and "
                "VTAX_OIDC_REDIRECT_URI"
            )
        oidc = OidcSignIn(
            OidcClient(oidc_config(settings), state),
            registry,
            sessions,
            signin,
            state,
            enterprises_claim=settings.oidc_enterprises_claim,
            refresh_ttl_s=settings.taxpayer_refresh_ttl_s,
        )
    kiosk = (
        KioskSignIn(kiosks, sessions, signin) if "kiosk" in settings.identity_providers else None
    )
    staff = None
    if accounts is not None:
        factors = StaffFactors(
            sessions,
            settings.signing_key(),
            max_failures=settings.staff_max_failures,
            lockout_s=settings.staff_lockout_s,
        )
        staff = StaffLogin(accounts, sessions, factors, issuer)
    return IdentityServices(state, registry, tokens, signin, sms, oidc, kiosk, staff)


async def import_registry(settings: Settings, path: Path, fmt: str | None = None) -> ImportReport:
    """`vtax registry import PATH [--format csv|json]`: the database must be migrated."""
    engine = make_engine(settings.resolved_database_url)
    try:
        return await import_file(
            session_factory(engine), path, today_in(settings.service_timezone)(), fmt
        )
    finally:
        await engine.dispose()


def report_lines(report: ImportReport) -> list[str]:
    """What the CLI prints (exit status 1 when `report.errors`)."""
    if report.errors:
        return [f"not imported: {len(report.errors)} error(s)", *map(str, report.errors[:200])]
    return [
        f"{report.rows} rows: people {report.people_created} new, {report.people_updated} "
        f"updated; phones {report.phones_added} new; enterprises {report.enterprises_created} "
        f"new, {report.enterprises_updated} updated; grants {report.grants_created} new, "
        f"{report.grants_updated} updated"
    ]
