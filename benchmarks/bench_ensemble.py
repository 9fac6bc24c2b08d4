"""Greedy Auto Ensemble of a split: the vectorized ``ensemble_videos`` against a per-box Python loop.

    python benchmarks/bench_ensemble.py [--videos 100 --frames 30 --dets 20 --dim 128 --models 2 3 4]

Synthetic predictions: ``visrc.tracking.synthetic_video`` (``--dets`` objects of 40 classes per
frame) is the truth; each model sees it with 10% of the detections dropped, 2 px box noise, score
and embedding noise. Timed, best of ``--repeats`` (the loop reference once):

* ``vectorized``: ``ensemble_videos(models)``, boxes-only path (clusters, fused boxes, max scores,
  mean unit embeddings, output ``VideoPredictions``), one pass over the whole split;
* ``loop``: the same rules written box by box in Python (the definition: each box compared with
  the seeds of its frame and class), building the same frames. Both outputs are checked equal.
* ``mmdet_wbf`` (informational): mmdet's ``weighted_boxes_fusion(conf_type='max')`` frame by frame,
  boxes only (no embeddings, no output objects): the box-by-box library implementation.
"""
from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

from visrc.ensemble import ensemble_videos
from visrc.tracking import FramePredictions, VideoPredictions, synthetic_video


def jittered(video: VideoPredictions, seed: int, drop: float = 0.1, noise: float = 2.0) -> VideoPredictions:
    rng = np.random.default_rng(seed)
    frames = []
    for f in video.frames:
        sub = f.select(rng.random(len(f)) >= drop)
        frames.append(FramePredictions(sub.boxes + rng.normal(0, noise, sub.boxes.shape),
                                       np.clip(sub.scores + rng.normal(0, 0.05, len(sub)), 0, 1), sub.labels,
                                       sub.embeddings + rng.normal(0, 0.05, sub.embeddings.shape)))
    return VideoPredictions(video.video_id, video.height, video.width, frames)


def _iou(a, b) -> float:
    """Scalar xyxy IoU of the loop reference, independent of the code under test (visrc.data.boxes)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def loop_ensemble(models: list[list[VideoPredictions]], iou_thr: float = 0.55) -> list[VideoPredictions]:
    """The reference: per frame, per box, plain Python."""
    out = []
    for vi, v0 in enumerate(models[0]):
        frames = []
        for t in range(len(v0)):
            dets = []  # (label, -score, model, det, box, score, emb)
            for m, split in enumerate(models):
                f = split[vi].frames[t]
                for d in range(len(f)):
                    dets.append((int(f.labels[d]), -float(f.scores[d]), m, d, f.boxes[d].tolist(), float(f.scores[d]),
                                 f.embeddings[d]))
            dets.sort(key=lambda x: x[:4])
            clusters = []  # [seed, members]
            for x in dets:
                best, best_iou = None, iou_thr
                for c in clusters:
                    if c[0][0] == x[0]:
                        iou = _iou(c[0][4], x[4])
                        if iou > best_iou:
                            best, best_iou = c, iou
                if best is None:
                    clusters.append([x, [x]])
                else:
                    best[1].append(x)
            boxes, scores, labels, embs = [], [], [], []
            for seed, members in sorted(clusters, key=lambda c: -c[0][5]):
                wsum = sum(x[5] for x in members)
                boxes.append([sum(x[5] * x[4][k] for x in members) / wsum for k in range(4)])
                scores.append(seed[5])
                labels.append(seed[0])
                e = sum(x[6] / np.linalg.norm(x[6]) for x in members)
                embs.append(e / np.linalg.norm(e))
            dim = models[0][vi].embed_dim
            frames.append(FramePredictions(np.array(boxes).reshape(-1, 4), scores, labels, np.array(embs).reshape(-1, dim)))
        out.append(VideoPredictions(v0.video_id, v0.height, v0.width, frames))
    return out


def load_mmdet_wbf():
    """mmdet's wbf.py alone (numpy + torch), without importing all of mmdet.models."""
    spec = importlib.util.find_spec("mmdet")
    path = Path(spec.origin).parent / "models" / "utils" / "wbf.py"
    ms = importlib.util.spec_from_file_location("_mmdet_wbf", path)
    mod = importlib.util.module_from_spec(ms)
    ms.loader.exec_module(mod)
    return mod


