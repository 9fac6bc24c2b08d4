"""The one pipeline every caller uses: predict a split -> track it -> YouTube-VIS results -> evaluate.

::

    summary = run_inference("toy_baseline", ckpt, data_root=root, out=out_dir / "results.json")
    results, evaluation = track_and_evaluate(videos, gt, classes, tracking, mode="bitrack")
    evaluation["metrics"]["AP"]

``visrc infer``, the run cache (:mod:`visrc.experiments.runs`), the ensembles of Table 2 and the
notebooks all go through these functions; a split's per-frame predictions are saved once
(``.npz``) so any tracker setting can re-use them without the model. One video from a script or
a notebook: :mod:`visrc.api` (``visrc.init_model`` / ``visrc.track_video`` / ``visrc.write_results``),
a thin layer over :func:`predict_split` and :func:`visrc.tracking.track_split`.
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


def _video_parts(entries: list, parts_dir: str | os.PathLike, parts_key: str,
                 say: Callable[[str], None]) -> dict[int, Path]:
    """video id -> its part file ``<id>-<hash of its frames>.npz`` in ``parts_dir``; parts saved under
    another ``parts_key`` are deleted first, and the manifest records this one."""
    import hashlib
    import json

    from visrc.fileio import atomic_write_json, read_json

    parts_dir = Path(parts_dir)
    manifest = parts_dir / "manifest.json"
    made_by = read_json(manifest).get("key") if manifest.is_file() else None
    stale = sorted(parts_dir.glob("*.npz")) if made_by != parts_key else []
    if stale:
        say(f"[predict] {parts_dir}: discarding {len(stale)} saved videos of another model, config or scale")
        for p in stale:
            p.unlink()
    atomic_write_json(manifest, {"key": parts_key})
    parts = {}
    for v in entries:
        # the frames, not the id alone: an edited split must not reuse another video's predictions
        frames_id = json.dumps([v.get("video_file"), v["file_names"], v["height"], v["width"]])
        parts[v["id"]] = parts_dir / f"{v['id']}-{hashlib.sha1(frames_id.encode()).hexdigest()[:12]}.npz"
    return parts


class _Progress:
    """The tqdm bar over a split's videos (frames/s in its postfix) and where messages go: above the
    bar when it is shown, else to ``say``."""

    def __init__(self, n: int, done: int, show: bool, say: Callable[[str], None]) -> None:
        from tqdm import tqdm

        self.show = show
        self.bar = tqdm(total=n, initial=done, unit="video", desc="predict", file=sys.stderr, disable=not show,
                        dynamic_ncols=True)
        self.note = (lambda msg: self.bar.write(msg, file=sys.stderr)) if show else say
        self.t_start, self.n_frames, self.last_refresh = time.time(), 0, 0.0

    def advance(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()

    def frame(self, vid, t: int, length: int) -> None:
        self.n_frames += 1
        if self.show and time.time() - self.last_refresh > 0.5:
            self.last_refresh = time.time()
            self.bar.set_postfix_str(f"video {vid}: frame {t + 1}/{length}, "
                                     f"{self.n_frames / (self.last_refresh - self.t_start):.2f} frames/s")


def _frame_paths(v: dict, img_root, spool_dir: str):
    """(t, frame file, whether visrc wrote it) of each frame of video entry ``v``, decoded lazily
    from its video file if it has one."""
    import itertools

    from visrc.data.video_files import VideoFile, spool_frames

    if v.get("video_file"):     # at most `length` frames: a caller may shorten the video that way
        frames = itertools.islice(VideoFile(v["video_file"]), int(v["length"]))
        return ((t, p, True) for t, p in spool_frames(frames, spool_dir))
    return ((t, os.path.join(img_root, f), False) for t, f in enumerate(v["file_names"]))


def _predict_video(predictor, v: dict, img_root, skip_bad_frames: bool, progress: _Progress) -> tuple[list, str | None]:
    """(per-frame predictions, None where a skipped frame was bad; the error that failed the video or None).

    A missing or undecodable frame stops the video with its message (or, with ``skip_bad_frames``,
    gets None and a warning); an exception on a frame that decodes is the model's and propagates."""
    import tempfile

    from visrc.data.frames import check_frame

    vid, frames, error = v["id"], [], None
    with tempfile.TemporaryDirectory(prefix="visrc-frames-") as spool_dir:
        it = _frame_paths(v, img_root, spool_dir)
        while error is None:
            try:
                t, path, spooled = next(it)
            except StopIteration:
                break
            except (FileNotFoundError, ValueError) as e:     # the video file itself does not decode
                error = str(e)
                break
            try:
                frames.append(predictor.predict_frame(str(path), t, vid, v["length"]))
            except Exception as e:
                if spooled:
                    raise
                try:
                    check_frame(path)
                except (FileNotFoundError, ValueError) as bad:
                    if not skip_bad_frames:
                        error = str(bad)
                        continue
                    progress.note(f"warning: {bad}; frame {t} of video {vid} gets no predictions (--skip-bad-frames)")
                    frames.append(None)
                    continue
                raise e                                        # a good frame: not the frame's fault
            progress.frame(vid, t, v["length"])
    if error is None and not any(f is not None for f in frames):
        error = f"{v.get('video_file') or f'video {vid}'}: no decodable frame"
    return frames, error


