"""Knowledge-base entries: a question with its other phrasings and an answer with links, per
language, tied to a business category and catalog items, valid between two days, versioned.

An entry is the unit supervisors edit, the retriever indexes and the file format carries. The
validation here is the one every way in shares (REST edits, the file import, the seed)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from vtax.contract.base import catalog, no_nul

KbLanguage = Literal["zh-CN", "zh-HK", "en", "pt"]
KB_LANGUAGES: tuple[KbLanguage, ...] = ("zh-CN", "zh-HK", "en", "pt")
# The service (queue) language a page language is served in: Hong Kong users speak Cantonese.
SERVICE_LANGUAGE: dict[str, str] = {"zh-CN": "zh-CN", "zh-HK": "yue", "en": "en", "pt": "pt"}

EntryKey = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", min_length=1, max_length=64)
]
Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=300)]
AnswerText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=4000)]
LinkTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d+)?(/[^\s]*)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)


class Link(_Strict):
    """A page the answer points to (the e-tax bureau, an app, a verification platform)."""

    url: Annotated[str, StringConstraints(max_length=500)]
    title: LinkTitle

    @model_validator(mode="after")
    def _url(self) -> Link:
        if not _URL.match(self.url):
            raise ValueError(f"link url {self.url[:80]!r} is not an http(s) address")
        return self


class EntryText(_Strict):
    """One language of an entry."""

    question: Phrase
    alternatives: Annotated[list[Phrase], Field(max_length=30)] = Field(default_factory=list)
    answer: AnswerText
    links: Annotated[list[Link], Field(max_length=10)] = Field(default_factory=list)


class EntryDraft(_Strict):
    """What an editor writes: everything but the bookkeeping (version, who, when)."""

    key: EntryKey
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    items: Annotated[
        list[Annotated[str, StringConstraints(max_length=100)]], Field(max_length=20)
    ] = Field(default_factory=list)
    texts: dict[KbLanguage, EntryText]
    valid_from: date | None = None
    valid_until: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EntryDraft:
        data = catalog()
        if self.category not in data.categories:
            raise ValueError(f"no business category {self.category[:64]!r}")
        wrong = [i for i in self.items if i not in data.items_by_category[self.category]]
        if wrong:
            raise ValueError(f"catalog items not of category {self.category}: {', '.join(wrong)}")
        if "zh-CN" not in self.texts:
            raise ValueError("every entry has a zh-CN text")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


class Entry(EntryDraft):
    """A stored entry: a draft with its version and its last change."""

    version: Annotated[int, Field(ge=1)]
    updated_by: Annotated[str, StringConstraints(max_length=64)]
    updated_at: datetime

    def draft(self) -> EntryDraft:
        return EntryDraft.model_validate(self.model_dump(include=set(EntryDraft.model_fields)))


class EntryVersion(_Strict):
    """One step of an entry's history: what it was after the change, and the change."""

    key: str
    version: int
    change: Literal["created", "updated", "retired", "restored"]
    changed_by: str
    changed_at: datetime
    snapshot: EntryDraft
