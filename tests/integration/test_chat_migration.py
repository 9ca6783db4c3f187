"""Migration 0009 on both engines: the chat table as the model declares it, append-only in
the database, and its downgrade removes it."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from vtax.db import alembic_config, make_engine, migrate
from vtax.models import ChatMessageRow


async def _tables(url: str) -> dict[str, set[str]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:

            def read(sync_conn: sa.Connection) -> dict[str, set[str]]:
                inspector = sa.inspect(sync_conn)
                return {
                    t: {c["name"] for c in inspector.get_columns(t)}
                    for t in inspector.get_table_names()
                }

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def test_0009_creates_an_append_only_table_and_goes_down(empty_database_url):
    url = empty_database_url
    await migrate(url, "0009")
    tables = await _tables(url)
    assert tables["chat_messages"] == {c.name for c in ChatMessageRow.__table__.columns}
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO taxpayers (id, id_type, id_number, name, created_at) "
                    "VALUES ('t1', 'uscc', '91350100M000100Y43', '', '2026-12-03 00:00:00')"
                )
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO service_sessions (id, ticket_id, taxpayer_id, category, "
                    "language, channel, question, joined_at, outcome) VALUES ('s1', 'k1', 't1', "
                    "'invoices', 'zh-CN', 'web', 'q', '2026-12-03 00:00:00', 'live')"
                )
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO chat_messages (session_id, seq, client_id, participant_id, "
                    "sender_role, sender_id, sender_name, body, sent_at) VALUES ('s1', 1, 'c1', "
                    "'p1', 'taxpayer', 't1', '', 'hello', '2026-12-03 00:00:00')"
                )
            )
        for statement in (
            "UPDATE chat_messages SET body = 'changed'",
            "DELETE FROM chat_messages",
            # one seq per session, one client id per sender in a session
            "INSERT INTO chat_messages (session_id, seq, client_id, participant_id, sender_role, "
            "sender_id, sender_name, body, sent_at) VALUES ('s1', 1, 'c2', 'p1', 'taxpayer', "
            "'t1', '', 'x', '2026-12-03 00:00:00')",
            "INSERT INTO chat_messages (session_id, seq, client_id, participant_id, sender_role, "
            "sender_id, sender_name, body, sent_at) VALUES ('s1', 2, 'c1', 'p1', 'taxpayer', "
            "'t1', '', 'x', '2026-12-03 00:00:00')",
        ):
            with pytest.raises(DBAPIError):
                async with engine.begin() as conn:
                    await conn.execute(sa.text(statement))
        async with engine.connect() as conn:
            body = (await conn.execute(sa.text("SELECT body FROM chat_messages"))).scalars().all()
        assert body == ["hello"]
    finally:
        await engine.dispose()
    from alembic import command

    await asyncio.to_thread(command.downgrade, alembic_config(url), "0008")
    assert "chat_messages" not in await _tables(url)
    await migrate(url)
    assert "chat_messages" in await _tables(url)
