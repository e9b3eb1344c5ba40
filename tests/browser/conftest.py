"""Browser tests: the web portal driven by Playwright in headless Chromium.

One Chromium for the session, one live server (the real app, the demo catalog, a fresh
database, the settable clock) per test module, a fresh browser context (no cookies) per
test. Every page a test looks at goes through ``look``: screenshots at phone and desktop
size kept under ``test-artifacts/screenshots/<test>/``, the page contract's basics, no
sideways scrolling at 360 px, and axe-core with no serious or critical violation.

Without Chromium (Debian's ``chromium``) or Playwright the tests skip and say which is
missing; under ``CI=true`` that skip fails the run (CI installs both).
"""

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from imaging_bridge.bootstrap import Runtime
from tests.conftest import LiveServer, demo_runtime, fresh_database
from tests.support import SettableClock

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

try:
    from axe_playwright_python.sync_playwright import Axe
except ImportError:  # pragma: no cover - depends on the machine
    Axe = None

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
SIZES = {"phone": PHONE, "desktop": DESKTOP}
BLOCKING_IMPACTS = {"serious", "critical"}
STEP_TIMEOUT_MS = 10_000
"""Longest wait for one step (a page, an element): pages answer in milliseconds here, so
a step that waits this long has failed; Playwright's own default (30 s) made a broken
page cost minutes."""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_tools() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if chromium_path() is None:
        return (
            "Chromium is missing: no `chromium` or `chromium-browser` on PATH "
            "(Debian: apt-get install chromium)"
        )
    if sync_playwright is None:
        return "Playwright is missing: cannot import playwright.sync_api (pip install -e '.[dev]')"
    if Axe is None:
        return (
            "axe-playwright-python is missing: cannot import "
            "axe_playwright_python.sync_playwright (pip install -e '.[dev]')"
        )
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield chromium
        chromium.close()


@dataclass
class Portal:
    """The served app: its address, its clock and its runtime (for set-up through the API)."""

    url: str
    clock: SettableClock
    runtime: Runtime
    database_url: str

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@pytest.fixture(scope="module")
def portal(
    browser: Any, pg_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portal]:
    """The real app with the demo catalog on a fresh database, served on a free port; one
    per module (tests register their own patients, so they do not meet)."""
    clock = SettableClock()
    with (
        fresh_database(pg_server) as url,
        demo_runtime(url, tmp_path_factory.mktemp("portal"), clock) as runtime,
        LiveServer(runtime) as server,
    ):
        yield Portal(url=server.url, clock=clock, runtime=runtime, database_url=url)


@pytest.fixture
def context(browser: Any, portal: Portal) -> Iterator[Any]:
    """A fresh browser (no cookies), phone-sized first: the portal is mobile-first."""
    ctx = new_context(browser, portal)
    yield ctx
    ctx.close()


def new_context(browser: Any, portal: Portal, **options: Any) -> Any:
    """A browser context on the portal (no cookies), phone-sized unless ``options`` say
    otherwise, failing a step after STEP_TIMEOUT_MS."""
    ctx = browser.new_context(
        **{"base_url": portal.url, "viewport": PHONE, "locale": "en-US", **options}
    )
    ctx.set_default_timeout(STEP_TIMEOUT_MS)
    return ctx


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one readable line each
    (rule, impact, the elements it found, and what to fix)."""
    assert Axe is not None
    results = Axe().run(page)
    lines = []
    for violation in results.response["violations"]:
        if violation.get("impact") not in BLOCKING_IMPACTS:
            continue
        targets = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
        lines.append(
            f"{violation['id']} ({violation['impact']}): {violation['help']} - at {targets}"
        )
    return lines


class Look:
    """What every page a test visits must pass, with its screenshots kept."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pages: list[Any] = []  # every page (tab) looked at, in order
        self.scriptless: list[Any] = []  # contexts with JavaScript off
        shutil.rmtree(folder, ignore_errors=True)

    def __call__(self, page: Any, name: str) -> None:
        """Check the page ``page`` shows now and save it as ``<name>-phone.png`` and
        ``<name>-desktop.png``."""
        if page not in self.pages:
            self.pages.append(page)
        page.wait_for_load_state("load")
        self.screenshots(page, name)
        self.contract(page, name)
        if page.context in self.scriptless:
            return
        problems = serious_violations(page)
        assert not problems, f"axe-core on {name} ({page.url}):\n" + "\n".join(problems)

    def without_scripts(self, context: Any) -> Any:
        """Mark a context made with ``java_script_enabled=False``: axe-core is not run on its
        pages, as its checks wait on timers that never fire there (the page would hang).
        The portal's pages carry no script, so axe sees the same pages in the other tests."""
        self.scriptless.append(context)
        return context

    def screenshots(self, page: Any, name: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        before = page.viewport_size
        for size, viewport in SIZES.items():
            page.set_viewport_size(viewport)
            page.screenshot(path=str(self.folder / f"{name}-{size}.png"), full_page=True)
        page.set_viewport_size(before)

    def contract(self, page: Any, name: str) -> None:
        """The page contract's basics: a language, one heading 1, a skip link, and nothing
        wider than a 360 px phone."""
        lang = page.locator("html").get_attribute("lang")
        assert lang in {"en", "es"}, f"{name}: html lang is {lang!r}"
        assert page.locator("h1").count() == 1, f"{name}: not exactly one <h1>"
        assert page.locator("a[href^='#']").count() >= 1, f"{name}: no skip link"
        before = page.viewport_size
        page.set_viewport_size(PHONE)
        overflow = horizontal_overflow(page)
        page.set_viewport_size(before)
        assert overflow <= 0, f"{name}: {overflow} px wider than a 360 px phone"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test, so ``look`` knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def look(request: pytest.FixtureRequest) -> Iterator[Look]:
    """The checks of every page; when the test fails, the pages it had open are
    screenshotted as ``failed-<n>.png`` (what the browser showed at that moment)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    checks = Look(SCREENSHOTS / name)
    yield checks
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        checks.folder.mkdir(parents=True, exist_ok=True)
        for number, page in enumerate(checks.pages, start=1):
            if not page.is_closed():
                page.screenshot(path=str(checks.folder / f"failed-{number}.png"), full_page=True)
