"""The few functions every caller uses: load a split -> predict it -> track it -> write and score.

::

    split = load_split("toy_baseline", root, split="valid")          # a Split: ann_file, img_root, gt
    summary = run_inference("toy_baseline", ckpt, data_root=root, out=out_dir / "results.json")
    results, evaluation = track_and_evaluate(videos, split.gt, classes, tracking, mode="bitrack")
    evaluation["metrics"]["AP"]

:func:`infer` is the method (:func:`prepare_split`, :func:`predict`, :func:`track_and_evaluate`,
:func:`write_outputs`) with its settings in :class:`InferenceOptions`; :func:`run_inference` is its
one-call form. ``visrc infer`` (:mod:`visrc.infer_cli`: overwrite checks, resume, logging), the run
cache (:mod:`visrc.experiments.runs`: :func:`predict` only, the tracking is its callers'), the
ensembles of Table 2 and the notebooks all go through these functions; a split's per-frame
predictions are saved once (``.npz``) so any tracker setting can re-use them without the model.
Split names (``"tune"`` -> ``tune/instances.json`` + ``tune/JPEGImages``) live here only
(:func:`split_files`). One video from a script or a notebook: :mod:`visrc.api`
(``visrc.init_model`` / ``visrc.track_video`` / ``visrc.write_results``), a thin layer over
:func:`predict_split` and :func:`visrc.tracking.track_split`.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from visrc.data.categories import label_to_category, unmatched_classes

DEFAULT_TEST_SPLIT = dict(ann_file="valid/instances.json", img_prefix="valid/JPEGImages")


def split_files(split: str | None) -> dict:
    """``ann_file`` / ``img_prefix`` of a video split of a data root in the YouTube-VIS layout
    (``<split>/instances.json``, ``<split>/JPEGImages``); ``{}`` for ``None`` (the config's ``test_split``).
    The one place split names become paths (:func:`split_paths`, :func:`load_split`)."""
    if split is None:
        return {}
    if not split or "/" in split or split.startswith("."):
        raise ValueError(f"split must be a folder name under the data root (e.g. 'valid', 'tune'), got {split!r}")
    return dict(ann_file=f"{split}/instances.json", img_prefix=f"{split}/JPEGImages")


def split_paths(config, data_root=None, ann_file: str | None = None,
                img_prefix: str | None = None) -> tuple[Path, Path]:
    """(annotation file, frames folder) of the config's ``test_split`` under ``data_root`` (default:
    the config's ``data_root``); ``ann_file`` / ``img_prefix`` override the split's."""
    from visrc.models.config import load_config

    cfg = load_config(config)
    split = {**DEFAULT_TEST_SPLIT, **(cfg.get("test_split") or {})}
    root = Path(data_root if data_root is not None else cfg.get("data_root", "."))
    return root / (ann_file or split["ann_file"]), root / (img_prefix or split["img_prefix"])


@dataclass(frozen=True)
class Split:
    """A split to predict or score: ``ann_file`` (its annotation JSON, or a label such as "the
    videos" for the user's own videos), ``img_root`` (the folder its ``file_names`` are relative
    to) and ``gt``, the YouTube-VIS dict (read from ``ann_file`` on first use when not given)."""

    ann_file: Path | str
    img_root: Path
    data: dict | None = field(default=None, repr=False, compare=False)

    @property
    def gt(self) -> dict:
        if self.data is None:
            from visrc.data.ytvis import load_ytvis

            object.__setattr__(self, "data", load_ytvis(self.ann_file))
        return self.data

    def with_gt(self, gt: dict) -> "Split":
        """The same split with another GT dict (fewer videos, default categories, decoded lengths)."""
        return Split(self.ann_file, self.img_root, gt)


def load_split(config, data_root=None, split: str | None = None, ann_file: str | None = None,
               img_prefix: str | None = None) -> Split:
    """The :class:`Split` of ``config`` (a name, file or loaded Config) under ``data_root``: the
    video split ``split`` (:func:`split_files`, e.g. ``"tune"``), else the config's ``test_split``;
    ``ann_file`` / ``img_prefix`` override either (:func:`split_paths`). The GT is read on first use."""
    named = split_files(split)
    ann_path, img_root = split_paths(config, data_root, ann_file or named.get("ann_file"),
                                     img_prefix or named.get("img_prefix"))
    return Split(ann_path, img_root)


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

    A missing or undecodable frame (which the predictor diagnoses, once) stops the video with its
    message (or, with ``skip_bad_frames``, gets None and a warning); an exception on a frame that
    decodes is the model's and propagates."""
    import tempfile

    from visrc.data.frames import BadFrameError

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
            except (FileNotFoundError, BadFrameError) as bad:  # the predictor checked the frame and named it
                if spooled:
                    raise
                if not skip_bad_frames:
                    error = str(bad)
                    continue
                progress.note(f"warning: {bad}; frame {t} of video {vid} gets no predictions (--skip-bad-frames)")
                frames.append(None)
                continue
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
                       evaluate: bool = True, categories: dict[int, int] | None = None) -> tuple[list[dict], dict]:
    """Track per-frame predictions and score them: (YouTube-VIS results, evaluation).

    ``classes``: the model's class names (label i is ``classes[i]``), matched to ``gt``'s categories by
    name, so auxiliary classes drop out. ``tracking``: a :func:`visrc.tracking.build_bitrack_config`
    dict or config; ``mode``: "forward" (online) or "bitrack". ``evaluation`` is
    :meth:`visrc.evaluation.YTVISEvalResult.as_dict` (``metrics``, ``per_category``), ``{}`` when
    ``gt`` has no annotations or ``evaluate`` is false. ``categories``: label -> category id, from
    :func:`match_categories` (by name, when not given; a source or class map goes through it).
    """
    from visrc.evaluation.export import results_for_split
    from visrc.evaluation.ytvis_eval import evaluate_ytvis
    from visrc.tracking import build_bitrack_config, track_split

    tracks = track_split(videos, build_bitrack_config(tracking), mode=mode)
    mapping = categories if categories is not None else match_categories(classes, gt)
    results = results_for_split(tracks, mapping, skip_unmapped=True)
    evaluation = evaluate_ytvis(gt, results).as_dict() if evaluate and gt.get("annotations") else {}
    return results, evaluation


