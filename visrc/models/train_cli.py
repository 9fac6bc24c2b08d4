"""``visrc train CONFIG [--work-dir DIR] [--resume [CKPT|auto]] [--init CKPT [--allow-partial-init]] [--data-root DIR] [--cfg-options ...]``

Training on mmengine's Runner. Checkpoints are written atomically every epoch (or every N
iterations with an ``IterBasedTrainLoop``, see the config's ``default_hooks.checkpoint``); a run
that was killed resumes from the last one with ``--resume`` and continues the same schedule
(epoch, iteration, LR schedule, optimizer state and RNG states are restored). ``--resume`` alone
needs a checkpoint in the work dir (none is an error); ``--resume auto`` resumes when there is one
and starts from scratch otherwise, saying which; ``--resume CKPT`` resumes from that file. Temp
files of a save that was interrupted are removed when training starts.

``--init CKPT`` (or the config key ``init_checkpoint``) starts the model from a pretrained detector
checkpoint (an mmdet model-zoo Mask R-CNN, or the toy COCO pretraining ``toy_pretrain_coco``):
:class:`visrc.models.init_weights.PretrainedInitHook` copies what transfers before the first
iteration, writes ``init_report.json`` in the work dir and logs its summary. A resumed run keeps
its checkpoint's weights (resume wins; one log line says so). ``--init`` with a config's own
``load_from`` (a full checkpoint of this model, not resumed) is refused: one or the other.
When less than most of the model's backbone transfers, or the file's backbone is another
architecture, the run stops with one line naming what matched; ``--allow-partial-init`` (config key
``init_allow_partial = True``) goes on anyway (see docs/pretraining.md).

``--max-epochs N`` longer than the config's schedule scales its epoch-based LR milestones
proportionally (a milestone at 2 of 3 epochs moves to 8 of 12); a shorter one keeps them (those
past epoch N do not apply). Either way one line says what happened to them.

Numerics (:mod:`visrc.numerics`): the command sets torch's threads for ``VISRC_NUMERICS`` (one
when pinned, the default) and prints one line saying which mode is in force; repeatable
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

RESUME_LAST = 'last'     # ``--resume`` without a value: the work dir's last checkpoint, which must exist
RESUME_AUTO = 'auto'     # ``--resume auto``: that checkpoint if there is one, else a fresh start


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('config', help='config file (or the name of one in visrc/configs)')
    p.add_argument('--work-dir', help='where checkpoints and logs go (default $VISRC_RUNS_DIR/work_dirs/<config name>)')
    p.add_argument('--resume', nargs='?', const=RESUME_LAST, default=None, metavar='CKPT|auto',
                   help='without a value: resume from the last checkpoint in the work dir (an error if there '
                        'is none); "auto": resume if there is one, else start; CKPT: resume from that file')
    p.add_argument('--init', metavar='CKPT',
                   help='start from this pretrained detector checkpoint (an mmdet Mask R-CNN or a visrc '
                        'checkpoint): what transfers is copied, the rest keeps its fresh init; '
                        'init_report.json in the work dir says which (ignored when the run resumes)')
    p.add_argument('--allow-partial-init', action='store_true',
                   help='with --init: go on when the checkpoint\'s backbone does not fit this model '
                        '(another architecture, or less than most of it transfers); default: stop')
    p.add_argument('--data-root', help='dataset root (replaces the config\'s data_root)')
    p.add_argument('--max-epochs', type=int,
                   help='override the number of training epochs (a longer run scales the LR milestones)')
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


def resume_checkpoint(work_dir, resume) -> str | None:
    """The checkpoint ``--resume`` means: :data:`RESUME_LAST` (or True) the work dir's last one, which
    must exist (``FileNotFoundError`` otherwise); :data:`RESUME_AUTO` that one or None (a fresh
    start), printed as one line; anything else a checkpoint path, which must exist."""
    from visrc.models.checkpoint import find_resume_checkpoint

    if resume is True or resume == RESUME_LAST:
        ckpt = find_resume_checkpoint(work_dir)
        if ckpt is None:
            raise FileNotFoundError(f'{work_dir}: no checkpoint to resume from (--resume auto starts '
                                    'from scratch when there is none)')
        return ckpt
    if resume == RESUME_AUTO:
        ckpt = find_resume_checkpoint(work_dir)
        print('visrc train: --resume auto: ' + (f'resuming from {ckpt}' if ckpt else
                                                 f'no checkpoint in {work_dir}, starting from scratch'), flush=True)
        return ckpt
    if not osp.isfile(str(resume)):
        raise FileNotFoundError(f'{resume}: no such checkpoint to resume from')
    return str(resume)


def set_max_epochs(cfg, max_epochs: int) -> str | None:
    """``cfg.train_cfg.max_epochs = max_epochs`` and the LR schedule to match; returns the line that
    says what happened to the epoch-based milestones (None when the config has none, or the same
    length).

    Longer than the config: epoch-based ``milestones`` scale by ``max_epochs / configured`` (rounded
    half up, kept increasing) and scheduler ``end`` s at the configured length move to the new one.
    Shorter: milestones stay (those past ``max_epochs`` never apply) and ``end`` s past it are
    clamped to it, which is what the quick notebooks' one-epoch runs train."""
    if max_epochs < 1:
        raise ValueError(f'--max-epochs {max_epochs}: must be at least 1')
    configured = int(cfg.train_cfg.get('max_epochs') or max_epochs)
    cfg.train_cfg.max_epochs = int(max_epochs)
    changes = []
    for s in cfg.get('param_scheduler') or []:
        if not s.get('by_epoch', True):
            continue
        milestones = list(s.get('milestones') or [])
        if max_epochs > configured:
            if milestones:
                new, last = [], 0
                for m in milestones:
                    v = max(int(m * max_epochs / configured + 0.5), last + 1)
                    new.append(v)
                    last = v
                s['milestones'] = new
                changes.append(f'{s.get("type", "scheduler")} milestones {milestones} of {configured} epochs '
                               f'scaled to {new} of {max_epochs}')
            if s.get('end') == configured:
                s['end'] = int(max_epochs)
        elif max_epochs < configured:
            if s.get('end', 0) > max_epochs:
                s['end'] = int(max_epochs)
            if milestones:
                past = [m for m in milestones if m >= max_epochs]
                changes.append(f'{s.get("type", "scheduler")} milestones {milestones} kept as configured for '
                               f'{configured} epochs' + (f' ({past} past the run\'s {max_epochs}, not applied)'
                                                          if past else ''))
    return f'--max-epochs {max_epochs}: ' + '; '.join(changes) if changes else None


