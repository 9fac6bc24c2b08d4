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


def toy_root(preset: str = "default", seed: int = 0) -> Path:
    """The generated toy benchmark for (preset, seed); generated on first use."""
    root = runs_dir() / "data" / f"toy_{preset}_seed{seed}"
    if not (root / "toy_config.json").is_file():      # written last by make_toy
        from visrc.data.toy import make_toy
        from visrc.io import file_lock

        with file_lock(root.parent / f".{root.name}.lock"):   # notebooks run side by side
            if not (root / "toy_config.json").is_file():
                make_toy(root, preset=preset, seed=seed)
    return root
