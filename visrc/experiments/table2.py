"""Table 2 (paper 3.5.2, 3.5.3, 3.5.5) as cached runs: multi-scale predictions, model ensembles,
pseudo labels and the retraining on them. Notebooks 04 and 05 call::

    t2 = ensemble_table(root, seeds=[0])               # rows A, B, Ensemble (A, B)
    runs = t2.runs + multiscale_rows(t2, scales=[0.75, 1.0, 1.25])
    pl = pseudo_label_table(t2, PseudoLabelConfig(with_masks=False))   # rows 4-6

and the building blocks below::

    ens = ensemble_models([("toy_baseline", ckpt_a), ("toy_swin", ckpt_b)], root, scales=(1.0,))
    ens.metrics["AP"]                                  # video AP of the tracked ensemble on valid
    merged_json, stats = pseudo_label_dataset(ens)
    ckpt_a_pl = retrain_with_pseudo("toy_baseline", ckpt_a, merged_json, root, seed=0)

**Ensemble** (:func:`ensemble_models`): each member's split is predicted at every test scale
(per-frame ``.npz`` next to the checkpoint, like :func:`visrc.experiments.runs.predict_cached`), the
scales of one model are merged first (:func:`visrc.ensemble.multiscale.merge_scales`: that model's
multi-scale test), then the models with GAE (:func:`visrc.ensemble.gae.ensemble_videos`: max
score, score-weighted boxes). Two GAE levels rather than one over models x scales, so every model
weighs the same however many scales it ran at, and the refinement calls each model once per frame.
With ``refine=True`` the fused boxes (and their classes) are fed back to every model at scale 1
as proposals (:meth:`visrc.models.predictor.VideoPredictor.predict_boxes`); masks and embeddings
are the models' mean. The result is tracked with the first member's ``tracking`` /
``tracking_mode`` and evaluated on the split's GT.

**Pseudo labels** (:func:`pseudo_label_dataset`): :func:`visrc.ensemble.pseudo_label.make_pseudo_labels`
on the ensemble's valid predictions, merged with the train split (:func:`merge_ytvis`). The
toy valid split has GT, so the pseudo boxes' precision at IoU 0.5 is reported too.

**Protocol**: training on pseudo-labelled *valid* and evaluating on valid is the paper's
transductive protocol (its valid labels are hidden; only its predictions feed back). Numbers after
pseudo labels are not comparable to a held-out evaluation.

Every result is written atomically and keyed by its inputs (checkpoint paths, scales, settings);
re-running a notebook reuses it unless ``force=True``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from visrc.data.boxes import box_iou
from visrc.fileio import atomic_write_json, read_json
from visrc.paths import runs_dir

Member = tuple[str, "str | Path"]   # (config, checkpoint)


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


def _key(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _scale_tag(scale: float) -> str:
    return f"{float(scale):g}".replace(".", "p")


def predict_scales_cached(config, checkpoint, data_root, scales: Sequence[float] = (1.0,), mode: str = "forward",
                          force: bool = False) -> list[list]:
    """The split's per-frame predictions at every test scale -> ``[per scale: list of VideoPredictions]``,
    all in original-image pixels. Scale 1 is :func:`visrc.experiments.runs.predict_cached`'s run (shared
    with notebook 03); scale s is saved in ``<checkpoint dir>/predict_<mode>_scale<s>/``."""
    from visrc.data.predictions import load_predictions
    from visrc.experiments.runs import compute_slot, predict_cached
    from visrc.pipeline import run_inference

    out = []
    for s in scales:
        if float(s) == 1.0:
            summary = predict_cached(config, checkpoint, data_root, mode=mode, force=force)
        else:
            out_dir = Path(checkpoint).parent / f"predict_{mode}_scale{_scale_tag(s)}"
            path = out_dir / "summary.json"
            if path.is_file() and not force:
                summary = read_json(path)
            else:
                with compute_slot():
                    summary = run_inference(config, checkpoint, data_root=data_root, out=out_dir / "results.json",
                                            mode=mode, log=None, scale=float(s))
                atomic_write_json(path, summary, indent=2)
        out.append(load_predictions(summary["predictions"]))
    return out


def _proposal_fn(predictor, paths: dict):
    """A :data:`visrc.ensemble.proposals.ProposalFn` of one model: frame t of video v -> predict_boxes."""
    return lambda video_id, t, boxes, labels: predictor.predict_boxes(paths[video_id][t], boxes, labels)


def ensemble_models(members: Sequence[Member], data_root, scales: Sequence[float] = (1.0,), refine: bool = True,
                    iou_thr: float = 0.55, mode: str | None = None, tracking: dict | None = None,
                    force: bool = False) -> EnsembleResult:
    """GAE of ``members`` (``(config, checkpoint)`` pairs) at ``scales`` on the configs' test split,
    tracked and evaluated (rules in the module docstring). One member with several scales is that
    model's multi-scale test. Cached in ``runs/ensembles/<hash>/``."""
    from visrc.data.predictions import load_predictions, save_predictions
    from visrc.data.ytvis import load_ytvis
    from visrc.ensemble.gae import ensemble_videos
    from visrc.ensemble.multiscale import merge_scales
    from visrc.evaluation.export import write_results
    from visrc.experiments.runs import compute_slot
    from visrc.models.config import config_classes, load_config
    from visrc.models.predictor import VideoPredictor
    from visrc.pipeline import config_tracking, split_paths, track_and_evaluate

    members = [(str(c), Path(k)) for c, k in members]
    if not members:
        raise ValueError("ensemble_models: no members given")
    classes = {config_classes(load_config(c)) for c, _ in members}
    if len(classes) > 1:
        raise ValueError(f"ensemble_models: members predict different classes: {sorted(classes)}")
    root = Path(data_root)
    ann_path, img_root = split_paths(members[0][0], root)
    settings = dict(members=[(c, str(k.resolve())) for c, k in members], data=str(root.resolve()),
                    scales=[float(s) for s in scales], refine=refine, iou_thr=iou_thr, mode=mode, tracking=tracking)
    out_dir = runs_dir() / "ensembles" / f"ens{len(members)}-{_key(settings)}"
    summary_path = out_dir / "summary.json"
    if summary_path.is_file() and not force:
        summary = read_json(summary_path)
        return EnsembleResult(load_predictions(out_dir / "predictions.npz"), summary["metrics"], out_dir,
                              members, root, summary)

    gt = load_ytvis(ann_path)
    per_model = []
    for config, ckpt in members:
        per_scale = predict_scales_cached(config, ckpt, root, scales)
        per_model.append(per_scale[0] if len(per_scale) == 1 else merge_scales(per_scale, iou_thr=iou_thr))
    fns = None
    with compute_slot():               # after the predictions' cache locks (see compute_slot)
        if refine:
            paths = {v["id"]: [str(img_root / f) for f in v["file_names"]] for v in gt["videos"]}
            fns = [_proposal_fn(VideoPredictor.from_files(c, k), paths) for c, k in members]
        fused = ensemble_videos(per_model, iou_thr=iou_thr, proposal_fns=fns) if (refine or len(members) > 1) \
            else per_model[0]
    default_tracking, default_mode = config_tracking(members[0][0])
    results, evaluation = track_and_evaluate(fused, gt, classes.pop(), tracking or default_tracking, mode or default_mode)
    metrics = evaluation.get("metrics", {})
    save_predictions(fused, out_dir / "predictions.npz")
    write_results(results, out_dir / "results.json", gt=gt)
    summary = dict(settings, metrics=metrics, tracks=len(results), videos=len(fused),
                   detections=int(sum(len(f) for v in fused for f in v.frames)))
    atomic_write_json(summary_path, summary, indent=2)
    return EnsembleResult(fused, metrics, out_dir, members, root, summary)