def compare_tracking(videos, gt: dict, classes, tracking=None, modes=("forward", "bitrack")) -> dict:
    """``{mode: metrics}`` of the same per-frame predictions tracked each way: detection is shared,
    so any difference is the tracking's alone."""
    categories = match_categories(classes, gt)          # once, not once per mode
    return {mode: track_and_evaluate(videos, gt, classes, tracking, mode, categories=categories)[1]["metrics"]
            for mode in modes}


USER_VIDEOS = "the videos"      # the ann_file label of a split made from the user's own videos


@dataclass(frozen=True)
class InferenceOptions:
    """The method's settings of one inference (none of the command line's).

    ``tracking`` / ``mode``: see :func:`track_and_evaluate` (None: :func:`config_tracking`);
    ``device`` / ``scale``: the predictor's (:class:`visrc.models.predictor.VideoPredictor`; scale:
    test-time scale); ``class_map``: config class name -> category name (:func:`match_categories`);
    ``max_videos``: only the first N videos; ``evaluate``: score a split that has annotations;
    ``skip_bad_frames``: see :func:`predict_split`."""

    tracking: Any = None
    mode: str | None = None
    device: str = "cpu"
    scale: float = 1.0
    class_map: dict | None = None
    max_videos: int | None = None
    evaluate: bool = True
    skip_bad_frames: bool = False


@dataclass(frozen=True)
class Outputs:
    """Where an inference writes: YouTube-VIS ``results``, the per-frame ``predictions`` (``.npz``)
    and, optionally, the CodaLab ``submission_zip``."""

    results: Path
    predictions: Path
    submission_zip: Path | None = None

    @classmethod
    def beside(cls, out: str | os.PathLike, predictions: str | os.PathLike | None = None,
               submission_zip: str | os.PathLike | None = None) -> "Outputs":
        """``predictions`` defaults to ``<out>.predictions.npz``."""
        out = Path(out)
        return cls(out, Path(predictions) if predictions else out.with_suffix(".predictions.npz"),
                   Path(submission_zip) if submission_zip else None)

    def check(self, overwrite: bool = True) -> None:
        """Before any work: no output may be a directory, nor exist unless ``overwrite``."""
        for p in [self.results, self.predictions] + ([self.submission_zip] if self.submission_zip else []):
            if p.is_dir():
                raise IsADirectoryError(f"{p}: is a directory; give the file to write")
            if p.exists() and not overwrite:
                raise FileExistsError(f"{p}: exists; pass --force to overwrite it")


