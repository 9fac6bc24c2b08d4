"""The run cache: train a config once, predict a split once, on the machine-wide compute slots of
:mod:`visrc.experiments.slots`.

A run is keyed by (config, data root, seed, epochs, overrides, init checkpoint, numeric mode) and
lives in ``runs/experiments/<config>-<hash>/`` (``VISRC_RUNS_DIR``). Re-executing a notebook reuses
the checkpoint and the saved per-frame predictions unless ``force=True``; a training that was killed
resumes from its last checkpoint. Training runs in a subprocess (``python -m visrc train``) so a
notebook kernel does not carry mmengine's global state, and its log goes to ``train.log``. That
subprocess starts with :func:`visrc.numerics.pinned_env` (one thread and the pinned kernel profile,
whatever the machine and ``VISRC_TRAIN_SLOTS``), so a run's weights repeat on every machine of one CPU model; with
``VISRC_NUMERICS=native`` it gets ``cpu_count // training_slots()`` threads and the machine's
best kernels instead, in run directories of its own. :func:`predict_many` predicts many runs side by
side the same way, each in a process of its own.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from visrc import numerics
from visrc.experiments import slots
from visrc.fileio import atomic_write_json, file_lock, read_json
from visrc.paths import runs_dir


def run_dir(config: str, data_root: str | Path, seed: int = 0, max_epochs: int | None = None,
            cfg_options: dict | None = None, init: str | Path | None = None) -> Path:
    """The directory of one (config content, data, seed, schedule, overrides, init, numerics) run
    (data: its path, and for a generated toy root the sha1 of its ``toy_config.json``):
    editing a config (or its ``_base_``) or retraining the init checkpoint (its path and the sha1
    of its bytes are in the key) gives new runs instead of silently reusing stale checkpoints, and
    pinned and native runs (:func:`visrc.numerics.cache_key`) never share one."""
    fields = {"config": str(config), "config_text": config_fingerprint(config),
              "data": str(Path(data_root).resolve()), "seed": seed, "epochs": max_epochs,
              "options": cfg_options or {}, "numerics": numerics.cache_key()}
    generated = Path(data_root) / "toy_config.json"
    if generated.is_file():         # a regenerated toy root (new splits or sizes) keeps its path
        fields["data_config"] = file_sha1(generated)
    if init is not None:            # only then: runs without an init keep their directories
        fields["init"] = {"path": str(Path(init).resolve()), "sha1": file_sha1(init)}
    key = json.dumps(fields, sort_keys=True)
    name = Path(str(config)).stem
    return runs_dir() / "experiments" / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def file_sha1(path: str | Path) -> str:
    """sha1 of a file's bytes (a missing file is a ``FileNotFoundError`` naming it)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def config_fingerprint(config: str | Path) -> str:
    """sha1 of the fully resolved config text (``_base_`` files merged in)."""
    from mmengine.config import Config
    from visrc.models.config import resolve_config_path

    cfg = Config.fromfile(resolve_config_path(config), import_custom_modules=False)
    return hashlib.sha1(json.dumps(cfg.to_dict(), sort_keys=True, default=repr).encode()).hexdigest()


def train_cached(config: str, data_root: str | Path, seed: int = 0, max_epochs: int | None = None,
                 cfg_options: dict | None = None, force: bool = False, threads: int | None = None,
                 init: str | Path | None = None) -> Path:
    """Train (or resume, or reuse) and return the final checkpoint's path.

    ``init``: a pretrained detector checkpoint the run starts from (``visrc train --init``, e.g.
    :func:`visrc.experiments.pretrain.pretrained_checkpoint`); part of the run key with its sha1.

    Safe to call from several processes at once: one of them trains a given run while the others
    wait for it, and at most :func:`~visrc.experiments.slots.training_slots` trainings run on the machine at a time.
    The training subprocess starts with :func:`visrc.numerics.subprocess_env`: pinned, one thread
    and the pinned kernel profile whatever the machine; ``threads`` (native numerics only, default
    ``cpu_count // training_slots()``) sets its torch/OpenMP threads with ``VISRC_NUMERICS=native``.
    ``final_checkpoint.json`` records what the training process reported of its numerics.
    """
    if threads is not None and numerics.mode() == "pinned" and threads != numerics.THREADS:
        raise ValueError(f"train_cached(threads={threads}): pinned numerics train on {numerics.THREADS} "
                         f"thread(s); set {numerics.MODE_VARIABLE}=native to choose the thread count")
    work = run_dir(config, data_root, seed, max_epochs, cfg_options, init)
    done = work / "final_checkpoint.json"
    if done.is_file() and not force:
        return Path(read_json(done)["checkpoint"])
    cmd = [sys.executable, "-m", "visrc", "train", str(config), "--work-dir", str(work),
           "--data-root", str(data_root), "--seed", str(seed), "--resume", "auto"]
    if max_epochs is not None:
        cmd += ["--max-epochs", str(max_epochs)]
    if init is not None:
        cmd += ["--init", str(Path(init).resolve())]
    if cfg_options:
        cmd += ["--cfg-options"] + [f"{k}={v!r}" if not isinstance(v, str) else f"{k}={v}" for k, v in cfg_options.items()]
    env = numerics.subprocess_env(threads or slots.native_threads())
    threads = int(env["OMP_NUM_THREADS"])
    slots.want(work, slots.current_priority())        # heard by whoever trains it, if not us
    with file_lock(work / ".train.lock"):
        if done.is_file() and not force:          # another process trained it meanwhile
            return Path(read_json(done)["checkpoint"])
        with slots.training_slot(run=work):
            print(f"training {config} (seed {seed}) in {work}; log: {work / 'train.log'}", flush=True)
            t0 = time.time()
            with open(work / "train.log", "a") as log:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _raise_if_failed(proc, f"training {config}", work / "train.log")
        pointer = work / "last_checkpoint"
        ckpt = (Path(pointer.read_text().strip()) if pointer.is_file()
                else max(work.glob("epoch_*.pth"), key=lambda p: p.stat().st_mtime))
        reported = work / numerics.REPORT_FILE           # written by the training process
        atomic_write_json(done, {"checkpoint": str(ckpt), "command": cmd, "threads": threads,
                                 "numerics": read_json(reported) if reported.is_file() else None,
                                 "started": round(t0, 1), "train_seconds": round(time.time() - t0, 1)})
        slots.clear_wishes(work)
        print(f"trained {config} (seed {seed}) in {time.time() - t0:.0f}s", flush=True)
    return ckpt


