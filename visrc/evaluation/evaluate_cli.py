"""`visrc evaluate --gt GT.json --results RES.json [--out metrics.json]`: video AP, printed as a table.

Both files are checked first (:mod:`visrc.evaluation.validation`): a problem raises
:class:`visrc.data.ytvis.YTVISFormatError`, which ``visrc`` prints as one line naming the file, the
record and the field; what does not change the metric (a GT box a little outside its image, an area
that disagrees with its mask) is a ``warning:`` line on stderr and the evaluation goes on.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--gt", required=True, help="YouTube-VIS annotation JSON with ground truth")
    parser.add_argument("--results", required=True,
                        help="results JSON (a list of predicted tracks) or a submission.zip holding results.json")
    parser.add_argument("--out", help="also write the metrics (summary, per-category AP, counts) to this JSON")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip the checks of both files (types, ids, frame counts, RLE sizes and counts)")
    parser.add_argument("--no-per-category", action="store_true", help="print the summary only")


def format_table(result, per_category: bool = True) -> str:
    """The summary (and per-category AP) as a plain-text table; -1 (no GT in that bucket) prints as '-'."""
    from visrc.evaluation.ytvis_eval import SUMMARY_SPEC

    def fmt(v: float) -> str:
        return "-" if v < 0 else f"{100 * v:6.2f}"

    lines = [f"{'metric':<8} {'value':>6}   definition", "-" * 56]
    for name, ap, iou, area, mdet in SUMMARY_SPEC:
        what = ("AP" if ap else "AR") + f" @ IoU={'0.50:0.95' if iou is None else f'{iou:.2f}'} area={area} maxDets={mdet}"
        lines.append(f"{name:<8} {fmt(result.stats[name]):>6}   {what}")
    if per_category and result.per_category:
        width = max(8, *(len(result.category_names.get(c, str(c))) for c in result.per_category))
        lines += ["", f"{'category':<{width}} {'id':>5} {'AP':>6}", "-" * (width + 13)]
        for c, v in result.per_category.items():
            lines.append(f"{result.category_names.get(c, str(c)):<{width}} {c:>5} {fmt(v):>6}")
    return "\n".join(lines)


def run(args) -> int:
    from visrc.evaluation.validation import load_gt_checked, load_results_checked
    from visrc.evaluation.ytvis_eval import evaluate_ytvis
    from visrc.fileio import atomic_write_json

    if args.out and Path(args.out).is_dir():   # before the work, not after it
        raise IsADirectoryError(f"{args.out}: is a folder (--out takes a JSON file name)")
    gt, warnings = load_gt_checked(args.gt, validate=not args.no_validate)
    results, res_warnings = load_results_checked(args.results, gt, validate=not args.no_validate)
    for line in warnings + res_warnings:
        print(f"warning: {line}", file=sys.stderr)
    t0 = time.perf_counter()
    res = evaluate_ytvis(gt, results)
    took = time.perf_counter() - t0
    c = res.counts
    print(f"{args.results}: {c['predictions']} predictions over {c['videos']} videos, {c['gt_tracks']} GT tracks, "
          f"{c['categories']} categories (evaluated in {took:.2f} s)")
    print(format_table(res, per_category=not args.no_per_category))
    if args.out:
        out = res.as_dict()
        out["inputs"] = {"gt": str(args.gt), "results": str(args.results)}
        atomic_write_json(args.out, out, indent=2)
        print(f"metrics written to {args.out}")
    return 0
