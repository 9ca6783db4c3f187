"""Staff accounts and taxpayer identities."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from vtax import identity
from vtax.auth import STAFF_ROLES, Passwords
from vtax.models import Taxpayer, User


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: str
    username: str
    display_name: str
    role: str
    skills: dict[str, int]
    languages: list[str]

    @classmethod
    def of(cls, user: User) -> StaffMember:
        return cls(
            user.id,
            user.username,
            user.display_name,
            user.role,
            dict(user.skills or {}),
            list(user.languages or []),
        )


class Accounts:
    def __init__(
        self, sessions: async_sessionmaker[Any], passwords: Passwords | None = None
    ) -> None:
        self._sessions = sessions
        # argon2 off the event loop, bounded (vtax/auth.py); production cost unless given
        self.passwords = passwords or Passwords()

    async def add_user(
        self,
        username: str,
        role: str,
        password: str,
        *,
        display_name: str = "",
        skills: dict[str, int] | None = None,
        languages: list[str] | None = None,
        replace: bool = False,
    ) -> StaffMember:
        """Create a staff account; with `replace`, update one that exists."""
        if role not in STAFF_ROLES:
            raise ValueError(f"role must be one of {', '.join(STAFF_ROLES)}")
        password_hash = await self.passwords.hash(password)
        async with self._sessions() as db, db.begin():
            user = await db.scalar(select(User).where(User.username == username))
            if user is not None and not replace:
                raise ValueError(f"user {username!r} exists already")
            if user is None:
                user = User(id=str(uuid.uuid4()), username=username)
                db.add(user)
            user.role = role
            user.display_name = display_name or username
            user.password_hash = password_hash
            user.skills = dict(skills or {})
            user.languages = list(languages or [])
            user.disabled = False
        return StaffMember.of(user)

    async def authenticate(self, username: str, password: str) -> StaffMember | None:
        """The account if the password is right. The check runs off the event loop and
        raises `vtax.auth.Busy` when too many are waiting already. A missing or disabled
        account costs a check too, so the time does not tell which usernames exist."""
        async with self._sessions() as db:
            user = await db.scalar(select(User).where(User.username == username))
        if user is None or user.disabled:
            await self.passwords.verify_dummy(password)
            return None
        ok = await self.passwords.verify(user.password_hash, password)
        return StaffMember.of(user) if ok else None

    async def staff(self, user_id: str) -> StaffMember | None:
        async with self._sessions() as db:
            user = await db.get(User, user_id)
        return None if user is None or user.disabled else StaffMember.of(user)

    async def staff_list(self, role: str) -> list[StaffMember]:
        """Every account of a staff role (disabled ones too: their past work is still
        reviewed), by display name."""
        async with self._sessions() as db:
            users = await db.scalars(
                select(User).where(User.role == role).order_by(User.display_name, User.username)
            )
            return [StaffMember.of(u) for u in users]

    async def taxpayer_for(self, id_type: identity.IdType, id_number: str, name: str = "") -> str:
        """The taxpayer id for a verified identity number, created on first sight."""
        number = identity.validate(id_type, id_number)
        query = select(Taxpayer).where(Taxpayer.id_type == id_type, Taxpayer.id_number == number)
        for _ in range(2):  # a concurrent first sight loses the insert race once at most
            async with self._sessions() as db:
                found = await db.scalar(query)
                if found is not None:
                    if name and found.name != name:
                        found.name = name
                        await db.commit()
                    return found.id
                taxpayer = Taxpayer(
                    id=str(uuid.uuid4()), id_type=id_type, id_number=number, name=name
                )
                db.add(taxpayer)
                try:
                    await db.commit()
                except IntegrityError:
                    await db.rollback()
                    continue
                return taxpayer.id
        raise RuntimeError("could not record the taxpayer")