def mmdet_wbf_frames(mod, models: list[list[VideoPredictions]], iou_thr: float = 0.55) -> int:
    n = 0
    for vi, v0 in enumerate(models[0]):
        norm = np.array([v0.width, v0.height, v0.width, v0.height], np.float64)
        for t in range(len(v0)):
            fs = [split[vi].frames[t] for split in models]
            b, _, _ = mod.weighted_boxes_fusion([np.clip(f.boxes / norm, 0, 1) for f in fs], [f.scores for f in fs],
                                                [f.labels for f in fs], iou_thr=iou_thr, conf_type="max")
            n += len(b)
    return n


def same(a: list[VideoPredictions], b: list[VideoPredictions]) -> None:
    for va, vb in zip(a, b):
        for fa, fb in zip(va.frames, vb.frames):
            oa = np.lexsort((fa.labels, fa.boxes[:, 1], fa.boxes[:, 0], -fa.scores))
            ob = np.lexsort((fb.labels, fb.boxes[:, 1], fb.boxes[:, 0], -fb.scores))
            np.testing.assert_allclose(fa.boxes[oa], fb.boxes[ob], atol=1e-3)
            np.testing.assert_allclose(fa.scores[oa], fb.scores[ob], atol=1e-6)
            np.testing.assert_array_equal(fa.labels[oa], fb.labels[ob])
            np.testing.assert_allclose(fa.embeddings[oa], fb.embeddings[ob], atol=1e-5)


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=100)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--dets", type=int, default=20)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--models", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-wbf", action="store_true", help="skip the mmdet weighted_boxes_fusion timing")
    args = p.parse_args(argv)

    truth = [synthetic_video(video_id=i, num_frames=args.frames, num_objects=args.dets, dim=args.dim, seed=i)
             for i in range(args.videos)]
    all_models = [[jittered(v, 1000 * m + i) for i, v in enumerate(truth)] for m in range(max(args.models))]
    wbf = None if args.no_wbf else load_mmdet_wbf()  # imported before any timing
    rows = []
    print(f"{args.videos} videos x {args.frames} frames x ~{args.dets} detections per model, D={args.dim}")
    print(f"{'models':>6} {'in dets':>8} {'out dets':>8} {'vectorized s':>12} {'loop s':>8} {'loop/vec':>8} "
          f"{'mmdet wbf s':>11} {'wbf/vec':>8}")
    for M in args.models:
        models = all_models[:M]
        n_in = sum(len(f) for split in models for v in split for f in v.frames)
        t_vec, fused = best_of(lambda: ensemble_videos(models), args.repeats)
        t_loop, ref = best_of(lambda: loop_ensemble(models), 1)
        same(fused, ref)
        n_out = sum(len(f) for v in fused for f in v.frames)
        t_wbf = float("nan") if args.no_wbf else best_of(lambda: mmdet_wbf_frames(wbf, models), 1)[0]
        row = {"models": M, "in_dets": n_in, "out_dets": n_out, "vectorized_s": t_vec, "loop_s": t_loop,
               "loop_over_vectorized": t_loop / t_vec, "mmdet_wbf_s": t_wbf, "wbf_over_vectorized": t_wbf / t_vec}
        rows.append(row)
        print(f"{M:>6} {n_in:>8} {n_out:>8} {t_vec:>12.3f} {t_loop:>8.2f} {t_loop / t_vec:>7.1f}x "
              f"{t_wbf:>11.2f} {t_wbf / t_vec:>7.1f}x")
    return rows


if __name__ == "__main__":
    main()
