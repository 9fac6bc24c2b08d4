"""Table 1 (paper section 4.2) on cached runs: train every row, choose the association on the
baseline row, track every row with it, add the BiTrack row from the last row's predictions.

::

    t1 = run_table1(root, seeds=[0])
    summary_table(t1.runs, PAPER_TABLE1)

Association is cheap next to detection, so one set of saved per-frame predictions per run serves
every tracker setting (:func:`evaluate_tracking`): the rows are compared under the same thresholds,
whatever each config says.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from visrc.experiments.runs import predict_cached, train_many
from visrc.experiments.tables import metrics_row

# (row name, config) in the paper's order; each row adds one component to the row above
TABLE1_ROWS = (("baseline", "toy_baseline"), ("+TCIS", "toy_tcis"), ("+TCIS+MultiTask", "toy_tcis_multitask"),
               ("+TCIS+MultiTask+MSD", "toy_tcis_multitask_msd"))
# association score thresholds (track start, continue) the baseline row chooses from
TRACKER_GRID = ((0.5, 0.3), (0.4, 0.3), (0.3, 0.2), (0.2, 0.1))


def evaluate_tracking(config, checkpoint, data_root, tracker: dict | None = None,
                      merge_iou_thr: float | None = None, modes=("forward",)) -> dict:
    """``{mode: {AP, AP50, AP75, AR1, AR10}}`` of a trained run on its test split, re-tracking its saved
    per-frame predictions (:func:`visrc.experiments.runs.predict_cached`) with ``tracker`` (keys of
    :class:`visrc.tracking.TrackerConfig` over the config's ``tracking.tracker``) and ``merge_iou_thr``."""
    from dataclasses import replace

    from visrc.data.predictions import load_predictions
    from visrc.data.ytvis import load_ytvis
    from visrc.models.config import config_classes, load_config
    from visrc.pipeline import compare_tracking, config_tracking, split_paths

    cfg = load_config(config)
    tracking, _ = config_tracking(cfg)
    tracking = replace(tracking, tracker=replace(tracking.tracker, **(tracker or {})))
    if merge_iou_thr is not None:
        tracking = replace(tracking, merge_iou_thr=merge_iou_thr)
    videos = load_predictions(predict_cached(config, checkpoint, data_root)["predictions"])
    gt = load_ytvis(split_paths(cfg, data_root)[0])
    return {mode: metrics_row(m) for mode, m in compare_tracking(videos, gt, config_classes(cfg), tracking, modes).items()}


def msd_epoch_options(config, epoch_length: int | None) -> dict | None:
    """``cfg_options`` that set the epoch length of a Multi-Source Data config (its
    ``MixedSourceSampler``); ``None`` for any other config or ``epoch_length=None``."""
    from visrc.models.config import load_config

    if epoch_length is None or load_config(config).train_dataloader.sampler.get("type") != "MixedSourceSampler":
        return None
    return {"train_dataloader.sampler.length": int(epoch_length)}


@dataclass
class Table1Result:
    """``runs``: ``{"row", "seed", <metric>}`` per row and seed (the BiTrack row included);
    ``sensitivity``: forward AP per row, seed and grid point; ``tracker``: the chosen thresholds."""

    runs: list[dict]
    sensitivity: list[dict]
    tracker: dict
    merge_iou_thr: float
    checkpoints: dict = field(default_factory=dict)

    def sensitivity_table(self):
        """Mean forward AP per row (index) and grid point (columns)."""
        import pandas as pd

        return pd.DataFrame(self.sensitivity).pivot_table(
            index="row", columns=["init_score_thr", "obj_score_thr"], values="AP", aggfunc="mean", sort=False)


def choose_association(sensitivity: list[dict], row: str) -> dict:
    """The grid point with the best mean AP of ``row`` (over seeds); ties go to the earlier point."""
    points: dict[tuple, list[float]] = {}
    for r in sensitivity:
        if r["row"] == row:
            points.setdefault((r["init_score_thr"], r["obj_score_thr"]), []).append(r["AP"])
    if not points:
        raise ValueError(f"choose_association: no runs of row {row!r}")
    best = max(points, key=lambda p: sum(points[p]) / len(points[p]))
    return dict(init_score_thr=best[0], obj_score_thr=best[1])


def run_table1(data_root, seeds=(0,), rows=TABLE1_ROWS, train_epochs: int | None = None,
               msd_epoch_length: int | None = None, tracker_grid=TRACKER_GRID,
               merge_iou_thr: float = 0.5) -> Table1Result:
    """Train (or reuse) every row and seed, choose the association on ``rows[0]`` from ``tracker_grid``,
    evaluate every row with it, and the last row also with BiTrack (``merge_iou_thr``)."""
    root = Path(data_root)
    settings = [(row, config, seed) for row, config in rows for seed in seeds]
    checkpoints = train_many([dict(config=config, data_root=root, seed=seed, max_epochs=train_epochs,
                                   cfg_options=msd_epoch_options(config, msd_epoch_length))
                              for row, config, seed in settings])
    grid = [dict(init_score_thr=i, obj_score_thr=o) for i, o in tracker_grid]
    sensitivity = [{"row": row, "seed": seed, **t, "AP": evaluate_tracking(config, ckpt, root, tracker=t)["forward"]["AP"]}
                   for (row, config, seed), ckpt in zip(settings, checkpoints) for t in grid]
    tracker = choose_association(sensitivity, rows[0][0])
    runs = []
    for (row, config, seed), ckpt in zip(settings, checkpoints):
        modes = ("forward", "bitrack") if config == rows[-1][1] else ("forward",)
        m = evaluate_tracking(config, ckpt, root, tracker=tracker, merge_iou_thr=merge_iou_thr, modes=modes)
        runs += [{"row": row + suffix, "seed": seed, **m[mode]}
                 for mode, suffix in (("forward", ""), ("bitrack", "+BiTrack")) if mode in m]
    return Table1Result(runs, sensitivity, tracker, merge_iou_thr,
                        {f"{row}/seed{seed}": str(c) for (row, _, seed), c in zip(settings, checkpoints)})
