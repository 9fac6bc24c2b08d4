"""Benchmark: visrc.evaluation.evaluate_ytvis against the official evaluator (mmdet 3.3.0's YTVISeval).

Inputs are generated at YouTube-VIS 2021 valid scale: 400 videos of 24-36 frames (30 on average) at
720x1280, about 1,000 GT tracks over 40 categories (moving, resizing ellipses; late entries, early
exits and occlusion gaps give null frames; a few crowd tracks). Predictions are jittered copies of
GT tracks (sometimes with the wrong class or dropped frames) plus false positives, in two cases:

* ``10/video``: 10 predictions per video, one class each (a typical top-10 submission);
* ``100/video``: 25 mask tracks per video, each emitted with 4 classes (query x class top-100 as
  Mask2Former-VIS/IDOL-style models output), so 100 predictions per video.

A third case is the crowded one, where the official evaluator's per-frame ``merge``/``area`` calls
over every (prediction, GT) pair dominate ("stuck calculating IoU"):

* ``OVIS-like``: 140 videos of 60 frames at 720x1280, one class, 6 large, heavily overlapping GT
  tracks per video around a common moving centre and 30 predictions per video (jittered copies of
  the GT tracks and false positives inside the crowd), so every prediction meets every GT track.

Both evaluators get the same in-memory dicts (the oracle a deep copy, made outside the timing, since
it mutates its input). Prints visrc's one-time start-up (importing numba and loading its compiled
kernels; the first run in a fresh clone also compiles them), then per case the times (visrc: the
best of ``--repeat`` runs), the ratio and the largest absolute difference over the 12 summary values
and the per-category AP; exits non-zero if they differ by more than 1e-6.

    python benchmarks/bench_evaluation.py            # full scale (a few minutes on 2 cores)
    python benchmarks/bench_evaluation.py --small    # 40 + 14 videos, about half a minute
    python benchmarks/bench_evaluation.py --cases ovis

The ``errors`` case runs the TIVE error analysis (:func:`visrc.evaluation.errors.error_analysis`, no
bootstrap) on the OVIS-like inputs and prints its time against the plain way, one
``evaluate_ytvis`` of the baseline and of every fix's fixed files (:func:`~visrc.evaluation.errors.fixed_inputs`),
in the same process; it checks that both give the same ΔAP, then times the analysis with
``--errors-boot`` resamples (the intervals) on its own:

    python benchmarks/bench_evaluation.py --cases errors --ovis-videos 40

Most of visrc's time in the crowded case is the run intersections and the RLE decoding
(:mod:`visrc.evaluation.rle_runs`).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time

import numpy as np
from pycocotools import mask as mask_utils

from visrc.evaluation.oracle import run_oracle
from visrc.evaluation.ytvis_eval import SUMMARY_KEYS, evaluate_ytvis

H, W = 720, 1280
N_VERTS = 32
_TH = np.linspace(0, 2 * np.pi, N_VERTS, endpoint=False)


def _ellipses(params: np.ndarray) -> list[dict]:
    """RLEs of ellipses (cx, cy, rx, ry) rasterized by pycocotools (polygons, no dense masks)."""
    if len(params) == 0:
        return []
    cx, cy, rx, ry = (params[:, i:i + 1] for i in range(4))
    xs = np.clip(cx + rx * np.cos(_TH), 0, W)
    ys = np.clip(cy + ry * np.sin(_TH), 0, H)
    polys = np.stack([xs, ys], axis=2).reshape(len(params), -1)
    rles = mask_utils.frPyObjects([p.tolist() for p in polys], H, W)
    for r in rles:
        r["counts"] = r["counts"].decode("ascii")
    return rles


def _presence(rng, L: int, window_prob: float, min_window: int) -> np.ndarray:
    """(L,) bool frames where a track is present: 5% random gaps and, with ``window_prob``, only a
    window of at least ``min_window`` frames; never empty."""
    present = rng.random(L) > 0.05
    if rng.random() < window_prob:
        a, b = sorted(rng.integers(0, L + 1, 2))
        if b - a >= min_window:
            present[:a] = False
            present[b:] = False
    if not present.any():
        present[L // 2] = True
    return present


def _track_params(rng, length: int, size: float) -> np.ndarray:
    """(length, 4) ellipse parameters of a slowly moving, slowly resizing object."""
    c0 = rng.uniform([0.1 * W, 0.1 * H], [0.9 * W, 0.9 * H])
    vel = rng.normal(0, [4, 3])
    c = c0 + np.cumsum(rng.normal(vel, 1.5, (length, 2)), axis=0)
    aspect = np.exp(rng.normal(0, 0.3))
    r = size * np.exp(np.cumsum(rng.normal(0, 0.02, length)))
    return np.c_[c, r * aspect, r / aspect]


def make_inputs(n_videos: int = 400, n_tracks: int = 1000, n_cats: int = 40, seed: int = 0):
    """GT and the two result sets (10/video and 100/video). Returns (gt, res10, res100)."""
    rng = np.random.default_rng(seed)
    videos, anns, res10, res100 = [], [], [], []
    per_video = np.ones(n_videos, int) + np.bincount(rng.integers(0, n_videos, max(0, n_tracks - n_videos)),
                                                     minlength=n_videos)
    for v in range(n_videos):
        vid = v + 1
        L = int(rng.integers(24, 37))
        videos.append({"id": vid, "length": L, "height": H, "width": W,
                       "file_names": [f"{vid:05d}/{t:05d}.jpg" for t in range(L)]})
        # ---- GT tracks
        gts = []
        for _ in range(per_video[v]):
            size = float(np.exp(rng.uniform(np.log(15), np.log(260))))
            p = _track_params(rng, L, size)
            present = _presence(rng, L, window_prob=0.3, min_window=3)
            gts.append((int(rng.integers(1, n_cats + 1)), p, present))
        # ---- predicted mask tracks: jittered GT (1-2 each), the rest false positives, 25 in all
        preds = []   # (params, present, true category or None, quality)
        for cat, p, present in gts:
            for _ in range(int(rng.integers(1, 3))):
                q = rng.uniform(0.02, 0.25)
                jit = p.copy()
                jit[:, :2] += rng.normal(0, q, (L, 2)) * p[:, 2:4]
                jit[:, 2:] *= np.exp(rng.normal(0, q, (L, 2)))
                keep = present & (rng.random(L) > 0.03)
                if rng.random() < 0.2:   # a track that also fires where the object is absent
                    keep |= rng.random(L) < 0.3
                preds.append((jit, keep, cat, q))
        while len(preds) < 25:
            size = float(np.exp(rng.uniform(np.log(15), np.log(200))))
            pf = _track_params(rng, L, size)
            keep = rng.random(L) > 0.1
            preds.append((pf, keep, None, 1.0))
        preds = preds[:25]
        # rasterize all masks of the video in one call per kind
        g_rles = _ellipses(np.concatenate([p for _, p, _ in gts]))
        p_rles = _ellipses(np.concatenate([p for p, _, _, _ in preds]))
        for i, (cat, _, present) in enumerate(gts):
            segs = [g_rles[i * L + t] if present[t] else None for t in range(L)]
            areas = [int(mask_utils.area(s)) if s else None for s in segs]
            boxes = [mask_utils.toBbox(s).tolist() if s else None for s in segs]
            anns.append({"id": len(anns) + 1, "video_id": vid, "category_id": cat,
                         "iscrowd": int(rng.random() < 0.005), "segmentations": segs,
                         "areas": areas, "bboxes": boxes, "height": H, "width": W})
        outs = []
        for i, (p, keep, cat, q) in enumerate(preds):
            segs = [p_rles[i * L + t] if keep[t] else None for t in range(L)]
            base = float(np.clip(rng.beta(5, 2) * (1 - q), 0, 1)) if cat else float(rng.beta(2, 5))
            top = cat if (cat and rng.random() < 0.8) else int(rng.integers(1, n_cats + 1))
            others = rng.choice([c for c in range(1, n_cats + 1) if c != top], 3, replace=False)
            scores = np.round(base * np.array([1.0, 0.3, 0.1, 0.05]) * rng.uniform(0.8, 1.0, 4), 4)
            outs.append((float(scores[0]), segs, [top, *others.tolist()], scores))
        # top-10: the 10 most confident mask tracks with their best class; top-100: all 25 x 4 classes
        for rank, (_, segs, cls, scores) in enumerate(sorted(outs, key=lambda o: -o[0])):
            if rank < 10:
                res10.append({"video_id": vid, "category_id": cls[0], "score": float(scores[0]),
                              "segmentations": list(segs)})
            for c, s in zip(cls, scores):
                res100.append({"video_id": vid, "category_id": int(c), "score": float(s),
                               "segmentations": list(segs)})
    cats = [{"id": c, "name": f"class{c}", "supercategory": "object"} for c in range(1, n_cats + 1)]
    gt = {"videos": videos, "annotations": anns, "categories": cats}
    # as read from files: no Python object is shared between predictions
    return json.loads(json.dumps(gt)), json.loads(json.dumps(res10)), json.loads(json.dumps(res100))


def make_ovis_inputs(n_videos: int = 140, n_frames: int = 60, n_gt: int = 6, n_pred: int = 30, seed: int = 0):
    """An OVIS-like crowded case: one class, ``n_gt`` heavily overlapping GT tracks per video and
    ``n_pred`` predictions (jittered copies of the GT tracks, one or more each, and false positives
    in the same crowd), all of one class. Returns (gt, results)."""
    rng = np.random.default_rng(seed)
    videos, anns, res = [], [], []
    for v in range(n_videos):
        vid = v + 1
        L = n_frames
        videos.append({"id": vid, "length": L, "height": H, "width": W,
                       "file_names": [f"{vid:05d}/{t:05d}.jpg" for t in range(L)]})
        # the crowd: tracks around one moving centre, large and overlapping (occlusions)
        centre = _track_params(rng, L, 1.0)[:, :2]
        gts = []
        for _ in range(n_gt):
            size = float(np.exp(rng.uniform(np.log(60), np.log(220))))
            p = _track_params(rng, L, size)
            p[:, :2] = centre + rng.normal(0, 0.5, 2) * size + (p[:, :2] - p[:1, :2]) * 0.3
            present = _presence(rng, L, window_prob=0.4, min_window=5)   # enters late or leaves early
            gts.append((p, present))
        preds = []   # (params, present, quality)
        src = list(range(n_gt)) + rng.integers(0, n_gt, max(0, n_pred - n_gt - n_pred // 5)).tolist()
        for i in src[:n_pred]:
            p, present = gts[i]
            q = rng.uniform(0.02, 0.3)
            jit = p.copy()
            jit[:, :2] += rng.normal(0, q, (L, 2)) * p[:, 2:4]
            jit[:, 2:] *= np.exp(rng.normal(0, q, (L, 2)))
            keep = present & (rng.random(L) > 0.03)
            if rng.random() < 0.3:
                keep |= rng.random(L) < 0.3
            preds.append((jit, keep, q))
        while len(preds) < n_pred:   # false positives inside the crowd
            size = float(np.exp(rng.uniform(np.log(40), np.log(200))))
            pf = _track_params(rng, L, size)
            pf[:, :2] = centre + rng.normal(0, 0.8, 2) * size + (pf[:, :2] - pf[:1, :2]) * 0.3
            preds.append((pf, rng.random(L) > 0.1, 1.0))
        g_rles = _ellipses(np.concatenate([p for p, _ in gts]))
        p_rles = _ellipses(np.concatenate([p for p, _, _ in preds]))
        for i, (_, present) in enumerate(gts):
            segs = [g_rles[i * L + t] if present[t] else None for t in range(L)]
            anns.append({"id": len(anns) + 1, "video_id": vid, "category_id": 1, "iscrowd": 0,
                         "segmentations": segs,
                         "areas": [int(mask_utils.area(s)) if s else None for s in segs],
                         "bboxes": [mask_utils.toBbox(s).tolist() if s else None for s in segs],
                         "height": H, "width": W})
        for i, (_, keep, q) in enumerate(preds):
            score = float(np.round(rng.beta(5, 2) * (1 - q), 4)) if q < 1 else float(np.round(rng.beta(2, 5), 4))
            res.append({"video_id": vid, "category_id": 1, "score": score,
                        "segmentations": [p_rles[i * L + t] if keep[t] else None for t in range(L)]})
    gt = {"videos": videos, "annotations": anns, "categories": [{"id": 1, "name": "object", "supercategory": "object"}]}
    return json.loads(json.dumps(gt)), json.loads(json.dumps(res))


def load_oracle():
    from visrc.evaluation.oracle import load_oracle as _load

    try:
        YTVIS, YTVISeval = _load()
    except ImportError as e:
        raise SystemExit(str(e))
    if not hasattr(np, "float"):
        np.float = float   # mmdet 3.3.0's accumulate uses np.float (removed in numpy 1.24)
    return YTVIS, YTVISeval



def bench_case(name: str, gt: dict, results: list, repeat: int) -> bool:
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        ours = evaluate_ytvis(gt, results)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    ours_stats = ours.stats_vector
    ours_cat = np.array([ours.per_category[c] for c in ours.cat_ids])
    gt_c, res_c = copy.deepcopy(gt), copy.deepcopy(results)
    t0, c0 = time.perf_counter(), time.process_time()
    ref = run_oracle(gt_c, res_c, copy_inputs=False)    # inputs copied above, outside the timing
    ref_stats, ref_cat = ref["stats"], np.array(list(ref["per_category"].values()))
    o_wall, o_cpu = time.perf_counter() - t0, time.process_time() - c0
    diff = max(np.abs(ours_stats - ref_stats).max(), np.abs(ours_cat - ref_cat).max())
    w, c = min(wall), min(cpu)
    print(f"{name:>10}: {len(results):6d} predictions | visrc {w:6.2f} s (cpu {c:5.2f}) | "
          f"oracle {o_wall:6.2f} s (cpu {o_cpu:5.2f}) | ratio {o_wall / w:5.1f}x (cpu {o_cpu / c:4.1f}x) | "
          f"max |diff| {diff:.1e}")
    print("            " + "  ".join(f"{k}={v:.4f}" for k, v in zip(SUMMARY_KEYS, ours_stats)))
    return diff <= 1e-6


def bench_errors(gt: dict, results: list, repeat: int, n_boot: int) -> bool:
    """The error analysis against a plain re-evaluation per fix (same process, same inputs)."""
    from visrc.evaluation.errors import FIXES, error_analysis, fixed_inputs

    wall = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        report = error_analysis(gt, results, n_boot=0)
        wall.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    base = evaluate_ytvis(gt, results).stats
    ref = {}
    for fix in FIXES:
        fixed = evaluate_ytvis(*fixed_inputs(gt, results, report, fix)).stats
        ref[fix] = {m: fixed[m] - base[m] for m in ("AP", "AP50")}
    plain = time.perf_counter() - t0
    diff = max(abs(report["delta_ap"][f][m]["value"] - ref[f][m]) for f in FIXES for m in ("AP", "AP50"))
    w = min(wall)
    c = report["counts"]
    print(f"{'errors':>10}: {len(results):6d} predictions, {c['gt_tracks']} GT tracks | analysis {w:6.2f} s | "
          f"plain re-evaluation of the baseline and {len(FIXES)} fixes {plain:6.2f} s | ratio {plain / w:5.1f}x | "
          f"max |dAP diff| {diff:.1e}")
    print("            " + "  ".join(f"d{f}={report['delta_ap'][f]['AP']['value']:+.4f}" for f in FIXES))
    if n_boot:
        t0 = time.perf_counter()
        error_analysis(gt, results, n_boot=n_boot)
        print(f"            with {n_boot} bootstrap resamples (intervals of every dAP): "
              f"{time.perf_counter() - t0:.2f} s")
    return diff <= 1e-9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="40 videos / 100 tracks: a quick run")
    ap.add_argument("--videos", type=int, default=400)
    ap.add_argument("--tracks", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="visrc runs per case (the best is reported)")
    ap.add_argument("--cases", default="10,100,ovis",
                    help="which cases to run: 10 and 100 (predictions per video), ovis (the crowded case), "
                         "errors (the error analysis on the crowded case's inputs, not in the default)")
    ap.add_argument("--errors-boot", type=int, default=200,
                    help="bootstrap resamples of the errors case's second, timed-alone run (0: skip it)")
    ap.add_argument("--ovis-videos", type=int, default=140, help="videos of the OVIS-like case")
    args = ap.parse_args(argv)
    if args.small:
        args.videos, args.tracks, args.ovis_videos = 40, 100, 14
    wanted = [c.strip() for c in args.cases.split(",")]
    if {"10", "100", "ovis"} & set(wanted):   # the errors case needs no oracle
        load_oracle()    # fails early if mmdet is missing; sets np.float for the port
    t0 = time.perf_counter()
    evaluate_ytvis(*make_ovis_inputs(1, n_frames=2, n_gt=1, n_pred=2))
    print(f"visrc start-up: {time.perf_counter() - t0:.2f} s (importing numba and loading its compiled kernels, "
          f"once per process; not in the times below)")
    ok = True
    if {"10", "100"} & set(wanted):
        t0 = time.perf_counter()
        gt, res10, res100 = make_inputs(args.videos, args.tracks, seed=args.seed)
        n_frames = sum(v["length"] for v in gt["videos"])
        print(f"inputs: {len(gt['videos'])} videos, {n_frames} frames at {H}x{W}, {len(gt['annotations'])} GT tracks, "
              f"{len(gt['categories'])} categories (generated in {time.perf_counter() - t0:.1f} s)")
        cases = {"10": ("10/video", res10), "100": ("100/video", res100)}
        for c in wanted:
            if c in cases:
                name, res = cases[c]
                ok &= bench_case(name, gt, res, args.repeat)
    if {"ovis", "errors"} & set(wanted):
        t0 = time.perf_counter()
        gt, res = make_ovis_inputs(args.ovis_videos, seed=args.seed)
        n_frames = sum(v["length"] for v in gt["videos"])
        print(f"OVIS-like inputs: {len(gt['videos'])} videos, {n_frames} frames at {H}x{W}, "
              f"{len(gt['annotations'])} GT tracks, 1 category (generated in {time.perf_counter() - t0:.1f} s)")
        if "ovis" in wanted:
            ok &= bench_case("OVIS-like", gt, res, args.repeat)
        if "errors" in wanted and not bench_errors(gt, res, args.repeat, args.errors_boot):
            print("FAIL: the error analysis and the plain re-evaluation per fix disagree by more than 1e-9",
                  file=sys.stderr)
            return 1
    if not ok:
        print("FAIL: visrc and the oracle disagree by more than 1e-6", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
