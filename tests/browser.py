"""Open a local HTML file in headless Chromium (Debian's ``chromium`` + ``chromium-driver``)
through Selenium and report what a person would see: console errors, the page's own
state, a screenshot.  Tests skip, with the reason, where any piece is missing."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)


def _which(names: tuple[str, ...]) -> str | None:
    return next((found for name in names if (found := shutil.which(name))), None)


def browser_or_skip() -> tuple[str, str]:
    """Paths of the browser and its driver, or skip the calling test saying what is missing."""
    pytest.importorskip("selenium", reason="the browser test needs selenium (archsearch[dev])")
    browser, driver = _which(CHROMIUM_NAMES), _which(DRIVER_NAMES)
    if browser is None or driver is None:
        pytest.skip("no headless Chromium here: apt-get install chromium chromium-driver")
    return browser, driver


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium session that keeps every console message (``goog:loggingPrefs``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = browser_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path keeps Selenium Manager from looking for one on the network.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """Console messages at error level (uncaught exceptions included) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def open_page(driver: Any, path: Path, timeout: float = 30.0) -> float:
    """Load ``path`` and wait until the page says it is ready (``body[data-ready="1"]``);
    returns the seconds from navigation start to ready, as the page's own clock measured."""
    driver.get(path.resolve().as_uri())
    deadline = time.monotonic() + timeout
    while driver.execute_script("return document.body && document.body.dataset.ready") != "1":
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} did not get ready in {timeout:.0f} s; "
                                 f"console: {console_errors(driver)}")
        time.sleep(0.05)
    return float(driver.execute_script(
        "return (window.archsearchReadyAt || performance.now()) / 1000"))


def full_screenshot(driver: Any, out: Path, width: int = 1400) -> Path:
    """A screenshot of the whole page (the window grown to the document's height)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, min(max(height, 600), 8000))
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))
    return out