def set_init_checkpoint(cfg, init=None, allow_partial=None) -> None:
    """``--init CKPT`` (else the config's ``init_checkpoint``) -> a :class:`PretrainedInitHook` in
    ``cfg.custom_hooks`` with the config's class names. The file must exist unless the run resumes;
    a non-resuming ``load_from`` with it is a ``ValueError`` (two sources for the same weights).
    ``allow_partial`` (``--allow-partial-init``, else the config's ``init_allow_partial``): the hook
    goes on when the checkpoint's backbone does not fit."""
    from visrc.models.config import config_classes

    if init:
        cfg.init_checkpoint = str(init)
    ckpt = cfg.get('init_checkpoint')
    if not ckpt:
        return
    if not cfg.get('resume') and not osp.isfile(str(ckpt)):    # a resumed run never reads it
        raise FileNotFoundError(f'{ckpt}: no such checkpoint file (--init / init_checkpoint)')
    if cfg.get('load_from') and not cfg.get('resume'):
        raise ValueError(f'--init {ckpt} and load_from={cfg.load_from}: both would set the weights; '
                         'give one (load_from loads a checkpoint of this same model)')
    hooks = [h for h in (cfg.get('custom_hooks') or []) if h.get('type') != 'PretrainedInitHook']
    hook = dict(type='PretrainedInitHook', checkpoint=str(ckpt), dst_classes=list(config_classes(cfg)))
    if allow_partial:
        cfg.init_allow_partial = True
    if cfg.get('init_allow_partial'):
        hook['allow_partial'] = True        # only when set: configs without it stay as they were
    hooks.append(hook)
    cfg.custom_hooks = hooks


def prepare_config(config, work_dir=None, resume=None, data_root=None, max_epochs=None, seed=None,
                   cfg_options=None, launcher='none', init=None, allow_partial_init=None):
    """Load a config and apply the command-line overrides; returns the mmengine Config."""
    from visrc.models.config import load_config, resolve_config_path

    cfg = load_config(config)
    if data_root:
        set_data_root(cfg, data_root)
    if cfg_options:
        opts = dict(o.split('=', 1) for o in cfg_options) if not isinstance(cfg_options, dict) else cfg_options
        cfg.merge_from_dict({k: _parse_value(v) if isinstance(v, str) else v for k, v in opts.items()})
        if data_root:                       # datasets the options replaced (a ConcatDataset's list) too
            set_data_root(cfg, data_root)
    if max_epochs is not None:
        line = set_max_epochs(cfg, int(max_epochs))
        if line:
            print(f'visrc train: {line}', flush=True)
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
        ckpt = resume_checkpoint(cfg.work_dir, resume)
        if ckpt is not None:                # --resume auto with nothing saved yet: start as configured
            cfg.resume, cfg.load_from = True, ckpt
    set_init_checkpoint(cfg, init, allow_partial_init)
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
    """Train ``config`` (path or Config) with :func:`prepare_config`'s overrides; returns the runner.
    Temp files of an interrupted save in the work dir are removed first (rank 0)."""
    from visrc.models.checkpoint import remove_stale_temp_files

    launcher = kwargs.pop('launcher', None) or ('pytorch' if 'LOCAL_RANK' in os.environ else 'none')
    cfg = prepare_config(config, launcher=launcher, **kwargs)
    if int(os.environ.get('RANK', '0')) == 0:
        removed = remove_stale_temp_files(cfg.work_dir)
        if removed:
            print(f'visrc train: removed {len(removed)} temp file(s) of an interrupted save: '
                  + ', '.join(osp.basename(r) for r in removed), flush=True)
    runner = build_runner(cfg)
    runner.train()
    return runner


def run(args: argparse.Namespace) -> int:
    from visrc import numerics
    from visrc.models.config import resolve_config_path

    resolve_config_path(args.config)        # an unknown config name fails before anything starts

    info = numerics.apply_in_process()      # threads; the instruction set needs a pinned start
    print(f'visrc train: {numerics.summary(info)}', flush=True)
    if args.work_dir and int(os.environ.get('RANK', '0')) == 0:
        numerics.write_report(args.work_dir, info)
    train(args.config, work_dir=args.work_dir, resume=args.resume, data_root=args.data_root,
          max_epochs=args.max_epochs, seed=args.seed, cfg_options=args.cfg_options,
          launcher=args.launcher, init=args.init,
          allow_partial_init=getattr(args, 'allow_partial_init', False))
    return 0
