"""One embedded server with the UI test data for the module, and headless Debian Chromium.

The browser is the system's (`apt-get install chromium`) driven by pip `playwright`; nothing is
downloaded. Without /usr/bin/chromium (or playwright) the browser tests skip with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.ui.traffic import load_demo

CHROMIUM = os.environ.get("LLMSCOPE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
BIG_TRACE_SPANS = 10_000


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    settings = Settings(
        host="127.0.0.1",
        otlp_grpc_port=0,
        otlp_http_port=0,
        api_port=0,
        data_dir=tmp_path_factory.mktemp("ui") / "data",
        flush_interval_s=0.2,
    )
    server = EmbeddedServer(settings)
    server.start()
    try:
        load_demo(server, traces=12, big_spans=BIG_TRACE_SPANS)
        yield server
    finally:
        server.stop()


# CI installs Chromium and sets this, so a missing browser fails the run instead of skipping the UI tests.
REQUIRE_BROWSER = os.environ.get("LLMSCOPE_REQUIRE_BROWSER", "") not in ("", "0")


def _unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (LLMSCOPE_REQUIRE_BROWSER is set)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium (the UI tests use the system browser)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install playwright (no browser download is needed)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, ui_server: EmbeddedServer) -> Iterator[Any]:
    """A fresh browser context (own localStorage) with a fixed zone and locale; page errors fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="Europe/Lisbon", locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.base_url = ui_server.api_url  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page: Any, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
