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
import subprocess
import sys
from pathlib import Path

from visrc.io import atomic_write_json, read_json
from visrc.paths import runs_dir


def run_dir(config: str, data_root: str | Path, seed: int = 0, max_epochs: int | None = None,
            cfg_options: dict | None = None) -> Path:
    """The directory of one (config, data, seed, schedule, overrides) run."""
    key = json.dumps({"config": str(config), "data": str(Path(data_root).resolve()), "seed": seed,
                      "epochs": max_epochs, "options": cfg_options or {}}, sort_keys=True)
    name = Path(str(config)).stem
    return runs_dir() / "experiments" / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def train_cached(config: str, data_root: str | Path, seed: int = 0, max_epochs: int | None = None,
                 cfg_options: dict | None = None, force: bool = False) -> Path:
    """Train (or resume, or reuse) and return the final checkpoint's path."""
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
    work.mkdir(parents=True, exist_ok=True)
    print(f"training {config} (seed {seed}) in {work}; log: {work / 'train.log'}", flush=True)
    with open(work / "train.log", "a") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = (work / "train.log").read_text().splitlines()[-25:]
        raise RuntimeError(f"training {config} failed (exit {proc.returncode}); last lines of {work / 'train.log'}:\n"
                           + "\n".join(tail))
    pointer = work / "last_checkpoint"
    ckpt = Path(pointer.read_text().strip()) if pointer.is_file() else max(work.glob("epoch_*.pth"), key=lambda p: p.stat().st_mtime)
    atomic_write_json(done, {"checkpoint": str(ckpt), "command": cmd})
    return ckpt


def predict_cached(config: str, checkpoint: str | Path, data_root: str | Path, mode: str = "forward",
                   force: bool = False) -> dict:
    """Run :func:`visrc.models.inference.run_inference` on the config's test split once; return its summary
    (paths of ``results.json`` and the per-frame ``.npz``, frames/s, metrics when the split has GT)."""
    from visrc.models.inference import run_inference

    out_dir = Path(checkpoint).parent / f"predict_{mode}"
    summary_path = out_dir / "summary.json"
    if summary_path.is_file() and not force:
        return read_json(summary_path)
    summary = run_inference(config, checkpoint, data_root=data_root, out=out_dir / "results.json", mode=mode, log=None)
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


# The paper's Table 1 (YouTube-VIS 2021 valid, ResNeSt-50), for side-by-side display only.
PAPER_TABLE1 = {
    "baseline": dict(AP=0.309, AP50=0.501, AP75=0.338, AR1=0.269, AR10=0.346),
    "+TCIS": dict(AP=0.331, AP50=0.535, AP75=0.354, AR1=0.285, AR10=0.368),
    "+TCIS+MultiTask": dict(AP=0.338, AP50=0.546, AP75=0.356, AR1=0.287, AR10=0.374),
    "+TCIS+MultiTask+MSD": dict(AP=0.364, AP50=0.570, AP75=0.402, AR1=0.299, AR10=0.397),
    "+TCIS+MultiTask+MSD+BiTrack": dict(AP=0.388, AP50=0.589, AP75=0.438, AR1=0.320, AR10=0.436),
}
TABLE_METRICS = ("AP", "AP50", "AP75", "AR1", "AR10")


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


def frame_sampling_options(config: str, data_root: str | Path, n: int | None) -> dict | None:
    """``cfg_options`` that train ``config`` on ``n`` uniformly sampled frames per video (paper 3.1).

    Writes the subsampled annotation file under ``runs/data/`` and adds ``PseudoRefFrame`` before
    packing, so a video left with one frame (its key frame sampled as its own reference) gets an
    affine-warped pseudo reference frame, as in the paper. ``n=None``: all frames, no override.
    """
    if n is None:
        return None
    from visrc.data.sampling import subsample_frames
    from visrc.data.ytvis import load_ytvis, write_ytvis
    from visrc.models.inference import load_config

    cfg = load_config(config)
    ds = cfg.train_dataloader.dataset
    src = Path(data_root) / ds.ann_file
    ann = runs_dir() / "data" / "frame_sampling" / f"{Path(data_root).name}_{Path(ds.ann_file).stem}_{n}frames.json"
    if not ann.is_file():
        write_ytvis(subsample_frames(load_ytvis(src), n), ann)
    pipeline = [t.to_dict() if hasattr(t, "to_dict") else dict(t) for t in ds.pipeline]
    pipeline.insert(len(pipeline) - 1, dict(type="PseudoRefFrame"))
    return {"train_dataloader.dataset.ann_file": str(ann), "train_dataloader.dataset.pipeline": pipeline}
