"""Table 2's pseudo-label stage (paper 3.5.3) as cached runs: pseudo labels from an ensemble's
predictions, the networks trained on them, and the final ensemble.

::

    t2 = ensemble_table(root, seeds=[0])                       # rows A, B, Ensemble (A, B)
    pl = pseudo_label_table(t2)                                # rows A + pseudo, B + pseudo, final ensemble

**Pseudo labels** (:func:`pseudo_label_dataset`): :func:`visrc.ensemble.pseudo_label.make_pseudo_labels`
on the ensemble's test-split predictions: its tracked detections, boxes only ("only detection": the
segmentation is the filled box and never supervises a mask, ``weak_mask``), each with the track id
the tracker gave it, which trains the track head as the videos' ids do (the tracker linked those
boxes; a still-image pseudo reference would discard that). Their score threshold and minimum track
length are chosen on the ``tune`` split (:func:`choose_pseudo_config`: the F1 of the pseudo boxes
against tune GT), never on the split they label. The toy test split has GT, so the pseudo boxes'
precision is reported too.

**New networks** (``retrain="new"``, the paper's "combine the trainset and the pseudo-label
(only detection) valset to train new networks"): each model's config trained again from its
pretrained init on train + pseudo-labelled valid for its full schedule. A Multi-Source Data config
keeps its still-image sources; the pseudo-labelled videos join its video source, whose share of
each epoch is unchanged, so the new network gets the same iterations as the model itself, which is
the control. ``retrain="finetune"``: a fine-tune of each model from its own weights instead.

**Protocol**: training on pseudo-labelled *valid* and evaluating on valid is the paper's
transductive protocol (its valid labels are hidden; only its predictions feed back). Numbers after
pseudo labels are not comparable to a held-out evaluation.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from visrc.data.boxes import box_iou
from visrc.experiments.table2 import EnsembleResult, EnsembleTable, Member, _key, ensemble_models, ensemble_row, \
    select_members
from visrc.experiments.slots import CHAIN, slot_priority
from visrc.fileio import atomic_write_json, read_json

# pseudo-label settings the tune split chooses from (score threshold x minimum track length)
PSEUDO_SCORE_GRID = (0.3, 0.5, 0.7)
PSEUDO_TRACK_LEN_GRID = (1, 3, 5)


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


def video_dataset(cfg):
    """The YouTube-VIS video dataset node of a config's ``train_dataloader.dataset``: the dataset itself,
    or the first ``YTVISRawDataset`` of a ``ConcatDataset`` (Multi-Source Data) and its index there."""
    ds = cfg.train_dataloader.dataset
    if "ann_file" in ds:
        return ds, None
    for i, d in enumerate(ds.get("datasets") or []):
        if d.get("type") == "YTVISRawDataset":
            return d, i
    raise ValueError(f"{cfg.filename}: train_dataloader.dataset has no YouTube-VIS video dataset to add pseudo labels to")


def make_split_pseudo_labels(ensemble: EnsembleResult, config) -> tuple[dict, dict]:
    """Pseudo labels of an ensemble's split (``config``: a :class:`~visrc.ensemble.pseudo_label.PseudoLabelConfig`)
    and their box precision / recall against the split's GT (empty when it has none)."""
    from visrc.ensemble.pseudo_label import make_pseudo_labels
    from visrc.models.config import config_classes, load_config
    from visrc.pipeline import load_split, match_categories

    model_cfg = load_config(ensemble.members[0][0])
    named = load_split(model_cfg, ensemble.data_root, ensemble.split)
    ann_path, split = named.ann_file, named.gt
    l2c = match_categories(config_classes(model_cfg), split, ann_path)
    pseudo = make_pseudo_labels(split, ensemble.videos, l2c, config, source=str(ann_path))
    return pseudo, (pseudo_box_precision(pseudo, split) if split.get("annotations") else {})


def choose_pseudo_config(ensemble: EnsembleResult, base=None, score_grid=PSEUDO_SCORE_GRID,
                         track_len_grid=PSEUDO_TRACK_LEN_GRID) -> tuple[object, list[dict]]:
    """The pseudo-label score threshold and minimum track length with the best F1 of the pseudo boxes
    (IoU 0.5, same class) against the GT of ``ensemble``'s split (the tune split; ties: the earlier
    grid point). Returns (``base`` with the chosen values, one row per grid point)."""
    from visrc.ensemble.pseudo_label import PseudoLabelConfig

    base = base or PseudoLabelConfig(with_masks=False)
    rows = []
    for score, length in itertools.product(score_grid, track_len_grid):
        _, p = make_split_pseudo_labels(ensemble, replace(base, score_thr=float(score), min_track_len=int(length)))
        if not p:
            raise ValueError(f"choose_pseudo_config: split {ensemble.split!r} has no GT to choose on")
        prec, rec = np.nan_to_num(p["precision"]), np.nan_to_num(p["gt_recall"])
        rows.append(dict(score_thr=float(score), min_track_len=int(length), boxes=p["boxes"], precision=p["precision"],
                         gt_recall=p["gt_recall"], f1=float(2 * prec * rec / (prec + rec)) if prec + rec else 0.0))
    best = max(range(len(rows)), key=lambda i: rows[i]["f1"])
    return replace(base, score_thr=rows[best]["score_thr"], min_track_len=rows[best]["min_track_len"]), rows


