# ruff: noqa: RUF001 (full-width punctuation is right in Chinese text)
"""What the texts to phones say, in the four page languages (zh-CN, zh-HK, en, pt), with
times in the service time zone. Unknown locales read English."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from vtax.contract.base import catalog

LOCALES = ("zh-CN", "zh-HK", "en", "pt")

TEXTS: dict[str, dict[str, str]] = {
    "confirmation": {
        "zh-CN": "【V-Tax】您已预约{when}的{business}视频办税，预约号{ref}。我们将先进行预审，结果将短信通知您。",
        "zh-HK": "【V-Tax】您已預約{when}的{business}視像辦稅，預約編號{ref}。我們會先進行預審，結果將以短訊通知您。",
        "en": "V-Tax: your video appointment for {business} at {when} is booked (ref. {ref}). We will pre-review it and text you the result.",
        "pt": "V-Tax: a sua marcação por vídeo para {business} às {when} está feita (ref. {ref}). Vamos fazer a pré-análise e enviar-lhe o resultado por SMS.",
    },
    "approved": {
        "zh-CN": "【V-Tax】您{when}的预约已通过预审，请于预约时间前{early}分钟内签到。",
        "zh-HK": "【V-Tax】您{when}的預約已通過預審，請於預約時間前{early}分鐘內報到。",
        "en": "V-Tax: your appointment at {when} is approved. Check in from {early} minutes before the time.",
        "pt": "V-Tax: a sua marcação às {when} foi aprovada. Faça o check-in a partir de {early} minutos antes da hora.",
    },
    "redirected_online": {
        "zh-CN": "【V-Tax】您{when}预约的事项可在线办理：{route}。本次预约无需到场，已关闭。",
        "zh-HK": "【V-Tax】您{when}預約的事項可於網上辦理：{route}。本次預約已關閉。",
        "en": "V-Tax: the business of your appointment at {when} can be done online: {route}. The appointment is closed.",
        "pt": "V-Tax: o assunto da sua marcação às {when} pode ser tratado online: {route}. A marcação foi encerrada.",
    },
    "rejected": {
        "zh-CN": "【V-Tax】您{when}的预约未通过预审：{reason}",
        "zh-HK": "【V-Tax】您{when}的預約未通過預審：{reason}",
        "en": "V-Tax: your appointment at {when} was not approved: {reason}",
        "pt": "V-Tax: a sua marcação às {when} não foi aprovada: {reason}",
    },
    "reminder": {
        "zh-CN": "【V-Tax】提醒：您预约了{when}的{business}视频办税，请按时签到。",
        "zh-HK": "【V-Tax】提示：您已預約{when}的{business}視像辦稅，請準時報到。",
        "en": "V-Tax reminder: your video appointment for {business} is at {when}. Please check in on time.",
        "pt": "V-Tax lembrete: a sua marcação por vídeo para {business} é às {when}. Faça o check-in a horas.",
    },
    "cancelled": {
        "zh-CN": "【V-Tax】您{when}的预约已取消。",
        "zh-HK": "【V-Tax】您{when}的預約已取消。",
        "en": "V-Tax: your appointment at {when} is cancelled.",
        "pt": "V-Tax: a sua marcação às {when} foi cancelada.",
    },
    "material_replace": {
        "zh-CN": "【V-Tax】您{when}预约所附的材料“{filename}”需要更换：{issue}。请在预约页面上传新文件。",
        "zh-HK": "【V-Tax】您{when}預約所附的材料「{filename}」需要更換：{issue}。請於預約頁面上載新檔案。",
        "en": 'V-Tax: the file "{filename}" of your appointment at {when} needs replacing: {issue}. Upload a new one on the appointment page.',
        "pt": 'V-Tax: o ficheiro "{filename}" da sua marcação às {when} tem de ser substituído: {issue}. Envie um novo na página da marcação.',
    },
    "turn_near": {
        "zh-CN": "【V-Tax】快轮到您了，请在{minutes}分钟内回到页面接通视频。",
        "zh-HK": "【V-Tax】快將輪到您，請於{minutes}分鐘內返回頁面接通視像。",
        "en": "V-Tax: your turn is near. Come back to the page within {minutes} minutes to connect.",
        "pt": "V-Tax: a sua vez está próxima. Volte à página dentro de {minutes} minutos para ligar.",
    },
}


# What is wrong with a material staff marked needs_replacing (vtax/contract/appointments.py
# `MaterialIssue`), as the text names it.
MATERIAL_ISSUES: dict[str, dict[str, str]] = {
    "illegible": {
        "zh-CN": "文件不清晰",
        "zh-HK": "檔案不清晰",
        "en": "it cannot be read",
        "pt": "não se consegue ler",
    },
    "wrong_document": {
        "zh-CN": "不是所需的材料",
        "zh-HK": "不是所需的材料",
        "en": "it is not the document needed",
        "pt": "não é o documento pedido",
    },
    "expired": {
        "zh-CN": "证件已过期",
        "zh-HK": "證件已過期",
        "en": "it has expired",
        "pt": "está caducado",
    },
    "incomplete": {
        "zh-CN": "材料不完整",
        "zh-HK": "材料不完整",
        "en": "pages or parts are missing",
        "pt": "faltam páginas ou partes",
    },
    "other": {"zh-CN": "其他原因", "zh-HK": "其他原因", "en": "see the note", "pt": "veja a nota"},
}


def issue_text(issue: str, note: str, locale: str) -> str:
    """The reason of a file to replace in `locale`, with staff's note after it."""
    names = MATERIAL_ISSUES.get(issue, MATERIAL_ISSUES["other"])
    name = names.get(locale, names["en"])
    return f"{name} ({note})" if note else name


def local_time(when: datetime, tz: ZoneInfo) -> str:
    """`2026-12-07 09:30`: the service time zone's wall clock (what the taxpayer reads)."""
    return f"{when.astimezone(tz):%Y-%m-%d %H:%M}"


def business_name(category: str, locale: str) -> str:
    """The category's name from the catalog in `locale` (it names every category in the four
    page languages); a locale it lacks: zh-CN for another Chinese one, else English."""
    for c in catalog().data["categories"]:
        if c["code"] == category:
            names: dict[str, str] = c["name"]
            if locale in names:
                return names[locale]
            if locale.startswith("zh"):
                return names.get("zh-CN", category)
            return names.get("en", category)
    return category


def compose(kind: str, locale: str, data: dict[str, Any], tz: ZoneInfo) -> str:
    """The text of an outbox message of `kind` (KeyError for a kind that has none)."""
    templates = TEXTS[kind]
    template = templates.get(locale, templates["en"])
    values: dict[str, Any] = {
        "when": local_time(datetime.fromisoformat(data["starts_at"]), tz)
        if "starts_at" in data
        else "",
        "business": business_name(str(data.get("category", "")), locale),
        "ref": str(data.get("ref", ""))[:8].upper(),
        "route": str(data.get("route", "")),
        "reason": str(data.get("reason", "")),
        "early": data.get("early", 10),
        "minutes": data.get("minutes", 2),
        "filename": str(data.get("filename", "")),
        "issue": issue_text(str(data.get("issue", "other")), str(data.get("note", "")), locale),
    }
    return template.format(**values)
