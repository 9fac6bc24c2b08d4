"""One GPU lease, one process: the checks and measurements that need a CUDA device.

Run on the device machine through ``bash benchmarks/device_check.sh`` (it installs the carried
wheels of ``make device-wheels`` and puts visrc on ``PYTHONPATH``); ``--dry-run`` runs every stage at
tiny sizes on CPU, skipping with a recorded reason what needs CUDA (``tests/test_device_check.py``).

Stages, each timed and guarded (a failing stage records its error, the others still run), written
to ``<out>/device_check.json`` after every stage (a run cut short still leaves what it measured):

* ``environment``  torch, CUDA device, ``visrc.ops.backend()``, library versions;
* ``op_tests``     ``pytest tests/test_torch_ops.py tests/test_ops.py`` in a subprocess: pass/fail
                   counts (dry run: collection only, the suite runs them on CPU);
* ``data``         synthetic data in the released formats (``tests/realformat.py``: YouTube-VIS 2021,
                   COCO 2017, OpenImages) for the Multi-Source Data loader;
* ``train_fp32``   ``paper_s50_full``'s model, Multi-Source Data loader, optimizer and LR warm-up at
  ``train_amp``    360x640, 4 key/reference pairs per batch, ``--warmup`` + ``--iters`` iterations of
                   ``model.train_step`` (as ``bench_paper_scale.measure``; stopped early past
                   ``--train-seconds``), once in fp32 and once with mmengine's ``AmpOptimWrapper`` (cfg
                   option ``optim_wrapper.type``): it/s and images/s over the measured window (loader
                   included), median step time, peak GPU memory (``torch.cuda.max_memory_allocated``);
* ``predict_track`` the trained weights, saved and read back (``torch.load(weights_only=True)``), through
                   ``visrc.pipeline.run_inference`` (the ``visrc infer`` path: per-frame prediction,
                   BiTrack) on a few valid videos: frames/s;
* ``projection``   ``benchmarks/bench_paper_scale.py``'s 12-epoch projection on 4 GPUs from each
                   measured step time (published sizes in ``benchmarks/real_dataset_sizes.json``).

    python3 benchmarks/device_check.py --out DIR [--dry-run] [--iters 300] [--train-seconds 75]
"""
from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))          # realformat: the synthetic released-format data
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CONFIG = 'paper_s50_full'
STAGES = ('environment', 'op_tests', 'data', 'train_fp32', 'train_amp', 'predict_track', 'projection')
OP_TESTS = ('tests/test_torch_ops.py', 'tests/test_ops.py')
TINY_SCALE = (96, 64)                             # (w, h) of the dry run's network input
# the dry run's lighter RoI sampling: the heads' cost on CPU is per RoI, whatever the image size
TINY_OPTIONS = {'model.detector.train_cfg.rpn_proposal.nms_pre': 200,
                'model.detector.train_cfg.rpn_proposal.max_per_img': 32,
                'model.detector.train_cfg.rcnn.sampler.num': 16,
                'model.track_head.train_cfg.sampler.num': 16}
BENCH = REPO / 'benchmarks' / 'bench_paper_scale.py'


class Skip(Exception):
    """A stage that cannot run here; its message is the recorded reason."""


# ----------------------------------------------------------------------------------------- report
class Report:
    """``device_check.json``: one entry per stage, ``status`` ok / skipped / error, written after each."""

    def __init__(self, path: Path, meta: dict):
        self.path = path
        self.doc = dict(meta, stages={})
        self.t0 = time.perf_counter()

    def write(self) -> None:
        self.doc['total_seconds'] = round(time.perf_counter() - self.t0, 2)
        tmp = self.path.with_name(self.path.name + '.tmp')
        tmp.write_text(json.dumps(self.doc, indent=1, default=str))
        os.replace(tmp, self.path)

    def stage(self, name: str, fn, *args, **kwargs):
        print(f'[device_check] {name} ...', flush=True)
        t = time.perf_counter()
        entry = {}
        result = None
        try:
            result = fn(*args, **kwargs)
            entry.update(status='ok', result=_public(result))
        except Skip as e:
            entry.update(status='skipped', reason=str(e))
        except BaseException as e:                  # noqa: BLE001  one stage never stops the others
            if isinstance(e, KeyboardInterrupt):
                raise
            entry.update(status='error', error=f'{type(e).__name__}: {e}'[:2000],
                         traceback=traceback.format_exc()[-4000:])
        entry['seconds'] = round(time.perf_counter() - t, 2)
        self.doc['stages'][name] = entry
        self.write()
        line = entry.get('reason') or entry.get('error') or json.dumps(entry.get('result'), default=str)[:400]
        print(f"[device_check] {name}: {entry['status']} in {entry['seconds']} s: {line}", flush=True)
        return result if entry['status'] == 'ok' else None


