"""Debian's Chromium as the browser tests drive it (Playwright, async API), and one browser
shared by the tests of a run (the root conftest's `chromium` fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


class Chromium:
    """One Chromium for the run (Playwright's driver and the browser start in ~2-4 s on this
    machine, paid once instead of once a test). Each test gets contexts of its own (cookies,
    storage, permissions: like a separate person) and leaves none open; a browser that died is
    started again for the next test."""

    def __init__(self) -> None:
        self._pw: Any = None
        self._browser: Any = None

    async def browser(self) -> Any:
        if self._browser is None or not self._browser.is_connected():
            if self._pw is None:
                from playwright.async_api import async_playwright

                self._pw = await async_playwright().start()
            self._browser = await self._pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
        return self._browser

    async def after_test(self) -> None:
        """Close whatever context a test left open: the next test starts from none."""
        if self._browser is not None and self._browser.is_connected():
            for ctx in list(self._browser.contexts):
                try:
                    await ctx.close()
                except Exception:
                    pass

    async def close(self) -> None:
        if self._browser is not None:
            try:
                await self._browser.close()
            except Exception:
                pass
        if self._pw is not None:
            await self._pw.stop()
