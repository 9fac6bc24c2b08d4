"""`visrc validate FILE.json [--results --gt GT.json]`: check a YouTube-VIS file, print a summary."""
from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument("file", help="YouTube-VIS annotation JSON (or a results JSON with --gt)")
    parser.add_argument("--gt", help="treat FILE as a results file and check it against this GT annotation JSON")


def run(args) -> int:
    from visrc.data.ytvis import YTVISFormatError, load_ytvis

    try:
        if args.gt:
            from visrc.evaluation.export import load_results

            gt = load_ytvis(args.gt)
            results = load_results(args.file, gt)
            print(f"{args.file}: OK ({len(results)} predictions over {len({r['video_id'] for r in results})} videos)")
            return 0
        data = load_ytvis(args.file)
    except (YTVISFormatError, ValueError, FileNotFoundError) as e:
        print(f"INVALID: {e}", file=sys.stderr)
        return 1
    n_frames = sum(v["length"] for v in data["videos"])
    print(f"{args.file}: OK ({len(data['videos'])} videos, {n_frames} frames, "
          f"{len(data.get('annotations', []))} tracks, {len(data['categories'])} categories)")
    return 0