def _public(result):
    """A stage's result without its private keys (``_name``: objects for later stages)."""
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if not k.startswith('_')}
    return result


def _sync(cuda: bool) -> None:
    if cuda:
        import torch
        torch.cuda.synchronize()


def _rss_mib(field: str = 'VmRSS') -> float | None:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


# ------------------------------------------------------------------------------------- the stages
def environment(args) -> dict:
    import torch

    import visrc  # noqa: F401  (before mmcv.ops: provides mmcv._ext on mmcv-lite)
    import mmcv
    import mmdet
    import mmengine
    import numpy

    from visrc.ops import backend

    info = dict(python=platform.python_version(), executable=sys.executable, machine=platform.machine(),
                cpus=os.cpu_count(), torch=torch.__version__, torch_cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                cuda_available=torch.cuda.is_available(), device=args.device, ops_backend=backend(),
                mmcv=mmcv.__version__, mmdet=mmdet.__version__, mmengine=mmengine.__version__,
                numpy=numpy.__version__, torch_threads=torch.get_num_threads())
    for mod in ('numba', 'cv2', 'pycocotools', 'shapely', 'scipy'):
        try:
            info[mod] = getattr(__import__(mod), '__version__', 'present')
        except Exception as e:              # noqa: BLE001
            info[mod] = f'missing ({type(e).__name__}: {e})'
    if args.device == 'cuda':
        p = torch.cuda.get_device_properties(0)
        info.update(device_name=p.name, capability=f'{p.major}.{p.minor}', multiprocessors=p.multi_processor_count,
                    total_memory_gib=round(p.total_memory / 2**30, 1), device_count=torch.cuda.device_count())
    else:
        info.update(device_name='cpu', cuda_reason='dry run: CPU only' if args.dry_run
                    else 'torch.cuda.is_available() is False')
    return info


def op_tests(args, tmp: Path) -> dict:
    files = [f for f in OP_TESTS if (REPO / f).is_file()]
    missing = [f for f in OP_TESTS if f not in files]
    if not files:
        raise Skip(f'none of {", ".join(OP_TESTS)} exists')
    xml = tmp / 'op_tests.xml'
    cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--continue-on-collection-errors',
           f'--junitxml={xml}', *files]
    if args.dry_run:                        # the suite runs them on CPU; here: the command collects
        cmd.append('--collect-only')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    if args.threads:
        env['OMP_NUM_THREADS'] = str(args.threads)
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=args.op_tests_timeout)
        out, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b'').decode(errors='replace') if isinstance(e.stdout, bytes) else (e.stdout or '')
        raise RuntimeError(f'pytest timed out after {args.op_tests_timeout} s; output tail: {out[-1500:]}')
    res = dict(command=' '.join(cmd[1:]).replace(str(xml), 'op_tests.xml'), files=files, missing=missing, rc=rc,
               pytest_seconds=round(time.perf_counter() - t, 2))
    if args.dry_run:
        import re
        ids = [line for line in out.splitlines() if re.match(r'tests/\S+::', line)]
        broken = sorted(set(re.findall(r'^ERROR (tests/\S+)', out, re.M)))
        if not ids and not broken:
            raise RuntimeError(f'pytest --collect-only collected nothing (rc {rc}): {out[-2000:]}')
        res.update(mode='collect-only (dry run)', collected=len(ids), collection_errors=broken,
                   cuda_cases=sum('cuda' in i.lower() for i in ids))
        if broken:
            res['output_tail'] = out[-2000:]
        return res
    if not xml.is_file():
        raise RuntimeError(f'pytest wrote no report (rc {rc}): {out[-2000:]}')
    suites = ET.parse(xml).getroot()
    suites = [suites] if suites.tag == 'testsuite' else list(suites.iter('testsuite'))
    count = {k: sum(int(s.get(k, 0)) for s in suites) for k in ('tests', 'failures', 'errors', 'skipped')}
    failed, skipped_cuda = [], 0
    for s in suites:
        for case in s.iter('testcase'):
            name = f"{case.get('classname')}::{case.get('name')}"
            for bad in list(case.findall('failure')) + list(case.findall('error')):
                failed.append(f"{name}: {(bad.get('message') or '')[:300]}")
            for sk in case.findall('skipped'):
                if 'cuda' in (sk.get('message') or '').lower():
                    skipped_cuda += 1
    passed = count['tests'] - count['failures'] - count['errors'] - count['skipped']
    res.update(mode='run', total=count['tests'], passed=passed,
               failed=count['failures'], errors=count['errors'], skipped=count['skipped'],
               skipped_mentioning_cuda=skipped_cuda, failures=failed[:40], all_passed=rc == 0)
    if rc != 0:
        res['output_tail'] = out[-3000:]
    return res


