"""The one pipeline every caller uses: predict a split -> track it -> YouTube-VIS results -> evaluate.

::

    summary = run_inference("toy_baseline", ckpt, data_root=root, out=out_dir / "results.json")
    results, evaluation = track_and_evaluate(videos, gt, classes, tracking, mode="bitrack")
    evaluation["metrics"]["AP"]

``visrc infer``, the run cache (:mod:`visrc.experiments.runs`), the ensembles of Table 2 and the
notebooks all go through these functions; a split's per-frame predictions are saved once
(``.npz``) so any tracker setting can re-use them without the model.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

from visrc.data.categories import label_to_category, unmatched_classes

DEFAULT_TEST_SPLIT = dict(ann_file="valid/instances.json", img_prefix="valid/JPEGImages")


def split_paths(config, data_root=None, ann_file: str | None = None,
                img_prefix: str | None = None) -> tuple[Path, Path]:
    """(annotation file, frames folder) of the config's ``test_split`` under ``data_root`` (default:
    the config's ``data_root``); ``ann_file`` / ``img_prefix`` override the split's."""
    from visrc.models.config import load_config

    cfg = load_config(config)
    split = {**DEFAULT_TEST_SPLIT, **(cfg.get("test_split") or {})}
    root = Path(data_root if data_root is not None else cfg.get("data_root", "."))
    return root / (ann_file or split["ann_file"]), root / (img_prefix or split["img_prefix"])


def predict_split(predictor, data: dict, img_root: str | os.PathLike,
                  log: Callable[[str], None] | None = print) -> list:
    """Per-frame predictions (:class:`visrc.data.predictions.VideoPredictions`) of every video of a
    raw YouTube-VIS dict (``file_names`` relative to ``img_root``), by a
    :class:`visrc.models.predictor.VideoPredictor`."""
    out = []
    t0 = time.time()
    n_frames = 0
    for i, video in enumerate(data["videos"]):
        paths = [os.path.join(img_root, f) for f in video["file_names"]]
        out.append(predictor.predict_video(paths, video["id"], video["height"], video["width"]))
        n_frames += len(paths)
        if log and (i + 1) % 10 == 0:
            log(f"[infer] {i + 1}/{len(data['videos'])} videos, {n_frames / (time.time() - t0):.2f} frames/s")
    return out


def config_tracking(config):
    """(:class:`visrc.tracking.BiTrackConfig`, mode) a config asks for: its ``tracking`` dict and
    ``tracking_mode`` ("forward" when unset)."""
    from visrc.models.config import load_config
    from visrc.tracking import build_bitrack_config

    cfg = load_config(config)
    return build_bitrack_config(cfg.get("tracking")), cfg.get("tracking_mode", "forward")


def match_categories(classes, gt: dict, source: str | os.PathLike | None = None,
                     class_map: dict | None = None) -> dict[int, int]:
    """:func:`visrc.data.categories.label_to_category` of the model's ``classes`` against ``gt``'s
    categories, checked: ``ValueError`` (naming ``source``, the annotation file) when no class
    matches, one warning line on stderr listing the classes that match none (their tracks are
    dropped). ``class_map``: config class name -> category name, applied first."""
    mapping = label_to_category(classes, gt.get("categories", []), class_map)
    where = source if source is not None else "the annotation file"
    if not mapping:
        names = ", ".join(c["name"] for c in gt.get("categories", [])[:8])
        raise ValueError(f"{where}: none of the config's classes ({', '.join(classes)}) matches a category "
                         f"({names or 'none'}{', ...' if len(gt.get('categories', [])) > 8 else ''}); "
                         "map them with --class-map")
    missing = unmatched_classes(classes, mapping)
    if missing:
        print(f"warning: {where}: config classes without a category, their tracks are dropped: "
              f"{', '.join(missing)} (map them with --class-map)", file=sys.stderr, flush=True)
    return mapping


def track_and_evaluate(videos, gt: dict, classes, tracking=None, mode: str = "forward",
                       evaluate: bool = True, source: str | os.PathLike | None = None,
                       class_map: dict | None = None,
                       categories: dict[int, int] | None = None) -> tuple[list[dict], dict]:
    """Track per-frame predictions and score them: (YouTube-VIS results, evaluation).

    ``classes``: the model's class names (label i is ``classes[i]``), matched to ``gt``'s categories by
    name, so auxiliary classes drop out. ``tracking``: a :func:`visrc.tracking.build_bitrack_config`
    dict or config; ``mode``: "forward" (online) or "bitrack". ``evaluation`` is
    :meth:`visrc.evaluation.YTVISEvalResult.as_dict` (``metrics``, ``per_category``), ``{}`` when
    ``gt`` has no annotations or ``evaluate`` is false. ``source`` / ``class_map``: see
    :func:`match_categories` (no class matching a category is an error, a partial match a warning);
    ``categories``: its result, when the caller has it already.
    """
    from visrc.evaluation.export import results_for_split
    from visrc.evaluation.ytvis_eval import evaluate_ytvis
    from visrc.tracking import build_bitrack_config, track_split

    tracks = track_split(videos, build_bitrack_config(tracking), mode=mode)
    mapping = categories if categories is not None else match_categories(classes, gt, source, class_map)
    results = results_for_split(tracks, mapping, skip_unmapped=True)
    evaluation = evaluate_ytvis(gt, results).as_dict() if evaluate and gt.get("annotations") else {}
    return results, evaluation


def compare_tracking(videos, gt: dict, classes, tracking=None, modes=("forward", "bitrack")) -> dict:
    """``{mode: metrics}`` of the same per-frame predictions tracked each way: detection is shared,
    so any difference is the tracking's alone."""
    categories = match_categories(classes, gt)          # once, not once per mode
    return {mode: track_and_evaluate(videos, gt, classes, tracking, mode, categories=categories)[1]["metrics"]
            for mode in modes}


