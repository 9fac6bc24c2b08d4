"""Cost of one training iteration of a paper-scale full-model config, on CPU, against the toy's.

The full model (``paper_s50_full`` by default: TCIS, mask scoring, semantic segmentation, multi-label
classification, C + K = 99 classes) trains on synthetic data in the released formats at the paper's
360x640 (``tests/realformat.py``: YouTube-VIS 2021 frames, COCO 2017 and OpenImages images), drawn
by the config's own Multi-Source Data loader, optimizer and schedule; only the batch size
(``--batch``, default 1 key/reference pair) and the loader's workers (none) change. In the same
process, ``toy_baseline`` trains the same number of iterations on the toy benchmark (its own batch
of 4), so the printed ratio holds whatever else the machine is doing.

Printed per model: CPU seconds per iteration (process CPU time, all threads), wall seconds per
iteration, peak RSS during training and its growth over the RSS after building, per image
(= per key/reference pair of the batch). The first iteration warms up and is not counted.

    .venv/bin/python benchmarks/bench_paper_scale.py [--config paper_s50_full] [--iters 3] [--batch 1]
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))          # realformat: the synthetic released-format data


def _status_mib(field: str) -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    return float('nan')


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where not supported."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def measure(config: str, data_root: Path, iters: int, batch: int | None, seed: int = 0) -> dict:
    """Train ``config`` for ``iters`` + 1 iterations through its own loader; timings and memory."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from visrc.models.train_cli import prepare_config

    cfg = prepare_config(config, data_root=str(data_root))
    dl = copy.deepcopy(cfg.train_dataloader)
    dl.num_workers, dl.persistent_workers = 0, False
    if batch is not None:
        dl.batch_size = batch
    if dl.sampler.get('type') == 'MixedSourceSampler':             # an epoch long enough for the run
        dl.sampler.anchor_source, dl.sampler.length = None, (iters + 1) * dl.batch_size
    torch.manual_seed(seed)
    loader = Runner.build_dataloader(dl, seed=seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    rss_built = _status_mib('VmRSS')
    exact_peak = _reset_peak_rss()
    cpu, wall, it = [], [], iter(loader)
    for i in range(iters + 1):
        try:
            data = next(it)
        except StopIteration:
            it = iter(loader)
            data = next(it)
        c0, w0 = time.process_time(), time.perf_counter()
        model.train_step(data, optim)
        if i:                                                      # the first iteration warms up
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
    peak = _status_mib('VmHWM')
    n_img = dl.batch_size
    out = dict(config=config, batch=n_img, iters=iters, cpu_s_per_iter=statistics.median(cpu),
               wall_s_per_iter=statistics.median(wall), rss_built_mib=round(rss_built, 1),
               peak_rss_mib=round(peak, 1), peak_rss_per_image_mib=round(peak / n_img, 1),
               growth_per_image_mib=round((peak - rss_built) / n_img, 1), peak_is_this_phase=exact_peak,
               params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2))
    del model, optim, loader
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', default='paper_s50_full')
    p.add_argument('--iters', type=int, default=3, help='measured iterations (after one warm-up)')
    p.add_argument('--batch', type=int, default=1, help='key/reference pairs per iteration (paper: 4 per GPU)')
    p.add_argument('--json', help='also write the numbers there')
    args = p.parse_args(argv)

    import torch
    from realformat import make_real_format
    from visrc import numerics
    from visrc.data.toy import toy_root

    print(f'# {numerics.summary(numerics.apply_in_process())}; torch threads {torch.get_num_threads()}', flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_real_format(Path(tmp) / 'vis')
        toy = measure('toy_baseline', toy_root('small'), args.iters, None)
        paper = measure(args.config, root, args.iters, args.batch)
    ratio = paper['cpu_s_per_iter'] / toy['cpu_s_per_iter']
    per_image = (paper['cpu_s_per_iter'] / paper['batch']) / (toy['cpu_s_per_iter'] / toy['batch'])
    for r in (toy, paper):
        print(f"{r['config']:>18}: batch {r['batch']}, {r['params_m']} M params, "
              f"CPU {r['cpu_s_per_iter']:.2f} s/iter (wall {r['wall_s_per_iter']:.2f} s), "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB = {r['peak_rss_per_image_mib']:.0f} MiB/image "
              f"(+{r['growth_per_image_mib']:.0f} MiB/image over the built model)")
    print(f"ratio {args.config} / toy_baseline: {ratio:.1f}x CPU time per iteration, {per_image:.1f}x per image")
    if args.json:
        from visrc.fileio import atomic_write_json

        atomic_write_json(args.json, dict(toy=toy, paper=paper, ratio_per_iter=ratio, ratio_per_image=per_image),
                          indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