def make_data(args, tmp: Path) -> dict:
    import visrc  # noqa: F401  (before mmdet / mmcv.ops)
    from realformat import make_real_format, write_ytvis

    root = make_real_format(tmp / 'vis', n_videos=args.train_videos, n_frames=args.train_frames)
    # the inference split: a few unannotated videos, as the released valid split
    write_ytvis(root, args.valid_videos, args.valid_frames, 'valid', annotate=False, seed=1)
    return dict(root=str(root), train_videos=args.train_videos, train_frames_per_video=args.train_frames,
                valid_videos=args.valid_videos, valid_frames_per_video=args.valid_frames, frame_size='640x360',
                _root=root)


def _set_scale(cfg, scale) -> None:
    """Every ``Resize`` of the train and test pipelines to ``scale`` (w, h) (the dry run's tiny size)."""
    pipes = [d.pipeline for d in cfg.train_dataloader.dataset.datasets] + [cfg.test_pipeline]
    for pipe in pipes:
        for t in pipe:
            for tt in [t] + list(t.get('transforms', [])):
                if tt['type'] == 'Resize':
                    tt['scale'] = tuple(scale)


def _config(root: Path, args, cfg_options=None, work_dir=None):
    from visrc.models.train_cli import prepare_config

    if args.dry_run:
        cfg_options = {**TINY_OPTIONS, **(cfg_options or {})}
    cfg = prepare_config(CONFIG, data_root=str(root), work_dir=str(work_dir) if work_dir else None,
                         cfg_options=cfg_options)
    if args.scale:
        _set_scale(cfg, args.scale)
    return cfg