# ------------------------------------------------------------------------------ pseudo labels

def pseudo_box_precision(pseudo: dict, gt: dict, iou_thr: float = 0.5) -> dict:
    """Precision of pseudo boxes against GT boxes, per frame, one-to-one (greedy by track score):
    ``precision`` (same category), ``precision_agnostic`` (any category), ``gt_recall`` and counts."""
    def frames(data, scored):
        out = {}
        for a in data.get("annotations", []):
            for t, box in enumerate(a["bboxes"]):
                if box is not None:
                    out.setdefault((a["video_id"], t), []).append((a.get("score", 1.0) if scored else 1.0,
                                                                   a["category_id"], box))
        return out

    p_frames, g_frames = frames(pseudo, True), frames(gt, False)
    n_pred = sum(len(v) for v in p_frames.values())
    n_gt = sum(len(v) for v in g_frames.values())
    hits = {True: 0, False: 0}
    for key, preds in p_frames.items():
        gts = g_frames.get(key, [])
        preds = sorted(preds, key=lambda p: -p[0])
        iou = box_iou([p[2] for p in preds], [g[2] for g in gts], "xywh")
        for same_class in (True, False):
            used = np.zeros(len(gts), bool)
            for i, p in enumerate(preds):
                ok = (iou[i] >= iou_thr) & ~used if len(gts) else np.zeros(0, bool)
                if same_class:
                    ok &= np.array([g[1] == p[1] for g in gts], bool)
                if ok.any():
                    used[np.flatnonzero(ok)[np.argmax(iou[i][ok])]] = True
                    hits[same_class] += 1
    return dict(boxes=n_pred, gt_boxes=n_gt, iou_thr=iou_thr, true_positives=hits[True],
                precision=hits[True] / n_pred if n_pred else float("nan"),
                precision_agnostic=hits[False] / n_pred if n_pred else float("nan"),
                gt_recall=hits[True] / n_gt if n_gt else float("nan"))


