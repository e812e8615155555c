"""A real browser for the page tests: Debian's headless Chromium driven by /usr/bin/chromedriver.

Nothing is downloaded at run time: chromedriver is started here, from its Debian path, on a
free port (through gevent's subprocess: the test process's ``os`` is patched and the plain
module's fork would wait forever), and Selenium talks to it as to a remote driver, so
Selenium Manager never runs. ``browser`` (the fixture, imported as ``browser_fixture``) yields a :class:`Browser`: the
WebDriver, screenshots saved under the test's tmp_path, and the page's console errors
(``goog:loggingPrefs``).
"""

from __future__ import annotations

import os
import shutil
import time

import gevent
import pytest
from gevent import subprocess

from .media import wait_until
from .net import free_port, port_open

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
PAGE_TIMEOUT_S = 20


class Browser:
    def __init__(self, tmp_path):
        from selenium import webdriver

        for tool in (CHROMEDRIVER, CHROMIUM):
            if not os.path.exists(tool) and shutil.which(os.path.basename(tool)) is None:
                raise AssertionError(f"{tool} is required (apt-get install -y chromium chromium-driver)")
        self.dir = tmp_path
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--window-size=1280,1000",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    f"--user-data-dir={tmp_path / 'chromium-profile'}"):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        port = free_port()
        self.proc = subprocess.Popen([CHROMEDRIVER, f"--port={port}", f"--log-path={tmp_path / 'chromedriver.log'}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not port_open(port):
                assert self.proc.poll() is None, f"chromedriver exited with {self.proc.returncode}"
                assert time.monotonic() < deadline, "chromedriver did not listen within 10 s"
                gevent.sleep(0.05)
            self.driver = webdriver.Remote(command_executor=f"http://127.0.0.1:{port}", options=opts)
        except BaseException:
            self.proc.kill()
            raise
        self.driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        self.driver.set_script_timeout(PAGE_TIMEOUT_S)
        self.logs: list[dict] = []
        self.shots: list = []

    def get(self, url: str) -> None:
        self.driver.get(url)

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, pred, timeout: float = 15.0, what: str = "condition", interval: float = 0.2):
        """Call ``pred()`` until it is truthy; fail naming ``what`` (with a screenshot and the
        page's last console lines) after ``timeout``."""
        try:
            return wait_until(pred, timeout, interval, what)
        except AssertionError as e:
            self.screenshot("timeout")
            raise AssertionError(f"{e}; console: {self.console()[-5:]}") from None

    def screenshot(self, name: str):
        path = self.dir / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.shots.append(path)
        return path

    def console(self) -> list[dict]:
        """Every console entry so far (the driver hands each one out once; they are kept here)."""
        self.logs.extend(self.driver.execute("getLog", {"type": "browser"})["value"])
        return self.logs

    def errors(self) -> list[str]:
        return [e["message"] for e in self.console() if e.get("level") == "SEVERE"]

    def quit(self):
        try:
            self.driver.quit()
        finally:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(name="browser")
def browser_fixture(tmp_path):
    """A :class:`Browser` for one test (import ``browser_fixture`` into the test module)."""
    b = Browser(tmp_path)
    try:
        yield b
    finally:
        b.quit()