def trainings_since(since: float) -> list[dict]:
    """The trainings of the run cache that ended after ``since`` (a ``time.time()``), longest first:
    ``{"run", "config", "started", "seconds"}`` with ``started`` in seconds after ``since`` (what
    ``visrc reproduce`` prints at its end: which runs its wall time went to)."""
    out = []
    for done in sorted((runs_dir() / "experiments").glob("*/final_checkpoint.json")):
        if done.stat().st_mtime < since:
            continue
        info = read_json(done)
        seconds = float(info.get("train_seconds", 0.0))
        started = float(info.get("started", done.stat().st_mtime - seconds))    # older runs: from the file's time
        command = info.get("command") or []
        config = command[command.index("train") + 1] if "train" in command else done.parent.name
        out.append({"run": done.parent.name, "config": Path(config).stem, "started": round(started - since, 1),
                    "seconds": seconds})
    return sorted(out, key=lambda r: -r["seconds"])


def _train_job(job: dict) -> Path:
    if callable(job.get("init")):       # resolved in the job's own thread: it waits for its init, not for all of them
        job = {**job, "init": job["init"]()}
    return train_cached(**job)


def train_many(jobs: list[dict]) -> list[Path]:
    """Several :func:`train_cached` runs (``jobs[i]`` = its keyword arguments) side by side, as many at a
    time as :func:`~visrc.experiments.slots.training_slots` allows (one thread each by default: the toy
    models scale poorly over threads, so side-by-side 1-thread trainings finish sooner than the same runs
    in a row). A job's ``init`` may be a function that returns the init checkpoint (e.g. trains a
    pretraining, :func:`visrc.experiments.pretrain.init_of`): it is called in the job's own thread, so
    each run starts as soon as its own init is ready. Returns the checkpoints in ``jobs`` order; raises
    after all runs ended if any failed (the others are kept, cached)."""
    return _side_by_side(_train_job, jobs, len(jobs), "trainings")


