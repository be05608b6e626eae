"""`ivr report --html` opened in headless Chromium (Debian's chromium and chromium-driver,
driven by selenium): the page renders its charts, loads nothing, and logs no error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr.cli import main
from tests.chromium import CHROMIUM_MISSING, chromium, installed
from tests.unit.report.conftest import (  # noqa: F401 (fixtures)
    FLOWS,
    data_dir,  # noqa: F401
    known_url,
    store_url,
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not installed():
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    found = chromium(tmp_path / "chromium", ["--window-size=1200,900"])
    try:
        yield found
    finally:
        found.quit()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("how", [(), ("--experiment", "voice_vs_dtmf"), ("--compare", "1", "2")])
def test_the_report_page_in_chromium(
    browser: Any,
    known_url: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: tuple[str, ...],
) -> None:
    monkeypatch.setenv("IVR_FLOWS", str(FLOWS))
    page = tmp_path / "report.html"
    assert main(["report", "--records", known_url, "--html", str(page), *how]) == 0
    browser.get(page.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    assert browser.title == "ivr report"
    charts = browser.execute_script(
        "return [...document.querySelectorAll('svg')].map(s => {"
        " const r = s.getBoundingClientRect(); return [r.width, r.height,"
        " s.querySelectorAll('rect, path').length]; })"
    )
    assert len(charts) == {(): 5, ("--experiment",): 5, ("--compare",): 2}[how[:1]]
    assert all(width > 300 and height > 100 and shapes > 3 for width, height, shapes in charts)
    # nothing fetched: no script, font, image or style from anywhere
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
