"""A real headless browser for page tests: Debian's chromium driven by Selenium through
Debian's chromedriver (scripts/setup.sh installs both; nothing is downloaded).

    from fixtures_browser import browser, console_errors  # noqa: F401 (fixture)

    def test_page(browser):
        browser.get(server.url)
        WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "x").text == "ready")
        assert console_errors(browser) == []
"""

import contextlib
import pathlib
import tempfile

import pytest

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
# Headless, no sandbox (root in CI), and nothing that reaches the network on its own.
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--mute-audio",
    "--window-size=1280,900", "--autoplay-policy=no-user-gesture-required",
)


@contextlib.contextmanager
def headless_chromium(profile_dir: str | pathlib.Path | None = None):
    """A Selenium WebDriver on a fresh headless chromium; quit when the block ends."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.fail(f"{path} is missing: run scripts/setup.sh (apt-get install chromium chromium-driver)")
    with contextlib.ExitStack() as stack:
        if profile_dir is None:
            profile_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="chromium-"))
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in (*CHROMIUM_ARGS, f"--user-data-dir={profile_dir}"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        stack.callback(driver.quit)
        driver.set_page_load_timeout(30)
        yield driver


@pytest.fixture
def browser(tmp_path):
    """A fresh headless chromium (its own profile under tmp_path) for one test."""
    with headless_chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def console_errors(driver) -> list[str]:
    """The page's console errors (and uncaught exceptions) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