def pseudo_label_dataset(ensemble: EnsembleResult, config=None, force: bool = False) -> tuple[Path, dict]:
    """Pseudo labels from an ensemble's split predictions, merged with the members' train split.

    ``config``: a :class:`visrc.ensemble.pseudo_label.PseudoLabelConfig`; default: its defaults
    with ``with_masks=False`` (segmentation = the filled box). Pseudo masks never supervise
    (``weak_mask``), and mmdet's loader drops an instance whose area is 0, which an empty
    ensemble mask would give: the box keeps every pseudo box in training.
    Writes ``valid_pseudo.json``, ``train_plus_pseudo.json`` (images under the data root:
    ``data_prefix=dict(img_path='')``; the split's videos without any pseudo label left out) and
    ``stats.json`` into ``<ensemble dir>/pseudo-<hash>/``.
    Returns (merged file, stats: tracks / boxes kept, detections in, precision at IoU 0.5 vs GT).
    """
    from visrc.data.ytvis import load_ytvis, write_ytvis
    from visrc.ensemble.pseudo_label import PseudoLabelConfig, merge_ytvis, write_pseudo_labels
    from visrc.models.config import load_config
    from visrc.pipeline import load_split

    cfg_pl = config or PseudoLabelConfig(with_masks=False)
    out_dir = ensemble.out_dir / f"pseudo-{_key(asdict(cfg_pl))}"
    merged_path, stats_path = out_dir / "train_plus_pseudo.json", out_dir / "stats.json"
    if stats_path.is_file() and merged_path.is_file() and not force:
        return merged_path, read_json(stats_path)
    model_cfg = load_config(ensemble.members[0][0])
    img_root = load_split(model_cfg, ensemble.data_root, ensemble.split).img_root
    train_ds, _ = video_dataset(model_cfg)
    pseudo, precision = make_split_pseudo_labels(ensemble, cfg_pl)
    write_pseudo_labels(pseudo, out_dir / "valid_pseudo.json")
    prefixes = (train_ds.data_prefix.get("img_path", ""), str(img_root.relative_to(ensemble.data_root)))
    labelled = {a["video_id"] for a in pseudo["annotations"]}
    # a video without any pseudo label teaches nothing but "background" (and a video sampler that
    # draws whole videos would draw one without a frame to train on): left out of the merge
    kept = dict(pseudo, videos=[v for v in pseudo["videos"] if v["id"] in labelled])
    write_ytvis(merge_ytvis(load_ytvis(ensemble.data_root / train_ds.ann_file), kept, prefixes=prefixes),
                merged_path)
    precision = dict(precision)
    stats = dict(tracks_kept=len(pseudo["annotations"]), boxes_kept=precision.pop("boxes", None),
                 videos_labelled=len(kept["videos"]), videos=len(pseudo["videos"]),
                 boxes_in=int(sum(len(f) for v in ensemble.videos for f in v.frames)),
                 boxes_in_above_thr=int(sum(int((f.scores >= cfg_pl.score_thr).sum())
                                            for v in ensemble.videos for f in v.frames)),
                 **precision, settings=asdict(cfg_pl), pseudo_json=str(out_dir / "valid_pseudo.json"))
    atomic_write_json(stats_path, stats, indent=2)
    return merged_path, stats


def finetune_options(checkpoint, lr: float | None = None) -> dict:
    """``cfg_options`` that fine-tune a config from ``checkpoint`` (``load_from``; ``lr``: its learning
    rate, default the config's): the ``retrain="finetune"`` variant."""
    opts = {"load_from": str(Path(checkpoint).resolve())}
    if lr is not None:
        opts["optim_wrapper.optimizer.lr"] = float(lr)
    return opts