def train(args, data: dict | None, tmp: Path, amp: bool) -> dict:
    """``--warmup`` + ``--iters`` iterations of the config's model, loader, optimizer (and warm-up LR)
    in one loop, as ``bench_paper_scale.measure`` times them: ``model.train_step(batch, optim)``,
    synchronized around each step; throughput over the measured window includes the loader."""
    if data is None:
        raise RuntimeError('no data: the data stage failed')
    import torch

    cuda = args.device == 'cuda'
    if amp and not cuda:
        raise Skip('AMP needs CUDA: mmengine\'s AmpOptimWrapper refuses to build without a GPU'
                   + (' (dry run: CPU only)' if args.dry_run else ''))
    import visrc  # noqa: F401  (before mmdet / mmcv.ops)
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    from mmengine.runner import Runner

    opts = {'train_dataloader.batch_size': args.batch, 'train_dataloader.num_workers': args.workers,
            'train_dataloader.persistent_workers': args.workers > 0}
    if amp:                                   # the cfg option a run with AMP sets
        opts.update({'optim_wrapper.type': 'AmpOptimWrapper', 'optim_wrapper.dtype': args.amp_dtype})
    cfg = _config(data['_root'], args, opts)
    torch.manual_seed(0)
    loader = Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader), seed=0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(args.device).train()
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    # the iteration-based schedulers (the LR warm-up), stepped every iteration as mmengine's hook does
    schedulers = [PARAM_SCHEDULERS.build(dict(copy.deepcopy(s), optimizer=optim))
                  for s in cfg.param_scheduler if not s.get('by_epoch', True)]
    if cuda:
        torch.cuda.synchronize()
        built = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    else:
        built = _rss_mib()
    steps, cpu, losses = [], [], []
    warm_end = end = None
    stopped_early = False
    it = iter(loader)
    total = args.warmup + args.iters
    for i in range(total):
        try:
            batch = next(it)
        except StopIteration:                 # a new epoch of the (small) synthetic data
            it = iter(loader)
            batch = next(it)
        _sync(cuda)
        t0, c0 = time.perf_counter(), time.process_time()
        log = model.train_step(batch, optim)
        for s in schedulers:
            s.step()
        _sync(cuda)
        t, c = time.perf_counter(), time.process_time()
        losses.append(float(log['loss']))
        if i < args.warmup:
            warm_end = t
            continue
        if warm_end is None:                  # no warm-up: the window starts at the first step
            warm_end = t0
        steps.append(t - t0)
        cpu.append(c - c0)
        end = t
        if t - warm_end > args.train_seconds and i + 1 < total:
            stopped_early = True
            break
    n = len(steps)
    window = end - warm_end
    step = statistics.median(steps)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _rss_mib('VmHWM')
    reserved = torch.cuda.max_memory_reserved() / 2**20 if cuda else None
    batch_size = int(cfg.train_dataloader.batch_size)
    w, h = next(t['scale'] for t in cfg.test_pipeline[0]['transforms'] if t['type'] == 'Resize')
    res = dict(config=CONFIG, device=args.device, precision=f'amp ({args.amp_dtype})' if amp else 'fp32',
               optim_wrapper=type(optim).__name__, input_wxh=f'{w}x{h}', batch=batch_size, workers=args.workers,
               params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
               warmup_iters=args.warmup, measured_iters=n,
               stopped_early_at_budget_s=args.train_seconds if stopped_early else None,
               it_per_s=round(n / window, 3), images_per_s=round(n * batch_size / window, 2),
               median_step_s=round(step, 4), mean_step_s=round(statistics.fmean(steps), 4),
               step_only_it_per_s=round(1 / step, 3), cpu_s_per_iter=round(statistics.median(cpu), 4),
               memory_built_mib=round(built, 1) if built is not None else None,
               peak_memory_mib=round(peak, 1) if peak is not None else None,
               peak_reserved_mib=round(reserved, 1) if reserved is not None else None,
               memory_kind='torch.cuda.max_memory_allocated' if cuda else 'peak RSS (VmHWM)',
               first_loss=round(losses[0], 4), last_loss=round(losses[-1], 4),
               losses_finite=all(x == x and abs(x) != float('inf') for x in losses),
               lr_last=round(float(optim.get_lr()['lr'][0]), 6))
    if amp:
        scaler = getattr(optim, 'loss_scaler', None)
        if scaler is not None and hasattr(scaler, 'get_scale'):
            res['final_loss_scale'] = float(scaler.get_scale())
    ckpt = tmp / f'weights_{"amp" if amp else "fp32"}.pth'
    torch.save({'state_dict': {k: v.detach().cpu() for k, v in model.state_dict().items()},
                'meta': {'config': CONFIG, 'iters': args.warmup + n, 'precision': res['precision']}}, ckpt)
    res['_checkpoint'] = ckpt
    del it, loader, model, optim, schedulers
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return res


