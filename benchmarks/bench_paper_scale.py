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
``--device cuda`` measures on a GPU instead: wall seconds per iteration and peak allocated GPU memory.

Then it projects the config's 12-epoch training on 4 GPUs x the config's images per GPU: the epoch
length follows the config's Multi-Source Data sampler (every YouTube-VIS 2021 train key frame plus
the still images on top), the key frames come from ``--ytvis-json`` (a downloaded train JSON, exact)
or else from the published sizes in ``benchmarks/real_dataset_sizes.json`` (a range). The projection
assumes time linear in the batch and ideal data-parallel scaling; from a CPU measurement it gives
CPU core-hours, not GPU hours. ``--record`` writes everything to ``figures/paper_scale_cost.json``.

    .venv/bin/python benchmarks/bench_paper_scale.py [--config paper_s50_full] [--iters 3] [--batch 1]
        [--device cpu|cuda] [--ytvis-json train/instances.json] [--gpus 4] [--record]
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))          # realformat: the synthetic released-format data
SIZES = Path(__file__).resolve().parent / 'real_dataset_sizes.json'


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


def measure(config: str, data_root: Path, iters: int, batch: int | None, seed: int = 0, device: str = 'cpu') -> dict:
    """Train ``config`` for ``iters`` + 1 iterations through its own loader on ``device``; timings
    and memory (on CUDA: peak allocated GPU memory instead of RSS)."""
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
    model.to(device).train()
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    cuda = device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        rss_built = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
        exact_peak = True
    else:
        rss_built = _status_mib('VmRSS')
        exact_peak = _reset_peak_rss()
    cpu, wall, it = [], [], iter(loader)
    for i in range(iters + 1):
        try:
            data = next(it)
        except StopIteration:
            it = iter(loader)
            data = next(it)
        sync()
        c0, w0 = time.process_time(), time.perf_counter()
        model.train_step(data, optim)
        sync()
        if i:                                                      # the first iteration warms up
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _status_mib('VmHWM')
    n_img = dl.batch_size
    out = dict(config=config, device=device, batch=n_img, iters=iters, cpu_s_per_iter=statistics.median(cpu),
               wall_s_per_iter=statistics.median(wall), rss_built_mib=round(rss_built, 1),
               peak_rss_mib=round(peak, 1), peak_rss_per_image_mib=round(peak / n_img, 1),
               growth_per_image_mib=round((peak - rss_built) / n_img, 1), peak_is_this_phase=exact_peak,
               params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2))
    del model, optim, loader
    return out


def clock_of(device: str) -> str:
    """The per-iteration time that counts on ``device``: CPU time on CPU (all threads), wall time on a GPU."""
    return 'cpu_s_per_iter' if device == 'cpu' else 'wall_s_per_iter'


def key_frames_of(ytvis_json: str | Path) -> int:
    """Key frames one epoch of a YouTube-VIS JSON offers: the sum of its videos' ``length`` (the video
    dataset's ``video_length``), after :func:`visrc.data.ytvis.validate_ytvis` (masks not decoded)."""
    from visrc.data.ytvis import load_ytvis, validate_ytvis

    data = load_ytvis(ytvis_json, validate=False)
    validate_ytvis(data, source=ytvis_json, check_masks=False)
    return sum(int(v['length']) for v in data['videos'])


def published_key_frames(sizes: dict) -> tuple[int, int]:
    """(fewest, most) key frames of YouTube-VIS 2021 train from its published sizes."""
    videos = sizes['youtube_vis_2021_train_videos']['value']
    per = sizes['key_frames_per_video']
    return videos * per['min'], videos * per['max']


def project(key_frames: int, ratios, anchor: int, images_per_gpu: int, gpus: int, epochs: int,
            s_per_image: float, memory_per_gpu_mib: float) -> dict:
    """The full training's size from one measured iteration.

    Epoch samples = ceil(key_frames * sum(ratios) / ratios[anchor]) (``MixedSourceSampler`` with
    ``anchor_source``); iterations of ``gpus * images_per_gpu`` samples; ``device_hours`` = all images
    x ``s_per_image`` (one device's time per image: CPU core-seconds or GPU seconds), ``wall_hours``
    the same spread over ``gpus`` with ideal scaling."""
    samples = math.ceil(key_frames * sum(ratios) / ratios[anchor])
    per_iter = gpus * images_per_gpu
    iters_per_epoch = math.ceil(samples / per_iter)
    images = iters_per_epoch * epochs * per_iter
    device_hours = images * s_per_image / 3600
    return dict(key_frames=key_frames, samples_per_epoch=samples, iters_per_epoch=iters_per_epoch,
                iters_total=iters_per_epoch * epochs, images_total=images,
                device_hours=round(device_hours, 1), wall_hours_on_gpus=round(device_hours / gpus, 1),
                memory_per_gpu_mib=round(memory_per_gpu_mib))


