"""Headless Chromium for the browser tests and bench/phone.py: Debian's chromium and
chromium-driver, driven by selenium, as root (no sandbox), its console log kept."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CHROMIUM_MISSING = (
    "chromium and chromedriver are not installed: run "
    "`apt-get install -y chromium chromium-driver` (make test does this)"
)
FLAGS = (
    "--headless",
    "--no-sandbox",  # as root, Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
)


def installed() -> bool:
    return shutil.which("chromium") is not None and shutil.which("chromedriver") is not None


def chromium(profile: Path, flags: Iterable[str] = ()) -> Any:
    """A new headless Chromium with its own `profile` directory and `flags` besides
    FLAGS; the caller quits it. Check `installed()` first."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in (*FLAGS, *flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver named: selenium does not look for (or download) one of its own
    service = Service(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)