def predict_track(args, data: dict | None, tmp: Path, trained: list) -> dict:
    if data is None:
        raise RuntimeError('no data: the data stage failed')
    import torch

    import visrc  # noqa: F401  (before mmdet / mmcv.ops)
    from visrc.pipeline import run_inference

    root = data['_root']
    ckpt, weights = None, None
    for name, r in trained:
        if r is not None:
            ckpt, weights = r['_checkpoint'], f'trained ({name}, {r["warmup_iters"] + r["measured_iters"]} iterations)'
            break
    if ckpt is None:                          # training failed: time the pipeline on fresh weights
        from mmdet.registry import MODELS
        cfg = _config(root, args)
        model = MODELS.build(cfg.model)
        model.init_weights()
        ckpt, weights = tmp / 'untrained.pth', 'untrained (no training stage succeeded)'
        torch.save({'state_dict': model.state_dict()}, ckpt)
        del model
    cfg = _config(root, args)
    # a briefly trained model scores little above the config's thresholds: keep 10 boxes a frame and
    # track them all, so BiTrack has work (as tests/test_paper_full.py)
    cfg.model.detector.test_cfg.rcnn.update(score_thr=0.0, max_per_img=10)
    tracking = cfg.tracking.to_dict()
    tracking['tracker'].update(init_score_thr=-1.0, obj_score_thr=-1.0)
    kw = dict(data_root=str(root), tracking=tracking, device=args.device, log=None)   # no resume, no progress bar
    if not args.dry_run:                      # eval-mode kernels warm up on one video first
        run_inference(cfg, ckpt, out=tmp / 'warmup.json', max_videos=1, **kw)
    _sync(args.device == 'cuda')
    s = run_inference(cfg, ckpt, out=tmp / 'results.json', **kw)
    return dict(weights=weights, checkpoint_read='visrc.models.checkpoint.load_weights (torch.load weights_only=True)',
                device=args.device, videos=s['videos'], frames=s['frames'], tracks=s['tracks'], mode=s['mode'],
                predict_seconds=s['predict_seconds'], frames_per_s=s['frames_per_second'],
                track_seconds=s['track_and_evaluate_seconds'], warmed_up=not args.dry_run)


def projection(args, trained: list) -> dict:
    spec = importlib.util.spec_from_file_location('bench_paper_scale', BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = {}
    for name, r in trained:
        if r is None:
            continue
        measured = dict(device=r['device'], batch=r['batch'], wall_s_per_iter=r['median_step_s'],
                        cpu_s_per_iter=r['cpu_s_per_iter'], rss_built_mib=r['memory_built_mib'] or 0.0,
                        growth_per_image_mib=((r['peak_memory_mib'] or 0.0) - (r['memory_built_mib'] or 0.0))
                        / r['batch'])
        p = bench.projections(CONFIG, measured, gpus=args.gpus, ytvis_json=None)
        entry = dict(from_median_step_s=r['median_step_s'], time_unit=p['time_unit'], gpus=p['gpus'],
                     images_per_gpu=p['images_per_gpu'], epochs=p['epochs'], key_frames_from=p['key_frames_from'])
        for q in ('fewest', 'most'):
            entry[q] = {k: p[q][k] for k in ('key_frames', 'iters_per_epoch', 'iters_total', 'device_hours',
                                               'wall_hours_on_gpus', 'memory_per_gpu_mib')}
        if r.get('it_per_s'):                 # the same from the loader-inclusive throughput
            scale = (1 / r['it_per_s']) / r['median_step_s']
            entry['wall_hours_on_gpus_from_throughput'] = {
                q: round(p[q]['wall_hours_on_gpus'] * scale, 1) if p[q]['wall_hours_on_gpus'] is not None else None
                for q in ('fewest', 'most')}
        if args.dry_run:
            entry['note'] = 'dry run: tiny images on CPU, the numbers only exercise the arithmetic'
        out[name] = entry
    if not out:
        raise RuntimeError('no training stage succeeded: nothing to project')
    return out


# ------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=os.environ.get('OUT') or str(REPO / '.device' / 'out'),
                   help='folder for device_check.json (default $OUT)')
    p.add_argument('--dry-run', action='store_true', help='tiny sizes on CPU, CUDA stages skipped')
    p.add_argument('--iters', type=int, help='measured training iterations per precision (GPU 300, dry 1)')
    p.add_argument('--warmup', type=int, help='warm-up iterations, not measured (GPU 5, dry 1)')
    p.add_argument('--train-seconds', type=float, default=75.0,
                   help='stop a training stage after this many measured seconds (GPU budget)')
    p.add_argument('--batch', type=int, help='key/reference pairs per batch (GPU 4 = the paper, dry 1)')
    p.add_argument('--workers', type=int, help='loader worker processes (GPU 4 = the config, dry 0)')
    p.add_argument('--scale', type=int, nargs=2, metavar=('W', 'H'),
                   help="network input (w h); default the config's 640x360 (dry: 96x64)")
    p.add_argument('--amp-dtype', default='float16', choices=['float16', 'bfloat16'])
    p.add_argument('--gpus', type=int, default=4, help='GPUs of the projected training (paper: 4)')
    p.add_argument('--op-tests-timeout', type=int, default=180, help='seconds for the op tests (subprocess)')
    p.add_argument('--threads', type=int,
                   help="torch's CPU threads (dry 1: a shared CPU burns its time in OpenMP spin-waits; "
                        "GPU: torch's default)")
    p.add_argument('--skip', nargs='*', default=[], choices=STAGES, help='stages to skip')
    args = p.parse_args(argv)
    dry = args.dry_run
    for k, gpu, tiny in (('iters', 300, 1), ('warmup', 5, 1), ('batch', 4, 1), ('workers', 4, 0)):
        if getattr(args, k) is None:
            setattr(args, k, tiny if dry else gpu)
    if args.scale is None and dry:
        args.scale = TINY_SCALE
    args.train_videos, args.train_frames = (2, 3) if dry else (4, 8)
    args.valid_videos, args.valid_frames = (1, 2) if dry else (4, 8)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch                              # visrc (before mmdet / mmcv.ops) is imported by the stages

    args.device = 'cuda' if torch.cuda.is_available() and not args.dry_run else 'cpu'
    if args.threads is None and args.dry_run:
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    report = Report(out / 'device_check.json', dict(
        dry_run=args.dry_run, device=args.device, config=CONFIG, started=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        command='benchmarks/device_check.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
        settings=dict(iters=args.iters, warmup=args.warmup, train_seconds=args.train_seconds, batch=args.batch,
                      workers=args.workers, threads=torch.get_num_threads(),
                      scale=args.scale or 'config (640x360)', amp_dtype=args.amp_dtype,
                      gpus=args.gpus, dry_run_cfg_options=TINY_OPTIONS if args.dry_run else None)))

    def run(name, fn, *a):
        if name in args.skip:
            report.doc['stages'][name] = dict(status='skipped', reason='--skip', seconds=0.0)
            report.write()
            return None
        return report.stage(name, fn, *a)

    with tempfile.TemporaryDirectory(prefix='visrc-device-') as tmp:
        tmp = Path(tmp)
        run('environment', environment, args)
        run('op_tests', op_tests, args, tmp)
        data = run('data', make_data, args, tmp)
        trained = [('train_fp32', run('train_fp32', train, args, data, tmp, False)),
                   ('train_amp', run('train_amp', train, args, data, tmp, True))]
        run('predict_track', predict_track, args, data, tmp, trained)
        run('projection', projection, args, trained)
    report.doc['summary'] = summary(report.doc)
    report.write()
    print(json.dumps(report.doc, indent=1, default=str), flush=True)
    print(f'[device_check] wrote {report.path}', flush=True)
    return 0 if all(s['status'] != 'error' for s in report.doc['stages'].values()) else 1


