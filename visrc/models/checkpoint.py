"""Checkpoints that load under torch's ``weights_only=True``, are written atomically, and resume
bit-for-bit.

* torch >= 2.6 loads with ``weights_only=True``. mmengine's checkpoints carry, besides tensors,
  the ``MessageHub`` state (``HistoryBuffer`` objects holding numpy arrays) and numpy scalars, so
  mmengine's own ``load_checkpoint`` / ``Runner.resume`` fail with an ``UnpicklingError``.
  :func:`register_safe_globals` allow-lists exactly those types with
  ``torch.serialization.add_safe_globals``; ``weights_only`` stays on, so a file handed in by a
  user still cannot run code. Imported by every visrc entry point (and by ``visrc.models``).
  ``HistoryBuffer.__getstate__`` also pickles its class-level table of statistics methods, which
  pickle writes as ``getattr(HistoryBuffer, 'min')``; allowing ``builtins.getattr`` would open
  ``weights_only`` to arbitrary attribute access, so instead :func:`_reduce_history_buffer`
  (registered with :mod:`copyreg`) pickles a buffer as ``HistoryBuffer()`` + its data, and
  ``HistoryBuffer.__setstate__`` re-installs the default methods on load.
  Checkpoints written by mmengine itself (a user's own mmdet 3.x ``epoch_12.pth``) do hold
  ``getattr(HistoryBuffer, 'min')`` etc.: the name ``builtins.getattr`` is allow-listed as
  :func:`_history_buffer_getattr`, which resolves only a registered statistics method of
  ``HistoryBuffer`` and refuses every other attribute (a file cannot reach anything else through it).
* :class:`AtomicCheckpointHook` (``default_hooks.checkpoint.type``) is mmengine's
  ``CheckpointHook`` with an atomic save: the checkpoint is written to a temp file beside the
  target and renamed over it, the ``last_checkpoint`` pointer is replaced atomically too, and old
  checkpoints are deleted only after the new one is in place. A process killed at any moment
  leaves the previous checkpoint (and the pointer to it) loadable.
* :class:`RNGStateHook` (a custom hook) saves the Python / numpy / torch RNG states in each
  checkpoint and restores them on resume, so an interrupted run that resumes from an epoch
  checkpoint continues exactly like an uninterrupted one (with ``num_workers=0`` or persistent
  seeds; the test checks equal weights).
"""
from __future__ import annotations

import copyreg
import os
import pickle
import os.path as osp
import random
import re
from collections import Counter, OrderedDict, defaultdict, deque

import numpy as np
import torch
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import HistoryBuffer
from mmengine.registry import HOOKS
from mmengine.dist import is_main_process

from visrc.fileio import atomic_write_text

_REGISTERED = False


def safe_globals() -> list:
    """The non-tensor types found in mmengine/mmdet checkpoints (nothing that can run code)."""
    try:   # numpy >= 2
        from numpy._core import multiarray as _ma
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as _ma
    types = [HistoryBuffer, _ma._reconstruct, _ma.scalar, np.ndarray, np.dtype,
             Counter, OrderedDict, defaultdict, deque]
    # numpy 2 pickles dtypes as their concrete classes (np.dtypes.Float64DType, ...)
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        for name in dir(dtypes_mod):
            obj = getattr(dtypes_mod, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                types.append(obj)
    return types


def _reduce_history_buffer(buf: HistoryBuffer):
    """Pickle a HistoryBuffer as its data only (not the class's table of statistics methods)."""
    state = {k: v for k, v in buf.__dict__.items() if k != 'statistics_methods'}
    return HistoryBuffer, (), state


copyreg.pickle(HistoryBuffer, _reduce_history_buffer)

_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj, name, *default):
    """What ``builtins.getattr`` means inside a checkpoint: ``getattr(HistoryBuffer, m)`` for one of
    its statistics methods (mmengine pickles ``HistoryBuffer._statistics_methods`` that way), and
    nothing else."""
    if obj is HistoryBuffer and isinstance(name, str) and (
            name in _HISTORY_BUFFER_METHODS or name in HistoryBuffer._statistics_methods):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r:.40}) '
                                 'is not allowed in a checkpoint (only HistoryBuffer statistics methods)')