def pseudo_label_dataset(ensemble: EnsembleResult, config=None, force: bool = False) -> tuple[Path, dict]:
    """Pseudo labels from an ensemble's test-split predictions, merged with the train split.

    ``config``: a :class:`visrc.ensemble.pseudo_label.PseudoLabelConfig`; default: its defaults
    with ``with_masks=False`` (segmentation = the filled box). Pseudo masks never supervise
    (``weak_mask``), and mmdet's loader drops an instance whose area is 0, which an empty
    ensemble mask would give: the box keeps every pseudo box in training.
    Writes ``valid_pseudo.json``, ``train_plus_pseudo.json`` (images under the data root:
    ``data_prefix=dict(img_path='')``) and ``stats.json`` into ``<ensemble dir>/pseudo-<hash>/``.
    Returns (merged file, stats: tracks / boxes kept, detections in, precision at IoU 0.5 vs GT).
    """
    from visrc.data.ytvis import load_ytvis, write_ytvis
    from visrc.ensemble.pseudo_label import PseudoLabelConfig, make_pseudo_labels, merge_ytvis, write_pseudo_labels
    from visrc.models.config import config_classes, load_config
    from visrc.pipeline import match_categories, split_paths

    cfg_pl = config or PseudoLabelConfig(with_masks=False)
    out_dir = ensemble.out_dir / f"pseudo-{_key(asdict(cfg_pl))}"
    merged_path, stats_path = out_dir / "train_plus_pseudo.json", out_dir / "stats.json"
    if stats_path.is_file() and merged_path.is_file() and not force:
        return merged_path, read_json(stats_path)
    model_cfg = load_config(ensemble.members[0][0])
    ann_path, img_root = split_paths(model_cfg, ensemble.data_root)
    train_ds = model_cfg.train_dataloader.dataset
    if "ann_file" not in train_ds:
        raise ValueError(f"{ensemble.members[0][0]}: train_dataloader.dataset has no ann_file "
                         "(a ConcatDataset config): pseudo labels merge into a single video dataset")
    train_path = ensemble.data_root / train_ds.ann_file
    split = load_ytvis(ann_path)
    l2c = match_categories(config_classes(model_cfg), split, ann_path)
    pseudo = make_pseudo_labels(split, ensemble.videos, l2c, cfg_pl, source=str(ann_path))
    write_pseudo_labels(pseudo, out_dir / "valid_pseudo.json")
    prefixes = (train_ds.data_prefix.get("img_path", ""), str(img_root.relative_to(ensemble.data_root)))
    write_ytvis(merge_ytvis(load_ytvis(train_path), pseudo, prefixes=prefixes), merged_path)
    precision = pseudo_box_precision(pseudo, split)
    stats = dict(tracks_kept=len(pseudo["annotations"]), boxes_kept=precision.pop("boxes"),
                 boxes_in=int(sum(len(f) for v in ensemble.videos for f in v.frames)),
                 boxes_in_above_thr=int(sum(int((f.scores >= cfg_pl.score_thr).sum())
                                            for v in ensemble.videos for f in v.frames)),
                 **precision, settings=asdict(cfg_pl), pseudo_json=str(out_dir / "valid_pseudo.json"))
    atomic_write_json(stats_path, stats, indent=2)
    return merged_path, stats


def finetune_options(checkpoint, lr: float | None = None) -> dict:
    """``cfg_options`` that fine-tune a config from ``checkpoint`` on its own train set: the
    control run of the pseudo-label rows (same epochs and LR, no pseudo labels), which tells
    the pseudo labels' gain apart from the extra training."""
    opts = {"load_from": str(Path(checkpoint).resolve())}
    if lr is not None:
        opts["optim_wrapper.optimizer.lr"] = float(lr)
    return opts


