"""The confirmation form (业务办理服务确认单) during the call: the session's agent proposes the
items of business, the values to fill in and the materials each needs; the session's taxpayer
confirms the latest version or refuses it with a reason; both see each change at once
(`confirmation:form`). The handle (办) step records the form as it stands (`summary_form`).

Rules (docs/protocol.md, "Confirmation form"): only the session's agent proposes, only while
the call is live; only its taxpayer decides, only on the latest version (named by number and
hash); a decided version never changes; a proposal after a confirmation is a new version that
needs its own confirmation. Material links are checked through `MaterialLookup`: only
materials of the same session can be linked, and their hashes go into the version."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from vtax.app.ports import Caller, Notifier
from vtax.confirmation.forms import BusinessForms, Problem, check_values, content_sha256
from vtax.confirmation.store import Decision, FormStore, Parties, Step, record_of
from vtax.contract import client_events as ce
from vtax.contract import confirmation as cf
from vtax.contract import server_events as se
from vtax.errors import DomainError

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MaterialRef:
    """A material the taxpayer uploaded in a session: its id and content hash."""

    id: str
    sha256: str


class MaterialLookup(Protocol):
    """The taxpayer's materials of a session (the materials area reads them)."""

    async def find(self, session_id: str, ids: Sequence[str]) -> dict[str, MaterialRef]:
        """The materials of `session_id` among `ids` that may be linked; others are absent."""
        ...


class MaterialViews(Protocol):
    """What the materials area answers (vtax/app/materials.py `Materials.views`): the views of
    the session's materials `ids`, in that order; `not_found` if one is not of that session."""

    async def views(self, session_id: str, material_ids: Sequence[str]) -> Sequence[Any]: ...


class SessionMaterials:
    """`MaterialLookup` over the materials area: a material of the session can be linked
    unless the agent rejected it (`submitted` or `accepted`); its hash goes into the form."""

    def __init__(self, materials: MaterialViews) -> None:
        self.materials = materials

    async def _views(self, session_id: str, ids: Sequence[str]) -> list[Any]:
        try:
            return list(await self.materials.views(session_id, ids))
        except DomainError as exc:
            if exc.code != "not_found":
                raise
        found: list[Any] = []  # one of them is not there: which (a proposal links a few)
        for material_id in ids:
            try:
                found.extend(await self.materials.views(session_id, [material_id]))
            except DomainError as exc:
                if exc.code != "not_found":
                    raise
        return found

    async def find(self, session_id: str, ids: Sequence[str]) -> dict[str, MaterialRef]:
        return {
            v.id: MaterialRef(v.id, v.sha256)
            for v in await self._views(session_id, ids)
            if v.state != "rejected"
        }


