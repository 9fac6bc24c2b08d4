"""Speed and memory of the VIS model against mmdet's stock MaskTrack R-CNN R50, on CPU.

For each input size, every model gets the same frames (toy frames resized by the same pipeline):

* training: seconds per iteration on one key/reference pair (the stock config's 1 pair per GPU);
* inference: seconds per frame, online (detections + embeddings + association: visrc's
  ``Tracker.update`` for ours, ``MaskTrackRCNNTracker`` inside ``predict`` for the stock model);
  both forced to the same number of detections per frame (``--dets``, default 100 = mmdet's
  ``max_per_img``: score_thr 0 with random weights) so mask and track heads run on the same boxes,
  and ours embeds all of them (``embed_score_thr=0``, the worst case for the track head);
* peak memory: the measuring process's peak RSS, and its growth over the RSS after building.

Models: ``toy`` (visrc/configs/toy_baseline.py) at the toy's 256x144; ``paper_s50`` (ResNeSt-50)
and ``paper_s50[resnet50]`` (the same model with the stock ResNet-50 backbone, isolating what the
VIS model adds: P7, the quasi-dense track head) at 640x360; ``stock`` = mmdet's
``masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2019.py`` at each size. Each measurement runs in
its own process (clean peak RSS); rounds alternate models so load from other processes spreads
evenly; the medians are reported, with ratios ours / stock (time: > 1 is slower).

    .venv/bin/python benchmarks/bench_model.py [--rounds 2] [--iters 3] [--frames 6] [--quick]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STOCK_CONFIG = 'masktrack_rcnn/masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2019.py'
SCALES = {'toy': (256, 144), 'paper': (640, 360)}


def _rss_mib() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def _set_scale(pipeline, scale):
    for t in pipeline:
        for tt in t.get('transforms', []):
            if tt['type'] == 'Resize':
                tt['scale'] = tuple(scale)


def _build(model_name: str, scale, dets: int = 100):
    """-> (model, is_stock, test pipeline cfg, train pipeline cfg)."""
    import mmdet
    from mmengine.config import Config
    from mmdet.registry import MODELS

    from visrc.models.config import load_config

    ours = load_config('toy_baseline')          # registers everything; its pipelines are reused
    train_pipe, test_pipe = copy.deepcopy(ours.train_pipeline), copy.deepcopy(ours.test_pipeline)
    _set_scale(train_pipe, scale)
    _set_scale(test_pipe, scale)
    if model_name == 'stock':
        cfg = Config.fromfile(str(Path(mmdet.__file__).parent / '.mim' / 'configs' / STOCK_CONFIG))
        cfg.model.detector.init_cfg = None
        cfg.model.detector.backbone.init_cfg = None
        cfg.model.detector.roi_head.bbox_head.num_classes = 6     # the toy classes, same as ours
        cfg.model.detector.roi_head.mask_head.num_classes = 6
    else:
        base = 'toy_baseline' if model_name == 'toy' else 'paper_s50'
        cfg = load_config(base)
        cfg.model.embed_score_thr = 0.0
        cfg.model.detector.roi_head.bbox_head.num_classes = 6
        cfg.model.detector.roi_head.mask_head.num_classes = 6
        if model_name == 'paper_s50[resnet50]':
            stock = Config.fromfile(str(Path(mmdet.__file__).parent / '.mim' / 'configs' / STOCK_CONFIG))
            cfg.model.detector.backbone = stock.model.detector.backbone
            cfg.model.detector.backbone.init_cfg = None
    rcnn = cfg.model.detector.test_cfg.rcnn
    rcnn.score_thr, rcnn.max_per_img = 0.0, dets
    model = MODELS.build(cfg.model)
    return model, model_name == 'stock', test_pipe, train_pipe


def _worker(model_name: str, size: str, mode: str, n: int, dets: int) -> dict:
    import torch
    from mmdet.registry import DATASETS
    from mmengine.dataset import Compose, pseudo_collate

    from visrc.data.toy import toy_root

    torch.manual_seed(0)
    scale = SCALES[size]
    model, is_stock, test_pipe, train_pipe = _build(model_name, scale, dets)
    rss_built = _rss_mib()
    root = toy_root('small')
    times = []
    if mode == 'train':
        ds = DATASETS.build(dict(type='YTVISRawDataset', data_root=str(root), ann_file='train/instances.json',
                                 data_prefix=dict(img_path='train/JPEGImages'),
                                 metainfo=dict(classes=('fish', 'shark', 'turtle', 'bird', 'car', 'truck')),
                                 pipeline=train_pipe))
        batches = [pseudo_collate([ds[(i % len(ds), 1)]]) for i in range(n + 1)]
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        for i, batch in enumerate(batches):
            t = time.perf_counter()
            data = model.data_preprocessor(batch, True)
            loss, _ = model.parse_losses(model.loss(**data))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i:                                    # the first iteration warms up
                times.append(time.perf_counter() - t)
    else:
        from visrc.fileio import read_json
        from visrc.tracking import FramePredictions, Tracker

        video = read_json(root / 'valid' / 'instances.json')['videos'][0]
        files = [str(root / 'valid' / 'JPEGImages' / f) for f in video['file_names']]
        files = (files * (n // len(files) + 2))[:n + 1]
        pipe = Compose(test_pipe)
        model.eval()
        tracker = Tracker()
        n_dets = []
        with torch.no_grad():
            for t_idx, f in enumerate(files):
                packed = pipe(dict(img_path=[f], img_id=[t_idx], frame_id=[t_idx], video_id=[0],
                                   ori_video_length=[len(files)], video_length=[1]))
                t = time.perf_counter()
                data = model.data_preprocessor(dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
                if is_stock:
                    out = model.predict(data['inputs'], data['data_samples'])[0][0]
                    n_dets.append(len(out.pred_instances))
                else:
                    res = model.predict_frame(data['inputs'][:, 0], data['data_samples'][0][0])
                    tracker.update(FramePredictions(res.bboxes.numpy(), res.scores.numpy(), res.labels.numpy(),
                                                    res.embeds.numpy()))
                    n_dets.append(len(res))
                if t_idx:
                    times.append(time.perf_counter() - t)
        assert min(n_dets) == max(n_dets) == dets, n_dets
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(model=model_name, size=size, mode=mode, seconds=times, rss_built_mib=rss_built, peak_rss_mib=peak,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6, threads=torch.get_num_threads())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--iters', type=int, default=3, help='timed training iterations per run')
    p.add_argument('--frames', type=int, default=6, help='timed inference frames per run')
    p.add_argument('--quick', action='store_true', help='toy size only, 1 round')
    p.add_argument('--dets', type=int, default=100, help='detections per frame at inference (forced)')
    p.add_argument('--modes', nargs='+', default=['infer', 'train'], choices=['infer', 'train'])
    p.add_argument('--out', help='also write the numbers as JSON here')
    p.add_argument('--worker', nargs=5, metavar=('MODEL', 'SIZE', 'MODE', 'N', 'DETS'), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        m, size, mode, n, dets = a.worker
        print('RESULT ' + json.dumps(_worker(m, size, mode, int(n), int(dets))))
        return 0

    cases = [('toy', 'toy'), ('stock', 'toy')]
    if not a.quick:
        cases += [('paper_s50', 'paper'), ('paper_s50[resnet50]', 'paper'), ('stock', 'paper')]
    rounds = 1 if a.quick else a.rounds
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    runs: dict[tuple, list[dict]] = {}
    for r in range(rounds):
        for mode in a.modes:
            order = cases if r % 2 == 0 else cases[::-1]
            for m, size in order:
                n = a.frames if mode == 'infer' else a.iters
                out = subprocess.run([sys.executable, __file__, '--worker', m, size, mode, str(n), str(a.dets)], env=env,
                                     capture_output=True, text=True)
                line = [x for x in out.stdout.splitlines() if x.startswith('RESULT ')]
                if out.returncode or not line:
                    print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                    raise SystemExit(f'benchmark worker {m} {size} {mode} failed')
                runs.setdefault((m, size, mode), []).append(json.loads(line[0][7:]))

    summary = {}
    for (m, size, mode), rs in runs.items():
        secs = [s for r in rs for s in r['seconds']]
        summary[(m, size, mode)] = dict(median_s=statistics.median(secs), peak_rss_mib=max(r['peak_rss_mib'] for r in rs),
                                        growth_mib=max(r['peak_rss_mib'] - r['rss_built_mib'] for r in rs),
                                        params_m=rs[0]['params_m'], n=len(secs), threads=rs[0]['threads'])
    print(f'CPU, torch threads {next(iter(summary.values()))["threads"]}; medians over {rounds} round(s); '
          f'{a.dets} detections/frame at inference; ratios are ours / stock MaskTrack R-CNN R50 on the same '
          f'input (time: >1 = slower)')
    print(f'{"model":<22}{"input":>9}{"params M":>9}{"train it/s":>11}{"ratio":>7}{"infer fps":>10}{"ratio":>7}'
          f'{"peak RSS MiB (train/infer)":>28}{"growth MiB":>16}')
    nan = dict(median_s=float('nan'), peak_rss_mib=float('nan'), growth_mib=float('nan'), params_m=float('nan'))
    for m, size in cases:
        tr, inf = summary.get((m, size, 'train'), nan), summary.get((m, size, 'infer'), nan)
        st_tr, st_inf = summary.get(('stock', size, 'train'), nan), summary.get(('stock', size, 'infer'), nan)
        sw, sh = SCALES[size]
        params = tr['params_m'] if tr is not nan else inf['params_m']
        peak = f"{tr['peak_rss_mib']:.0f} / {inf['peak_rss_mib']:.0f}"
        growth = f"{tr['growth_mib']:.0f} / {inf['growth_mib']:.0f}"
        print(f'{m:<22}{f"{sw}x{sh}":>9}{params:>9.1f}{1 / tr["median_s"]:>11.3f}'
              f'{tr["median_s"] / st_tr["median_s"]:>7.2f}{1 / inf["median_s"]:>10.2f}'
              f'{inf["median_s"] / st_inf["median_s"]:>7.2f}{peak:>28}{growth:>16}')
    if a.out:
        from visrc.fileio import atomic_write_json
        atomic_write_json(a.out, {f'{m}|{s}|{mode}': v for (m, s, mode), v in summary.items()}, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
