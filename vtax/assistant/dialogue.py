"""The assistant's side of a conversation that is not retrieval: recognising a request for
a person in any of the four languages, and what the assistant says, in each of them."""

from __future__ import annotations

import re
from typing import Literal

from vtax.assistant.kb import KbLanguage
from vtax.assistant.text import normalize

# Matched on the normalized text (Simplified script, lower case, no accents).
_PERSON_ZH = re.compile(
    r"(转人工|人工服务|人工客服|找人工|要人工|真人|客服|工作人员|找个人|跟人讲|同人讲|搵人|揾人|"
    r"人工坐席|坐席|^人工$|^人工[。!！?？]?$|转接人工|接人工|打人工)"
)
_PERSON_LATIN = re.compile(
    r"(\b(human|operator|real person|live agent|customer service|talk to someone|"
    r"speak to someone|atendente|humano|operador|falar com alguem)\b|"
    r"\b(talk|speak|chat) (to|with) (a|an|the)? ?(person|agent|human|staff)\b|"
    r"\bfalar com (uma )?(pessoa|funcionario)\b|"
    r"^(an? )?(agent|person|human|pessoa|uma pessoa|funcionario)( please| por favor)?[.!? ]*$)"
)

Phrase = Literal["greeting", "ask_feedback", "no_answer", "handoff_queue", "handoff_callback"]

PHRASES: dict[Phrase, dict[KbLanguage, str]] = {
    "greeting": {
        "zh-CN": "您好，我是智能办税助手，请直接输入您的问题。需要时可随时“转人工”。",
        "zh-HK": "你好，我係智能辦稅助手，請直接輸入你嘅問題。有需要可以隨時「轉人工」。",
        "en": "Hello, I am the tax assistant. Type your question. You can ask for a person at any time.",
        "pt": "Olá, sou o assistente fiscal. Escreva a sua pergunta. Pode pedir uma pessoa a qualquer momento.",
    },
    "ask_feedback": {
        "zh-CN": "这个回答解决您的问题了吗？",
        "zh-HK": "呢個答案解決到你嘅問題嗎？",
        "en": "Did this solve your question?",
        "pt": "Isto resolveu a sua dúvida?",
    },
    "no_answer": {
        "zh-CN": "抱歉，我没有找到可靠的答案。可以换个说法再问，或者转人工由工作人员为您解答。",
        "zh-HK": "唔好意思，我搵唔到可靠嘅答案。你可以換個講法再問，或者轉人工由職員解答。",
        "en": "Sorry, I could not find a reliable answer. Try other words, or talk to a person.",
        "pt": "Desculpe, não encontrei uma resposta fiável. Tente outras palavras ou fale com uma pessoa.",
    },
    "handoff_queue": {
        "zh-CN": "正在为您转接工作人员，工作人员会看到您和助手的全部对话。",
        "zh-HK": "而家幫你轉接職員，職員會睇到你同助手嘅全部對話。",
        "en": "Connecting you to a person, who will see your whole conversation with the assistant.",
        "pt": "A ligar a uma pessoa, que verá toda a sua conversa com o assistente.",
    },
    "handoff_callback": {
        "zh-CN": "现在不是人工服务时间。您可以预约回电或预约办理时间，工作人员会看到您和助手的全部对话。",
        "zh-HK": "而家唔係人工服務時間。你可以預約回電或者預約辦理時間，職員會睇到你同助手嘅全部對話。",
        "en": "People are not on duty now. Book a callback or an appointment; the person will see your whole conversation.",
        "pt": "Não há atendimento humano agora. Marque uma chamada de volta ou uma hora; a pessoa verá toda a conversa.",
    },
}


def asks_for_person(text: str) -> bool:
    """The taxpayer asks for a person (转人工, 人工, agent, pessoa ...)."""
    norm = normalize(text)
    return bool(_PERSON_ZH.search(norm) or _PERSON_LATIN.search(norm))


def say(phrase: Phrase, language: KbLanguage) -> str:
    return PHRASES[phrase][language]
