"""``visrc infer CONFIG CHECKPOINT --data DATA_ROOT --out results.json``
``visrc infer CONFIG CHECKPOINT --videos clip.mp4 frames_dir/ more_videos/ --out results.json``

Runs the model over a split frame by frame, saves the per-frame predictions (``.npz`` beside
``--out`` unless ``--predictions`` says otherwise), associates them into tracks (``--mode
forward``: the online baseline; ``bitrack``: paper 3.4), writes YouTube-VIS results and, when the
split's JSON has annotations, prints video AP. The split defaults to the config's ``test_split``
(``valid/instances.json`` + ``valid/JPEGImages``). ``--videos`` takes the user's own videos
instead: video files (mp4, avi, mov, mkv, webm; decoded on the fly), frame folders (natural
order: ``2.jpg`` before ``10.jpg``) or folders holding either; they get ids 1..N in that order
(the summary's ``sources`` lists them) and the config's classes as categories.

Progress: a bar over the videos on stderr (frames/s in its postfix), or one line per video when
stderr is not a terminal. Fault tolerance: finished videos are kept in ``<out>.parts/`` until the
outputs are written, so a re-run of the same command resumes ("resuming: N of M videos done");
a frame that does not decode fails its video with a message naming the frame (the other videos
still run), ``--skip-bad-frames`` gives such a frame no detections and a warning instead.
Existing outputs are refused before any work unless ``--force``.

The config's classes are matched to the annotation file's categories by name, ignoring case and
``_``/``-``/spaces; ``--class-map`` renames the ones whose names differ, either as pairs
(``--class-map Car=sedan motorbike=motorcycle``) or as one JSON file holding
``{"config class": "category name"}``. No class matching any category is an error; classes left
unmatched are listed in one warning line (their tracks are dropped).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('config', help='config file (or the name of one in visrc/configs: `visrc configs` lists them)')
    p.add_argument('checkpoint', help='a checkpoint written by `visrc train` (loaded with weights_only=True)')
    p.add_argument('--data', '--data-root', dest='data', help='dataset root (default: the config\'s data_root)')
    p.add_argument('--ann-file', help='annotation JSON relative to --data (default: cfg.test_split)')
    p.add_argument('--img-prefix', help='frames folder relative to --data (default: cfg.test_split)')
    p.add_argument('--videos', nargs='+', metavar='VIDEO',
                   help='instead of a split: video files (mp4/avi/mov/mkv/webm), frame folders, or folders of them')
    p.add_argument('--out', default='results.json', help='YouTube-VIS results JSON to write')
    p.add_argument('--predictions', help='per-frame predictions .npz (default: <out>.predictions.npz)')
    p.add_argument('--mode', choices=['forward', 'bitrack'], help='association mode (default: cfg or forward)')
    p.add_argument('--max-videos', type=int, help='only the first N videos (quick checks)')
    p.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0 (default cpu)')
    p.add_argument('--no-eval', action='store_true', help='do not evaluate even if the split has GT')
    p.add_argument('--metrics-out', help='also write the summary (with AP) to this JSON file')
    p.add_argument('--submission-zip', help='also write the CodaLab submission.zip here')
    p.add_argument('--class-map', nargs='+', metavar='CLASS=CATEGORY',
                   help='config class -> annotation category name: CLASS=CATEGORY pairs, or one JSON file '
                        'of {"class": "category"}; names already match when they differ only in case or _/-')
    p.add_argument('--skip-bad-frames', action='store_true',
                   help='a frame that does not decode gets no detections and a warning (default: it fails its video)')
    p.add_argument('--no-resume', action='store_true',
                   help='predict every video again, ignoring the videos kept in <out>.parts/ by an earlier run')
    p.add_argument('--force', action='store_true', help='overwrite existing outputs')


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """The command line's part: argument checks, overwrite checks before any work, resume (finished
    videos kept in ``<out>.parts/`` and reused by a re-run of the same model, removed once the
    outputs are written), logging to stderr; the method is :func:`visrc.pipeline.infer`'s."""
    import shutil

    from visrc.data.categories import parse_class_map
    from visrc.fileio import atomic_write_json
    from visrc.models.config import config_classes, load_config
    from visrc.pipeline import InferenceOptions, Outputs, Parts, infer, load_split, videos_split

    if args.videos and (args.data or args.ann_file or args.img_prefix):
        raise ValueError('--videos: give either --videos or a split (--data/--ann-file/--img-prefix), not both')
    if args.metrics_out:
        metrics = Path(args.metrics_out)
        if metrics.is_dir() or (metrics.exists() and not args.force):
            raise FileExistsError(f'{metrics}: ' + ('is a directory' if metrics.is_dir()
                                                    else 'exists; pass --force to overwrite it'))
    class_map = parse_class_map(args.class_map)
    outputs = Outputs.beside(args.out, args.predictions, args.submission_zip)
    outputs.check(overwrite=args.force)
    cfg = load_config(args.config)                      # resolved once for the whole command
    split = (videos_split(args.videos, config_classes(cfg)) if args.videos is not None
             else load_split(cfg, args.data, ann_file=args.ann_file, img_prefix=args.img_prefix))
    options = InferenceOptions(mode=args.mode, device=args.device, class_map=class_map, max_videos=args.max_videos,
                               evaluate=not args.no_eval, skip_bad_frames=args.skip_bad_frames)
    parts = None if args.no_resume else Parts(Path(f'{outputs.results}.parts'), cfg, args.checkpoint)
    summary = infer(cfg, args.checkpoint, split, outputs, options, log=_stderr, parts=parts)
    if parts is not None:
        shutil.rmtree(parts.dir, ignore_errors=True)
    print(json.dumps(summary, indent=1))
    if args.metrics_out:
        atomic_write_json(args.metrics_out, summary, indent=1)
    return 0