class FormInvalid(DomainError):
    """A proposal whose values or links do not fit its items; `details` lists each problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        shown = "; ".join(f"{p.loc}: {p.msg}" for p in problems[:3])
        super().__init__("form_invalid", f"the form does not fit its items: {shown}")
        self.details = [{"loc": p.loc, "msg": p.msg} for p in problems]

    def as_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {**super().as_dict(), "details": self.details}


class Confirmation:
    def __init__(
        self,
        store: FormStore,
        forms: BusinessForms,
        materials: MaterialLookup,
        notifier: Notifier,
    ) -> None:
        self.store = store
        self.forms = forms
        self.materials = materials
        self.notifier = notifier

    # ---- the agent -------------------------------------------------------------------------

    async def propose(self, caller: Caller, p: ce.ConfirmationPropose) -> cf.FormOut:
        """A new version of the form from the session's agent (checked, hashed, announced)."""
        parties = await self.store.parties(p.session_id)
        if parties is None or parties.agent_id != caller.subject:
            # before reading any material: a third party learns nothing of the session
            raise DomainError("not_in_session", "only the session's agent proposes its form")
        content = await self._content(p.session_id, p)
        step = await self.store.propose(
            p.session_id, caller.subject, now(), content, content_sha256(content)
        )
        return await self._answer(p.session_id, step)

    async def _content(self, session_id: str, p: cf.FormIn) -> dict[str, Any]:
        problems: list[Problem] = []
        seen: set[str] = set()
        wanted = sorted({mid for item in p.items for mid in item.materials.values()})
        found = await self.materials.find(session_id, wanted) if wanted else {}
        items = []
        for n, item in enumerate(p.items):
            loc = f"items.{n}"
            if item.code in seen:
                problems.append(Problem(f"{loc}.code", "this item is listed twice"))
                continue
            seen.add(item.code)
            form = self.forms.of(item.code)
            if form is None:  # the contract's catalog check ran first; the data file is older
                problems.append(Problem(f"{loc}.code", "no form for this item"))
                continue
            values, wrong = check_values(form, item.values, loc)
            problems.extend(wrong)
            for name, material_id in item.materials.items():
                if form.requirement(name) is None:
                    known = ", ".join(m.name for m in form.materials)
                    problems.append(
                        Problem(f"{loc}.materials.{name}", f"no such material ({known})")
                    )
                elif material_id not in found:
                    problems.append(
                        Problem(
                            f"{loc}.materials.{name}",
                            f"no material {material_id!r} of this session can be linked",
                        )
                    )
            links = []
            for req in form.materials:
                ref = found.get(item.materials.get(req.name, ""))
                links.append(
                    {
                        "requirement": req.name,
                        "required": req.required,
                        "material_id": ref.id if ref else None,
                        "sha256": ref.sha256 if ref else None,
                    }
                )
            items.append({"code": item.code, "values": values, "materials": links})
        if problems:
            raise FormInvalid(problems)
        return {"items": items, "note": p.note}

    # ---- the taxpayer ----------------------------------------------------------------------

    async def confirm(self, caller: Caller, p: ce.ConfirmationConfirm) -> cf.FormOut:
        return await self._decide(caller, p.session_id, p, "confirmed", "")

    async def refuse(self, caller: Caller, p: ce.ConfirmationRefuse) -> cf.FormOut:
        return await self._decide(caller, p.session_id, p, "refused", p.reason)

    async def _decide(
        self, caller: Caller, session_id: str, p: cf.DecideIn, decision: Decision, reason: str
    ) -> cf.FormOut:
        step = await self.store.decide(
            session_id,
            caller.subject,
            now(),
            version=p.version,
            sha256=p.sha256,
            decision=decision,
            reason=reason,
        )
        return await self._answer(session_id, step)

    # ---- reading ---------------------------------------------------------------------------

    async def get(self, caller: Caller, p: ce.ConfirmationGet) -> cf.FormOut:
        """The form now, for the session's taxpayer or agent (a page after a reload)."""
        parties = await self.store.parties(p.session_id)
        if parties is None or caller.subject not in (parties.taxpayer_id, parties.agent_id):
            raise DomainError("not_in_session", "you are not a participant of that session")
        view = await self.store.latest(p.session_id)
        return cf.FormOut(
            session_id=p.session_id,
            form=None if view is None else cf.FormVersionView.model_validate(view),
        )

    async def history(self, session_id: str) -> cf.FormHistory:
        """Every version with its decision; the caller's transport checked who may see it."""
        versions = [
            cf.FormVersionView.model_validate(v) for v in await self.store.history(session_id)
        ]
        recorded = await self.store.recorded(session_id)
        return cf.FormHistory(
            session_id=session_id,
            latest=versions[-1] if versions else None,
            versions=versions,
            recorded=None if recorded is None else cf.FormRecord.model_validate(recorded),
        )

    def definitions(self) -> cf.FormDefinitions:
        """Every catalog item's fields and materials (the agent's editor, the labels)."""
        items = [
            cf.ItemFormView(
                code=form.code,
                fields=[
                    cf.FieldDefView(
                        name=f.name,
                        type=f.type,
                        label=f.label,
                        required=f.required,
                        min=f.min,
                        max=f.max,
                        options=list(f.options),
                        option_labels=f.option_labels,
                    )
                    for f in form.fields
                ],
                materials=[
                    cf.RequirementView(name=m.name, label=m.label, required=m.required)
                    for m in form.materials
                ],
            )
            for form in self.forms.items.values()
        ]
        return cf.FormDefinitions(version=self.forms.version, items=items)

    # ---- the handle step -------------------------------------------------------------------

    async def summary_form(
        self, db: AsyncSession, session_id: str, result: str
    ) -> dict[str, Any] | None:
        """Inside the summary's transaction (the session row locked): the form as the summary
        records it (kept beside the summary), or None when the session has none. A `resolved`
        summary needs the latest version confirmed; `follow_up` and `transferred` record it
        as it stands (refused or undecided business was not handled, and the record says
        so)."""
        view = await self.store.latest_in(db, session_id)
        if view is None:
            return None
        if result == "resolved" and view["state"] != "confirmed":
            raise DomainError(
                "form_not_confirmed",
                f"the confirmation form's version {view['version']} is {view['state']}, not "
                "confirmed: a resolved summary needs the taxpayer's confirmation (or save it as "
                "follow_up)",
            )
        at = now()
        record = record_of(view, at)
        await self.store.record_in(db, session_id, record, at)
        return record

    # ---- announcing ------------------------------------------------------------------------

    async def _answer(self, session_id: str, step: Step) -> cf.FormOut:
        form = cf.FormVersionView.model_validate(step.view)
        if step.changed:
            await self._announce(session_id, step.parties, form)
        return cf.FormOut(session_id=session_id, form=form)

    async def _announce(self, session_id: str, parties: Parties, form: cf.FormVersionView) -> None:
        """Both sides' pages (every connection of each, on any node) show the change at once."""
        message = se.ConfirmationForm(session_id=session_id, form=form)
        try:
            for subject in (parties.taxpayer_id, parties.agent_id):
                if subject:
                    await self.notifier.to_user(subject, message)
        except Exception:  # the step is committed; a page also reads the form on resume
            log.exception("could not announce the form of session %s", session_id)