def summary(doc: dict) -> dict:
    """The few numbers that matter, one level deep."""
    st = doc['stages']

    def get(stage, *keys):
        r = st.get(stage, {}).get('result') or {}
        for k in keys:
            r = r.get(k) if isinstance(r, dict) else None
        return r

    s = {name: st[name]['status'] for name in st}
    s.update(device_name=get('environment', 'device_name'), torch=get('environment', 'torch'),
             ops_backend=get('environment', 'ops_backend'),
             op_tests_passed=get('op_tests', 'passed'), op_tests_failed=get('op_tests', 'failed'),
             op_tests_errors=get('op_tests', 'errors'), op_tests_collected=get('op_tests', 'collected'),
             hours_unit=('wall hours on 4 GPUs' if doc.get('device') == 'cuda' else 'CPU core-hours (dry run)'))
    for name in ('train_fp32', 'train_amp'):
        for k in ('it_per_s', 'images_per_s', 'median_step_s', 'peak_memory_mib'):
            s[f'{name}.{k}'] = get(name, k)
        for q in ('fewest', 'most'):
            s[f'{name}.hours_12ep_{q}'] = get('projection', name, q, 'wall_hours_on_gpus') \
                or get('projection', name, q, 'device_hours')
    s['predict.frames_per_s'] = get('predict_track', 'frames_per_s')
    return s


if __name__ == '__main__':
    sys.exit(main())