def register_safe_globals() -> None:
    """Allow-list :func:`safe_globals` for ``torch.load(weights_only=True)`` (idempotent)."""
    global _REGISTERED
    if not _REGISTERED:
        torch.serialization.add_safe_globals(safe_globals() + [(_history_buffer_getattr, 'builtins.getattr')])
        _REGISTERED = True


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, not a torch checkpoint, holds types outside
    :func:`safe_globals`, or does not fit the model. The message names the file."""


def load_checkpoint_file(path: str | os.PathLike, map_location='cpu') -> dict:
    """``torch.load`` with ``weights_only=True`` after registering the allowed mmengine types.

    A missing file raises ``FileNotFoundError``; an empty, truncated or foreign file, or one that
    needs types outside :func:`safe_globals`, raises :class:`CheckpointError` naming the file."""
    register_safe_globals()
    if not osp.exists(path):
        raise FileNotFoundError(f'{path}: no such checkpoint file')
    if osp.isdir(path):
        raise CheckpointError(f'{path}: is a directory, not a checkpoint file')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path}: empty file, not a checkpoint')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:      # UnpicklingError, EOFError, RuntimeError (zip), ...: all say "not loadable"
        glob = re.search(r'GLOBAL ([\w.]+)', str(e)) or re.search(r'reduce for unrecognized function (\S+)', str(e))
        if glob:
            why = (f'it holds {glob.group(1)}, which is not among the allowed checkpoint types (visrc loads '
                   'with weights_only=True and never runs code from a file; if you trust the file, keep only '
                   'its weights with mmdet\'s tools/model_converters/publish_model.py, or torch.save its '
                   '"state_dict" alone, and load that)')
        elif re.search(r'getattr\(.*?\) is not allowed in a checkpoint[^\n]*', str(e)):
            why = re.search(r'getattr\(.*?\) is not allowed in a checkpoint[^\n]*', str(e)).group(0)
        else:
            why = 'not a torch checkpoint, or truncated'
        raise CheckpointError(f'{path}: cannot load: {why}') from e


def load_weights(model: torch.nn.Module, path: str | os.PathLike, strict: bool = True) -> dict:
    """Load a checkpoint's ``state_dict`` (or a bare state dict) into ``model``; returns the
    checkpoint's ``meta`` (``{}`` if none). ``module.`` prefixes from DDP are stripped."""
    ckpt = load_checkpoint_file(path)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(state, dict):
        raise CheckpointError(f'{path}: holds a {type(state).__name__}, not a state dict')
    state = OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in state.items())
    missing, unexpected = model.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise CheckpointError(f'{path}: state dict does not match the model; '
                           f'missing {missing[:8]}, unexpected {unexpected[:8]}')
    return ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}


def find_resume_checkpoint(work_dir: str | os.PathLike) -> str | None:
    """The newest complete checkpoint in ``work_dir`` (``epoch_N.pth`` / ``iter_N.pth``, largest N),
    or None. Checkpoint files appear only complete (atomic rename), but a kill between the rename
    and the update of mmengine's ``last_checkpoint`` pointer leaves the pointer one behind (or
    missing), so the directory is scanned rather than the pointer trusted."""
    best, best_key = None, None
    if not osp.isdir(work_dir):
        return None
    for name in os.listdir(work_dir):
        m = re.fullmatch(r'(epoch|iter)_(\d+)\.pth', name)
        if m:
            key = (m.group(1) == 'iter', int(m.group(2)))
            if best_key is None or key > best_key:
                best, best_key = osp.join(work_dir, name), key
    pointer = osp.join(work_dir, 'last_checkpoint')
    if best is None and osp.isfile(pointer):
        with open(pointer) as f:
            target = f.read().strip()
        best = target if osp.isfile(target) else None
    return best


_TEMP_FILE = re.compile(r'\.(?:(?:epoch|iter)_\d+\.pth\.(\d+)|last_checkpoint\.\w+)\.tmp')


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(work_dir: str | os.PathLike) -> list[str]:
    """Delete the temp files an interrupted :class:`AtomicCheckpointHook` save left in ``work_dir``
    (``.epoch_N.pth.<pid>.tmp`` of a process no longer running, ``.last_checkpoint.*.tmp``);
    returns their paths. Complete checkpoints are never touched."""
    removed = []
    if not osp.isdir(work_dir):
        return removed
    for name in sorted(os.listdir(work_dir)):
        m = _TEMP_FILE.fullmatch(name)
        if m and not (m.group(1) and int(m.group(1)) != os.getpid() and _pid_alive(int(m.group(1)))):
            path = osp.join(work_dir, name)
            try:
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` whose saves are atomic (see the module docstring).

    Same arguments as ``CheckpointHook`` (``interval``, ``by_epoch``, ``max_keep_ckpts``, ...).
    Non-local ``out_dir`` backends fall back to mmengine's behaviour.
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        to_remove = []
        if self.max_keep_ckpts > 0 and not (len(self.keep_ckpt_ids) > 0
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                to_remove.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        tmp_filename = f'.{ckpt_filename}.{os.getpid()}.tmp'
        tmp_path = self.file_backend.join_path(self.out_dir, tmp_filename)
        try:
            runner.save_checkpoint(self.out_dir, tmp_filename, self.file_client_args,
                                   save_optimizer=self.save_optimizer,
                                   save_param_scheduler=self.save_param_scheduler,
                                   meta=meta, by_epoch=self.by_epoch,
                                   backend_args=self.backend_args, **self.args)
            if not is_main_process():     # Runner.save_checkpoint writes on rank 0 only
                return
            _fsync_file(tmp_path)
            os.replace(tmp_path, self.last_ckpt)
        finally:
            if osp.exists(tmp_path):
                os.unlink(tmp_path)
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old in to_remove:
            old_path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if osp.isfile(old_path):
                os.unlink(old_path)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Store Python/numpy/torch RNG states in every checkpoint; restore them on resume."""

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        np_state = np.random.get_state()
        checkpoint['rng_state'] = dict(
            python=random.getstate(),
            numpy=(np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                   int(np_state[2]), int(np_state[3]), float(np_state[4])),
            torch=torch.get_rng_state())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('rng_state')
        if not state or not getattr(runner, '_resume', False):
            return
        random.setstate(_to_tuple(state['python']))
        name, keys, pos, has_gauss, cached = state['numpy']
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state['torch'])


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


register_safe_globals()
