"""Fig. 2b (paper section 3.1) on cached runs: one model per frames-per-video setting, schedule and seed,
each started from the toy COCO pretraining of its backbone (the paper's init)."""
from __future__ import annotations

from pathlib import Path

from visrc.experiments.pretrain import init_label, resolve_init
from visrc.experiments.runs import predict_cached, train_many
from visrc.experiments.tables import metrics_row, row_interval

# where a subsampled run's reference frames come from (visrc.data.sampling.frame_sampling_options)
PSEUDO_REFERENCES = {"every_key_frame": True, "one_frame_videos": False}


def run_frame_sampling(config, data_root, frames_per_video=(1, 2, 5, 10, None), seeds=(0,),
                       schedules=("equal_iterations",), train_epochs: int | None = None,
                       init="pretrained", pretrain_epochs: int | None = None,
                       pseudo_reference: str = "every_key_frame", n_boot: int = 1000) -> list[dict]:
    """Train (or reuse) ``config`` on ``n`` frames per video (``None``: all) for every schedule and seed
    (:func:`visrc.data.sampling.frame_sampling_options`) from ``init``, and evaluate each on the test split.

    ``pseudo_reference``: ``"every_key_frame"`` (the paper: each key frame of a subsampled run gets an
    affine-warped copy of itself as its reference) or ``"one_frame_videos"`` (only a video left with
    one frame does; the others pair real sampled frames, further apart the fewer are kept). The
    all-frames run pairs real neighbouring frames either way (it is the baseline).
    Returns ``{"schedule", "frames", "seed", "init", "pseudo_reference", <metric>, AP interval}`` per run."""
    from visrc.data.sampling import frame_sampling_options
    from visrc.models.config import load_config
    from visrc.pipeline import split_paths

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
    gt = split_paths(cfg, root)[0]
    rows = []
    for (schedule, n, seed), ckpt in zip(settings, checkpoints):
        summary = predict_cached(config, ckpt, root)
        rows.append({"schedule": schedule, "frames": "all" if n is None else n, "seed": seed, "init": init_label(init),
                     "pseudo_reference": pseudo_reference if n is not None else "real frames",
                     **metrics_row(summary["metrics"]),
                     **(row_interval(gt, summary["results"], n_boot) if n_boot else {})})
    return rows


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
