"""Table 2 (paper 3.5.2, 3.5.5) as cached runs: models A and B, their Greedy Auto Ensemble and
multi-scale testing. Notebooks 04 and 05 call::

    t2 = ensemble_table(root, seeds=[0])               # rows A, B, Ensemble (A, B)
    runs = t2.runs + multiscale_rows(t2, scales=[0.75, 1.0, 1.25])

and the building block below::

    ens = ensemble_models([("toy_tcis_multitask_msd", ckpt_a), ("toy_swin_tcis_multitask_msd", ckpt_b)], root)
    ens.metrics["AP"]                                  # video AP of the tracked ensemble on valid

The pseudo-label rows are :mod:`visrc.experiments.pseudo_labels`.

**Models** (:data:`TABLE2_MODELS`): A and B are the full model of Table 1's last row (TCIS +
MultiTask + MSD) with the ResNet and the Swin backbone, each started from its backbone's toy COCO
pretraining, every row tracked with BiTrack (``mode``), as the paper builds its Table 2.

**Greedy Auto Ensemble** (:func:`select_members`, then :func:`ensemble_models`): the members are
chosen by greedy forward selection on the ``tune`` split, then the chosen models' predictions of
the test split are fused. :func:`ensemble_models`: each member's split is predicted at every test
scale (per-frame ``.npz`` next to the checkpoint, like
:func:`visrc.experiments.runs.predict_cached`), the scales of one model are merged first
(:func:`visrc.ensemble.multiscale.merge_scales`: that model's multi-scale test), then the models with
GAE (:func:`visrc.ensemble.gae.ensemble_videos`: max score, score-weighted boxes). Two GAE levels
rather than one over models x scales, so every model weighs the same however many scales it ran at,
and the refinement calls each model once per frame. With ``refine=True`` the fused boxes (and their
classes) are fed back to every model at scale 1 as proposals
(:meth:`visrc.models.predictor.VideoPredictor.predict_boxes`); masks and embeddings are the models'
mean. The result is tracked with the first member's ``tracking`` (its thresholds, fixed in the
config beforehand) and evaluated on the split's GT.

Every result is written atomically and keyed by its inputs (checkpoint paths, scales, settings,
split); re-running a notebook reuses it unless ``force=True``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from visrc.experiments.slots import CHAIN, slot_priority
from visrc.paths import runs_dir

Member = tuple[str, "str | Path"]   # (config, checkpoint)

IOU_THR = 0.55                      # GAE's box-clustering IoU (and the multi-scale merge's)


@dataclass
class EnsembleResult:
    """The tracked ensemble of a split: ``videos`` (per-frame fused predictions), ``metrics`` (video
    AP/AR, ``{}`` without GT), ``out_dir`` (its cache folder), and what it was made from."""

    videos: list
    metrics: dict
    out_dir: Path
    members: list
    data_root: Path
    summary: dict
    split: str | None = None      # None: the members' test split


def _key(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def predict_scales_cached(config, checkpoint, data_root, scales: Sequence[float] = (1.0,), mode: str = "forward",
                          force: bool = False, split: str | None = None, foreign_root: bool = False) -> list[list]:
    """A split's per-frame predictions at every test scale -> ``[per scale: list of VideoPredictions]``,
    all in original-image pixels, each :func:`visrc.experiments.runs.predict_cached` once (scale 1 is the
    run shared with notebook 03; scale s is saved in ``<checkpoint dir>/predict_<mode>[_<split>]_scale<s>/``).
    ``split``, ``foreign_root``: see :func:`~visrc.experiments.runs.predict_cached` (None: the config's test
    split; a root the run did not train on, e.g. a longer valid split: folders named after it)."""
    from visrc.data.predictions import load_predictions
    from visrc.experiments.runs import predict_cached

    return [load_predictions(predict_cached(config, checkpoint, data_root, mode=mode, force=force, split=split,
                                            foreign_root=foreign_root, scale=s)["predictions"]) for s in scales]


def _proposal_fn(predictor, paths: dict):
    """A :data:`visrc.ensemble.proposals.ProposalFn` of one model: frame t of video v -> predict_boxes."""
    return lambda video_id, t, boxes, labels: predictor.predict_boxes(paths[video_id][t], boxes, labels)


def ensemble_models(members: Sequence[Member], data_root, scales: Sequence[float] = (1.0,), refine: bool = True,
                    iou_thr: float = IOU_THR, mode: str | None = None, tracking: dict | None = None,
                    force: bool = False, split: str | None = None, foreign_root: bool = False) -> EnsembleResult:
    """GAE of ``members`` (``(config, checkpoint)`` pairs) at ``scales`` on ``split`` (None: the configs'
    test split), tracked and evaluated (rules in the module docstring). One member with several scales
    is that model's multi-scale test; one member at one scale without ``refine`` is that model alone.
    ``foreign_root``: ``data_root`` is not the root the members trained on (their predictions are kept
    apart, :func:`predict_scales_cached`). Cached in ``runs/ensembles/<hash>/``, made once when notebooks
    ask for it at once (:func:`~visrc.experiments.runs.computed_once`)."""
    from visrc.data.predictions import load_predictions, save_predictions
    from visrc.ensemble.gae import ensemble_videos
    from visrc.ensemble.multiscale import merge_scales
    from visrc.evaluation.export import write_results
    from visrc.experiments.runs import computed_once
    from visrc.experiments.slots import compute_slot
    from visrc.models.config import config_classes, load_config
    from visrc.models.predictor import VideoPredictor
    from visrc.pipeline import config_tracking, load_split, track_and_evaluate

    members = [(str(c), Path(k)) for c, k in members]
    if not members:
        raise ValueError("ensemble_models: no members given")
    classes = {config_classes(load_config(c)) for c, _ in members}
    if len(classes) > 1:
        raise ValueError(f"ensemble_models: members predict different classes: {sorted(classes)}")
    root = Path(data_root)
    test_split = load_split(members[0][0], root, split)          # its GT is read only if computed
    img_root = test_split.img_root
    settings = dict(members=[(c, str(k.resolve())) for c, k in members], data=str(root.resolve()),
                    scales=[float(s) for s in scales], refine=refine, iou_thr=iou_thr, mode=mode, tracking=tracking)
    if split:                  # only then: the test split's ensembles keep their folders
        settings["split"] = split
    out_dir = runs_dir() / "ensembles" / f"ens{len(members)}-{_key(settings)}"
    made = {}

    def fuse_track_evaluate() -> dict:
        gt = test_split.gt
        per_model = []
        for config, ckpt in members:
            per_scale = predict_scales_cached(config, ckpt, root, scales, split=split, foreign_root=foreign_root)
            per_model.append(per_scale[0] if len(per_scale) == 1 else merge_scales(per_scale, iou_thr=iou_thr))
        fns = None
        with compute_slot():               # after the predictions' cache locks (see compute_slot)
            if refine:
                paths = {v["id"]: [str(img_root / f) for f in v["file_names"]] for v in gt["videos"]}
                fns = [_proposal_fn(VideoPredictor.from_files(c, k), paths) for c, k in members]
            fused = ensemble_videos(per_model, iou_thr=iou_thr, proposal_fns=fns) if (refine or len(members) > 1) \
                else per_model[0]
        default_tracking, default_mode = config_tracking(members[0][0])
        results, evaluation = track_and_evaluate(fused, gt, classes.pop(), tracking or default_tracking,
                                                 mode or default_mode)
        save_predictions(fused, out_dir / "predictions.npz")
        write_results(results, out_dir / "results.json", gt=gt)
        made["fused"] = fused
        return dict(settings, metrics=evaluation.get("metrics", {}), tracks=len(results), videos=len(fused),
                    detections=int(sum(len(f) for v in fused for f in v.frames)))

    summary = computed_once(out_dir / "summary.json", fuse_track_evaluate, force)
    fused = made["fused"] if "fused" in made else load_predictions(out_dir / "predictions.npz")
    return EnsembleResult(fused, summary["metrics"], out_dir, members, root, summary, split)


# ------------------------------------------------------------------------------ the Table 2 rows

# the paper's A (ResNeSt-101) and B (Swin-S), both the full model of Table 1's last row
TABLE2_MODELS = (("A", "toy_tcis_multitask_msd"), ("B", "toy_swin_tcis_multitask_msd"))


def select_members(members: dict, data_root, split: str = "tune", iou_thr: float = IOU_THR,
                   mode: str | None = "bitrack", max_models: int | None = None) -> tuple[list[str], list[float]]:
    """Greedy Auto Ensemble's model selection (paper 3.5.2) on ``split``: forward selection
    (:func:`visrc.ensemble.selection.greedy_select`) of the names of ``members`` (name ->
    ``(config, checkpoint)``) by the tracked ensemble's AP on ``split``, fusing boxes only (no
    refinement pass: the selection scores many subsets). Returns (chosen names, AP after each)."""
    from visrc.ensemble.selection import greedy_select

    def score(names):
        return ensemble_models([members[n] for n in names], data_root, refine=False, iou_thr=iou_thr,
                               mode=mode, split=split).metrics["AP"]

    return greedy_select(list(members), score, max_models=max_models)


@dataclass
class EnsembleTable:
    """Table 2 rows 1-3 of every seed: ``runs`` (``{"row", "seed", <metric>, ...}``), ``members``
    (``(name, seed) -> (config, checkpoint)``), ``ensembles`` (seed -> the tracked ensemble of the
    selected models on the test split), ``selected`` (seed -> (names, tune AP after each)) and the
    settings they were made with."""

    runs: list[dict]
    members: dict
    ensembles: dict
    selected: dict
    names: list
    data_root: Path
    seeds: list
    scales: list
    iou_thr: float
    refine: bool
    mode: str | None
    choice_split: str | None
    init: object                  # as given to ensemble_table ("pretrained", None or a checkpoint path)
    pretrain_epochs: int | None
    n_boot: int = 1000
    models: Sequence[tuple[str, str]] = TABLE2_MODELS    # (name, config) pairs, as resolved by ensemble_table


def ensemble_row(row: str, seed: int, ens: EnsembleResult, n_boot: int, **extra) -> dict:
    """One table row of a tracked ensemble (or single model): metrics and, with ``n_boot``, the
    bootstrap interval over videos."""
    from visrc.experiments.tables import metrics_row, row_interval
    from visrc.pipeline import load_split

    out = {"row": row, "seed": seed, **extra, **metrics_row(ens.metrics)}
    if n_boot:
        gt = load_split(ens.members[0][0], ens.data_root, ens.split).ann_file
        out.update(row_interval(gt, ens.out_dir / "results.json", n_boot))
    return out


@slot_priority(CHAIN)          # the ensemble and the pseudo-label networks wait for these models
def ensemble_table(data_root, models=None, seeds=(0,), train_epochs: int | None = None,
                   scales: Sequence[float] = (1.0,), iou_thr: float | None = None, refine: bool = True,
                   init="pretrained", pretrain_epochs: int | None = None, mode: str | None = "bitrack",
                   choice_split: str | None = "tune", n_boot: int = 1000) -> EnsembleTable:
    """Train (or reuse) every model and seed from ``init`` (:func:`visrc.experiments.pretrain.resolve_init`);
    rows: each model alone, then the Greedy Auto Ensemble of the models it selects on ``choice_split``
    (None: all models, no selection) at ``scales``, every row tracked with ``mode`` (the paper: BiTrack)
    and reported on the test split (notebook 04; notebook 05 calls it again and gets the same runs).
    ``models`` None: :data:`TABLE2_MODELS`; ``iou_thr`` None: :data:`IOU_THR`."""
    from visrc.experiments.pretrain import init_label, init_of
    from visrc.experiments.runs import train_many

    models = TABLE2_MODELS if models is None else models
    iou_thr = IOU_THR if iou_thr is None else iou_thr
    root = Path(data_root)
    names = [name for name, _ in models]
    inits = {config: init_of(config, root, init, pretrain_epochs) for _, config in models}
    settings = [(name, config, seed) for seed in seeds for name, config in models]
    checkpoints = train_many([dict(config=config, data_root=root, seed=seed, max_epochs=train_epochs,
                                   init=inits[config]) for name, config, seed in settings])
    members = {(name, seed): (config, ckpt) for (name, config, seed), ckpt in zip(settings, checkpoints)}
    runs = [ensemble_row(name, seed, ensemble_models([members[(name, seed)]], root, refine=False, iou_thr=iou_thr,
                                                     mode=mode), n_boot, init=init_label(init))
            for name, _, seed in settings]
    ensembles, selected = {}, {}
    for seed in seeds:
        pool = {n: members[(n, seed)] for n in names}
        selected[seed] = select_members(pool, root, choice_split, iou_thr, mode) if choice_split else (names, [])
        chosen = selected[seed][0]
        ensembles[seed] = ensemble_models([pool[n] for n in chosen], root, scales=scales, refine=refine,
                                          iou_thr=iou_thr, mode=mode)
        runs.append(ensemble_row(f"Ensemble ({', '.join(names)})", seed, ensembles[seed], n_boot,
                                 init=init_label(init), members=", ".join(chosen)))
    return EnsembleTable(runs, members, ensembles, selected, names, root, list(seeds), [float(s) for s in scales],
                         iou_thr, refine, mode, choice_split, init, pretrain_epochs, n_boot, models)


def multiscale_rows(table: EnsembleTable, scales: Sequence[float]) -> list[dict]:
    """Each model's multi-scale test and the ensemble of the selected models at ``scales`` (paper 3.5.5)."""
    runs = []
    for seed in table.seeds:
        for n in table.names:
            ms = ensemble_models([table.members[(n, seed)]], table.data_root, scales=scales, refine=False,
                                 iou_thr=table.iou_thr, mode=table.mode)
            runs.append(ensemble_row(f"{n} multi-scale", seed, ms, table.n_boot))
        chosen = table.selected[seed][0]
        ens = ensemble_models([table.members[(n, seed)] for n in chosen], table.data_root, scales=scales,
                              refine=table.refine, iou_thr=table.iou_thr, mode=table.mode)
        runs.append(ensemble_row(f"Ensemble ({', '.join(table.names)}) multi-scale", seed, ens, table.n_boot,
                                 members=", ".join(chosen)))
    return runs
