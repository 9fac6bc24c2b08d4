"""Training cost of each Table 1 row relative to the baseline, on the same video batches.

    python benchmarks/bench_ablation_train.py [--iters 4] [--threads 1] [--rows toy_baseline toy_swin]

Builds each toy ablation config, takes the same 4 key/reference video pairs of the small toy
benchmark (generated in a temp dir), and times forward + backward + SGD step, median over
``--iters`` after one warm-up. Prints seconds per iteration and the ratio to ``toy_baseline``
measured in the same process (``--rows``: other configs, e.g. Table 2's backbones
``toy_baseline toy_swin``; the first one is the reference; ``--variant KEY=VALUE ...``: the
first row again with config overrides, e.g. a cheaper RoI sampler). (MSD's still-image samples are left
out so every row sees the same input; the ratio is the cost of the row's modules.)

Freshly initialised models have zero TCIS offsets, and mmcv's CPU DeformConv2d backward gets
slower once they are not: pass trained checkpoints with ``--weights toy_tcis=PATH ...`` (e.g. the
notebook 03 runs in ``runs/experiments/``) to time the rows as they train. That cost is why the toy
configs run TCIS on one positive RoI per instance (``tcis_rois_per_instance=1``).
"""
from __future__ import annotations

import argparse
import ast
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROWS = ("toy_baseline", "toy_tcis", "toy_tcis_multitask", "toy_tcis_multitask_msd")


def _video_batch(cfg, data_root: Path, n: int):
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg = ds_cfg.datasets[0] if "datasets" in ds_cfg else ds_cfg      # toy_tcis_multitask_msd: its video source
    ds = DATASETS.build(ds_cfg)
    return pseudo_collate([ds[(i % len(ds), 1)] for i in range(n)])


def time_row(name: str, data_root: Path, iters: int, batch: int, weights: str | None = None,
             cfg_options: dict | None = None) -> float:
    from visrc.models.train_cli import prepare_config

    torch.manual_seed(0)
    cfg = prepare_config(name, data_root=str(data_root), work_dir=tempfile.mkdtemp(), cfg_options=cfg_options)
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model).train()
    if weights:
        from visrc.models.checkpoint import load_weights
        load_weights(model, weights)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    data = _video_batch(cfg, data_root, batch)
    times = []
    for i in range(iters + 1):
        t0 = time.perf_counter()
        inputs = model.data_preprocessor(data, True)
        losses = model.loss(**inputs)
        loss = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if "loss" in k)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:                     # the first iteration warms up allocators and caches
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", nargs="+", default=list(ROWS), help="configs to time; the first is the reference")
    p.add_argument("--weights", nargs="*", default=[], metavar="ROW=CKPT", help="trained weights of a row")
    p.add_argument("--variant", nargs="*", default=[], metavar="KEY=PYTHON_VALUE",
                   help="also time the first row with these config overrides, e.g. "
                        "model.track_head.train_cfg.sampler.num=32")
    args = p.parse_args()
    weights = dict(w.split("=", 1) for w in args.weights)
    variant = {k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.variant)}
    torch.set_num_threads(args.threads)
    from visrc.data.toy import make_toy

    with tempfile.TemporaryDirectory() as tmp:
        root = make_toy(Path(tmp) / "toy", preset="small", progress=False)
        base = None
        for name in args.rows:
            t = time_row(name, root, args.iters, args.batch, weights.get(name))
            base = base or t
            print(f"{name:20s} {t:6.3f} s/iter   ratio to {args.rows[0]} {t / base:5.2f}x", flush=True)
        if variant:
            name = args.rows[0]
            t = time_row(name, root, args.iters, args.batch, weights.get(name), cfg_options=variant)
            print(f"{name} + {args.variant}: {t:6.3f} s/iter   ratio to {name} {t / base:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