def run_inference(config, checkpoint, data_root: str | os.PathLike | None = None,
                  ann_file: str | None = None, img_prefix: str | None = None,
                  out: str | os.PathLike = "results.json", predictions_out: str | os.PathLike | None = None,
                  tracking: dict | None = None, mode: str | None = None, device: str = "cpu",
                  max_videos: int | None = None, evaluate: bool = True,
                  submission_zip: str | os.PathLike | None = None,
                  log: Callable[[str], None] | None = print, scale: float = 1.0,
                  class_map: dict | None = None) -> dict:
    """Predict a split, save its per-frame predictions (``.npz``), track, write YouTube-VIS
    results to ``out`` and, if the split has annotations, evaluate them.

    The split defaults to the config's ``test_split`` (:func:`split_paths`). ``tracking`` / ``mode``:
    see :func:`track_and_evaluate` (default: :func:`config_tracking`). ``submission_zip``: also write the CodaLab ``submission.zip``.
    ``scale``: test-time scale (:class:`visrc.models.predictor.VideoPredictor`). ``class_map``:
    config class name -> category name (:func:`match_categories`), checked before the model runs.
    ``out`` must not be a directory. Returns a summary
    dict (paths, timings, metrics).
    """
    from visrc.data.predictions import save_predictions
    from visrc.data.ytvis import load_ytvis
    from visrc.evaluation.export import write_results, write_submission_zip
    from visrc.models.config import config_classes, load_config
    from visrc.models.predictor import VideoPredictor

    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"{out}: --out is a directory; give the results .json file to write")
    cfg = load_config(config)
    ann_path, img_root = split_paths(cfg, data_root, ann_file, img_prefix)
    data = load_ytvis(ann_path)
    if not Path(img_root).is_dir():
        raise FileNotFoundError(f"{img_root}: no such frames directory (the split's img_prefix)")
    classes = config_classes(cfg)
    categories = match_categories(classes, data, ann_path, class_map)    # fail (or warn) before the model runs
    if max_videos is not None:
        keep = {v["id"] for v in data["videos"][:max_videos]}
        data = dict(data, videos=[v for v in data["videos"] if v["id"] in keep],
                    annotations=[a for a in data.get("annotations", []) if a["video_id"] in keep])

    predictor = VideoPredictor.from_files(cfg, checkpoint, device, scale)
    t0 = time.time()
    videos = predict_split(predictor, data, img_root, log)
    t_pred = time.time() - t0
    n_frames = sum(len(v) for v in videos)

    predictions_out = Path(predictions_out) if predictions_out else out.with_suffix(".predictions.npz")
    save_predictions(videos, predictions_out)

    default_tracking, default_mode = config_tracking(cfg)
    mode = mode or default_mode
    t1 = time.time()
    results, ev = track_and_evaluate(videos, data, classes, tracking or default_tracking, mode, evaluate,
                                     categories=categories)
    t_track = time.time() - t1
    write_results(results, out, gt=data)          # validated against the split's videos
    if submission_zip:
        write_submission_zip(results, submission_zip, gt=data)

    summary = dict(results=str(out), predictions=str(predictions_out), videos=len(videos),
                   frames=n_frames, tracks=len(results), mode=mode, scale=float(scale),
                   predict_seconds=round(t_pred, 2), frames_per_second=round(n_frames / max(t_pred, 1e-9), 3),
                   track_and_evaluate_seconds=round(t_track, 3))
    if ev:
        summary["metrics"] = ev["metrics"]
        summary["per_category"] = ev["per_category"]
    if log:
        log(f"[infer] {summary}")
    return summary
