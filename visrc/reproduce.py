"""`visrc reproduce [--quick] [--only NAME]`: execute every numbered notebook with papermill.

Each notebook in ``notebooks/`` is executed into ``runs/notebooks/<name>.ipynb`` (``VISRC_RUNS_DIR``)
with its own ``parameters`` defaults updated by ``MAIN_PARAMETERS``, or with the tiny ``QUICK_PARAMETERS`` under ``--quick`` (what
the test suite runs; its figures go to ``runs/figures_quick/`` unless ``VISRC_FIGURES_DIR`` is set,
so a quick run never overwrites ``figures/``). Notebooks run side by side, all from the start: one that
uses another's models or ensembles (05 uses 04's) asks the same caches for them, whose locks let one
notebook compute each and the other wait for it; their trainings and predictions share the machine
through the slots of :mod:`visrc.experiments.slots`, whose priorities put the runs later stages wait
for (pretrainings, Table 2's models and pseudo-label networks) first, so the cores stay busy.
Notebooks write their figures and tables through ``visrc.viz.plots`` and their metrics through
:func:`record_metrics`, so the executed copies are a by-product, not the report.

Numerics (:mod:`visrc.numerics`): the notebook kernels start with
:func:`visrc.numerics.pinned_env` (unless ``VISRC_NUMERICS=native``), so their in-process
predictions and ensembles, and the trainings they start, give the same numbers on every machine of one CPU model;
every ``figures/<name>_metrics.json`` records the kernel's numerics under ``"numerics"``.

Drift check: ``--update-reference DIR`` writes the metrics of the notebooks just executed, less
their volatile entries (:func:`strip_volatile`), as ``DIR/<cpu slug>/<name>_metrics.json``;
``--check-reference DIR`` compares them with those files, exactly (floats bit for bit), and exits
1 on any difference. The folder is per CPU model (:func:`reference_for_this_cpu`) because pinned
numbers repeat on one CPU model, not across models. The quick-mode reference is ``tests/reference/quick_metrics/``, which
``tests/test_quick_reference.py`` checks in the test suite; refresh it after a change that is meant
to move the numbers::

    VISRC_RUNS_DIR=$(mktemp -d) VISRC_FIGURES_DIR=$(mktemp -d) \
        visrc reproduce --quick --update-reference tests/reference/quick_metrics
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from visrc import numerics
from visrc.experiments.runs import trainings_since
from visrc.paths import REPO_ROOT, runs_dir

NOTEBOOK_DIR = REPO_ROOT / "notebooks"

# Tiny parameters per notebook: every cell still runs, on the 'small' toy preset.
QUICK_PARAMETERS: dict[str, dict] = {
    "01_overlap_histogram": dict(toy_preset="small", bins=10),
    "02_frame_sampling": dict(toy_preset="small", frames_per_video=[1, None], train_epochs=1, pretrain_epochs=1,
                              schedules=["equal_iterations", "equal_epochs"], n_boot=20),
    "03_ablation": dict(toy_preset="small", train_epochs=1, pretrain_epochs=1, n_boot=20),
    "04_ensemble": dict(toy_preset="small", train_epochs=1, pretrain_epochs=1, scales=[0.75, 1.0], n_boot=20),
    "05_pseudo_label": dict(toy_preset="small", train_epochs=1, pretrain_epochs=1, retrain_epochs=1, scales=[1.0],
                            pseudo_tracker={"init_score_thr": 0.0, "obj_score_thr": 0.0},
                            pseudo_score_grid=[0.0], pseudo_track_len_grid=[1], n_boot=20),
    "06_bitrack_explorer": dict(toy_preset="small", source="gt_noisy"),
}

# What the main job sets beyond a notebook's own defaults: notebook 06 opens interactively on
# whatever is cached ("auto"), but the main job's Fig. 4 and BiTrack study are on the trained baseline.
MAIN_PARAMETERS: dict[str, dict] = {
    "06_bitrack_explorer": dict(source="model"),
}


def notebooks() -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


_ENV_LOCK = threading.Lock()
_ENV_USERS = [0, None]          # notebooks executing with the pinned environment, the saved one


@contextmanager
def kernel_environment():
    """``os.environ`` as :func:`visrc.numerics.pinned_env` while notebooks execute (a kernel
    inherits this process's environment, and its instruction set is fixed when it starts), restored
    when the last notebook executing side by side is done; nothing changes with
    ``VISRC_NUMERICS=native``."""
    if numerics.mode() != "pinned":
        yield
        return
    with _ENV_LOCK:
        if _ENV_USERS[0] == 0:
            _ENV_USERS[1] = dict(os.environ)
            os.environ.update(numerics.pinned_env())
        _ENV_USERS[0] += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _ENV_USERS[0] -= 1
            if _ENV_USERS[0] == 0:
                saved, _ENV_USERS[1] = _ENV_USERS[1], None
                for key in set(os.environ) - set(saved):
                    del os.environ[key]
                os.environ.update(saved)


# The kernel app logs a warning at start ("Kernel is running over TCP without encryption", which
# papermill's local kernels always trigger) and an error line when papermill shuts it down; a
# failing cell still reaches the user through papermill.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


def quick_figures_dir() -> Path:
    """Where ``--quick`` writes figures and metrics: ``$VISRC_RUNS_DIR/figures_quick``, never the
    committed ``figures/`` (``VISRC_FIGURES_DIR``, when set, wins)."""
    return runs_dir() / "figures_quick"


def execute(nb: Path, quick: bool = False, out_dir: Path | None = None, extra: dict | None = None,
            log_output: bool = False) -> Path:
    """Execute one notebook headlessly, in a kernel started with the numeric environment
    (:func:`kernel_environment`); raise papermill's error (with the failing cell) if a cell fails."""
    import papermill

    out_dir = out_dir or runs_dir() / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = dict((QUICK_PARAMETERS if quick else MAIN_PARAMETERS).get(nb.stem, {}))
    params.update(extra or {})
    out = out_dir / nb.name
    with kernel_environment():
        papermill.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3",
                                   progress_bar=False, cwd=str(out_dir), log_output=log_output,
                                   extra_arguments=KERNEL_ARGUMENTS)
    return out


