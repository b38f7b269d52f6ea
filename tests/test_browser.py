"""Notebook 07's inspector in a real browser: JupyterLab (headless, on a free port) opened in
Chromium through Playwright; run the notebook, change the approach, move the slider, and check
that the rendered image and the per-part table change. A screenshot lands in
``test-artifacts/browser/``. Run alone with ``pytest -m browser``.

Chromium: Debian's ``chromium`` package (``make test`` installs it when it can), or the path in
``$FKD_CHROMIUM``; Playwright's own browser download is not used. Timings and selectors:
``../shared/notes/browser-testing.md`` where present.
"""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = REPO_ROOT / "notebooks" / "07_worst_predictions.ipynb"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
#: Seconds: server start, kernel idle, the notebook's run (imports, galleries), a redraw.
SERVER_S, IDLE_S, RUN_S, REDRAW_S = 60, 120, 300, 60


def chromium_path():
    """Chromium's executable: ``$FKD_CHROMIUM``, Debian's binary, or one on PATH; else skip
    saying what is missing."""
    candidates = [os.environ.get("FKD_CHROMIUM", "")] + list(CHROMIUM_PATHS)
    for candidate in filter(None, candidates):
        found = candidate if Path(candidate).is_file() else shutil.which(candidate)
        if found and os.access(found, os.X_OK):
            return found
    pytest.skip("Chromium is missing: no /usr/lib/chromium/chromium and no chromium on PATH "
                "(Debian: apt-get install -y chromium, which make test does as root; or set "
                "FKD_CHROMIUM to a Chromium executable)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout} s")


@pytest.fixture()
def lab(tmp_path, request):
    """A JupyterLab server on a free port serving a copy of notebook 07: (url, Chromium's
    path). The kernel inherits this session's FKD_HOME, where the quick predictions are made
    (after checking for the browser, so that a machine without one skips at once)."""
    pytest.importorskip("jupyterlab",
                        reason="jupyterlab is missing (pip install -e '.[notebooks]')")
    pytest.importorskip("playwright.sync_api",
                        reason="playwright is missing (pip install -e '.[dev]')")
    executable = chromium_path()
    request.getfixturevalue("quick_predictions")
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    settings = tmp_path / "settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))       # no "Jupyter news?" pop-up
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),    # nothing in ~/.jupyter
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.allow_root=True"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(f"{base}/api/status?token={token}", proc, SERVER_S)
        yield f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", executable
    finally:
        proc.terminate()                                      # shuts its kernel down too
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _inspector_state(page):
    """(image src, per-part table text) of the inspector as rendered now."""
    image = page.locator(".widget-vbox .widget-output img").first
    table = page.locator(".widget-html-content table.fkd-parts").first
    return image.get_attribute("src"), table.inner_text()


def _wait_for_change(page, before, what):
    deadline = time.monotonic() + REDRAW_S
    while time.monotonic() < deadline:
        now = _inspector_state(page)
        if now[0] != before[0] and now[1] != before[1]:
            return now
        page.wait_for_timeout(250)
    raise AssertionError(f"the inspector's image and table did not both change after {what} "
                         f"within {REDRAW_S} s")


def test_inspector_renders_and_reacts_in_jupyterlab(lab):
    from playwright import sync_api
    url, executable = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True,
                                     args=["--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        try:
            page.goto(url)
            # "Run All" before the kernel is idle silently does nothing: wait for Idle first
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=IDLE_S * 1000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator("[data-command='runmenu:run-all']").click()
            first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
            page.wait_for_function(
                "el => /\\[(\\*|\\d+)\\]/.test(el.textContent)", arg=first_prompt.element_handle(),
                timeout=30_000)
            inspector = page.locator(".jp-OutputArea-output .widget-vbox",
                                     has=page.locator(".widget-slider")).first
            inspector.locator(".widget-output img").first.wait_for(timeout=RUN_S * 1000)
            inspector.scroll_into_view_if_needed()
            before = _inspector_state(page)
            assert before[0].startswith("data:image/png;base64,")
            assert "NME68" in before[1] and "3. region + box ResNet" in before[1]

            approach = inspector.locator(".widget-dropdown",
                                         has=page.locator("label", has_text="approach"))
            approach.locator("select").select_option(label="1. end-to-end")
            after_approach = _wait_for_change(page, before, "changing the approach")
            assert "1. end-to-end" in after_approach[1]

            readout = inspector.locator(".widget-slider .widget-readout").first
            assert readout.inner_text().strip() == "0"
            inspector.locator(".noUi-handle").first.focus()
            page.keyboard.press("ArrowRight")
            after_slider = _wait_for_change(page, after_approach, "moving the slider")
            assert readout.inner_text().strip() == "1"
            assert "position 2/" in inspector.locator(".widget-html-content").first.inner_text()
            assert after_slider[0] != before[0]
            inspector.screenshot(path=str(ARTIFACTS / "07_inspector.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "07_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert (ARTIFACTS / "07_inspector.png").stat().st_size > 10_000
