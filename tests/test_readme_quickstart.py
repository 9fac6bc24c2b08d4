"""The README's quick start, run as a user pastes it: the bash block between the
``<!-- quickstart -->`` markers, with the repository's venv, in a scratch working directory."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def quickstart_block() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```\s*<!-- /quickstart -->", text, re.S)
    assert m, "README.md: no ```bash block between <!-- quickstart --> and <!-- /quickstart -->"
    return m.group(1)


def test_readme_quickstart_runs_to_the_end(tmp_path):
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").is_file():
        pytest.skip(f"not running inside a venv ({sys.prefix}): the quick start sources .venv/bin/activate")
    work = tmp_path / "clone"
    (work / ".venv").parent.mkdir(parents=True)
    (work / ".venv").symlink_to(venv)                 # `source .venv/bin/activate` from the clone's root
    script = "set -euo pipefail\n" + quickstart_block() + '\necho "QUICK=$Q"\n'
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"quick start failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    quick = Path(re.search(r"^QUICK=(.+)$", proc.stdout, re.M).group(1))
    assert (quick / "results.json").is_file() and (quick / "demo.mp4").stat().st_size > 0
    assert (quick / "demo.results.json").is_file()
    assert "AP" in proc.stdout                        # visrc evaluate printed its summary
    assert re.search(r"^\d+ tracks$", proc.stdout, re.M)   # the Python API (visrc.init_model, visrc.track_video)