def pseudo_label_options(config, checkpoint, merged_json, lr: float | None = None) -> dict:
    """``cfg_options`` that fine-tune ``config`` from ``checkpoint`` on ``merged_json``, with the
    pseudo annotations' ``weak_mask`` honoured: weak flags loaded and packed
    (``LoadMSDAnnotations`` / ``PackMSDInputs``) and the mask loss skipping them
    (``WeakMaskFCNMaskHead``), so pseudo boxes train detection and tracking only. ``lr``: the
    fine-tune's learning rate (default: the config's)."""
    from visrc.models.config import load_config

    cfg = load_config(config)
    ds = cfg.train_dataloader.dataset
    if "ann_file" not in ds:
        raise ValueError(f"{config}: train_dataloader.dataset has no ann_file (a ConcatDataset config)")
    swap = {"LoadTrackAnnotations": "LoadMSDAnnotations", "PackTrackInputs": "PackMSDInputs"}

    def visit(t):
        t = {k: ([visit(x) for x in v] if k == "transforms" else v) for k, v in dict(t).items()}
        return dict(t, type=swap.get(t.get("type"), t.get("type")))

    pipeline = [visit(t.to_dict() if hasattr(t, "to_dict") else dict(t)) for t in ds.pipeline]
    opts = {"train_dataloader.dataset.ann_file": str(Path(merged_json).resolve()),
            "train_dataloader.dataset.data_prefix": {"img_path": ""},
            "train_dataloader.dataset.pipeline": pipeline,
            **finetune_options(checkpoint, lr)}
    if cfg.model.detector.roi_head.mask_head.type == "FCNMaskHead":
        opts["model.detector.roi_head.mask_head.type"] = "WeakMaskFCNMaskHead"
    return opts


def retrain_with_pseudo(config, checkpoint, merged_json, data_root, seed: int = 0, epochs: int | None = None,
                        lr: float | None = None, force: bool = False) -> Path:
    """Train ``config`` on train + pseudo-labelled valid (``merged_json`` from :func:`pseudo_label_dataset`)
    through :func:`visrc.experiments.runs.train_cached`; returns the final checkpoint.

    A *fine-tune from the model's own weights* (``load_from=checkpoint``, the config's schedule or
    ``epochs``), not the paper's retraining from scratch: a CPU compromise. Pseudo annotations only
    supervise detection and tracking (:func:`pseudo_label_options`).
    """
    from visrc.experiments.runs import train_cached

    return train_cached(config, data_root, seed=seed, max_epochs=epochs,
                        cfg_options=pseudo_label_options(config, checkpoint, merged_json, lr), force=force)


def retrain_jobs(members: Sequence[Member], merged_json, data_root, seed: int = 0, epochs: int | None = None,
                 lr: float | None = None) -> list:
    """The :func:`retrain_with_pseudo` runs of several members as :func:`visrc.experiments.runs.train_many` jobs.
    ``merged_json=None``: the control instead, the same fine-tune on each config's own train set
    (:func:`finetune_options`)."""
    return [dict(config=c, data_root=data_root, seed=seed, max_epochs=epochs,
                 cfg_options=(finetune_options(k, lr) if merged_json is None
                              else pseudo_label_options(c, k, merged_json, lr))) for c, k in members]


# ------------------------------------------------------------------------------ the Table 2 rows

TABLE2_MODELS = (("A", "toy_baseline"), ("B", "toy_swin"))


@dataclass
class EnsembleTable:
    """Table 2 rows 1-3 of every seed: ``runs`` (``{"row", "seed", <metric>}``), ``members``
    (``(name, seed) -> (config, checkpoint)``), ``ensembles`` (seed -> the tracked ensemble of all
    models) and the settings they were made with."""

    runs: list[dict]
    members: dict
    ensembles: dict
    names: list
    data_root: Path
    seeds: list
    scales: list
    iou_thr: float
    refine: bool