def pseudo_data_options(config, merged_json, data_root=None) -> dict:
    """``cfg_options`` that train ``config`` on ``merged_json`` (train + pseudo labels) in place of its
    video train split, with the pseudo annotations' ``weak_mask`` honoured: weak flags loaded and
    packed (``LoadMSDAnnotations`` / ``PackMSDInputs``) and the mask loss skipping them
    (``WeakMaskFCNMaskHead``), so pseudo boxes train detection and tracking only. A Multi-Source
    Data config (``ConcatDataset``) keeps its still-image sources and already has all three; with
    ``data_root`` its epoch keeps the length it has on ``data_root``'s train split (same
    iterations as the model itself, the control), else it grows with the pseudo-labelled frames."""
    from visrc.experiments.table1 import msd_epoch_options, msd_union_length
    from visrc.models.config import load_config

    cfg = load_config(config)
    ds, index = video_dataset(cfg)
    swap = {"LoadTrackAnnotations": "LoadMSDAnnotations", "PackTrackInputs": "PackMSDInputs"}

    def visit(t):
        t = {k: ([visit(x) for x in v] if k == "transforms" else v) for k, v in dict(t).items()}
        return dict(t, type=swap.get(t.get("type"), t.get("type")))

    plain = lambda node: node.to_dict() if hasattr(node, "to_dict") else dict(node)   # noqa: E731
    new = dict(plain(ds), ann_file=str(Path(merged_json).resolve()), data_prefix={"img_path": ""},
               pipeline=[visit(plain(t)) for t in ds.pipeline])
    if index is None:
        opts = {f"train_dataloader.dataset.{k}": new[k] for k in ("ann_file", "data_prefix", "pipeline")}
    else:
        datasets = [plain(d) for d in cfg.train_dataloader.dataset.datasets]
        datasets[index] = new
        opts = {"train_dataloader.dataset.datasets": datasets}
        if data_root is not None and cfg.train_dataloader.sampler.get("anchor_source") is not None:
            # the model's own epoch length: the pseudo-labelled videos take part of the videos' share
            opts.update(msd_epoch_options(config, msd_union_length(config, data_root)))
    if cfg.model.detector.roi_head.mask_head.type == "FCNMaskHead":
        opts["model.detector.roi_head.mask_head.type"] = "WeakMaskFCNMaskHead"
    return opts


def pseudo_label_options(config, checkpoint, merged_json, lr: float | None = None) -> dict:
    """:func:`pseudo_data_options` plus :func:`finetune_options`: fine-tune ``config`` from ``checkpoint``
    on train + pseudo labels."""
    return {**pseudo_data_options(config, merged_json), **finetune_options(checkpoint, lr)}


def retrain_jobs(members: Sequence[Member], merged_json, data_root, seed: int = 0, epochs: int | None = None,
                 lr: float | None = None, retrain: str = "finetune", inits: dict | None = None) -> list:
    """:func:`visrc.experiments.runs.train_many` jobs that train each member on train + pseudo labels
    (``merged_json`` from :func:`pseudo_label_dataset`): ``retrain="new"`` a new network from
    ``inits[config]`` (its pretrained init: a checkpoint, or a function that returns one as
    :func:`visrc.experiments.pretrain.init_of` does; None: random) for ``epochs`` (None: the full schedule),
    ``"finetune"`` from the member's own weights (``lr``). ``merged_json=None`` (fine-tune only): the
    control, the same fine-tune on each config's own train set."""
    if retrain not in ("new", "finetune"):
        raise ValueError(f"retrain must be 'new' or 'finetune', got {retrain!r}")
    if retrain == "new":
        if merged_json is None:
            raise ValueError("retrain='new' has no control run: the control is the model itself")
        return [dict(config=c, data_root=data_root, seed=seed, max_epochs=epochs, init=(inits or {}).get(c),
                     cfg_options=pseudo_data_options(c, merged_json, data_root)) for c, _ in members]
    return [dict(config=c, data_root=data_root, seed=seed, max_epochs=epochs,
                 cfg_options=(finetune_options(k, lr) if merged_json is None
                              else pseudo_label_options(c, k, merged_json, lr))) for c, k in members]


def table2_comparisons(names: Sequence[str]) -> list[tuple[str, str]]:
    """``(row, reference)`` pairs in the paper's reading of Table 2 for the models ``names`` (e.g. A, B):
    each further model and the ensemble against the first model, each model on pseudo labels against
    itself (its control), and the final ensemble against the first ensemble; the row names are
    :func:`pseudo_label_table`'s."""
    first, ensemble = names[0], f"Ensemble ({', '.join(names)})"
    final = f"Ensemble ({', '.join([*names, *(n + '+P' for n in names)])})"
    return ([(n, first) for n in names[1:]] + [(ensemble, first)] + [(f"{n} + pseudo", n) for n in names]
            + [(final, ensemble)])


