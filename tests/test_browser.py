"""The report in a real browser: Debian's headless Chromium (/usr/bin/chromium, installed by
.ci/run; nothing downloads a browser) opens the report built from the small fixture, through
the DevTools protocol. Every image must have loaded with a non-zero natural size, every link
must resolve (an anchor to an element of the page, a file to a page that loads), and a
screenshot is saved under build/ for a person to look at."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT
from tests.report_fixture import make_project

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("FWSTUDY_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = PROJECT / "build" / "browser" / "report.png"
# What the page holds once loaded: every image's state and every link's target.
INVENTORY = """(() => ({
  ready: document.readyState,
  images: [...document.images].map(i => ({src: i.currentSrc || i.src, complete: i.complete,
                                          width: i.naturalWidth, height: i.naturalHeight})),
  links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
}))()"""


class DevTools:
    """A minimal DevTools-protocol client over one page's websocket (websocket-client)."""

    def __init__(self, url: str):
        import websocket

        self.socket = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def open(self, url: str) -> dict:
        """Navigate and wait until the document and its images have loaded; the navigation's
        result (``errorText`` when it failed, ``isDownload`` for a file the browser saves)."""
        result = self.call("Page.navigate", url=url)
        if result.get("errorText") or result.get("isDownload"):
            return result  # nothing will load in the page: a failure, or a file handed to downloads
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = self.evaluate("document.readyState + '|' + location.href")
            if state and state.startswith("complete|") and state.endswith(url.split("#")[0].rsplit("/", 1)[-1]):
                break
            time.sleep(0.05)
        return result

    def close(self):
        self.socket.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)")
    pytest.importorskip("websocket", reason="websocket-client is not installed (pip install -e '.[dev]')")
    profile_dir = tempfile.mkdtemp(prefix="fwstudy-chromium-")
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--allow-file-access-from-files",
               "--remote-debugging-port=0", f"--user-data-dir={profile_dir}", "--window-size=1280,1600",
               "about:blank"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        port_file = Path(profile_dir) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()) and time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.skip(f"{CHROMIUM} exited with status {process.returncode} before it listened")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            pages = [t for t in json.load(reply) if t["type"] == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        tools.call("Page.enable")
        yield tools
        tools.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(profile_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    profile = make_project(root)
    build = subprocess.run([sys.executable, "-m", "fwstudy.report", "--profile", profile, "--root", str(root)],
                           capture_output=True, text=True, cwd=PROJECT, timeout=300)
    assert build.returncode == 0, build.stderr
    return root / "build" / profile / "report" / "index.html"


def test_report_images_load_links_resolve_and_a_screenshot(browser, report):
    url = report.as_uri()
    browser.open(url)
    page = browser.evaluate(INVENTORY)
    assert page["ready"] == "complete"
    assert page["images"], "the fixture's figure is on the page"
    for image in page["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = browser.call("Page.captureScreenshot", format="png")
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    assert SCREENSHOT.stat().st_size > 10_000

    anchors = {link[1:] for link in page["links"] if link.startswith("#")}
    assert anchors and anchors <= set(page["ids"]), anchors - set(page["ids"])
    files = sorted({link.split("#")[0] for link in page["links"] if not link.startswith("#")})
    assert "notebooks/01_training_speed.html" in files and "figures/training_speed.csv" in files
    for link in files:
        target = (report.parent / link).resolve()
        assert target.is_file(), f"{link} does not resolve"
        result = browser.open(target.as_uri())
        # a CSV is handed to the download manager (isDownload, the navigation itself "aborted"):
        # it resolved; a missing file is net::ERR_FILE_NOT_FOUND
        assert result.get("isDownload") or "errorText" not in result, (link, result)
        if link.endswith(".html"):  # a rendered notebook: its own images load too
            inner = browser.evaluate(INVENTORY)
            assert inner["ready"] == "complete"
            assert all(i["complete"] and i["width"] > 0 for i in inner["images"]), link
