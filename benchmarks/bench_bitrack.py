"""BiTrack's cost over the forward-only tracker, on the same saved per-frame predictions.

    python benchmarks/bench_bitrack.py [--videos 100 --frames 30 --dets 10 --dim 128 --repeats 3]

Synthetic predictions (``visrc.tracking.synthetic_video``: slowly moving boxes, noisy per-object
embeddings, RLE masks) are saved to one ``.npz`` and loaded back, as a real run would. Two timings
per mode, best of ``--repeats``:

* tracking: association (one pass or two) + merge + building tracks (label voting, scores);
* from file: loading the ``.npz`` + tracking + YouTube-VIS results entries.

Detection is not in either: BiTrack reuses the detections, so on a real run its extra cost is one
more association pass and the merge, against a detector that costs far more per frame.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from visrc.evaluation.export import results_for_split
from visrc.tracking import (BiTrackConfig, associate_video, load_predictions, save_predictions, synthetic_video,
                            track_split)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=100)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--dets", type=int, default=10)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    videos = [synthetic_video(video_id=i, num_frames=args.frames, num_objects=args.dets, dim=args.dim,
                              height=args.height, width=args.width, seed=i, with_masks=True) for i in range(args.videos)]
    cfg = BiTrackConfig()
    cats = list(range(1, 41))
    with tempfile.TemporaryDirectory() as tmp:
        path = save_predictions(videos, Path(tmp) / "bench.npz")
        size_mb = path.stat().st_size / 2**20
        t_load = best_of(lambda: load_predictions(path), args.repeats)
        videos = load_predictions(path)
        out = {"frames": args.videos * args.frames, "load_s": t_load,
               "one_pass_s": best_of(lambda: [associate_video(v, cfg.tracker) for v in videos], args.repeats)}
        for mode in ("forward", "bitrack"):
            out[f"{mode}_track_s"] = best_of(lambda: track_split(videos, cfg, mode=mode), args.repeats)
            out[f"{mode}_file_s"] = best_of(lambda: results_for_split(track_split(load_predictions(path), cfg, mode=mode), cats),
                                            args.repeats)
    n = out["frames"]
    print(f"{args.videos} videos x {args.frames} frames x {args.dets} detections, D={args.dim}; "
          f"predictions file {size_mb:.1f} MiB, load {t_load:.3f} s; best of {args.repeats}")
    w = 30
    print(f"{'':<{w}}{'forward-only':>14}{'BiTrack':>14}{'ratio':>8}")
    for key, name in (("track", "tracking"), ("file", "from file (+load, results)")):
        f, b = out[f"forward_{key}_s"], out[f"bitrack_{key}_s"]
        out[f"ratio_{key}"] = b / f
        print(f"{name:<{w}}{f:>12.3f} s{b:>12.3f} s{b / f:>7.2f}x")
        print(f"{'  frames/s':<{w}}{n / f:>14.0f}{n / b:>14.0f}")
    merge = out["bitrack_track_s"] - 2 * out["one_pass_s"]
    print(f"one association pass {out['one_pass_s']:.3f} s; BiTrack = 2 passes + merge and track building ({merge:.3f} s)")
    return out


if __name__ == "__main__":
    main()
