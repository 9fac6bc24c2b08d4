"""Fig. 2b (paper section 3.1) on cached runs: one model per frames-per-video setting, schedule and seed,
each started from the toy COCO pretraining of its backbone (the paper's init)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from visrc.experiments.pretrain import init_label, resolve_init
from visrc.experiments.runs import train_many

# where a subsampled run's reference frames come from (visrc.data.sampling.frame_sampling_options)
PSEUDO_REFERENCES = {"every_key_frame": True, "one_frame_videos": False}


def frame_sampling_checkpoints(config, data_root, frames_per_video=(1, 2, 5, 10, None), seeds=(0,),
                               schedules=("equal_iterations",), train_epochs: int | None = None,
                               init="pretrained", pretrain_epochs: int | None = None,
                               pseudo_reference: str = "every_key_frame") -> list[tuple[str, int | None, int, Path]]:
    """Train (or reuse) ``config`` on ``n`` frames per video (``None``: all) for every schedule and seed
    (:func:`visrc.data.sampling.frame_sampling_options`) from ``init``; ``(schedule, n, seed, checkpoint)``
    per run. ``pseudo_reference``: see :func:`run_frame_sampling`."""
    from visrc.data.sampling import frame_sampling_options
    from visrc.models.config import load_config

    if pseudo_reference not in PSEUDO_REFERENCES:
        raise ValueError(f"pseudo_reference must be one of {sorted(PSEUDO_REFERENCES)}, got {pseudo_reference!r}")
    root = Path(data_root)
    cfg = load_config(config)
    start = resolve_init(config, root, init, pretrain_epochs)
    settings = [(schedule, n, seed) for schedule in schedules for n in frames_per_video for seed in seeds]
    checkpoints = train_many([dict(config=config, data_root=root, seed=seed, max_epochs=train_epochs, init=start,
                                   cfg_options=frame_sampling_options(
                                       cfg, root, n, schedule, warp_every_reference=PSEUDO_REFERENCES[pseudo_reference]))
                              for schedule, n, seed in settings])
    return [(*setting, ckpt) for setting, ckpt in zip(settings, checkpoints)]


def frame_sampling_labels(schedule: str, n: int | None, seed: int, init, pseudo_reference: str) -> dict:
    """The labels of one Fig. 2b run in its row of :func:`run_frame_sampling`."""
    return {"schedule": schedule, "frames": "all" if n is None else n, "seed": seed, "init": init_label(init),
            "pseudo_reference": pseudo_reference if n is not None else "real frames"}


@dataclass
class FrameSamplingResult:
    """Fig. 2b's runs: ``runs`` (one row per schedule, setting and seed, see :func:`run_frame_sampling`),
    ``checkpoints`` (``(schedule, frames, seed)`` -> checkpoint, ``frames`` as in ``runs``), the ``config``
    and the number of videos of the split the runs are reported on."""

    runs: list[dict]
    config: str
    checkpoints: dict = field(default_factory=dict)
    valid_videos: int = 0


def run_frame_sampling(config, data_root, frames_per_video=(1, 2, 5, 10, None), seeds=(0,),
                       schedules=("equal_iterations",), train_epochs: int | None = None,
                       init="pretrained", pretrain_epochs: int | None = None,
                       pseudo_reference: str = "every_key_frame", n_boot: int = 1000) -> FrameSamplingResult:
    """Train (or reuse) one model per setting (:func:`frame_sampling_checkpoints`) and evaluate each on the
    test split with the config's own tracker.

    ``pseudo_reference``: ``"every_key_frame"`` (the paper: each key frame of a subsampled run gets an
    affine-warped copy of itself as its reference) or ``"one_frame_videos"`` (only a video left with
    one frame does; the others pair real sampled frames, further apart the fewer are kept). The
    all-frames run pairs real neighbouring frames either way (it is the baseline).
    ``runs`` of the result: ``{"schedule", "frames", "seed", "init", "pseudo_reference", <metric>, AP interval}``
    per run."""
    from visrc.pipeline import load_split

    runs = frame_sampling_checkpoints(config, data_root, frames_per_video, seeds, schedules, train_epochs, init,
                                      pretrain_epochs, pseudo_reference)
    from visrc.experiments.table1 import evaluate_tracking

    gt = load_split(config, Path(data_root)).gt
    rows, checkpoints = [], {}
    for schedule, n, seed, ckpt in runs:
        # the saved predictions (predict_cached) tracked with the config's own tracker, forward
        scored = evaluate_tracking(config, ckpt, Path(data_root), n_boot=n_boot)["forward"]
        labels = frame_sampling_labels(schedule, n, seed, init, pseudo_reference)
        rows.append({**labels, **scored})
        checkpoints[(schedule, labels["frames"], seed)] = ckpt
    return FrameSamplingResult(rows, str(config), checkpoints, len(gt["videos"]))


def frame_sampling_rows(runs: list[dict]) -> list[dict]:
    """The runs with a ``row`` label per setting (frames per video, and the schedule when there are
    several), for :func:`visrc.experiments.tables.summary_table` and ``row_differences``."""
    several = len({r["schedule"] for r in runs}) > 1
    return [dict(r, row=f"{r['frames']} frames" + (f", {r['schedule'].replace('_', ' ')}" if several else ""))
            for r in runs]


def frame_sampling_comparisons(rows: list[dict]) -> list[tuple[str, str]]:
    """``(row, reference)`` pairs of Fig. 2b's reading: every subsampled setting against the all-frames
    run of its schedule (``rows`` from :func:`frame_sampling_rows`)."""
    pairs = {}
    for schedule in dict.fromkeys(r["schedule"] for r in rows):
        mine = [r for r in rows if r["schedule"] == schedule]
        full = next((r["row"] for r in mine if r["frames"] == "all"), None)
        if full is not None:
            pairs.update({(r["row"], full): None for r in mine if r["frames"] != "all"})
    return list(pairs)
