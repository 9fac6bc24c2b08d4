"""Fig. 2b (paper section 3.1) on cached runs: one model per frames-per-video setting, schedule and seed."""
from __future__ import annotations

from pathlib import Path

from visrc.experiments.runs import predict_cached, train_many
from visrc.experiments.tables import metrics_row


def run_frame_sampling(config, data_root, frames_per_video=(1, 2, 5, 10, None), seeds=(0,),
                       schedules=("equal_iterations",), train_epochs: int | None = None) -> list[dict]:
    """Train (or reuse) ``config`` on ``n`` frames per video (``None``: all) for every schedule and seed
    (:func:`visrc.data.sampling.frame_sampling_options`) and evaluate each on the test split.
    Returns ``{"schedule", "frames", "seed", <metric>}`` per run."""
    from visrc.data.sampling import frame_sampling_options
    from visrc.models.config import load_config

    root = Path(data_root)
    cfg = load_config(config)
    settings = [(schedule, n, seed) for schedule in schedules for n in frames_per_video for seed in seeds]
    checkpoints = train_many([dict(config=config, data_root=root, seed=seed, max_epochs=train_epochs,
                                   cfg_options=frame_sampling_options(cfg, root, n, schedule))
                              for schedule, n, seed in settings])
    return [{"schedule": schedule, "frames": "all" if n is None else n, "seed": seed,
             **metrics_row(predict_cached(config, ckpt, root)["metrics"])}
            for (schedule, n, seed), ckpt in zip(settings, checkpoints)]