def ensemble_table(data_root, models=TABLE2_MODELS, seeds=(0,), train_epochs: int | None = None,
                   scales: Sequence[float] = (1.0,), iou_thr: float = 0.55, refine: bool = True) -> EnsembleTable:
    """Train (or reuse) every model and seed; rows: each model alone, then their ensemble at ``scales``
    (notebook 04; notebook 05 calls it again and gets the same cached runs)."""
    from visrc.experiments.runs import predict_cached, train_many
    from visrc.experiments.tables import metrics_row

    root = Path(data_root)
    settings = [(name, config, seed) for seed in seeds for name, config in models]
    checkpoints = train_many([dict(config=config, data_root=root, seed=seed, max_epochs=train_epochs)
                              for name, config, seed in settings])
    members = {(name, seed): (config, ckpt) for (name, config, seed), ckpt in zip(settings, checkpoints)}
    names = [name for name, _ in models]
    runs = [{"row": name, "seed": seed, **metrics_row(predict_cached(config, ckpt, root)["metrics"])}
            for (name, config, seed), ckpt in zip(settings, checkpoints)]
    ensembles = {}
    for seed in seeds:
        ensembles[seed] = ensemble_models([members[(n, seed)] for n in names], root, scales=scales, refine=refine,
                                          iou_thr=iou_thr)
        runs.append({"row": f"Ensemble ({', '.join(names)})", "seed": seed, **metrics_row(ensembles[seed].metrics)})
    return EnsembleTable(runs, members, ensembles, names, root, list(seeds), [float(s) for s in scales], iou_thr, refine)


def multiscale_rows(table: EnsembleTable, scales: Sequence[float]) -> list[dict]:
    """Each model's multi-scale test and the ensemble of all models at ``scales`` (paper 3.5.5)."""
    from visrc.experiments.tables import metrics_row

    runs = []
    for seed in table.seeds:
        for n in table.names:
            ms = ensemble_models([table.members[(n, seed)]], table.data_root, scales=scales, refine=False,
                                 iou_thr=table.iou_thr)
            runs.append({"row": f"{n} multi-scale", "seed": seed, **metrics_row(ms.metrics)})
        ens = ensemble_models([table.members[(n, seed)] for n in table.names], table.data_root, scales=scales,
                              refine=table.refine, iou_thr=table.iou_thr)
        runs.append({"row": f"Ensemble ({', '.join(table.names)}) multi-scale", "seed": seed, **metrics_row(ens.metrics)})
    return runs


@dataclass
class PseudoLabelTable:
    """Table 2 rows 1-6: ``runs`` (rows 1-3 of the :class:`EnsembleTable`, the control fine-tunes,
    the pseudo-label models, the final ensemble) and ``pseudo_stats`` (per seed: boxes kept, precision)."""

    runs: list[dict]
    pseudo_stats: list[dict]


def pseudo_label_table(table: EnsembleTable, pseudo_config=None, retrain_epochs: int | None = 1,
                       retrain_lr: float | None = None, control: bool = True) -> PseudoLabelTable:
    """Pseudo labels from each seed's ensemble (:func:`pseudo_label_dataset`), every model fine-tuned on
    train + pseudo-labelled valid (and, with ``control``, on train alone), then the ensemble of all."""
    from visrc.experiments.runs import predict_cached, train_many
    from visrc.experiments.tables import metrics_row

    root, names, members = table.data_root, table.names, dict(table.members)
    runs, pseudo_stats, merged = list(table.runs), [], {}
    for seed in table.seeds:
        merged[seed], stats = pseudo_label_dataset(table.ensembles[seed], pseudo_config)
        pseudo_stats.append({"seed": seed, **{k: v for k, v in stats.items() if k != "settings"}})
    jobs = {(kind, seed): retrain_jobs([members[(n, seed)] for n in names], merged[seed] if kind == "pseudo" else None,
                                       root, seed, retrain_epochs, retrain_lr)
            for kind in (("pseudo", "control") if control else ("pseudo",)) for seed in table.seeds}
    flat = [(kind, seed, n, job) for (kind, seed), js in jobs.items() for n, job in zip(names, js)]
    checkpoints = train_many([job for *_, job in flat])
    for kind in ("control", "pseudo"):
        for (k, seed, n, job), ckpt in zip(flat, checkpoints):
            if k != kind:
                continue
            row = f"{n} + fine-tune, no pseudo (control)" if kind == "control" else f"{n} + pseudo"
            runs.append({"row": row, "seed": seed, **metrics_row(predict_cached(job["config"], ckpt, root)["metrics"])})
            if kind == "pseudo":
                members[(n + "+P", seed)] = (job["config"], ckpt)
    for seed in table.seeds:
        all_names = names + [n + "+P" for n in names]
        final = ensemble_models([members[(n, seed)] for n in all_names], root, scales=table.scales,
                                refine=table.refine, iou_thr=table.iou_thr)
        runs.append({"row": f"Ensemble ({', '.join(all_names)})", "seed": seed, **metrics_row(final.metrics)})
    return PseudoLabelTable(runs, pseudo_stats)