def projections(config: str, measured: dict, gpus: int, ytvis_json: str | None) -> dict:
    """:func:`project` at the config's sampler, schedule and images per GPU, for the exact key frames
    of ``ytvis_json`` or the published range."""
    from visrc.models.train_cli import prepare_config

    cfg = prepare_config(config)
    dl = cfg.train_dataloader
    sampler = dl.sampler
    if sampler.get('type') != 'MixedSourceSampler' or sampler.get('anchor_source') is None:
        raise ValueError(f"{config}: the projection needs a MixedSourceSampler with anchor_source "
                         f"(train_dataloader.sampler is {sampler.get('type')})")
    per_gpu, epochs = int(dl.batch_size), int(cfg.train_cfg.max_epochs)
    on_cpu = measured['device'] == 'cpu'
    s_per_image = measured[clock_of(measured['device'])] / measured['batch']
    # memory of one GPU's batch: what the built model holds plus each image's growth
    memory = measured['rss_built_mib'] + measured['growth_per_image_mib'] * per_gpu
    sizes = json.loads(SIZES.read_text())
    if ytvis_json:
        frames = {'exact': key_frames_of(ytvis_json)}
    else:
        lo, hi = published_key_frames(sizes)
        frames = {'fewest': lo, 'most': hi}
    out = {name: project(n, sampler.ratios, sampler.anchor_source, per_gpu, gpus, epochs, s_per_image, memory)
           for name, n in frames.items()}
    if on_cpu:                               # CPU core-hours say nothing about hours on GPUs
        for q in out.values():
            q['wall_hours_on_gpus'] = None
    return dict(gpus=gpus, images_per_gpu=per_gpu, epochs=epochs, msd_ratios=list(sampler.ratios),
                anchor_source=sampler.anchor_source, time_unit='CPU core' if on_cpu else 'GPU',
                key_frames_from=str(ytvis_json) if ytvis_json else 'benchmarks/real_dataset_sizes.json',
                sizes=sizes, **out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', default='paper_s50_full')
    p.add_argument('--iters', type=int, default=3, help='measured iterations (after one warm-up)')
    p.add_argument('--batch', type=int, default=1, help='key/reference pairs per iteration (paper: 4 per GPU)')
    p.add_argument('--device', default='cpu', help="'cpu' (default) or 'cuda'")
    p.add_argument('--gpus', type=int, default=4, help='GPUs of the projected training (paper: 4)')
    p.add_argument('--ytvis-json', help='a YouTube-VIS 2021 train JSON: its exact key-frame count replaces '
                                        'the published range in the projection')
    p.add_argument('--json', help='also write the numbers there')
    p.add_argument('--record', action='store_true', help='also write them to figures/paper_scale_cost.json')
    args = p.parse_args(argv)

    import torch
    from realformat import make_real_format
    from visrc import numerics
    from visrc.data.toy import toy_root

    if args.device.startswith('cuda') and not torch.cuda.is_available():
        p.error('--device cuda: this torch has no CUDA device')
    print(f'# {numerics.summary(numerics.apply_in_process())}; torch threads {torch.get_num_threads()}; '
          f'device {args.device}', flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_real_format(Path(tmp) / 'vis')
        toy = measure('toy_baseline', toy_root('small'), args.iters, None, device=args.device)
        paper = measure(args.config, root, args.iters, args.batch, device=args.device)
    clock = clock_of(args.device)
    ratio = paper[clock] / toy[clock]
    per_image = (paper[clock] / paper['batch']) / (toy[clock] / toy['batch'])
    memory = 'peak RSS' if args.device == 'cpu' else 'peak GPU memory'
    for r in (toy, paper):
        print(f"{r['config']:>18}: batch {r['batch']}, {r['params_m']} M params, "
              f"CPU {r['cpu_s_per_iter']:.2f} s/iter (wall {r['wall_s_per_iter']:.2f} s), "
              f"{memory} {r['peak_rss_mib']:.0f} MiB = {r['peak_rss_per_image_mib']:.0f} MiB/image "
              f"(+{r['growth_per_image_mib']:.0f} MiB/image over the built model)")
    what = 'CPU time' if args.device == 'cpu' else 'wall time'
    print(f"ratio {args.config} / toy_baseline: {ratio:.1f}x {what} per iteration, {per_image:.1f}x per image")
    proj = projections(args.config, paper, args.gpus, args.ytvis_json)
    print(f"projected {proj['epochs']} epochs on {proj['gpus']} GPUs x {proj['images_per_gpu']} images "
          f"(MSD ratios {proj['msd_ratios']}, key frames from {proj['key_frames_from']}; "
          f"{proj['time_unit']} time linear in the batch, ideal scaling):")
    for name in ('exact', 'fewest', 'most'):
        if name in proj:
            q = proj[name]
            print(f"  {name:>6} {q['key_frames']} key frames: {q['iters_per_epoch']} iterations/epoch, "
                  f"{q['iters_total']} in all, {q['images_total']} images; {q['device_hours']} "
                  f"{proj['time_unit']}-hours"
                  + (f" = {q['wall_hours_on_gpus']} h on {proj['gpus']} GPUs" if q['wall_hours_on_gpus'] else '')
                  + f"; {q['memory_per_gpu_mib']} MiB per GPU's batch (from {memory})")
    doc = dict(toy=toy, paper=paper, ratio_per_iter=ratio, ratio_per_image=per_image, projection=proj,
               cpus=os.cpu_count(), numerics=numerics.describe(),
               command='benchmarks/bench_paper_scale.py ' + ' '.join(argv if argv is not None else sys.argv[1:]))
    from visrc.fileio import atomic_write_json

    if args.json:
        atomic_write_json(args.json, doc, indent=1)
    if args.record:
        from visrc.viz.plots import figures_dir

        print('wrote', atomic_write_json(figures_dir() / 'paper_scale_cost.json', doc, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