def predict_split(predictor, data: dict, img_root: str | os.PathLike,
                  log: Callable[[str], None] | None = print, parts_dir: str | os.PathLike | None = None,
                  parts_key: str = "", skip_bad_frames: bool = False, progress: bool | None = None) -> list:
    """Per-frame predictions (:class:`visrc.data.predictions.VideoPredictions`) of every video of a
    raw YouTube-VIS dict (``file_names`` relative to ``img_root``), by a
    :class:`visrc.models.predictor.VideoPredictor`. A video entry with a ``video_file`` (see
    :func:`visrc.data.video_files.sources_to_ytvis`) is decoded from that file frame by frame.

    ``parts_dir``: each finished video's predictions are kept there (``<id>-<hash of its
    frames>.npz``, written atomically) and the ones already there are reused, so a re-run after a
    crash resumes ("resuming: N of M videos done"); parts made under another ``parts_key`` (the
    model's fingerprint, see :func:`run_inference`) are discarded first.

    A frame that is missing or does not decode fails its video; the other videos still run, then a
    ``ValueError`` names the first bad frame (the finished videos stay in ``parts_dir``). With
    ``skip_bad_frames`` such a frame gets no detections and a warning instead.

    ``progress``: a tqdm bar over the videos on stderr, frames/s in its postfix; by default shown
    when ``log`` is set and stderr is a terminal; without the bar ``log`` gets one line per video.
    """
    from visrc.data.predictions import FramePredictions, VideoPredictions, load_predictions, save_predictions

    say = log or (lambda _msg: None)
    entries = list(data["videos"])
    n = len(entries)
    parts = _video_parts(entries, parts_dir, parts_key, say) if parts_dir is not None else {}
    done = {vid for vid, p in parts.items() if p.is_file()}
    if done:
        say(f"[predict] resuming: {len(done)} of {n} videos done (saved in {parts_dir})")

    show_bar = (log is not None and sys.stderr.isatty()) if progress is None else bool(progress)
    bar = _Progress(n, len(done), show_bar, say)
    out, failed = {}, []
    for i, v in enumerate(entries):
        vid = v["id"]
        if vid in done:
            out[vid] = load_predictions(parts[vid])[0]
            continue
        t0 = time.time()
        frames, error = _predict_video(predictor, v, img_root, skip_bad_frames, bar)
        if error is not None:
            failed.append(error)
            if n > 1:
                bar.note(f"[predict] video {vid} failed: {error}")
            bar.advance()
            continue
        good = next(f for f in frames if f is not None)
        empty = FramePredictions.empty(good.embeddings.shape[1], good.masks is not None)
        video = VideoPredictions(int(vid), int(v["height"]), int(v["width"]),
                                 [f if f is not None else empty for f in frames])
        if vid in parts:
            save_predictions([video], parts[vid])
        out[vid] = video
        bar.advance()
        if not show_bar and log:
            log(f"[predict] video {i + 1}/{n} (id {vid}, {len(frames)} frames): "
                f"{len(frames) / max(time.time() - t0, 1e-9):.2f} frames/s")
    bar.close()
    if failed:
        kept = f"; the {len(out)} finished videos are kept in {parts_dir} (a re-run resumes)" if parts and out else ""
        raise ValueError(f"{failed[0]}" + (f" ({len(failed)} of {n} videos failed)" if n > 1 else "") + kept +
                         "; --skip-bad-frames predicts around bad frames")
    return [out[v["id"]] for v in entries]


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
                  class_map: dict | None = None, sources=None, overwrite: bool = True,
                  resume: bool = True, skip_bad_frames: bool = False, progress: bool | None = None) -> dict:
    """Predict a split, save its per-frame predictions (``.npz``), track, write YouTube-VIS
    results to ``out`` and, if the split has annotations, evaluate them.

    The split defaults to the config's ``test_split`` (:func:`split_paths`); ``sources`` (video
    files, frame folders, or folders of them: :func:`visrc.data.video_files.sources_to_ytvis`)
    replaces it with the user's own videos, ids 1..N, categories the config's classes. A split
    without categories and annotations (``visrc make-json`` without ``--classes``) takes the
    config's classes as its categories. ``tracking`` / ``mode``: see :func:`track_and_evaluate`
    (default: :func:`config_tracking`). ``submission_zip``: also write the CodaLab ``submission.zip``.
    ``scale``: test-time scale (:class:`visrc.models.predictor.VideoPredictor`). ``class_map``:
    config class name -> category name (:func:`match_categories`), checked before the model runs.

    Outputs are checked before any work: ``out`` must not be a directory, and with
    ``overwrite=False`` no output may exist (``FileExistsError``). ``resume``: finished videos are
    kept in ``<out>.parts/`` while the split runs and reused by a re-run of the same model (see
    :func:`predict_split`, which also says what ``skip_bad_frames`` and ``progress`` do); the folder
    is removed once the outputs are written. Returns a summary dict (paths, timings, metrics).
    """
    import hashlib
    import json
    import shutil

    from visrc.data.predictions import save_predictions
    from visrc.data.video_files import sources_to_ytvis
    from visrc.data.ytvis import load_ytvis
    from visrc.evaluation.export import write_results, write_submission_zip
    from visrc.models.config import config_classes, load_config
    from visrc.models.predictor import VideoPredictor

    out = Path(out)
    predictions_out = Path(predictions_out) if predictions_out else out.with_suffix(".predictions.npz")
    outputs = [out, predictions_out] + ([Path(submission_zip)] if submission_zip else [])
    for p in outputs:
        if p.is_dir():
            raise IsADirectoryError(f"{p}: is a directory; give the file to write")
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p}: exists; pass --force to overwrite it")
    cfg = load_config(config)
    classes = config_classes(cfg)
    if sources is not None:
        data, ann_path, img_root = sources_to_ytvis(sources, classes), "the videos", Path("/")
    else:
        ann_path, img_root = split_paths(cfg, data_root, ann_file, img_prefix)
        data = load_ytvis(ann_path)
        if not Path(img_root).is_dir():
            raise FileNotFoundError(f"{img_root}: no such frames directory (the split's img_prefix)")
        if not data["categories"] and not data.get("annotations"):
            if log:
                log(f"[infer] {ann_path} has no categories: using the config's classes ({len(classes)})")
            data = dict(data, categories=[dict(id=i + 1, name=c) for i, c in enumerate(classes)])
    categories = match_categories(classes, data, ann_path, class_map)    # fail (or warn) before the model runs
    if max_videos is not None:
        keep = {v["id"] for v in data["videos"][:max_videos]}
        data = dict(data, videos=[v for v in data["videos"] if v["id"] in keep],
                    annotations=[a for a in data.get("annotations", []) if a["video_id"] in keep])

    parts_dir, parts_key = None, ""
    if resume:
        # the saved videos are reused only by the same model: config, weights and test scale
        key = hashlib.sha256(json.dumps([cfg.to_dict(), float(scale)], sort_keys=True, default=str).encode())
        with open(checkpoint, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                key.update(chunk)
        parts_dir, parts_key = Path(f"{out}.parts"), key.hexdigest()
    predictor = VideoPredictor.from_files(cfg, checkpoint, device, scale)
    t0 = time.time()
    videos = predict_split(predictor, data, img_root, log, parts_dir=parts_dir, parts_key=parts_key,
                           skip_bad_frames=skip_bad_frames, progress=progress)
    t_pred = time.time() - t0
    n_frames = sum(len(v) for v in videos)
    # a video file's frame count was read from its packets; the decoded count is the one that holds
    lengths = {v.video_id: len(v) for v in videos}
    data = dict(data, videos=[dict(v, length=lengths[v["id"]]) for v in data["videos"]])

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
    if parts_dir is not None:
        shutil.rmtree(parts_dir, ignore_errors=True)

    summary = dict(results=str(out), predictions=str(predictions_out), videos=len(videos),
                   frames=n_frames, tracks=len(results), mode=mode, scale=float(scale),
                   predict_seconds=round(t_pred, 2), frames_per_second=round(n_frames / max(t_pred, 1e-9), 3),
                   track_and_evaluate_seconds=round(t_track, 3))
    if sources is not None:
        summary["sources"] = {str(v["id"]): v.get("video_file") or os.path.dirname(v["file_names"][0])
                              for v in data["videos"]}
    if ev:
        summary["metrics"] = ev["metrics"]
        summary["per_category"] = ev["per_category"]
    if log:
        log(f"[infer] wrote {out}: {len(results)} tracks in {len(videos)} videos ({n_frames} frames, "
            f"{summary['frames_per_second']} frames/s)")
    return summary
