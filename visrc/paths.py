"""Where generated data, caches and executed notebooks go (never the current working directory).

``VISRC_RUNS_DIR`` (default ``<repo>/runs``, git-ignored) holds the toy data, checkpoints, saved
predictions and executed notebooks; ``VISRC_FIGURES_DIR`` (default ``<repo>/figures``) the figures
and tables, written only through :func:`visrc.viz.plots.savefig` / ``savetable``.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def runs_dir() -> Path:
    d = Path(os.environ.get("VISRC_RUNS_DIR", REPO_ROOT / "runs"))
    d.mkdir(parents=True, exist_ok=True)
    return d
