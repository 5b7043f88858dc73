"""The dashboard as a person sees it: Playwright for Python driving Debian's Chromium
(Playwright's own browser download does not work here), axe-core from npm injected into
each page, screenshots kept as test artifacts.

One browser for the whole session (starting Chromium is the slow part); each test gets
a fresh context. Without Chromium, Playwright or axe-core the tests skip, and fail
where CI promises them (CONVEYOR_TESTS_NEED_BROWSER, set by .ci/run, which also
installs axe-core and exports CONVEYOR_AXE_CORE)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.export.browser import CHROMIUM_FLAGS, chromium
from tests.serve.browser.pages import Watched

ROOT = Path(__file__).resolve().parents[3]


def missing(why: str) -> None:
    """Skip the test, or fail it where CI promises a browser."""
    if os.environ.get("CONVEYOR_TESTS_NEED_BROWSER"):
        pytest.fail(f"{why} (CI installs it: .ci/run)")
    pytest.skip(why)


@pytest.fixture(scope="session")
def _playwright_browser() -> Iterator[object]:
    path = chromium()  # a skip without one, a failure where CI promises one
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed (pip install -e '.[test]')")
    # Playwright starts Chromium on a fresh, temporary user-data-dir of its own.
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=list(CHROMIUM_FLAGS))
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, from CONVEYOR_AXE_CORE or .ci/npm (where .ci/run puts it)."""
    candidates = [
        os.environ.get("CONVEYOR_AXE_CORE", ""),
        str(ROOT / ".ci" / "npm" / "node_modules" / "axe-core" / "axe.min.js"),
    ]
    for candidate in candidates:
        if not candidate:
            continue
        path = Path(candidate)
        if path.is_dir():
            path = path / "axe.min.js"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    missing("axe-core is not installed (set CONVEYOR_AXE_CORE to its axe.min.js)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $CONVEYOR_TEST_ARTIFACTS/dashboard, or a temp directory."""
    base = os.environ.get("CONVEYOR_TEST_ARTIFACTS")
    where = Path(base) / "dashboard" if base else tmp_path_factory.mktemp("dashboard-shots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def browser_page(
    _playwright_browser: object, axe_source: str, artifacts: Path
) -> Iterator[Watched]:
    """A page of the session's browser, watched for console errors and dialogs."""
    from playwright.sync_api import Browser

    assert isinstance(_playwright_browser, Browser)
    # A context of its own per test: no cookie (a token) or storage carries over.
    context = _playwright_browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield Watched(context.new_page(), axe_source, artifacts)
    finally:
        context.close()
