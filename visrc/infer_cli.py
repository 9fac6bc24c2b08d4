"""``visrc infer CONFIG CHECKPOINT --data DATA_ROOT --out results.json``

Runs the model over a split frame by frame, saves the per-frame predictions (``.npz`` beside
``--out`` unless ``--predictions`` says otherwise), associates them into tracks (``--mode
forward``: the online baseline; ``bitrack``: paper 3.4), writes YouTube-VIS results and, when the
split's JSON has annotations, prints video AP. The split defaults to the config's ``test_split``
(``valid/instances.json`` + ``valid/JPEGImages``).

The config's classes are matched to the annotation file's categories by name, ignoring case and
``_``/``-``/spaces; ``--class-map`` renames the ones whose names differ, either as pairs
(``--class-map Car=sedan motorbike=motorcycle``) or as one JSON file holding
``{"config class": "category name"}``. No class matching any category is an error; classes left
unmatched are listed in one warning line (their tracks are dropped).
"""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('config', help='config file (or the name of one in visrc/configs)')
    p.add_argument('checkpoint', help='a checkpoint written by `visrc train` (loaded with weights_only=True)')
    p.add_argument('--data', '--data-root', dest='data', help='dataset root (default: the config\'s data_root)')
    p.add_argument('--ann-file', help='annotation JSON relative to --data (default: cfg.test_split)')
    p.add_argument('--img-prefix', help='frames folder relative to --data (default: cfg.test_split)')
    p.add_argument('--out', default='results.json', help='YouTube-VIS results JSON to write')
    p.add_argument('--predictions', help='per-frame predictions .npz (default: <out>.predictions.npz)')
    p.add_argument('--mode', choices=['forward', 'bitrack'], help='association mode (default: cfg or forward)')
    p.add_argument('--max-videos', type=int, help='only the first N videos (quick checks)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--no-eval', action='store_true', help='do not evaluate even if the split has GT')
    p.add_argument('--metrics-out', help='also write the summary (with AP) to this JSON file')
    p.add_argument('--submission-zip', help='also write the CodaLab submission.zip here')
    p.add_argument('--class-map', nargs='+', metavar='CLASS=CATEGORY',
                   help='config class -> annotation category name: CLASS=CATEGORY pairs, or one JSON file '
                        'of {"class": "category"}; names already match when they differ only in case or _/-')


def run(args: argparse.Namespace) -> int:
    from visrc.data.categories import parse_class_map
    from visrc.fileio import atomic_write_json
    from visrc.pipeline import run_inference

    class_map = parse_class_map(args.class_map)

    summary = run_inference(args.config, args.checkpoint, data_root=args.data, ann_file=args.ann_file,
                            img_prefix=args.img_prefix, out=args.out, predictions_out=args.predictions,
                            mode=args.mode, device=args.device, max_videos=args.max_videos,
                            evaluate=not args.no_eval, submission_zip=args.submission_zip, log=None,
                            class_map=class_map)
    print(json.dumps(summary, indent=1))
    if args.metrics_out:
        atomic_write_json(args.metrics_out, summary, indent=1)
    return 0
