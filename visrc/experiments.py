"""Cached experiment runs for the notebooks: train a config once, predict a split once.

A run is keyed by (config, data root, seed, epochs, overrides) and lives in
``runs/experiments/<config>-<hash>/`` (``VISRC_RUNS_DIR``). Re-executing a notebook reuses the
checkpoint and the saved per-frame predictions unless ``force=True``; a training that was killed
resumes from its last checkpoint. Training runs in a subprocess (``python -m visrc train``) so a
notebook kernel does not carry mmengine's global state, and its log goes to ``train.log``.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from visrc.io import atomic_write_json, file_lock, read_json
from visrc.paths import runs_dir


def run_dir(config: str, data_root: str | Path, seed: int = 0, max_epochs: int | None = None,
            cfg_options: dict | None = None) -> Path:
    """The directory of one (config content, data, seed, schedule, overrides) run: editing a config
    (or its ``_base_``) gives new runs instead of silently reusing stale checkpoints."""
    key = json.dumps({"config": str(config), "config_text": config_fingerprint(config),
                      "data": str(Path(data_root).resolve()), "seed": seed, "epochs": max_epochs,
                      "options": cfg_options or {}}, sort_keys=True)
    name = Path(str(config)).stem
    return runs_dir() / "experiments" / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def config_fingerprint(config: str | Path) -> str:
    """sha1 of the fully resolved config text (``_base_`` files merged in)."""
    from mmengine.config import Config
    from visrc.models.inference import resolve_config_path

    cfg = Config.fromfile(resolve_config_path(config), import_custom_modules=False)
    return hashlib.sha1(json.dumps(cfg.to_dict(), sort_keys=True, default=repr).encode()).hexdigest()


def training_slots() -> int:
    """How many trainings may run at once on this machine, all processes together (``VISRC_TRAIN_SLOTS``,
    default the CPU count): notebooks executed side by side share the cores instead of oversubscribing them."""
    return max(1, int(os.environ.get("VISRC_TRAIN_SLOTS") or os.cpu_count() or 1))


@contextmanager
def _training_slot(poll_seconds: float = 2.0):
    """Wait for one of :func:`training_slots` machine-wide slots (lock files under ``runs/locks``)."""
    slots = [runs_dir() / "locks" / f"train_slot{i}.lock" for i in range(training_slots())]
    while True:
        for slot in slots:
            with file_lock(slot, blocking=False) as got:
                if got:
                    yield
                    return
        time.sleep(poll_seconds)


_slot_depth = threading.local()


@contextmanager
def compute_slot():
    """Hold one of the machine-wide slots while this thread computes in process (inference,
    ensembles), with torch limited to a slot's share of the cores. Without it a notebook predicting
    beside two 1-thread trainings on 2 cores oversubscribes them (measured: the trainings ran 1.75x
    slower). Re-entrant within a thread; take it after any cache lock, never before one."""
    if getattr(_slot_depth, "n", 0):
        _slot_depth.n += 1
        try:
            yield
        finally:
            _slot_depth.n -= 1
        return
    import torch

    with _training_slot():
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // training_slots()))
        _slot_depth.n = 1
        try:
            yield
        finally:
            _slot_depth.n = 0
            torch.set_num_threads(threads)


def train_cached(config: str, data_root: str | Path, seed: int = 0, max_epochs: int | None = None,
                 cfg_options: dict | None = None, force: bool = False, threads: int | None = None) -> Path:
    """Train (or resume, or reuse) and return the final checkpoint's path.

    Safe to call from several processes at once: one of them trains a given run while the others
    wait for it, and at most :func:`training_slots` trainings run on the machine at a time.
    ``threads``: torch/OpenMP threads of the training (default ``cpu_count // training_slots()``).
    """
    work = run_dir(config, data_root, seed, max_epochs, cfg_options)
    done = work / "final_checkpoint.json"
    if done.is_file() and not force:
        return Path(read_json(done)["checkpoint"])
    cmd = [sys.executable, "-m", "visrc", "train", str(config), "--work-dir", str(work),
           "--data-root", str(data_root), "--seed", str(seed), "--resume"]
    if max_epochs is not None:
        cmd += ["--max-epochs", str(max_epochs)]
    if cfg_options:
        cmd += ["--cfg-options"] + [f"{k}={v!r}" if not isinstance(v, str) else f"{k}={v}" for k, v in cfg_options.items()]
    threads = threads or max(1, (os.cpu_count() or 1) // training_slots())
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with file_lock(work / ".train.lock"):
        if done.is_file() and not force:          # another process trained it while we waited
            return Path(read_json(done)["checkpoint"])
        with _training_slot():
            print(f"training {config} (seed {seed}) in {work}; log: {work / 'train.log'}", flush=True)
            t0 = time.time()
            with open(work / "train.log", "a") as log:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        if proc.returncode != 0:
            tail = (work / "train.log").read_text().splitlines()[-25:]
            raise RuntimeError(f"training {config} failed (exit {proc.returncode}); last lines of "
                               f"{work / 'train.log'}:\n" + "\n".join(tail))
        pointer = work / "last_checkpoint"
        ckpt = (Path(pointer.read_text().strip()) if pointer.is_file()
                else max(work.glob("epoch_*.pth"), key=lambda p: p.stat().st_mtime))
        atomic_write_json(done, {"checkpoint": str(ckpt), "command": cmd, "threads": threads,
                                 "train_seconds": round(time.time() - t0, 1)})
        print(f"trained {config} (seed {seed}) in {time.time() - t0:.0f}s", flush=True)
    return ckpt


def train_many(jobs: list[dict]) -> list[Path]:
    """Several :func:`train_cached` runs (``jobs[i]`` = its keyword arguments) side by side, as many at a
    time as :func:`training_slots` allows (on a 2-core laptop, two 1-thread trainings finish sooner than
    two 2-thread trainings in a row). Returns the checkpoints in ``jobs`` order; raises after all
    runs ended if any failed (the others are kept, cached)."""
    from concurrent.futures import ThreadPoolExecutor

    if not jobs:
        return []
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(train_cached, **j) for j in jobs]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(jobs)} trainings failed; first: {errors[0]}") from errors[0]
    return [f.result() for f in futures]


def predict_cached(config: str, checkpoint: str | Path, data_root: str | Path, mode: str = "forward",
                   force: bool = False) -> dict:
    """Run :func:`visrc.models.inference.run_inference` on the config's test split once; return its summary
    (paths of ``results.json`` and the per-frame ``.npz``, frames/s, metrics when the split has GT)."""
    from visrc.models.inference import run_inference

    out_dir = Path(checkpoint).parent / f"predict_{mode}"
    summary_path = out_dir / "summary.json"
    if summary_path.is_file() and not force:
        return read_json(summary_path)
    with file_lock(out_dir / ".predict.lock"):       # another notebook may be predicting it right now
        if summary_path.is_file() and not force:
            return read_json(summary_path)
        with compute_slot():
            summary = run_inference(config, checkpoint, data_root=data_root, out=out_dir / "results.json",
                                    mode=mode, log=None)
        atomic_write_json(summary_path, summary, indent=2)
    return summary


def tracking_ablation(videos, gt: dict, label_to_category, config=None, modes=("forward", "bitrack")) -> dict:
    """Video AP of the same per-frame predictions tracked forward only vs with BiTrack.

    ``videos``: list of :class:`visrc.tracking.VideoPredictions`; returns ``{mode: metrics dict}``.
    Detection is shared, so any difference is the tracking's alone.
    """
    from visrc.evaluation.ytvis_eval import evaluate_ytvis
    from visrc.tracking import build_bitrack_config, results_for_split, run_tracking

    config = build_bitrack_config(config)
    out = {}
    for mode in modes:
        results = results_for_split(run_tracking(videos, config, mode=mode), label_to_category, skip_unmapped=True)
        out[mode] = evaluate_ytvis(gt, results).as_dict()["metrics"]
    return out


def evaluate_run(config: str, checkpoint: str | Path, data_root: str | Path, tracker: dict | None = None,
                 merge_iou_thr: float | None = None, modes=("forward",)) -> dict:
    """``{mode: {AP, AP50, AP75, AR1, AR10}}`` of a trained run on its valid split, re-tracking its saved
    per-frame predictions (:func:`predict_cached`) with ``tracker`` (keys of
    :class:`visrc.tracking.TrackerConfig`; default: the config's ``tracking``) and ``merge_iou_thr``.

    Association is cheap next to detection, so one set of predictions serves every tracker setting:
    Table 1 compares rows under the same association thresholds, whatever each config says.
    """
    from visrc.data.ytvis import load_ytvis
    from visrc.models.inference import config_classes, label_to_category, load_config
    from visrc.tracking import build_bitrack_config, load_predictions

    cfg = load_config(config)
    summary = predict_cached(config, checkpoint, data_root)
    track_cfg = dict(cfg.get("tracking") or {})
    track_cfg["tracker"] = {**dict(track_cfg.get("tracker") or {}), **(tracker or {})}
    if merge_iou_thr is not None:
        track_cfg["merge_iou_thr"] = merge_iou_thr
    split = cfg.get("test_split") or {}
    gt = load_ytvis(Path(data_root) / split.get("ann_file", "valid/instances.json"))
    l2c = label_to_category(config_classes(cfg), gt["categories"])
    out = tracking_ablation(load_predictions(summary["predictions"]), gt, l2c, build_bitrack_config(track_cfg), modes)
    return {mode: {k: m[k] for k in TABLE_METRICS} for mode, m in out.items()}


# The paper's Table 1 (YouTube-VIS 2021 valid, ResNeSt-50), for side-by-side display only.
PAPER_TABLE1 = {
    "baseline": dict(AP=0.309, AP50=0.501, AP75=0.338, AR1=0.269, AR10=0.346),
    "+TCIS": dict(AP=0.331, AP50=0.535, AP75=0.354, AR1=0.285, AR10=0.368),
    "+TCIS+MultiTask": dict(AP=0.338, AP50=0.546, AP75=0.356, AR1=0.287, AR10=0.374),
    "+TCIS+MultiTask+MSD": dict(AP=0.364, AP50=0.570, AP75=0.402, AR1=0.299, AR10=0.397),
    "+TCIS+MultiTask+MSD+BiTrack": dict(AP=0.388, AP50=0.589, AP75=0.438, AR1=0.320, AR10=0.436),
}
TABLE_METRICS = ("AP", "AP50", "AP75", "AR1", "AR10")
# The paper's Table 2 (YouTube-VIS 2021 valid), for side-by-side display only. Our model A is the
# toy ResNet (toy_baseline; the paper: ResNeSt-101 "S101"), model B the toy Swin (toy_swin; Swin-S).
# Rows 4-6 train on pseudo-labelled valid and evaluate on valid (the paper's transductive protocol).
PAPER_TABLE2 = {
    "A": dict(AP=0.418, AP50=0.652, AP75=0.464, AR1=0.340, AR10=0.454),
    "B": dict(AP=0.440, AP50=0.666, AP75=0.504, AR1=0.359, AR10=0.476),
    "Ensemble (A, B)": dict(AP=0.464, AP50=0.698, AP75=0.515, AR1=0.376, AR10=0.505),
    "A + pseudo": dict(AP=0.539, AP50=0.777, AP75=0.628, AR1=0.421, AR10=0.578),
    "B + pseudo": dict(AP=0.560, AP50=0.792, AP75=0.644, AR1=0.430, AR10=0.594),
    "Ensemble (A, B, A+P, B+P)": dict(AP=0.575, AP50=0.806, AP75=0.671, AR1=0.441, AR10=0.609),
}


def ablation_table(runs: list[dict], paper: dict | None = PAPER_TABLE1):
    """Rows of ``{"row", "seed", <metric>: value}`` -> a pandas table of mean, std and run count per row
    (in first-seen row order), with the paper's numbers beside ours when ``paper`` is given."""
    import pandas as pd

    df = pd.DataFrame(runs)
    order = list(dict.fromkeys(df["row"]))
    g = df.groupby("row", sort=False)[list(TABLE_METRICS)]
    table = g.mean().add_suffix(" mean").join(g.std(ddof=1).add_suffix(" std")).loc[order]
    table.insert(0, "seeds", g.size().loc[order])
    cols = ["seeds"] + [f"{m} {s}" for m in TABLE_METRICS for s in ("mean", "std")]
    table = table[cols]
    if paper:
        table["paper AP"] = [paper.get(r, {}).get("AP") for r in order]
        table["paper AP50"] = [paper.get(r, {}).get("AP50") for r in order]
    return table


FRAME_SAMPLING_SCHEDULES = ("equal_iterations", "equal_epochs")


def frame_sampling_options(config: str, data_root: str | Path, n: int | None,
                           schedule: str = "equal_epochs") -> dict | None:
    """``cfg_options`` that train ``config`` on ``n`` uniformly sampled frames per video (paper 3.1).

    Writes the subsampled annotation file under ``runs/data/`` and adds ``PseudoRefFrame`` before
    packing, so a video left with one frame (its key frame sampled as its own reference) gets an
    affine-warped pseudo reference frame, as in the paper. ``n=None``: all frames, no override.
    ``schedule="equal_iterations"``: every epoch takes as many key frames as the full split has
    (``FixedLengthTrackImgSampler``), so the run gets the all-frames run's iterations and LR
    schedule; ``"equal_epochs"``: an epoch is one pass over the sampled frames (fewer iterations).
    """
    if schedule not in FRAME_SAMPLING_SCHEDULES:
        raise ValueError(f"frame-sampling schedule must be one of {FRAME_SAMPLING_SCHEDULES}, got {schedule!r}")
    if n is None:
        return None
    from visrc.data.sampling import subsample_frames
    from visrc.data.ytvis import load_ytvis, write_ytvis
    from visrc.models.inference import load_config

    cfg = load_config(config)
    ds = cfg.train_dataloader.dataset
    src = Path(data_root) / ds.ann_file
    ann = runs_dir() / "data" / "frame_sampling" / f"{Path(data_root).name}_{Path(ds.ann_file).stem}_{n}frames.json"
    full = load_ytvis(src) if schedule == "equal_iterations" or not ann.is_file() else None
    if not ann.is_file():
        write_ytvis(subsample_frames(full, n), ann)
    pipeline = [t.to_dict() if hasattr(t, "to_dict") else dict(t) for t in ds.pipeline]
    pipeline.insert(len(pipeline) - 1, dict(type="PseudoRefFrame"))
    options = {"train_dataloader.dataset.ann_file": str(ann), "train_dataloader.dataset.pipeline": pipeline}
    if schedule == "equal_iterations":
        if cfg.train_dataloader.sampler.get("type") != "TrackImgSampler":
            raise ValueError(f"{config}: the equal_iterations schedule needs train_dataloader.sampler TrackImgSampler, "
                             f"got {cfg.train_dataloader.sampler.get('type')}")
        options["train_dataloader.sampler"] = dict(type="FixedLengthTrackImgSampler",
                                                   length=sum(int(v["length"]) for v in full["videos"]))
    return options
