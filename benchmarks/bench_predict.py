"""Seconds per frame of ``VideoPredictor`` with its fast kernels (the default) against mmcv's ops.

    python benchmarks/bench_predict.py [--configs toy_baseline toy_swin_tcis_multitask_msd]
        [--checkpoint CKPT] [--frames 30] [--rounds 2] [--data-root DIR]

Per config: one model (random weights unless ``--checkpoint``; score thresholds 0, so every frame
keeps mmdet's ``max_per_img`` detections and the mask and track heads run on all of them, the
worst case), two predictors on copies of it, ``fast=False`` (mmcv's ``RoIAlign``) and the default
(:class:`visrc.models.fast_train.FastRoIAlign`), the same ``--frames`` frames of the small toy's
valid split through each, rounds alternating so other load on the machine spreads evenly. Prints
milliseconds per frame of each, the ratio fast / plain (below 1 is faster) and whether the
predictions (boxes, scores, labels, embeddings, mask RLEs) are identical. Run it in the pinned
environment (``env $(python -m visrc.numerics | sed 's/export //') python benchmarks/...``) for the
kernels the main job uses.
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch


def _frames(data_root: Path, n: int) -> list[str]:
    from visrc.data.ytvis import load_ytvis

    videos = load_ytvis(data_root / 'valid' / 'instances.json')['videos']
    paths = [str(data_root / 'valid' / 'JPEGImages' / f) for v in videos for f in v['file_names']]
    return paths[:n]


def _same(a, b) -> bool:
    names = ('boxes', 'scores', 'labels', 'embeddings')
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in names) and a.masks == b.masks


def bench(config: str, frames: list[str], rounds: int, checkpoint: str | None = None) -> dict:
    from visrc.models.config import build_model, load_config
    from visrc.models.predictor import VideoPredictor

    cfg = load_config(config)
    if checkpoint is None:
        cfg.model.detector.test_cfg.rcnn.score_thr = 0.0
        cfg.model.embed_score_thr = 0.0
    torch.manual_seed(0)
    model = build_model(cfg, checkpoint)
    predictors = {'plain': VideoPredictor(copy.deepcopy(model), cfg, fast=False),
                  'fast': VideoPredictor(model, cfg)}
    seconds = {k: 0.0 for k in predictors}
    outputs = {}
    for p in predictors.values():
        p.predict_frame(frames[0])                          # start-up (numba, allocations) unmeasured
    for _ in range(rounds):
        for name, p in predictors.items():
            t0 = time.perf_counter()
            outputs[name] = [p.predict_frame(f) for f in frames]
            seconds[name] += time.perf_counter() - t0
    per_frame = {k: v / (rounds * len(frames)) for k, v in seconds.items()}
    return dict(config=config, plain_ms=1e3 * per_frame['plain'], fast_ms=1e3 * per_frame['fast'],
                ratio=per_frame['fast'] / per_frame['plain'],
                identical=all(_same(a, b) for a, b in zip(outputs['plain'], outputs['fast'])),
                detections=sum(len(f) for f in outputs['fast']) / len(frames))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--configs', nargs='+', default=['toy_baseline', 'toy_swin_tcis_multitask_msd'])
    p.add_argument('--checkpoint', help='weights for every config (default: random weights)')
    p.add_argument('--frames', type=int, default=30)
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--data-root', type=Path, help='dataset root (default: the small toy benchmark)')
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from visrc.data.toy import toy_root
    frames = _frames(args.data_root or toy_root('small'), args.frames)
    print(f"{'config':30s} {'mmcv ms/frame':>14s} {'fast ms/frame':>14s} {'fast/mmcv':>10s} {'dets/frame':>11s}  identical")
    for config in args.configs:
        r = bench(config, frames, args.rounds, args.checkpoint)
        print(f"{r['config']:30s} {r['plain_ms']:14.1f} {r['fast_ms']:14.1f} {r['ratio']:10.3f} "
              f"{r['detections']:11.1f}  {r['identical']}")


if __name__ == '__main__':
    main()
