"""Identity registry: people, verified phones, enterprises, grants, kiosks, staff factors

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 06:20:00

The registry behind taxpayer sign-in (vtax/identity/, docs/identity.md): a person is found
by (document type, the document's lifelong key); their verified mobile numbers (E.164, one
person each) are where sign-in codes go; an enterprise by its USCC; a grant says a person
acts for an enterprise in a role between two days. `token_version` revokes every token of a
person at once. Kiosks with their Ed25519 public keys; staff second factors and
lockouts; an append-only identity audit. Today's taxpayers are mapped: resident-ID ones to
people, USCC ones to enterprises, keeping their ids. Nothing existing changes, so the
downgrade drops the new tables. The table shapes are written out here, not imported from vtax.identity.tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vtax.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _stamp(name: str) -> sa.Column[object]:
    return sa.Column(name, vtax.db.UTCDateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "identity_people",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("doc_type", sa.String(20), nullable=False),
        sa.Column("doc_key", sa.String(40), nullable=False),
        sa.Column("doc_number", sa.String(40), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        _stamp("created_at"),
        _stamp("updated_at"),
        sa.UniqueConstraint("doc_type", "doc_key"),
    )
    op.create_table(
        "identity_phones",
        sa.Column("phone", sa.String(16), primary_key=True),
        sa.Column(
            "person_id",
            sa.String(36),
            sa.ForeignKey("identity_people.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _stamp("verified_at"),
    )
    op.create_index("ix_identity_phones_person", "identity_phones", ["person_id"])
    op.create_table(
        "identity_enterprises",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("uscc", sa.String(18), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _stamp("created_at"),
        _stamp("updated_at"),
    )
    op.create_table(
        "identity_grants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "person_id",
            sa.String(36),
            sa.ForeignKey("identity_people.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "enterprise_id",
            sa.String(36),
            sa.ForeignKey("identity_enterprises.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("functions", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        _stamp("updated_at"),
        sa.UniqueConstraint("person_id", "enterprise_id", "role"),
    )
    op.create_index("ix_identity_grants_enterprise", "identity_grants", ["enterprise_id", "role"])
    op.create_table(
        "identity_kiosks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("branch", sa.String(100), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("registered_by", sa.String(36), nullable=False),
        _stamp("registered_at"),
        sa.Column("revoked_at", vtax.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(36), nullable=True),
    )
    op.create_table(
        "identity_staff_security",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("totp_sealed", sa.String(255), nullable=True),
        sa.Column("totp_confirmed", sa.Boolean(), nullable=False),
        sa.Column("totp_last_step", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", vtax.db.UTCDateTime(timezone=True), nullable=True),
        _stamp("updated_at"),
    )
    op.create_table(
        "identity_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _stamp("at"),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_identity_audit_subject", "identity_audit", ["subject", "at"])
    # Today's taxpayers keep their history: each resident-ID taxpayer becomes a person and
    # each USCC taxpayer an enterprise, with the same id (the sessions, ratings and
    # deliveries that name it stay theirs). Numbers from 810000/820000/830000 were always
    # residence permits. The same SQL on SQLite and PostgreSQL.
    op.execute(
        "INSERT INTO identity_people (id, name, doc_type, doc_key, doc_number, disabled, "
        "token_version, created_at, updated_at) "
        "SELECT id, name, CASE WHEN substr(id_number, 1, 2) IN ('81', '82', '83') "
        "THEN 'residence_permit' ELSE 'resident_id' END, id_number, id_number, false, 0, "
        "created_at, created_at FROM taxpayers WHERE id_type = 'resident_id'"
    )
    op.execute(
        "INSERT INTO identity_enterprises (id, uscc, name, disabled, created_at, updated_at) "
        "SELECT id, id_number, name, false, created_at, created_at FROM taxpayers "
        "WHERE id_type = 'uscc'"
    )


def downgrade() -> None:
    op.drop_table("identity_audit")
    op.drop_table("identity_staff_security")
    op.drop_table("identity_kiosks")
    op.drop_table("identity_grants")
    op.drop_table("identity_enterprises")
    op.drop_table("identity_phones")
    op.drop_table("identity_people")
