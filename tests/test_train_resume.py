"""`visrc train`: checkpoints load with weights_only=True, are written atomically, and a run killed
mid-way resumes to exactly the weights of an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

EPOCHS = 2
TINY = [
    'train_dataloader.dataset.pipeline.1.transforms.2.scale=(96,64)',
    'train_dataloader.batch_size=4',
    'default_hooks.logger.interval=1',
]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')   # 1 thread: bitwise-reproducible
    env['PYTHONPATH'] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get('PYTHONPATH', '')
    return env


def _train_cmd(data_root, work_dir, *extra):
    return [sys.executable, '-m', 'visrc', 'train', 'toy_baseline', '--data-root', str(data_root),
            '--work-dir', str(work_dir), '--max-epochs', str(EPOCHS), *extra, '--cfg-options', *TINY]


def _last(work_dir: Path) -> Path:
    return Path((work_dir / 'last_checkpoint').read_text().strip())


@pytest.fixture(scope='module')
def uninterrupted(toy_small, tmp_path_factory):
    wd = tmp_path_factory.mktemp('run_a')
    subprocess.run(_train_cmd(toy_small, wd), check=True, env=_env(), capture_output=True, timeout=600)
    return wd


def test_checkpoints_load_with_weights_only(uninterrupted):
    from visrc.models.checkpoint import load_checkpoint_file

    ckpt_path = _last(uninterrupted)
    assert ckpt_path.name == f'epoch_{EPOCHS}.pth' and ckpt_path.is_file()
    # max_keep_ckpts=2 and no temp files left behind
    assert sorted(p.name for p in uninterrupted.glob('*.pth')) == [f'epoch_{EPOCHS - 1}.pth', f'epoch_{EPOCHS}.pth']
    assert not list(uninterrupted.glob('.*.tmp'))
    # plain torch.load(weights_only=True) refuses mmengine's checkpoint without the allow-list ...
    probe = textwrap.dedent(f"""
        import pickle, torch
        try:
            torch.load({str(ckpt_path)!r}, weights_only=True)
        except pickle.UnpicklingError:
            print('REFUSED')
        import visrc.models.checkpoint
        ck = torch.load({str(ckpt_path)!r}, weights_only=True)
        print('LOADED', ck['meta']['epoch'])
    """)
    out = subprocess.run([sys.executable, '-c', probe], env=_env(), capture_output=True, text=True, check=True).stdout
    assert 'REFUSED' in out and f'LOADED {EPOCHS}' in out
    # ... and with it, everything mmengine saved is there
    ck = load_checkpoint_file(ckpt_path)
    assert {'state_dict', 'optimizer', 'param_schedulers', 'message_hub', 'meta', 'rng_state'} <= set(ck)


def test_killed_run_resumes_to_the_same_weights(toy_small, uninterrupted, tmp_path):
    from visrc.models.checkpoint import load_checkpoint_file

    wd = tmp_path / 'run_b'
    proc = subprocess.Popen(_train_cmd(toy_small, wd), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (wd / 'epoch_1.pth').is_file():
            assert proc.poll() is None, 'training ended before writing epoch 1'
            assert time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)      # mid-way through epoch 2
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (wd / f'epoch_{EPOCHS}.pth').exists()
    # the kill may land between the checkpoint's rename and the `last_checkpoint` pointer update:
    # resume scans the directory, and whatever it finds must load
    from visrc.models.checkpoint import find_resume_checkpoint
    latest = find_resume_checkpoint(wd)
    assert latest is not None and load_checkpoint_file(latest)['meta']['epoch'] >= 1

    subprocess.run(_train_cmd(toy_small, wd, '--resume'), check=True, env=_env(), capture_output=True,
                   timeout=600)
    a = load_checkpoint_file(uninterrupted / f'epoch_{EPOCHS}.pth')
    b = load_checkpoint_file(wd / f'epoch_{EPOCHS}.pth')
    assert (a['meta']['epoch'], a['meta']['iter']) == (b['meta']['epoch'], b['meta']['iter'])
    assert a['param_schedulers'] == b['param_schedulers']
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for k in a['state_dict']:
        torch.testing.assert_close(a['state_dict'][k], b['state_dict'][k], rtol=0, atol=0, msg=k)
    sa, sb = a['optimizer']['state'], b['optimizer']['state']
    assert sa.keys() == sb.keys()
    for k in sa:
        for name in sa[k]:
            torch.testing.assert_close(sa[k][name], sb[k][name], rtol=0, atol=0)


def test_kill_during_save_leaves_previous_checkpoint(uninterrupted, tmp_path):
    """A process killed while writing a checkpoint leaves the previous one (and the pointer to it)
    loadable, even with max_keep_ckpts=1 (mmengine deletes the old file *before* saving)."""
    import shutil

    wd = tmp_path / 'wd'
    wd.mkdir()
    prev = wd / 'epoch_1.pth'
    shutil.copy(_last(uninterrupted), prev)
    (wd / 'last_checkpoint').write_text(str(prev))
    script = textwrap.dedent(f"""
        import os, signal
        from mmengine.logging import MessageHub
        from visrc.models.checkpoint import AtomicCheckpointHook

        class Runner:               # what CheckpointHook uses of mmengine's Runner
            work_dir = {str(wd)!r}
            message_hub = MessageHub.get_instance('kill-test')
            def save_checkpoint(self, out_dir, filename, *args, **kwargs):
                with open(os.path.join(out_dir, filename), 'wb') as f:
                    f.write(b'half a checkpoint')
                    f.flush()
                os.kill(os.getpid(), signal.SIGKILL)

        hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=1)
        hook.out_dir = Runner.work_dir
        from mmengine.fileio import get_file_backend
        hook.file_backend = get_file_backend(hook.out_dir)
        from collections import deque
        hook.keep_ckpt_ids = deque([1], 1)           # what before_train restores: epoch 1 is kept
        hook._save_checkpoint_with_step(Runner(), 2, dict(epoch=2, iter=20))
    """)
    r = subprocess.run([sys.executable, '-c', script], env=_env(), capture_output=True)
    assert r.returncode == -signal.SIGKILL
    from visrc.models.checkpoint import load_checkpoint_file
    assert _last(wd) == prev and prev.is_file()
    assert load_checkpoint_file(prev)['meta']['epoch'] == EPOCHS
    assert not (wd / 'epoch_2.pth').exists()