@dataclass(frozen=True)
class Parts:
    """Where :func:`predict_split` keeps finished videos (``dir``) for a re-run to resume, and the
    model they belong to (config, weights, test scale: :func:`parts_key`, read when the prediction
    starts, after the split's checks)."""

    dir: Path
    cfg: Any = field(repr=False)
    checkpoint: str | os.PathLike
    scale: float = 1.0

    @property
    def key(self) -> str:
        return parts_key(self.cfg, self.checkpoint, self.scale)


def parts_key(cfg, checkpoint: str | os.PathLike, scale: float = 1.0) -> str:
    """The fingerprint of a model for :class:`Parts`: its resolved config, weights and test scale
    (saved videos are reused only by the same model)."""
    import hashlib
    import json

    key = hashlib.sha256(json.dumps([cfg.to_dict(), float(scale)], sort_keys=True, default=str).encode())
    with open(checkpoint, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            key.update(chunk)
    return key.hexdigest()


def videos_split(sources, classes) -> Split:
    """The :class:`Split` of the user's own videos (video files, frame folders, or folders of them:
    :func:`visrc.data.video_files.sources_to_ytvis`): ids 1..N, categories the config's ``classes``."""
    from visrc.data.video_files import sources_to_ytvis

    return Split(USER_VIDEOS, Path("/"), sources_to_ytvis(sources, classes))


def prepare_split(split: Split, classes, class_map: dict | None = None, max_videos: int | None = None,
                  log: Callable[[str], None] | None = None) -> tuple[Split, dict[int, int]]:
    """``(split, label -> category id)``, checked before the model runs: its frames folder must
    exist; a GT without categories and annotations (``visrc make-json`` without ``--classes``)
    takes the config's ``classes`` as its categories; the classes are matched to them
    (:func:`match_categories`: none matching is an error, a partial match a warning);
    ``max_videos`` keeps the first N videos and their annotations."""
    if not Path(split.img_root).is_dir():
        raise FileNotFoundError(f"{split.img_root}: no such frames directory (the split's img_prefix)")
    data = split.gt
    if not data["categories"] and not data.get("annotations"):
        if log:
            log(f"[infer] {split.ann_file} has no categories: using the config's classes ({len(classes)})")
        data = dict(data, categories=[dict(id=i + 1, name=c) for i, c in enumerate(classes)])
    categories = match_categories(classes, data, split.ann_file, class_map)
    if max_videos is not None:
        keep = {v["id"] for v in data["videos"][:max_videos]}
        data = dict(data, videos=[v for v in data["videos"] if v["id"] in keep],
                    annotations=[a for a in data.get("annotations", []) if a["video_id"] in keep])
    return split.with_gt(data), categories


def predict(cfg, checkpoint, split: Split, predictions_out: str | os.PathLike,
            options: InferenceOptions = InferenceOptions(), log: Callable[[str], None] | None = print,
            parts: Parts | None = None) -> tuple[list, Split, dict]:
    """Predict every video of a (prepared) split with the model of ``cfg`` (a loaded Config) and
    ``checkpoint`` and save the per-frame predictions to ``predictions_out``. Returns ``(videos,
    the split with each video's decoded length, summary)``; the summary has ``predictions``,
    ``videos``, ``frames``, ``scale``, ``predict_seconds`` and ``frames_per_second``. ``parts``:
    resume (:func:`predict_split`)."""
    from visrc.data.predictions import save_predictions
    from visrc.models.predictor import VideoPredictor

    key = parts.key if parts else ""
    predictor = VideoPredictor.from_files(cfg, checkpoint, options.device, options.scale)   # cfg: not re-resolved
    t0 = time.time()
    videos = predict_split(predictor, split.gt, split.img_root, log, parts_dir=parts and parts.dir,
                           parts_key=key, skip_bad_frames=options.skip_bad_frames)
    t_pred = time.time() - t0
    n_frames = sum(len(v) for v in videos)
    # a video file's frame count was read from its packets; the decoded count is the one that holds
    lengths = {v.video_id: len(v) for v in videos}
    split = split.with_gt(dict(split.gt, videos=[dict(v, length=lengths[v["id"]]) for v in split.gt["videos"]]))
    save_predictions(videos, predictions_out)
    summary = dict(predictions=str(predictions_out), videos=len(videos), frames=n_frames, scale=float(options.scale),
                   predict_seconds=round(t_pred, 2), frames_per_second=round(n_frames / max(t_pred, 1e-9), 3))
    return videos, split, summary


def write_outputs(results: list[dict], split: Split, outputs: Outputs) -> None:
    """Write ``results.json`` (validated against the split's videos, once) and, if asked, the
    ``submission.zip`` of the same results."""
    from visrc.evaluation.export import write_results, write_submission_zip

    write_results(results, outputs.results, gt=split.gt)
    if outputs.submission_zip:
        write_submission_zip(results, outputs.submission_zip)     # validated just above


def infer(cfg, checkpoint, split: Split, outputs: Outputs, options: InferenceOptions = InferenceOptions(),
          log: Callable[[str], None] | None = print, parts: Parts | None = None) -> dict:
    """Predict a split (:func:`predict`), track, write YouTube-VIS results (:func:`write_outputs`)
    and, if the split has annotations and ``options.evaluate``, evaluate them.

    ``cfg``: a loaded Config (resolved once by the caller); ``split``: :func:`load_split` or
    :func:`videos_split`, checked by :func:`prepare_split` before the model runs. Overwrite checks
    (:meth:`Outputs.check`), resume (``parts``) and progress are the caller's. Returns a summary
    dict (paths, timings, metrics)."""
    from visrc.models.config import config_classes

    classes = config_classes(cfg)
    split, categories = prepare_split(split, classes, options.class_map, options.max_videos, log)
    videos, split, predicted = predict(cfg, checkpoint, split, outputs.predictions, options, log, parts)
    default_tracking, default_mode = config_tracking(cfg)
    mode = options.mode or default_mode
    t1 = time.time()
    results, ev = track_and_evaluate(videos, split.gt, classes, options.tracking or default_tracking, mode,
                                     options.evaluate, categories=categories)
    t_track = time.time() - t1
    write_outputs(results, split, outputs)
    summary = dict(results=str(outputs.results), predictions=predicted["predictions"], videos=predicted["videos"],
                   frames=predicted["frames"], tracks=len(results), mode=mode, scale=predicted["scale"],
                   predict_seconds=predicted["predict_seconds"], frames_per_second=predicted["frames_per_second"],
                   track_and_evaluate_seconds=round(t_track, 3))
    if split.ann_file == USER_VIDEOS:
        summary["sources"] = {str(v["id"]): v.get("video_file") or os.path.dirname(v["file_names"][0])
                              for v in split.gt["videos"]}
    if ev:
        summary["metrics"] = ev["metrics"]
        summary["per_category"] = ev["per_category"]
    if log:
        log(f"[infer] wrote {outputs.results}: {len(results)} tracks in {len(videos)} videos "
            f"({predicted['frames']} frames, {predicted['frames_per_second']} frames/s)")
    return summary


def run_inference(config, checkpoint, data_root: str | os.PathLike | None = None,
                  out: str | os.PathLike = "results.json", tracking=None, max_videos: int | None = None,
                  device: str = "cpu", log: Callable[[str], None] | None = print) -> dict:
    """:func:`infer` on the config's ``test_split`` under ``data_root`` (default: the config's
    ``data_root``), predictions in ``<out>.predictions.npz``, overwriting, no resume: the one-call
    form for scripts and tests. ``visrc infer`` (:mod:`visrc.infer_cli`) calls :func:`infer` with
    every option (:class:`InferenceOptions`)."""
    from visrc.models.config import load_config

    cfg = load_config(config)
    outputs = Outputs.beside(out)
    outputs.check()
    options = InferenceOptions(tracking=tracking, device=device, max_videos=max_videos)
    return infer(cfg, checkpoint, load_split(cfg, data_root), outputs, options, log)
