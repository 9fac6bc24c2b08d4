"""Benchmark: visrc.evaluation.bootstrap (1000 resamples over videos) against one evaluate_ytvis.

Inputs come from ``bench_evaluation.make_inputs`` (moving ellipse tracks, jittered predictions and
false positives, score ties from rounded scores) at the toy benchmark's scale: by default 64
videos of 24-36 frames at 144x256, 150 GT tracks over 6 categories, with the ``10/video`` results
(and ``--per-video 100`` for the top-100 case). Prints the best of ``--repeat`` times of one full
``evaluate_ytvis``, of ``bootstrap_ap`` (``--boot`` resamples, its one-time matching included) and
of ``paired_bootstrap`` on the same data, each as a ratio to the single evaluation, and the
interval found.

    python benchmarks/bench_bootstrap.py
    python benchmarks/bench_bootstrap.py --videos 400 --tracks 1000 --cats 40 --height 720 --width 1280
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_evaluation  # noqa: E402  (its input generator)

from visrc.evaluation.bootstrap import bootstrap_ap, paired_bootstrap  # noqa: E402
from visrc.evaluation.ytvis_eval import evaluate_ytvis  # noqa: E402


def _best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=64)
    ap.add_argument("--tracks", type=int, default=150)
    ap.add_argument("--cats", type=int, default=6)
    ap.add_argument("--height", type=int, default=144)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--per-video", type=int, choices=(10, 100), default=10, help="which result set")
    ap.add_argument("--boot", type=int, default=1000, help="resamples")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (the best is reported)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    # the generator draws at its module's frame size
    bench_evaluation.H, bench_evaluation.W = args.height, args.width
    gt, res10, res100 = bench_evaluation.make_inputs(args.videos, args.tracks, args.cats, seed=args.seed)
    results = res10 if args.per_video == 10 else res100
    # a second result set for the paired bootstrap: every third prediction's score halved
    other = [dict(r, score=r["score"] * 0.5) if i % 3 == 0 else r for i, r in enumerate(results)]
    n_frames = sum(v["length"] for v in gt["videos"])
    print(f"inputs: {len(gt['videos'])} videos, {n_frames} frames at {args.height}x{args.width}, "
          f"{len(gt['annotations'])} GT tracks, {len(gt['categories'])} categories, {len(results)} predictions")
    evaluate_ytvis(gt, results)    # start-up (numba kernels) outside the timings

    t_eval, full = _best(lambda: evaluate_ytvis(gt, results), args.repeat)
    t_boot, boot = _best(lambda: bootstrap_ap(gt, results, n_boot=args.boot, seed=args.seed), args.repeat)
    t_pair, diff = _best(lambda: paired_bootstrap(gt, results, other, n_boot=args.boot, seed=args.seed), args.repeat)
    assert boot.point["AP"] == full.stats["AP"]
    print(f"evaluate_ytvis (once)        {t_eval:7.3f} s   ratio  1.0")
    print(f"bootstrap_ap ({args.boot} resamples) {t_boot:7.3f} s   ratio {t_boot / t_eval:4.1f}")
    print(f"paired_bootstrap ({args.boot})     {t_pair:7.3f} s   ratio {t_pair / t_eval:4.1f}")
    print(f"AP {boot.point['AP']:.4f}  95% interval [{boot.low['AP']:.4f}, {boot.high['AP']:.4f}]  "
          f"std {boot.std['AP']:.4f}; paired AP difference {diff.point['AP']:+.4f} "
          f"[{diff.low['AP']:+.4f}, {diff.high['AP']:+.4f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
