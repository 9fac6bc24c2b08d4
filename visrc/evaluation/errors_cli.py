"""`visrc errors --gt GT.json --results RES.json [--out errors.json] [--plot errors.png]`: TIVE's error
types of a results file and the ΔAP of fixing each (:mod:`visrc.evaluation.errors`), printed as a table.

Both files are checked first, as ``visrc evaluate`` does (:mod:`visrc.evaluation.validation`): a
problem is one line naming the file, the record and the field. ``--out`` gets the whole report
(every prediction's type, every GT track's status, ΔAP with intervals, by track length), written
atomically; ``--plot`` a bar chart of ΔAP@[.5:.95] per type with its bootstrap interval.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--gt", required=True, help="YouTube-VIS annotation JSON with ground truth")
    parser.add_argument("--results", required=True,
                        help="results JSON (a list of predicted tracks) or a submission.zip holding results.json")
    parser.add_argument("--out", help="write the report (types, statuses, ΔAP, by length) to this JSON")
    parser.add_argument("--plot", help="draw ΔAP per error type with its interval into this image (png, pdf, svg)")
    parser.add_argument("--t-f", type=float, default=0.5, help="foreground IoU threshold (default 0.5)")
    parser.add_argument("--t-b", type=float, default=0.1, help="background IoU threshold (default 0.1)")
    parser.add_argument("--length-bins", default="16,32",
                        help="GT track length bin edges in frames, comma-separated (default 16,32: "
                             "short <= 16 < medium <= 32 < long)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the videos (0: no intervals)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resamples")
    parser.add_argument("--no-validate", action="store_true", help="skip the checks of both files")


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:+6.2f}"


def _ap(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def format_table(report: dict) -> str:
    """ΔAP (in AP points) per error type, with its interval, then by track length."""
    from visrc.evaluation.errors import FIXES, PRED_TYPES

    ap, ap_tf = report["params"]["metrics"]
    counts = report["counts"]
    n_of = {**{t: counts[t] for t in PRED_TYPES}, "Missed": counts["Missed"],
            "FalsePos": sum(counts[t] for t in PRED_TYPES) + counts["unused"],
            "FalseNeg": counts["Missed"] + counts["recoverable"]}
    level = int(round(100 * report["params"]["level"]))
    base = report["base"]
    interval = f"[{level}% interval]"
    lines = [f"{ap} {_ap(base[ap])}   {ap_tf} {_ap(base[ap_tf])}",
             f"{'error':<15} {'count':>6} {'d' + ap:>7} {interval:>17} {'d' + ap_tf:>7}", "-" * 56]
    for f in FIXES:
        d = report["delta_ap"][f]
        iv = "" if d[ap]["low"] is None else f"[{_pct(d[ap]['low'])}, {_pct(d[ap]['high'])}]"
        lines.append(f"{f:<15} {n_of[f]:>6} {_pct(d[ap]['value']):>7} {iv:>17} {_pct(d[ap_tf]['value']):>7}")
    by = report["by_length"]
    bins = [b["name"] for b in by["bins"]]
    lines += ["", f"d{ap} by GT track length", f"{'error':<15} " + " ".join(f"{b:>9}" for b in bins),
              "-" * (16 + 10 * len(bins)),
              f"{'(' + ap + ')':<15} " + " ".join(f"{_ap(by['base'][b][ap]):>9}" for b in bins)]
    for f in FIXES:
        lines.append(f"{f:<15} " + " ".join(f"{_pct(by['delta_ap'][b][f][ap]['value']):>9}" for b in bins))
    return "\n".join(lines)


def plot(report: dict, path: str) -> None:
    """Bar chart of ΔAP@[.5:.95] per error type with its interval. matplotlib is used directly:
    :mod:`visrc.viz` is the top layer, which this module (evaluation layer) may not import."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from visrc.evaluation.errors import FIXES

    ap = report["params"]["metrics"][0]
    vals = [100 * (report["delta_ap"][f][ap]["value"] or 0.0) for f in FIXES]
    lo = [100 * report["delta_ap"][f][ap]["low"] if report["delta_ap"][f][ap]["low"] is not None else v
          for f, v in zip(FIXES, vals)]
    hi = [100 * report["delta_ap"][f][ap]["high"] if report["delta_ap"][f][ap]["high"] is not None else v
          for f, v in zip(FIXES, vals)]
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    colors = ["C0"] * 7 + ["C7"] * 2
    ax.bar(range(len(FIXES)), vals, color=colors,
           yerr=[[max(v - a, 0) for v, a in zip(vals, lo)], [max(b - v, 0) for v, b in zip(vals, hi)]], capsize=3)
    ax.set_xticks(range(len(FIXES)), FIXES, rotation=30, ha="right")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel(f"Δ{ap} (points)")
    level = int(round(100 * report["params"]["level"]))
    ax.set_title(f"{ap} {100 * (report['base'][ap] or 0):.1f}: ΔAP of each oracle fix ({level}% bootstrap interval)",
                 fontsize=9)
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).stem}.tmp{Path(path).suffix}")
    try:
        fig.savefig(tmp, dpi=150)
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def _check_output(path: str | None, flag: str) -> None:
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{path}: is a folder ({flag} takes a file name)")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"{p.parent}: no such folder (for {flag} {path})")


def run(args) -> int:
    from visrc.evaluation.errors import error_analysis
    from visrc.evaluation.validation import load_gt_checked, load_results_checked
    from visrc.fileio import atomic_write_json

    _check_output(args.out, "--out")       # before the work, not after it
    _check_output(args.plot, "--plot")
    try:
        bins = [int(x) for x in args.length_bins.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--length-bins: expected comma-separated frame counts, got {args.length_bins!r}") from None
    gt, warnings = load_gt_checked(args.gt, validate=not args.no_validate)
    results, res_warnings = load_results_checked(args.results, gt, validate=not args.no_validate)
    for line in warnings + res_warnings:
        print(f"warning: {line}", file=sys.stderr)
    t0 = time.perf_counter()
    report = error_analysis(gt, results, t_f=args.t_f, t_b=args.t_b, length_bins=bins, n_boot=args.n_boot,
                            seed=args.seed)
    c = report["counts"]
    print(f"{args.results}: {c['predictions']} predictions ({c['matched']} matched), {c['gt_tracks']} GT tracks "
          f"(analysed in {time.perf_counter() - t0:.2f} s, {args.n_boot} resamples)")
    print(format_table(report))
    if args.out:
        report["inputs"] = {"gt": str(args.gt), "results": str(args.results)}
        atomic_write_json(args.out, report, indent=1)
        print(f"report written to {args.out}")
    if args.plot:
        plot(report, args.plot)
        print(f"plot written to {args.plot}")
    return 0
