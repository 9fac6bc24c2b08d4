"""`visrc validate FILE [--gt GT.json] [--frames DIR | --no-frames]`: check a YouTube-VIS file, print a summary.

An annotation file is checked field by field (:func:`visrc.data.ytvis.validate_ytvis`) and, when its
frames are found, frame by frame (each exists and has its video's size); with ``--gt`` FILE is a
results JSON or ``submission.zip`` checked against that GT (:mod:`visrc.evaluation.validation`).
A problem raises :class:`visrc.data.ytvis.YTVISFormatError`, which ``visrc`` prints as one line
naming the file, the record and the field (exit 1); what does not change the metric is printed as
``warning:`` lines on stderr and the file is accepted.
"""
from __future__ import annotations

import sys
from pathlib import Path

FRAMES_DIR = "JPEGImages"   # the YouTube-VIS layout: <split>/instances.json beside <split>/JPEGImages/


def add_arguments(parser) -> None:
    parser.add_argument("file", help="YouTube-VIS annotation JSON, or with --gt a results JSON or submission.zip")
    parser.add_argument("--gt", help="treat FILE as a results file and check it against this GT annotation JSON")
    parser.add_argument("--frames", metavar="DIR",
                        help=f"folder the annotation file's 'file_names' are relative to: check that every frame "
                             f"exists and has its video's size (default: {FRAMES_DIR}/ beside FILE, if there)")
    parser.add_argument("--no-frames", action="store_true", help="do not look at the frame files")


def _print_warnings(lines: list[str]) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)


def run(args) -> int:
    from visrc.data.ytvis import YTVISFormatError
    from visrc.evaluation.validation import check_frames, load_gt_checked, load_results_checked

    if args.gt:
        gt, gt_warnings = load_gt_checked(args.gt)
        results, warnings = load_results_checked(args.file, gt)
        _print_warnings(gt_warnings + warnings)
        n_videos = len({r["video_id"] for r in results})
        print(f"{args.file}: OK ({len(results)} predictions over {n_videos} videos"
              f"{f', {len(warnings)} warning(s)' if warnings else ''})")
        return 0
    if Path(args.file).suffix.lower() == ".zip":
        raise YTVISFormatError(f"{args.file}: a submission zip is a results file: check it against its GT with "
                               "--gt GT.json")
    data, warnings = load_gt_checked(args.file)
    frames = None if args.no_frames else (Path(args.frames) if args.frames else Path(args.file).parent / FRAMES_DIR)
    checked = ""
    if frames is not None:
        if frames.is_dir():
            checked = f", frames checked in {frames}"
            check_frames(data, frames, args.file)
        elif args.frames:
            raise FileNotFoundError(f"{frames}: no such folder (--frames)")
    _print_warnings(warnings)
    n_frames = sum(v["length"] for v in data["videos"])
    print(f"{args.file}: OK ({len(data['videos'])} videos, {n_frames} frames, "
          f"{len(data.get('annotations', []))} tracks, {len(data['categories'])} categories{checked}"
          f"{f', {len(warnings)} warning(s)' if warnings else ''})")
    return 0