@dataclass
class PseudoLabelTable:
    """Table 2 rows 1-6: ``runs`` (rows 1-3 of the :class:`EnsembleTable`, the retrained models, the
    final ensemble, and the fine-tune controls when asked), ``pseudo_stats`` (per seed: boxes kept,
    precision, the settings chosen on tune) and ``pseudo_choice`` (per seed: the tune grid)."""

    runs: list[dict]
    pseudo_stats: list[dict]
    pseudo_choice: list[dict]


@slot_priority(CHAIN)          # the longest trainings of the main job, started last: ahead of the queue
def pseudo_label_table(table: EnsembleTable, pseudo_config=None, retrain: str = "new",
                       retrain_epochs: int | None = None, retrain_lr: float | None = None,
                       control: bool = False, choose_on_tune: bool = True, score_grid=None,
                       track_len_grid=None) -> PseudoLabelTable:
    """Pseudo labels from each seed's ensemble (score threshold and minimum track length chosen from
    ``score_grid`` x ``track_len_grid``, None: :data:`PSEUDO_SCORE_GRID` x :data:`PSEUDO_TRACK_LEN_GRID`,
    on the table's ``choice_split`` by :func:`choose_pseudo_config`,
    unless ``choose_on_tune=False``: ``pseudo_config`` as given), every model retrained on train + pseudo-labelled valid
    (:func:`retrain_jobs`; with ``retrain="finetune"`` and ``control``, also on train alone), then the
    Greedy Auto Ensemble of all models selected on ``choice_split``."""
    from visrc.experiments.pretrain import init_of
    from visrc.experiments.runs import train_many

    score_grid = PSEUDO_SCORE_GRID if score_grid is None else score_grid
    track_len_grid = PSEUDO_TRACK_LEN_GRID if track_len_grid is None else track_len_grid
    root, names, members = table.data_root, table.names, dict(table.members)
    runs, pseudo_stats, choice, merged = list(table.runs), [], [], {}
    # the new networks start where the models did (the same cached pretraining)
    inits = {c: init_of(c, root, table.init, table.pretrain_epochs) for c in {members[(n, table.seeds[0])][0]
                                                                             for n in names}} \
        if retrain == "new" else {}
    for seed in table.seeds:
        cfg_pl = pseudo_config
        if choose_on_tune and table.choice_split:
            chosen = [members[(n, seed)] for n in table.selected[seed][0]]
            on_tune = ensemble_models(chosen, root, scales=table.scales, refine=table.refine, iou_thr=table.iou_thr,
                                      mode=table.mode, split=table.choice_split)
            cfg_pl, grid = choose_pseudo_config(on_tune, pseudo_config, score_grid, track_len_grid)
            choice += [{"seed": seed, "split": table.choice_split, **g} for g in grid]
        merged[seed], stats = pseudo_label_dataset(table.ensembles[seed], cfg_pl)
        pseudo_stats.append({"seed": seed, "score_thr": stats["settings"]["score_thr"],
                             "min_track_len": stats["settings"]["min_track_len"],
                             "chosen_on": table.choice_split if choose_on_tune else "given",
                             **{k: v for k, v in stats.items() if k != "settings"}})
    kinds = ("pseudo", "control") if control and retrain == "finetune" else ("pseudo",)
    flat = [(kind, seed, n, job) for kind in kinds for seed in table.seeds
            for n, job in zip(names, retrain_jobs([members[(n, seed)] for n in names],
                                                  merged[seed] if kind == "pseudo" else None, root, seed,
                                                  retrain_epochs, retrain_lr, retrain, inits))]
    checkpoints = train_many([job for *_, job in flat])
    for (kind, seed, n, job), ckpt in zip(flat, checkpoints):
        row = f"{n} + fine-tune, no pseudo (control)" if kind == "control" else f"{n} + pseudo"
        single = ensemble_models([(job["config"], ckpt)], root, refine=False, iou_thr=table.iou_thr, mode=table.mode)
        runs.append(ensemble_row(row, seed, single, table.n_boot, retrain=retrain))
        if kind == "pseudo":
            members[(n + "+P", seed)] = (job["config"], ckpt)
    all_names = names + [n + "+P" for n in names]
    for seed in table.seeds:
        pool = {n: members[(n, seed)] for n in all_names}
        chosen = select_members(pool, root, table.choice_split, table.iou_thr, table.mode)[0] \
            if table.choice_split else all_names
        final = ensemble_models([pool[n] for n in chosen], root, scales=table.scales, refine=table.refine,
                                iou_thr=table.iou_thr, mode=table.mode)
        runs.append(ensemble_row(f"Ensemble ({', '.join(all_names)})", seed, final, table.n_boot,
                                 members=", ".join(chosen)))
    return PseudoLabelTable(runs, pseudo_stats, choice)