def _side_by_side(fn, jobs: list, workers: int, what: str, desc: str | None = None) -> list:
    """``fn(job)`` for every job on ``workers`` threads, each in a copy of the caller's context (its slot
    priority), with a progress bar when ``desc`` is given; the results in ``jobs`` order. Raises after
    all ended if any failed, naming how many ``what`` failed and the first error."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm import tqdm

    if not jobs:
        return []
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(contextvars.copy_context().run, fn, j) for j in jobs]
        if desc is not None:
            for _ in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="run", file=sys.stderr):
                pass
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(jobs)} {what} failed; first: {errors[0]}") from errors[0]
    return [f.result() for f in futures]


def _raise_if_failed(proc: subprocess.CompletedProcess, what: str, log_path: Path) -> None:
    """A failed subprocess as one error with the last lines of its log."""
    if proc.returncode != 0:
        tail = log_path.read_text().splitlines()[-25:]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}); last lines of {log_path}:\n" + "\n".join(tail))


def prediction_dir(checkpoint: str | Path, data_root: str | Path, mode: str = "forward", split: str | None = None,
                   foreign_root: bool = False, scale: float = 1.0) -> Path:
    """Where a run's predictions of a split are kept: ``<checkpoint dir>/predict_<mode>[_<split>][_scale<s>]``
    (``_scale0p75`` for a test scale other than 1), with ``@<root folder name>`` added for a
    ``foreign_root`` (a root the run did not train on)."""
    scale_tag = "" if float(scale) == 1.0 else "_scale" + f"{float(scale):g}".replace(".", "p")
    return Path(checkpoint).parent / (f"predict_{mode}" + (f"_{split}" if split else "") + scale_tag
                                      + (f"@{Path(data_root).name}" if foreign_root else ""))


def predict_cached(config: str, checkpoint: str | Path, data_root: str | Path, mode: str = "forward",
                   force: bool = False, split: str | None = None, foreign_root: bool = False,
                   scale: float = 1.0) -> dict:
    """Predict a split once (:func:`visrc.pipeline.predict`) and return its summary: the path of
    the per-frame ``.npz`` (``predictions``), ``videos``, ``frames``, ``scale``, frames/s. Nothing
    is tracked here: callers track the saved predictions with the setting they need
    (:func:`visrc.experiments.table1.track_run`). ``split``: a video split of the data root, e.g.
    ``"tune"`` where thresholds are chosen (:func:`visrc.pipeline.split_files`); ``None``: the
    config's test split. ``foreign_root``: ``data_root`` is not the root the run trained on (e.g. a
    longer valid split), so its predictions are kept apart, under the root's folder name.
    ``scale``: the test-time scale (multi-scale testing), in a folder of its own
    (:func:`prediction_dir`); ``mode`` only names the folder (``predict_<mode>``, where earlier
    versions kept the tracks too), so existing caches stay valid."""
    from visrc.models.config import config_classes, load_config
    from visrc.pipeline import InferenceOptions, load_split, predict, prepare_split

    out_dir = prediction_dir(checkpoint, data_root, mode, split, foreign_root, scale)

    def compute():
        cfg = load_config(config)
        test_split, _ = prepare_split(load_split(cfg, data_root, split), config_classes(cfg))
        with slots.compute_slot():
            return predict(cfg, checkpoint, test_split, out_dir / "results.predictions.npz",
                           InferenceOptions(scale=float(scale)), log=None)[2]

    return computed_once(out_dir / "summary.json", compute, force)


def predict_many(jobs: list[dict], desc: str = "predicting") -> list[dict]:
    """Several :func:`predict_cached` runs (``jobs[i]`` = its keyword arguments) side by side; returns
    their summaries in ``jobs`` order. A notebook kernel predicts one split at a time, so a study that
    predicts many runs would leave every other slot idle: here each prediction not yet cached runs in
    a process of its own (:func:`visrc.numerics.subprocess_env`, the kernel's numeric environment, so
    its files are the ones the kernel would write), at most :func:`~visrc.experiments.slots.training_slots`
    at a time, each waiting for a slot at the caller's priority. The child's output goes to
    ``predict.log`` in the prediction's folder; a failed child raises naming that log, after the others ended."""
    def done(job: dict) -> bool:
        return (_prediction_dir_of(job) / "summary.json").is_file() and not job.get("force")

    missing = list({_prediction_dir_of(j): j for j in jobs if not done(j)}.values())   # each folder once
    _side_by_side(_predict_in_subprocess, missing, min(len(missing), slots.training_slots()), "predictions", desc)
    return [predict_cached(**{**j, "force": False}) for j in jobs]


def _prediction_dir_of(job: dict) -> Path:
    return prediction_dir(job["checkpoint"], job["data_root"], job.get("mode", "forward"), job.get("split"),
                          job.get("foreign_root", False), job.get("scale", 1.0))


def _predict_in_subprocess(job: dict) -> None:
    out_dir = _prediction_dir_of(job)
    out_dir.mkdir(parents=True, exist_ok=True)
    request = json.dumps({"job": {k: str(v) if isinstance(v, Path) else v for k, v in job.items()},
                          "priority": slots.current_priority()})
    code = "import sys; from visrc.experiments.runs import _predict_job; _predict_job(sys.argv[1])"
    log_path = out_dir / "predict.log"
    with open(log_path, "a") as log:
        proc = subprocess.run([sys.executable, "-c", code, request], stdout=log, stderr=subprocess.STDOUT,
                              env=numerics.subprocess_env(slots.native_threads()))
    _raise_if_failed(proc, f"predicting {job['checkpoint']} on {job['data_root']}", log_path)


def _predict_job(request: str) -> None:
    """The child of :func:`predict_many`: one :func:`predict_cached` at the parent's slot priority."""
    request = json.loads(request)                       # compute_slot sets torch's threads
    with slots.slot_priority(int(request["priority"])):
        predict_cached(**request["job"])


def computed_once(summary_path: Path, compute, force: bool = False) -> dict:
    """The JSON at ``summary_path``; first, if it is missing (or ``force``), ``compute()`` makes it
    (returning the summary, writing whatever else it keeps beside it) under a lock in its folder, so
    notebooks asking at once compute it once and the others wait for it."""
    if summary_path.is_file() and not force:
        return read_json(summary_path)
    with file_lock(summary_path.parent / ".compute.lock"):
        if summary_path.is_file() and not force:           # another process made it meanwhile
            return read_json(summary_path)
        summary = compute()
        atomic_write_json(summary_path, summary, indent=2)
    return summary
