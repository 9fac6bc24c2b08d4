"""Table 1 (paper section 4.2) on cached runs, under the paper's protocol: every row starts from the
toy COCO pretraining of its backbone, the thresholds are chosen on the ``tune`` split and the rows
are reported on the test split (``valid``).

::

    t1 = run_table1(root, seeds=[0])
    summary_table(t1.runs, PAPER_TABLE1)

Association is cheap next to detection, so one set of saved per-frame predictions per run and
split serves every tracker setting (:func:`evaluate_tracking`): the rows are compared under the
same thresholds, whatever each config says. The association score thresholds are chosen on the
baseline row's ``tune`` predictions (so the choice cannot favour a component); BiTrack's merge IoU on
the BiTrack row's ``tune`` predictions. The MSD row trains on every video sample plus the still
images on top (the paper's union; the config's ``msd_epoch_length``); with ``msd_equal_compute`` the
same model is also trained with the videos' share halved to the baseline's iterations, as its own row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from visrc.experiments.pretrain import init_label, init_of
from visrc.experiments.runs import predict_cached, train_many
from visrc.experiments.slots import SERIAL_STAGE, slot_priority
from visrc.experiments.tables import metrics_row, row_interval

# (row name, config) in the paper's order; each row adds one component to the row above
TABLE1_ROWS = (("baseline", "toy_baseline"), ("+TCIS", "toy_tcis"), ("+TCIS+MultiTask", "toy_tcis_multitask"),
               ("+TCIS+MultiTask+MSD", "toy_tcis_multitask_msd"))
EQUAL_COMPUTE_SUFFIX = " (equal compute)"
BITRACK_SUFFIX = "+BiTrack"          # the row of the last trained row's detections tracked with BiTrack
# association score thresholds (track start, continue) the baseline row chooses from on `tune`
TRACKER_GRID = ((0.5, 0.3), (0.4, 0.3), (0.3, 0.2), (0.2, 0.1))
# BiTrack merge IoU the BiTrack row chooses from on `tune`
MERGE_IOU_GRID = (0.3, 0.5, 0.7)


def track_run(config, checkpoint, data_root, tracker: dict | None = None, merge_iou_thr: float | None = None,
              modes=("forward",), split: str | None = None, foreign_root: bool = False) -> tuple[dict, dict]:
    """``(GT, {mode: YouTube-VIS results})`` of a trained run on ``split`` of ``data_root`` (None: the
    config's test split), re-tracking its saved per-frame predictions
    (:func:`visrc.experiments.runs.predict_cached`; ``foreign_root``: a root it did not train on) with
    ``tracker`` (keys of :class:`visrc.tracking.TrackerConfig` over the config's ``tracking.tracker``)
    and ``merge_iou_thr``."""
    from dataclasses import replace

    from visrc.data.predictions import load_predictions
    from visrc.models.config import config_classes, load_config
    from visrc.pipeline import config_tracking, load_split, match_categories, track_and_evaluate

    cfg = load_config(config)
    tracking, _ = config_tracking(cfg)
    tracking = replace(tracking, tracker=replace(tracking.tracker, **(tracker or {})))
    if merge_iou_thr is not None:
        tracking = replace(tracking, merge_iou_thr=merge_iou_thr)
    summary = predict_cached(config, checkpoint, data_root, split=split, foreign_root=foreign_root)
    videos = load_predictions(summary["predictions"])
    gt = load_split(cfg, data_root, split).gt
    classes = config_classes(cfg)
    categories = match_categories(classes, gt)
    return gt, {mode: track_and_evaluate(videos, gt, classes, tracking, mode, evaluate=False,
                                         categories=categories)[0] for mode in modes}


def evaluate_tracking(config, checkpoint, data_root, tracker: dict | None = None,
                      merge_iou_thr: float | None = None, modes=("forward",), split: str | None = None,
                      n_boot: int = 0) -> dict:
    """``{mode: {AP, AP50, AP75, AR1, AR10}}`` of a trained run on ``split`` (:func:`track_run`).
    ``n_boot > 0`` adds the bootstrap interval over videos (:func:`visrc.experiments.tables.row_interval`)."""
    from visrc.evaluation.ytvis_eval import evaluate_ytvis

    gt, tracked = track_run(config, checkpoint, data_root, tracker, merge_iou_thr, modes, split)
    out = {}
    for mode, results in tracked.items():
        out[mode] = metrics_row(evaluate_ytvis(gt, results).as_dict()["metrics"])
        if n_boot:
            out[mode].update(row_interval(gt, results, n_boot))
    return out


def msd_epoch_options(config, epoch_length: int | None) -> dict | None:
    """``cfg_options`` that fix the epoch length of a Multi-Source Data config (its
    ``MixedSourceSampler``, in place of an ``anchor_source`` length); ``None`` for any other config
    or ``epoch_length=None``."""
    from visrc.models.config import load_config

    if epoch_length is None or load_config(config).train_dataloader.sampler.get("type") != "MixedSourceSampler":
        return None
    return {"train_dataloader.sampler.length": int(epoch_length), "train_dataloader.sampler.anchor_source": None}


def video_train_frames(config, data_root) -> int:
    """Key frames of one ``TrackImgSampler`` epoch over ``config``'s video train split under
    ``data_root`` (of the first source of a Multi-Source Data config), counted on the built dataset
    (:func:`visrc.data.msd.frames_of`), which leaves out what the loader filters."""
    from mmdet.registry import DATASETS

    from visrc.data.msd import frames_of
    from visrc.models.train_cli import prepare_config

    ds = prepare_config(config, data_root=str(data_root)).train_dataloader.dataset
    return frames_of(DATASETS.build(ds if "ann_file" in ds else ds.datasets[0]))


def equal_compute_length(config, data_root) -> int:
    """The MSD epoch length that gives an MSD config the baseline's iterations: the train split's
    frame count (one key frame per frame, as ``TrackImgSampler``)."""
    return video_train_frames(config, data_root)


def msd_union_length(config, data_root) -> int:
    """The epoch length of an MSD config's union (``MixedSourceSampler(anchor_source=0)``): the video
    frames and the still images on top in the config's ratios."""
    import math

    from visrc.models.config import load_config

    ratios = list(load_config(config).train_dataloader.sampler.ratios)
    return int(math.ceil(video_train_frames(config, data_root) * sum(ratios) / ratios[0]))


@dataclass
class Table1Result:
    """``runs``: ``{"row", "seed", "init", <metric>, <metric>_low/_high/_boot_std}`` per row and seed (the
    BiTrack row included) on the test split; ``sensitivity``: ``tune`` AP per row, seed and grid point
    (association for every row, merge IoU for the BiTrack row); ``tracker`` / ``merge_iou_thr``: the
    choices, each made on ``choice_split``."""

    runs: list[dict]
    sensitivity: list[dict]
    tracker: dict
    merge_iou_thr: float
    choice_split: str
    init: str
    checkpoints: dict = field(default_factory=dict)   # "<row>/seed<seed>" -> checkpoint
    configs: dict = field(default_factory=dict)       # trained row -> config
    valid_videos: int = 0                             # videos of the split the rows are reported on

    def sensitivity_table(self):
        """Mean ``tune`` forward AP per row (index) and association grid point (columns)."""
        import pandas as pd

        assoc = [r for r in self.sensitivity if "init_score_thr" in r]
        return pd.DataFrame(assoc).pivot_table(
            index="row", columns=["init_score_thr", "obj_score_thr"], values="AP", aggfunc="mean", sort=False)

    def comparisons(self) -> list[tuple[str, str]]:
        """The ``(row, reference)`` pairs the readings compare (:func:`table1_comparisons`)."""
        return table1_comparisons(list(dict.fromkeys(r["row"] for r in self.runs)))

    def choices(self) -> dict:
        """What was chosen, on which split, from what (for the recorded metrics)."""
        return {"association": {**self.tracker, "split": self.choice_split, "by": "baseline row, forward AP"},
                "merge_iou_thr": {"value": self.merge_iou_thr, "split": self.choice_split, "by": "BiTrack row AP"},
                "init": self.init}


def table1_comparisons(rows: list[str]) -> list[tuple[str, str]]:
    """``(row, reference)`` pairs in the paper's reading of Table 1, for the rows present (table order):
    each component row against the row above it, BiTrack against the detections it tracks, the
    equal-compute MSD row against the row MSD is added to and against the MSD union, and the full
    system against the baseline."""
    plain = [r for r in rows if not r.endswith(EQUAL_COMPUTE_SUFFIX)]
    pairs = list(zip(plain[1:], plain[:-1]))
    for row in rows:
        if row.endswith(EQUAL_COMPUTE_SUFFIX):
            msd = row[: -len(EQUAL_COMPUTE_SUFFIX)]
            if msd in plain and plain.index(msd) > 0:
                pairs += [(row, plain[plain.index(msd) - 1]), (row, msd)]
    if len(plain) > 2:
        pairs.append((plain[-1], plain[0]))
    return pairs


def choose_best(sensitivity: list[dict], row: str, keys: tuple[str, ...]) -> dict:
    """The grid point (values of ``keys``) with the best mean AP of ``row`` over seeds; ties go to the
    earlier point."""
    points: dict[tuple, list[float]] = {}
    for r in sensitivity:
        if r["row"] == row and all(k in r for k in keys):
            points.setdefault(tuple(r[k] for k in keys), []).append(r["AP"])
    if not points:
        raise ValueError(f"choose_best: no runs of row {row!r} with {keys}")
    best = max(points, key=lambda p: sum(points[p]) / len(points[p]))
    return dict(zip(keys, best))


def choose_association(sensitivity: list[dict], row: str) -> dict:
    """The association grid point with the best mean AP of ``row`` (over seeds)."""
    return choose_best(sensitivity, row, ("init_score_thr", "obj_score_thr"))


def table1_settings(data_root, rows=TABLE1_ROWS, msd_equal_compute: bool = True) -> list[tuple[str, str, dict | None]]:
    """``(row, config, cfg_options)`` of every trained row: ``rows``, then the equal-compute MSD row."""
    out = [(row, config, None) for row, config in rows]
    if msd_equal_compute:
        row, config = rows[-1]
        length = equal_compute_length(config, data_root) if msd_epoch_options(config, 1) else None
        if length is not None:
            out.append((row + EQUAL_COMPUTE_SUFFIX, config, msd_epoch_options(config, length)))
    return out


@slot_priority(SERIAL_STAGE)   # the predictions after the last row run one after another: start the rows early
def run_table1(data_root, seeds=(0,), rows=TABLE1_ROWS, train_epochs: int | None = None,
               msd_equal_compute: bool = True, tracker_grid=None, merge_iou_grid=None,
               init="pretrained", pretrain_epochs: int | None = None, choice_split: str = "tune",
               n_boot: int = 1000) -> Table1Result:
    """Train (or reuse) every row and seed from ``init`` (:func:`visrc.experiments.pretrain.resolve_init`),
    choose the association on ``rows[0]`` and the merge IoU on the BiTrack row, both on
    ``choice_split``, and report every row on the test split (``rows[-1]`` also with BiTrack), with
    bootstrap intervals (``n_boot`` resamples; 0: none). ``tracker_grid`` / ``merge_iou_grid``: None
    means :data:`TRACKER_GRID` / :data:`MERGE_IOU_GRID`."""
    from visrc.pipeline import load_split

    tracker_grid = TRACKER_GRID if tracker_grid is None else tracker_grid
    merge_iou_grid = MERGE_IOU_GRID if merge_iou_grid is None else merge_iou_grid
    root = Path(data_root)
    trained = table1_settings(root, rows, msd_equal_compute)
    settings = [(row, config, opts, seed) for row, config, opts in trained for seed in seeds]
    inits = {config: init_of(config, root, init, pretrain_epochs) for _, config, _ in trained}
    checkpoints = train_many([dict(config=config, data_root=root, seed=seed, max_epochs=train_epochs,
                                   cfg_options=opts, init=inits[config])
                              for row, config, opts, seed in settings])
    runs_of = list(zip(settings, checkpoints))
    bitrack_row = rows[-1][0]
    grid = [dict(init_score_thr=i, obj_score_thr=o) for i, o in tracker_grid]
    sensitivity = [{"row": row, "seed": seed, **t,
                    "AP": evaluate_tracking(config, ckpt, root, tracker=t, split=choice_split)["forward"]["AP"]}
                   for (row, config, _, seed), ckpt in runs_of for t in grid]
    tracker = choose_association(sensitivity, rows[0][0])
    sensitivity += [{"row": bitrack_row + BITRACK_SUFFIX, "seed": seed, "merge_iou_thr": m,
                     "AP": evaluate_tracking(config, ckpt, root, tracker, m, ("bitrack",), choice_split)["bitrack"]["AP"]}
                    for (row, config, _, seed), ckpt in runs_of if row == bitrack_row for m in merge_iou_grid]
    merge_iou_thr = choose_best(sensitivity, bitrack_row + BITRACK_SUFFIX, ("merge_iou_thr",))["merge_iou_thr"]
    runs = []
    for (row, config, _, seed), ckpt in runs_of:
        modes = ("forward", "bitrack") if row == bitrack_row else ("forward",)
        m = evaluate_tracking(config, ckpt, root, tracker=tracker, merge_iou_thr=merge_iou_thr, modes=modes,
                              n_boot=n_boot)
        runs += [{"row": row + suffix, "seed": seed, "init": init_label(init), **m[mode]}
                 for mode, suffix in (("forward", ""), ("bitrack", BITRACK_SUFFIX)) if mode in m]
    order = [r for r, *_ in trained]
    order.insert(order.index(bitrack_row) + 1, bitrack_row + BITRACK_SUFFIX)
    runs.sort(key=lambda r: (order.index(r["row"]), r["seed"]))
    n_valid = len(load_split(trained[0][1], root).gt["videos"])
    return Table1Result(runs, sensitivity, tracker, merge_iou_thr, choice_split, init_label(init),
                        {f"{row}/seed{seed}": str(c) for (row, _, _, seed), c in runs_of},
                        {row: config for row, config, _ in trained}, n_valid)