_SAY_LOCK = threading.Lock()


def _say(line: str) -> None:
    """One progress line from a notebook thread, written whole (bare print interleaves its newline)."""
    with _SAY_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def record_metrics(name: str, metrics: dict) -> Path:
    """The last cell of every notebook: write its headline numbers as ``figures/<name>_metrics.json``,
    with the kernel's :func:`visrc.numerics.describe` under ``"numerics"``."""
    from visrc.fileio import atomic_write_text
    from visrc.viz.plots import figures_dir

    metrics = {**metrics, "numerics": numerics.describe()}
    text = json.dumps(metrics, indent=2, sort_keys=True, default=float)
    print(text)
    return atomic_write_text(figures_dir() / f"{name}_metrics.json", text + "\n")


# ---------------------------------------------------------------- the drift check
VOLATILE_SUFFIXES = ("seconds", "_s", "fps", "_time", "_json", "_path", "_dir", "_file")
"""Metric keys ending so are timings or file locations: they vary between machines and checkouts
for the same numbers, so :func:`strip_volatile` drops them, as it drops every string value that is
an absolute path and the machine's name in ``"numerics"`` (:data:`visrc.numerics.VOLATILE_KEYS`).
Everything else, numerics included (mode, pinned variables, torch version, threads, kernels),
must match the reference exactly."""


def _volatile(key: str, value) -> bool:
    return (key.lower().endswith(VOLATILE_SUFFIXES)
            or (isinstance(value, str) and os.path.isabs(value)))


