"""`visrc reproduce [--quick] [--only NAME]`: execute every numbered notebook with papermill.

Each notebook in ``notebooks/`` is executed into ``runs/notebooks/<name>.ipynb`` (``VISRC_RUNS_DIR``)
with its own ``parameters`` defaults, or with the tiny ``QUICK_PARAMETERS`` under ``--quick`` (what
the test suite runs). Notebooks run side by side (``NOTEBOOK_NEEDS`` orders the ones that use another's
results); their trainings share the machine through :func:`visrc.experiments.train_cached`'s slots, so
the cores stay busy and a model two notebooks need is trained once. Notebooks write their figures and tables through ``visrc.viz.plots`` and their
metrics through :func:`record_metrics`, so the executed copies are a by-product, not the report.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path

from visrc.paths import REPO_ROOT, runs_dir

NOTEBOOK_DIR = REPO_ROOT / "notebooks"

# Tiny parameters per notebook: every cell still runs, on the 'small' toy preset.
QUICK_PARAMETERS: dict[str, dict] = {
    "01_overlap_histogram": dict(toy_preset="small", bins=10),
    "02_frame_sampling": dict(toy_preset="small", frames_per_video=[1, None], train_epochs=1,
                              schedules=["equal_iterations", "equal_epochs"]),
    "03_ablation": dict(toy_preset="small", train_epochs=1, msd_epoch_length=36),
    "04_ensemble": dict(toy_preset="small", train_epochs=1, scales=[0.75, 1.0]),
    "05_pseudo_label": dict(toy_preset="small", train_epochs=1, retrain_epochs=1, scales=[1.0],
                            pseudo_score_thr=0.0, pseudo_min_track_len=1),
    "06_bitrack_explorer": dict(toy_preset="small", source="gt_noisy"),
}


# notebook -> the notebooks whose results it reads (it starts when they have finished)
NOTEBOOK_NEEDS: dict[str, tuple[str, ...]] = {"05_pseudo_label": ("04_ensemble",)}


def notebooks() -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def execute(nb: Path, quick: bool = False, out_dir: Path | None = None, extra: dict | None = None,
            log_output: bool = False) -> Path:
    """Execute one notebook headlessly; raise papermill's error (with the failing cell) if a cell fails."""
    import papermill

    out_dir = out_dir or runs_dir() / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = dict(QUICK_PARAMETERS.get(nb.stem, {})) if quick else {}
    params.update(extra or {})
    out = out_dir / nb.name
    papermill.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3",
                               progress_bar=False, cwd=str(out_dir), log_output=log_output)
    return out


_SAY_LOCK = threading.Lock()


def _say(line: str) -> None:
    """One progress line from a notebook thread, written whole (bare print interleaves its newline)."""
    with _SAY_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def record_metrics(name: str, metrics: dict) -> Path:
    """The last cell of every notebook: write its headline numbers as ``figures/<name>_metrics.json``."""
    from visrc.fileio import atomic_write_text
    from visrc.viz.plots import figures_dir

    text = json.dumps(metrics, indent=2, sort_keys=True, default=float)
    print(text)
    return atomic_write_text(figures_dir() / f"{name}_metrics.json", text + "\n")


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="tiny parameters: every cell runs in minutes")
    parser.add_argument("--only", nargs="*", help="notebook names (e.g. 01_overlap_histogram); default: all")
    parser.add_argument("--quiet", action="store_true", help="do not stream the notebooks' cell output")
    parser.add_argument("--param", nargs="*", default=[], metavar="KEY=JSON",
                        help="override a parameter of the selected notebooks, e.g. seeds=[0,1,2]")


def parse_params(items: list[str]) -> dict:
    """``["seeds=[0,1,2]", "toy_preset=\"small\""]`` -> dict; the value is JSON (a bare word is a string)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise SystemExit(f"--param {item!r}: expected KEY=VALUE with a Python identifier as KEY")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


class _NotebookName(logging.Filter):
    """Prefix papermill's streamed cell output with the notebook it comes from; drop its cell markers."""
    current = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(("Executing Cell", "Ending Cell", "Executing notebook", "Input Notebook",
                                       "Output Notebook", "Working directory", "Executing notebook with kernel")):
            return False                         # papermill's per-cell chatter
        record.msg = f"[{getattr(self.current, 'name', '-')}] {record.msg}"
        return True


def run(args) -> int:
    from concurrent.futures import ThreadPoolExecutor

    todo = [nb for nb in notebooks() if not args.only or nb.stem in args.only]
    if not todo:
        raise SystemExit(f"no notebooks matched {args.only} in {NOTEBOOK_DIR}")
    params = parse_params(getattr(args, "param", []))
    handler = logging.StreamHandler()
    handler.addFilter(_NotebookName())
    logging.getLogger("papermill").addHandler(handler)
    logging.getLogger("papermill").setLevel(logging.WARNING if args.quiet else logging.INFO)
    timings, futures = {}, {}
    t_start = time.perf_counter()

    def one(nb: Path) -> Path:
        for dep in NOTEBOOK_NEEDS.get(nb.stem, ()):
            if dep in futures:
                futures[dep].result()
        _NotebookName.current.name = nb.stem
        t0 = time.perf_counter()
        _say(f">> {nb.stem}{' (quick)' if args.quick else ''}: started")
        out = execute(nb, quick=args.quick, extra=params, log_output=not args.quiet)
        timings[nb.stem] = time.perf_counter() - t0
        _say(f">> {nb.stem}: done in {timings[nb.stem]:.0f}s -> {out}")
        return out

    with ThreadPoolExecutor(len(todo)) as pool:
        for nb in todo:
            futures[nb.stem] = pool.submit(one, nb)
    errors = {k: f.exception() for k, f in futures.items() if f.exception() is not None}
    print("notebooks: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
          + f"; wall time {time.perf_counter() - t_start:.0f}s", flush=True)
    for name, err in errors.items():
        print(f"!! {name} failed: {err}", flush=True)
    return 1 if errors else 0
