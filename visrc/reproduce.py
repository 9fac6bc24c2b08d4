"""`visrc reproduce [--quick] [--only NAME]`: execute every numbered notebook with papermill.

Each notebook in ``notebooks/`` is executed into ``runs/notebooks/<name>.ipynb`` (``VISRC_RUNS_DIR``)
with its own ``parameters`` defaults, or with the tiny ``QUICK_PARAMETERS`` under ``--quick`` (what
the test suite runs). Notebooks write their figures and tables through ``visrc.viz.plots`` and their
metrics through :func:`record_metrics`, so the executed copies are a by-product, not the report.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from visrc.paths import REPO_ROOT, runs_dir

NOTEBOOK_DIR = REPO_ROOT / "notebooks"

# Tiny parameters per notebook: every cell still runs, on the 'small' toy preset.
QUICK_PARAMETERS: dict[str, dict] = {
    "01_overlap_histogram": dict(toy_preset="small", bins=10),
    "02_frame_sampling": dict(toy_preset="small", frames_per_video=[1, None], train_epochs=1),
    "03_ablation": dict(toy_preset="small", train_epochs=1, msd_epoch_length=36),
    "06_bitrack_explorer": dict(toy_preset="small", source="gt_noisy"),
}


def notebooks() -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def execute(nb: Path, quick: bool = False, out_dir: Path | None = None, extra: dict | None = None) -> Path:
    """Execute one notebook headlessly; raise papermill's error (with the failing cell) if a cell fails."""
    import papermill

    out_dir = out_dir or runs_dir() / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = dict(QUICK_PARAMETERS.get(nb.stem, {})) if quick else {}
    params.update(extra or {})
    out = out_dir / nb.name
    papermill.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3",
                               progress_bar=False, cwd=str(out_dir))
    return out


def record_metrics(name: str, metrics: dict) -> Path:
    """The last cell of every notebook: write its headline numbers as ``figures/<name>_metrics.json``."""
    from visrc.io import atomic_write_text
    from visrc.viz.plots import figures_dir

    text = json.dumps(metrics, indent=2, sort_keys=True, default=float)
    print(text)
    return atomic_write_text(figures_dir() / f"{name}_metrics.json", text + "\n")


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="tiny parameters: every cell runs in minutes")
    parser.add_argument("--only", nargs="*", help="notebook names (e.g. 01_overlap_histogram); default: all")


def run(args) -> int:
    from tqdm.auto import tqdm

    todo = [nb for nb in notebooks() if not args.only or nb.stem in args.only]
    if not todo:
        raise SystemExit(f"no notebooks matched {args.only} in {NOTEBOOK_DIR}")
    timings = {}
    for nb in tqdm(todo, desc="notebooks", unit="nb"):
        t0 = time.perf_counter()
        tqdm.write(f">> {nb.stem}{' (quick)' if args.quick else ''}")
        out = execute(nb, quick=args.quick)
        timings[nb.stem] = time.perf_counter() - t0
        tqdm.write(f"   done in {timings[nb.stem]:.0f}s -> {out}")
    print("total: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()) + f"; {sum(timings.values()):.0f}s")
    return 0
