"""End-to-end fixtures: Debian's Chromium driven by Playwright against a live
server on the real stack (PostgreSQL, Redis).

Screenshots go to ``test-artifacts/screenshots/`` (set E2E_SCREENSHOT_DIR to
change it, e.g. to docs/screenshots when refreshing the README's pictures).
"""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls
# the tests make between browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(
    os.environ.get(
        "E2E_SCREENSHOT_DIR",
        Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots",
    )
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.e2e_failed = report.failed
    return report


def _keep_failure(request, page, language, who: str) -> None:
    """A failed journey leaves a picture of where each browser stopped."""
    if getattr(request.node, "e2e_failed", False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        test = request.node.originalname.removeprefix("test_")
        path = SCREENSHOTS / f"FAILED-{test}-{language}-{who}.png"
        page.screenshot(path=str(path), full_page=True)


@pytest.fixture(scope="session")
def _playwright():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it with "
            "`apt-get install chromium` (or set CHROMIUM_PATH)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(_playwright):
    browser = _playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture(params=["zh-hans", "en"])
def language(request):
    return request.param


def _new_page(browser, live_server, language, *, viewport=None, **options):
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN" if language == "zh-hans" else "en-US",
        timezone_id="Asia/Shanghai",
        viewport=viewport or {"width": 1280, "height": 900},
        **options,
    )
    context.add_cookies(
        [{"name": "hotline400_language", "value": language, "url": live_server.url}]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


@pytest.fixture
def page(browser, live_server, language, request):
    """A fresh browser context whose portal language is ``language``."""
    page = _new_page(browser, live_server, language)
    yield page
    _keep_failure(request, page, language, "page")
    page.context.close()


@pytest.fixture
def staff_page(browser, live_server, language, request):
    """A second browser (its own cookies): agent staff in the back office,
    with the admin's app sidebar folded (as staff do at 1280 px) so the
    lists have room."""
    page = _new_page(browser, live_server, language)
    page.context.add_init_script(
        "localStorage.setItem('django.admin.navSidebarIsOpen', 'false')"
    )
    yield page
    _keep_failure(request, page, language, "staff")
    page.context.close()


@pytest.fixture
def phone_page(browser, live_server, language, request):
    """A phone-sized browser (390×844, touch) in ``language``."""
    page = _new_page(
        browser,
        live_server,
        language,
        viewport={"width": 390, "height": 844},
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
    )
    yield page
    _keep_failure(request, page, language, "phone")
    page.context.close()


@pytest.fixture
def screenshot(language, request):
    """``screenshot("name")`` saves the page as <test>-<language>-<name>.png.

    ``of=`` takes another page (the back office's); ``full_page=False`` keeps
    just the first screen.
    """

    def take(name: str, *, of=None, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        test = request.node.originalname.removeprefix("test_")
        path = SCREENSHOTS / f"{test}-{language}-{name}.png"
        target = of or request.getfixturevalue("page")
        target.screenshot(path=str(path), full_page=full_page)
        return path

    return take