def strip_volatile(metrics):
    """A copy of ``metrics`` (a ``*_metrics.json`` document) without its volatile entries
    (:data:`VOLATILE_SUFFIXES`)."""
    def strip(x, top: bool):
        if isinstance(x, dict):
            return {k: (_strip_numerics(v) if top and k == "numerics" else strip(v, False))
                    for k, v in x.items() if not _volatile(k, v)}
        if isinstance(x, list):
            return [strip(v, False) for v in x]
        return x

    return strip(metrics, True)


def _strip_numerics(info):
    return {k: v for k, v in info.items() if k not in numerics.VOLATILE_KEYS} if isinstance(info, dict) else info


def compare_metrics(actual, reference, where: str = "") -> list[str]:
    """The differences between two metrics documents after :func:`strip_volatile`, one line each
    (``runs[2].AP: 0.181 != reference 0.182``); empty when equal. Numbers compare exactly (a float
    must be the same double; NaN equals NaN), ``True`` is not ``1``."""
    return _diff(strip_volatile(actual), strip_volatile(reference), where)


def _diff(a, b, where: str) -> list[str]:
    at = where or "<top>"
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            at_k = f"{where}.{k}".lstrip(".")
            if k not in a:
                out.append(f"{at_k}: missing (reference {b[k]!r})")
            elif k not in b:
                out.append(f"{at_k}: not in the reference ({a[k]!r})")
            else:
                out += _diff(a[k], b[k], at_k)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{at}: {len(a)} entries != reference {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{where}[{i}]")]
    if _same(a, b):
        return []
    return [f"{at}: {a!r} != reference {b!r}"]


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def _metrics_file(directory: Path, name: str) -> Path:
    return Path(directory) / f"{name}_metrics.json"


def reference_for_this_cpu(root: str | Path) -> Path:
    """``root/<cpu slug>-<kernels>``: the reference of this machine's CPU model and kernel profile
    (:func:`visrc.numerics.reference_slug`)."""
    return Path(root) / numerics.reference_slug()


def check_reference(reference_dir: str | Path, names: list[str], figures: str | Path | None = None) -> dict[str, list[str]]:
    """Compare the metrics of the notebooks ``names`` (in ``figures``, default the figures
    directory) with ``reference_dir``; returns notebook -> differences, only for notebooks that
    differ (a missing file on either side is one difference)."""
    from visrc.fileio import read_json
    from visrc.viz.plots import figures_dir

    figures = Path(figures) if figures is not None else figures_dir()
    reference_dir = Path(reference_dir)
    if not reference_dir.is_dir():
        raise FileNotFoundError(f"{reference_dir}: no reference directory (write one with --update-reference)")
    out = {}
    for name in names:
        ref, got = _metrics_file(reference_dir, name), _metrics_file(figures, name)
        if not ref.is_file():
            out[name] = [f"no reference {ref}"]
        elif not got.is_file():
            out[name] = [f"no metrics {got} (did the notebook run?)"]
        elif diffs := compare_metrics(read_json(got), read_json(ref)):
            out[name] = diffs
    return out


def update_reference(reference_dir: str | Path, names: list[str], figures: str | Path | None = None) -> list[Path]:
    """Write the metrics of the notebooks ``names`` (from ``figures``, default the figures
    directory), less their volatile entries, into ``reference_dir``; returns the files written."""
    from visrc.fileio import atomic_write_text, read_json
    from visrc.viz.plots import figures_dir

    figures = Path(figures) if figures is not None else figures_dir()
    written = []
    for name in names:
        doc = strip_volatile(read_json(_metrics_file(figures, name)))
        text = json.dumps(doc, indent=2, sort_keys=True)
        written.append(atomic_write_text(_metrics_file(reference_dir, name), text + "\n"))
    return written


def describe_trainings(trainings: list[dict], wall: float) -> str:
    """What the job's wall time went to: the trainings it ran (:func:`visrc.experiments.runs.trainings_since`),
    longest first, and how busy they kept the slots."""
    from visrc.experiments.slots import training_slots

    if not trainings:
        return "trainings: none (every run was cached)"
    total = sum(t["seconds"] for t in trainings)
    lines = [f"trainings: {len(trainings)}, {total:.0f} s of training in {wall:.0f} s of wall time "
             f"({total / max(wall, 1e-9):.2f} of {training_slots()} slots busy on average); longest first:"]
    width = max(len(t["config"]) for t in trainings)
    lines += [f"  {t['config']:<{width}}  {t['seconds']:7.0f} s  from {t['started']:6.0f} s  ({t['run']})"
              for t in trainings]
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="tiny parameters: every cell runs in minutes")
    parser.add_argument("--only", nargs="*", help="notebook names (e.g. 01_overlap_histogram); default: all")
    parser.add_argument("--quiet", action="store_true", help="do not stream the notebooks' cell output")
    parser.add_argument("--param", nargs="*", default=[], metavar="KEY=JSON",
                        help="override a parameter of the selected notebooks, e.g. seeds=[0,1,2]")
    ref = parser.add_mutually_exclusive_group()
    ref.add_argument("--check-reference", metavar="DIR",
                     help="afterwards compare every executed notebook's metrics with DIR/<name>_metrics.json, "
                          "exactly; exit 1 on a difference (quick mode: tests/reference/quick_metrics)")
    ref.add_argument("--update-reference", metavar="DIR",
                     help="afterwards write the executed notebooks' metrics, less volatile entries, into DIR")


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
    check, update = getattr(args, "check_reference", None), getattr(args, "update_reference", None)
    # resolved now: papermill runs the kernels in runs/notebooks/, and a relative path must mean the caller's;
    # one reference per CPU model: pinned numbers are not identical across CPU models
    check, update = (str(reference_for_this_cpu(Path(p).resolve())) if p else p for p in (check, update))
    if (check or update) and numerics.mode() != "pinned":
        raise SystemExit(f"--check-reference / --update-reference need pinned numerics: native numbers depend "
                         f"on the machine (unset {numerics.MODE_VARIABLE})")
    if check and not Path(check).is_dir():
        raise SystemExit(f"--check-reference {check}: no such directory (write it with --update-reference)")
    params = parse_params(getattr(args, "param", []))
    if args.quick and not os.environ.get("VISRC_FIGURES_DIR"):
        os.environ["VISRC_FIGURES_DIR"] = str(quick_figures_dir())     # the kernels inherit it
        _say(f"quick mode: figures and metrics go to {os.environ['VISRC_FIGURES_DIR']}")
    handler = logging.StreamHandler()
    handler.addFilter(_NotebookName())
    logging.getLogger("papermill").addHandler(handler)
    logging.getLogger("papermill").setLevel(logging.WARNING if args.quiet else logging.INFO)
    timings, futures = {}, {}
    t_start, started_at = time.perf_counter(), time.time()

    def one(nb: Path) -> Path:
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
    wall = time.perf_counter() - t_start
    print("notebooks: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()) + f"; wall time {wall:.0f}s",
          flush=True)
    print(describe_trainings(trainings_since(started_at), wall), flush=True)
    for name, err in errors.items():
        print(f"!! {name} failed: {err}", flush=True)
    if errors:
        return 1
    names = [nb.stem for nb in todo]
    if update:
        for path in update_reference(update, names):
            print(f"reference: wrote {path}", flush=True)
    if check:
        diffs = check_reference(check, names)
        for name, lines in diffs.items():
            print(f"!! {name} differs from {check}:\n" + "\n".join(f"   {d}" for d in lines[:20])
                  + (f"\n   ... {len(lines) - 20} more" if len(lines) > 20 else ""), flush=True)
        print(f"reference check: {len(names) - len(diffs)} of {len(names)} notebooks match {check}", flush=True)
        return 1 if diffs else 0
    return 0
