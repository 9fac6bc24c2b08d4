"""The BiTrack explorer in a real browser: JupyterLab runs notebook 06 on its quick parameters in
headless Chromium, and next / previous merge step through one video's merge decisions.

Run (not part of the default suite, whose ``-m 'not slow and not browser'`` deselects it)::

    apt-get install -y --no-install-recommends chromium chromium-driver   # Debian's Chromium
    .venv/bin/python -m pip install -c constraints.txt -e ".[browser]"    # playwright, no browser download
    .venv/bin/python -m pytest tests/test_browser_explorer.py -m browser -q

It skips, saying why, without Chromium (``chromium`` on ``PATH`` or ``VISRC_CHROMIUM``) or without
playwright; playwright never downloads a browser here. Screenshots go to
``runs/test_artifacts/browser_explorer/`` (``VISRC_TEST_ARTIFACTS`` overrides ``runs/test_artifacts``),
git-ignored; on a failure the page, its cell outputs and the server log are saved there too.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from visrc import numerics
from visrc.paths import REPO_ROOT
from visrc.reproduce import QUICK_PARAMETERS

NOTEBOOK = REPO_ROOT / "notebooks" / "06_bitrack_explorer.ipynb"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
NOTEBOOK_TIMEOUT_S = 420     # all cells, including generating the small toy benchmark on first use
STEP_TIMEOUT_S = 60          # one click until the kernel has redrawn the explorer


def artifacts_dir() -> Path:
    d = Path(os.environ.get("VISRC_TEST_ARTIFACTS", REPO_ROOT / "runs" / "test_artifacts")) / "browser_explorer"
    d.mkdir(parents=True, exist_ok=True)
    return d


def find_chromium() -> str | None:
    """``VISRC_CHROMIUM``, else the first Chromium on ``PATH``."""
    given = os.environ.get("VISRC_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


# --------------------------------------------------------------------------- without a browser

def test_explorer_controls_carry_css_classes():
    """The hooks the browser test finds the controls by: ``visrc-<name>`` on every control."""
    from helpers import make_video
    from visrc.viz.bitrack_explorer import CONTROLS, BiTrackExplorer

    ex = BiTrackExplorer([make_video([dict(frames=range(3), box=[0, 0, 10, 10], score=0.9, label=0)], 3)])
    for name in CONTROLS:
        assert f"visrc-{name.replace('_', '-')}" in getattr(ex, name)._dom_classes, name
    assert "visrc-bitrack-explorer" in ex.widget._dom_classes
    assert {"visrc-next-event", "visrc-prev-event", "visrc-event-info", "visrc-info", "visrc-image"} <= {
        c for name in CONTROLS for c in getattr(ex, name)._dom_classes}


# ------------------------------------------------------------------------------- the server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def prepare_notebook(work: Path) -> Path:
    """Notebook 06 with its quick parameters injected after the ``parameters`` cell, as papermill does."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(NOTEBOOK)), dict(QUICK_PARAMETERS[NOTEBOOK.stem]))
    out = work / NOTEBOOK.name
    nbformat.write(nb, out)
    return out


