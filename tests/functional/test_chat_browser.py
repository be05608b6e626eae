"""The chat widget (`/static/chat.js`) in headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) on the demo page `/chat` of the real app's public
listener: a customer types an order number, reloads the page and is still in the
conversation, clicks a choice button and sees the goodbye.

The server runs on this test's event loop, so every selenium call (blocking HTTP to the
driver) runs in a thread: the loop serves the page meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import CHROMIUM_MISSING, chromium, installed
from tests.functional.conftest import Server
from tests.functional.twilio_sim import wait_until

WAIT = 60.0  # seconds, at most, for anything the page shows
ASK = "Please send your six digit order number."
# the widget's parts, in its shadow root
WIDGET = "document.getElementById('ivr-chat').shadowRoot"


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[Any]:
    if not installed():
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    started = await asyncio.to_thread(chromium, tmp_path / "chromium", ["--window-size=900,800"])
    yield started
    await asyncio.to_thread(started.quit)


async def do(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def shown(driver: Any, script: str, check: Callable[[Any], bool]) -> Any:
    """What `script` returns once `check` holds for it (polled, bounded)."""

    async def value() -> Any:
        found = await do(driver.execute_script, script)
        return found if check(found) else None

    return await wait_until(value, timeout=WAIT)


def log_of(driver: Any) -> Any:
    """The widget's message list, once it holds `text`."""
    script = (
        f"return [...{WIDGET}.querySelectorAll('.log li')]"
        ".map(li => [li.className, li.textContent])"
    )

    async def holding(text: str) -> list[list[str]]:
        return await shown(driver, script, lambda lines: any(text in t for _, t in lines))

    return holding


async def part(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    host = await do(driver.find_element, By.ID, "ivr-chat")
    root = await do(lambda: host.shadow_root)
    return await do(root.find_element, By.CSS_SELECTOR, selector)


async def test_a_customer_chats_in_the_widget(server: Server, driver: Any, tmp_path: Path) -> None:
    holding = log_of(driver)
    await do(driver.get, f"{server.url}/chat?flow=order_status")  # data-open: opened at once
    lines = await holding(ASK)
    assert lines[0] == [
        "ivr",
        "Chat with us: Hi, this is Example Shop. I can tell you where your order is.",
    ]
    visitor = await do(driver.execute_script, "return localStorage.getItem('ivr-chat-visitor')")
    assert visitor

    await do(driver.refresh)  # a reload: the same visitor, back in the conversation
    await holding(ASK)
    status = f"return {WIDGET}.querySelector('.status').textContent"
    assert await shown(driver, status, lambda s: s == "Continuing your conversation.")

    box = await part(driver, "input")
    await shown(driver, f"return !{WIDGET}.querySelector('input').disabled", bool)
    await do(box.send_keys, "it's 123 456\n")  # Enter sends
    lines = await holding("has shipped")
    assert ["me", "You: it's 123 456"] in lines
    # kept with the test's temporary files (pytest keeps the last runs'), out of git
    await do(driver.save_screenshot, str(tmp_path / "chat-choices.png"))
    labels = f"return [...{WIDGET}.querySelectorAll('.choices button')].map(b => b.textContent)"
    assert await shown(driver, labels, bool) == ["another order", "goodbye", "agent"]

    await do((await part(driver, '.choices button[data-key="2"]')).click)
    lines = await holding("Goodbye.")
    assert ["me", "You: goodbye"] in lines
    assert await shown(driver, status, lambda s: s == "The conversation has ended.")
    again = f"return {WIDGET}.querySelector('.again').textContent"
    assert await do(driver.execute_script, again) == "Start a new conversation"

    named = await do(
        driver.execute_script,
        f"""const root = {WIDGET};
        return {{
          live: root.querySelector('.log').getAttribute('aria-live'),
          label: root.querySelector('label[for="text"]').textContent,
          expanded: root.querySelector('.bubble').getAttribute('aria-expanded'),
        }};""",
    )
    assert named == {"live": "polite", "label": "Your message", "expanded": "true"}
    # the keyboard: Escape closes the panel and gives focus back to the bubble, Enter opens it
    from selenium.webdriver.common.keys import Keys

    await do((await part(driver, ".again")).send_keys, Keys.ESCAPE)
    state = f"""const root = {WIDGET};
        return [root.querySelector('.panel').hidden, root.activeElement?.className]"""
    assert await do(driver.execute_script, state) == [True, "bubble"]
    await do((await part(driver, ".bubble")).send_keys, Keys.ENTER)
    assert (await do(driver.execute_script, state))[0] is False
    [record] = await wait_until(server.records, timeout=WAIT)
    assert (record.channel, record.outcome, record.tasks) == (
        "chat",
        "contained",
        ("order_status",),
    )
    errors = [e for e in await do(driver.get_log, "browser") if e["level"] == "SEVERE"]
    assert errors == []
