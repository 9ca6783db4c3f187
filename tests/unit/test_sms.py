"""The SMS senders against a real HTTP gateway on loopback."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web

from vtax.sms import HttpSmsSender, LogSmsSender, SmsError, masked, sms_sender


async def gateway(status: int) -> tuple[web.AppRunner, str, list[Any]]:
    got: list[Any] = []

    async def receive(request: web.Request) -> web.Response:
        got.append((request.headers.get("Authorization"), await request.json()))
        return web.json_response({}, status=status)

    app = web.Application()
    app.router.add_post("/sms", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/sms", got


async def test_http_sender_posts_json_with_the_token() -> None:
    runner, url, got = await gateway(202)
    try:
        await HttpSmsSender(url, "k3y").send("+85291234567", "验证码 123456")
    finally:
        await runner.cleanup()
    assert got == [("Bearer k3y", {"to": "+85291234567", "text": "验证码 123456"})]


async def test_http_sender_raises_on_refusal_and_on_no_gateway() -> None:
    runner, url, _ = await gateway(500)
    try:
        with pytest.raises(SmsError, match="500"):
            await HttpSmsSender(url).send("+8613800138000", "x")
    finally:
        await runner.cleanup()
    with pytest.raises(SmsError, match="unreachable"):
        await HttpSmsSender(url, timeout_s=2).send("+8613800138000", "x")


async def test_log_sender_masks_the_number_and_refuses_non_e164(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = LogSmsSender()
    with caplog.at_level(logging.WARNING):
        await sender.send("+8613800138000", "code 654321")
    assert "+86138****8000" in caplog.text and "654321" in caplog.text
    assert "13800138000" not in caplog.text
    with pytest.raises(SmsError):
        await sender.send("13800138000", "x")
    assert sender.sent == [("+8613800138000", "code 654321")]


def test_choice_and_mask() -> None:
    assert isinstance(sms_sender(""), LogSmsSender)
    assert isinstance(sms_sender("http://gw/sms"), HttpSmsSender)
    assert masked("+85366123456") == "+85366**3456"