@pytest.fixture(scope="module")
def browser_tools():
    """(Chromium's path, playwright's sync API), or the test skips saying what is missing."""
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium: apt-get install -y chromium chromium-driver (or set VISRC_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright missing: pip install -e '.[browser]'")
    return path, sync_api


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser_tools):
    """A JupyterLab on 127.0.0.1 with a token, everything (config, settings, runs, figures) in a temp
    dir; yields (base URL, token, notebook name, server log)."""
    work = tmp_path_factory.mktemp("lab")
    nb = prepare_notebook(work)
    config, settings = work / ".jupyter", work / ".jupyter-settings"
    # Windowing off: every cell stays in the DOM; no announcements toast over the screenshots.
    _write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
                {"windowingMode": "none"})
    _write_json(config / "labconfig" / "page_config.json",
                {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    env = numerics.subprocess_env(1, os.environ)
    env.update(VISRC_RUNS_DIR=str(work / "runs"), VISRC_FIGURES_DIR=str(work / "figures"),
               JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(work / ".runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(work / ".workspaces"))
    port, token = _free_port(), secrets.token_hex(16)
    log_path = work / "jupyter.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}"]
    if os.geteuid() == 0:           # CI and the dev machines run as root
        cmd.append("--allow-root")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start ({log_path}):\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, token, nb.name, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------ the browser

# (forward, backward) tracklet names outlined in the pair table's headers, e.g. ["F1", "B0"]
_HIGHLIGHT_JS = """() => {
  const t = document.querySelector('.visrc-info table');
  if (!t) return [];
  return [...t.querySelectorAll('th')].filter(th => (th.getAttribute('style') || '').includes('outline'))
    .map(th => th.textContent.trim()).sort((a, b) => a[0] === 'F' ? -1 : 1);
}"""
_IMAGE_JS = """() => {
  const i = document.querySelector('.visrc-bitrack-explorer img.visrc-image');
  return i && i.complete && i.naturalWidth > 0 ? i.src : null;
}"""


def _event_pair(explanation: str) -> list[str]:
    """The tracklets an explanation line is about: ``F3 + B7 merged: ...`` -> [F3, B7]."""
    m = re.match(r"(F\d+) \+ (B\d+) merged|([FB]\d+) found only", explanation)
    assert m, f"unexpected explanation line: {explanation!r}"
    return [g for g in m.groups() if g]


def _merges(label: str) -> int:
    m = re.search(r"(\d+) merges?$", label)
    assert m, f"video label without a merge count: {label!r}"
    return int(m.group(1))


@pytest.mark.browser
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S + 600)     # JupyterLab, the page and four steps besides
def test_explorer_steps_through_merges_in_jupyterlab(browser_tools, lab):
    chromium, sync_api = browser_tools
    url, token, nb_name, log_path = lab
    out = artifacts_dir()
    for old in out.iterdir():       # a previous run's screenshots and failure files
        if old.is_file():
            old.unlink()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.set_default_timeout(STEP_TIMEOUT_S * 1000)
        try:
            page.goto(f"{url}/lab/tree/{nb_name}?token={token}&reset")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            # Running before the kernel is up opens JupyterLab's "Select Kernel" dialog instead.
            page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\|\s*Idle")).wait_for(timeout=120_000)
            page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-item", has_text=re.compile(r"^Run All Cells")).click()

            # Real widgets: the explorer's DOM with its CSS classes and a loaded picture (the static
            # fallback is a text repr with none of them).
            explorer = page.locator(".visrc-bitrack-explorer")
            explorer.wait_for(state="visible", timeout=NOTEBOOK_TIMEOUT_S * 1000)
            page.wait_for_function(_IMAGE_JS)
            assert page.locator("button.visrc-next-event").count() == 1
            explorer.screenshot(path=str(out / "0_opened.png"))

            # The video with the most merges: sort the list, then take its first entry.
            page.locator(".visrc-sort select").select_option(label="most merges first")
            page.wait_for_function("""() => {
              const o = [...document.querySelectorAll('.visrc-video select option')].map(x => x.textContent);
              const n = o.map(s => +(s.match(/(\\d+)\\smerges?$/) || [0, -1])[1]);
              return n.length > 0 && n.every((v, i) => i === 0 || n[i - 1] >= v);
            }""")
            video_select = page.locator(".visrc-video select")
            first = video_select.locator("option").first.text_content().replace("\xa0", " ")  # ipywidgets' option text
            assert _merges(first) >= 2, f"the quick parameters give no video with two merges: {first!r}"
            video_select.select_option(index=0)
            vid = re.match(r"video (\d+):", first).group(1)
            page.wait_for_function(
                f"() => (document.querySelector('.visrc-info') || {{}}).textContent?.includes('video {vid}:')")
            page.wait_for_function(
                "() => /merge decisions?;/.test(document.querySelector('.visrc-event-info').textContent)")

            def step(button: str, index: int, name: str):
                """Click, wait for event ``index`` and a redrawn picture; (explanation, highlighted pair, picture)."""
                before = page.evaluate(_IMAGE_JS)
                page.locator(f"button.visrc-{button}").click()
                page.wait_for_function(
                    f"() => document.querySelector('.visrc-event-info').textContent.startsWith('{index} / ')")
                page.wait_for_function(f"() => {{ const s = ({_IMAGE_JS})(); return s && s !== {json.dumps(before)}; }}")
                info = page.locator(".visrc-event-info").text_content()
                explanation = info.split(": ", 1)[1]
                want = _event_pair(explanation)
                want_js = json.dumps(json.dumps(want, separators=(",", ":")))    # as JSON.stringify writes it
                page.wait_for_function(f"() => JSON.stringify(({_HIGHLIGHT_JS})()) === {want_js}")
                explorer.screenshot(path=str(out / name))
                return explanation, page.evaluate(_HIGHLIGHT_JS), page.evaluate(_IMAGE_JS)

            first_event = step("next-event", 1, "1_next.png")
            second_event = step("next-event", 2, "2_next.png")
            assert second_event[0] != first_event[0], "the explanation line did not change"
            assert second_event[1] != first_event[1], "the highlighted pair did not change"
            back = step("prev-event", 1, "3_previous.png")
            assert back[:2] == first_event[:2], "previous merge did not go back to the first merge"
            page.screenshot(path=str(out / "4_page.png"))
        except Exception:
            shutil.copy(log_path, out / "failure_jupyter.log")
            with contextlib.suppress(Exception):    # the page may be gone; the original error matters
                page.screenshot(path=str(out / "failure.png"))
                outputs = page.locator(".jp-OutputArea-output").all_text_contents()
                (out / "failure_outputs.txt").write_text("\n----\n".join(outputs))
            raise
        finally:
            browser.close()
