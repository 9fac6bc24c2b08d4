"""``visrc train CONFIG [--work-dir DIR] [--resume [CKPT]] [--data-root DIR] [--cfg-options k=v ...]``

Training on mmengine's Runner. Checkpoints are written atomically every epoch (or every N
iterations with an ``IterBasedTrainLoop``, see the config's ``default_hooks.checkpoint``); a run
that was killed resumes from the last one with ``--resume`` and continues the same schedule
(epoch, iteration, LR schedule, optimizer state and RNG states are restored).

Numerics (:mod:`visrc.numerics`): the command sets torch's threads for ``VISRC_NUMERICS`` (one
when pinned, the default) and prints one line saying which mode is in force; machine-independent
numbers also need the process started with :func:`visrc.numerics.pinned_env` (the run cache does
that; by hand: ``eval "$(python -m visrc.numerics)"`` first). With ``--work-dir`` the line's
details go to ``numerics.json`` there.

Multi-process: ``torchrun --nproc_per_node=N -m visrc train CONFIG --launcher pytorch``. On a
machine without CUDA the processes use the gloo backend, DDP without ``device_ids`` and, when the
config sets ``sync_bn``, :class:`visrc.models.sync_bn.VisSyncBN` (torch's SyncBatchNorm refuses
CPU tensors).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

import torch


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('config', help='config file (or the name of one in visrc/configs)')
    p.add_argument('--work-dir', help='where checkpoints and logs go (default $VISRC_RUNS_DIR/work_dirs/<config name>)')
    p.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                   help='resume from CKPT, or without a value from the last checkpoint in --work-dir')
    p.add_argument('--data-root', help='dataset root (replaces the config\'s data_root)')
    p.add_argument('--max-epochs', type=int, help='override the number of training epochs')
    p.add_argument('--seed', type=int, help='override randomness.seed')
    p.add_argument('--launcher', choices=['none', 'pytorch'], default=None,
                   help='job launcher (default: pytorch when run under torchrun, else none)')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='override config entries, e.g. train_dataloader.batch_size=2')


def _parse_value(v: str):
    import ast
    try:
        return ast.literal_eval(v)
    except (ValueError, SyntaxError):
        return v


def set_data_root(cfg, data_root: str) -> None:
    """Point ``cfg.data_root`` and every dataloader's dataset at ``data_root``."""
    data_root = str(data_root).rstrip('/') + '/'
    cfg.data_root = data_root
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg.get(key)
        if dl and dl.get('dataset') is not None:
            ds = dl['dataset']
            for d in (ds.get('datasets') or [ds]):      # ConcatDataset too
                if 'data_root' in d or 'ann_file' in d:
                    d['data_root'] = data_root
                inner = d.get('dataset')
                if isinstance(inner, dict) and ('data_root' in inner or 'ann_file' in inner):
                    inner['data_root'] = data_root


def prepare_config(config, work_dir=None, resume=None, data_root=None, max_epochs=None, seed=None,
                   cfg_options=None, launcher='none'):
    """Load a config and apply the command-line overrides; returns the mmengine Config."""
    from visrc.models.config import load_config, resolve_config_path

    cfg = load_config(config)
    if data_root:
        set_data_root(cfg, data_root)
    if cfg_options:
        opts = dict(o.split('=', 1) for o in cfg_options) if not isinstance(cfg_options, dict) else cfg_options
        cfg.merge_from_dict({k: _parse_value(v) if isinstance(v, str) else v for k, v in opts.items()})
    if max_epochs is not None:
        cfg.train_cfg.max_epochs = int(max_epochs)
        for s in cfg.get('param_scheduler') or []:
            if s.get('by_epoch', True) and s.get('end', 0) > max_epochs:
                s['end'] = int(max_epochs)
    if seed is not None:
        cfg.randomness = dict(cfg.get('randomness') or {}, seed=int(seed))
    if work_dir:
        cfg.work_dir = str(work_dir)
    elif not cfg.get('work_dir'):
        name = osp.splitext(osp.basename(resolve_config_path(config) if not hasattr(config, 'filename')
                                         else (config.filename or 'config')))[0]
        from visrc.paths import runs_dir
        cfg.work_dir = str(runs_dir() / 'work_dirs' / name)
    if resume:
        from visrc.models.checkpoint import find_resume_checkpoint
        ckpt = find_resume_checkpoint(cfg.work_dir) if resume == 'auto' else str(resume)
        if ckpt is not None:                # nothing saved yet: start as configured
            cfg.resume, cfg.load_from = True, ckpt
    cfg.launcher = launcher
    return cfg


def _init_cpu_distributed(cfg) -> None:
    """Start the gloo process group here: mmengine's pytorch launcher calls
    ``torch.cuda.set_device``, which fails without CUDA."""
    import torch.distributed as dist
    if dist.is_initialized():
        return
    dist.init_process_group(backend='gloo')
    cfg.env_cfg = dict(cfg.get('env_cfg') or {}, dist_cfg=dict(backend='gloo'))


def build_runner(cfg):
    from visrc.models.runner import VISRunner  # noqa: F401  (registers the runner)

    if cfg.launcher == 'pytorch' and not torch.cuda.is_available():
        _init_cpu_distributed(cfg)
    return VISRunner.from_cfg(cfg)


def train(config, **kwargs):
    """Train ``config`` (path or Config) with :func:`prepare_config`'s overrides; returns the runner."""
    launcher = kwargs.pop('launcher', None) or ('pytorch' if 'LOCAL_RANK' in os.environ else 'none')
    cfg = prepare_config(config, launcher=launcher, **kwargs)
    runner = build_runner(cfg)
    runner.train()
    return runner


def run(args: argparse.Namespace) -> int:
    from visrc import numerics

    info = numerics.apply_in_process()      # threads; the instruction set needs a pinned start
    print(f'visrc train: {numerics.summary(info)}', flush=True)
    if args.work_dir and int(os.environ.get('RANK', '0')) == 0:
        numerics.write_report(args.work_dir, info)
    train(args.config, work_dir=args.work_dir, resume=args.resume, data_root=args.data_root,
          max_epochs=args.max_epochs, seed=args.seed, cfg_options=args.cfg_options,
          launcher=args.launcher)
    return 0
