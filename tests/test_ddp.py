"""Multi-process training on CPU: torchrun + DDP (gloo) + synchronized BN, a few iterations.

torch's SyncBatchNorm refuses CPU tensors ("expected input tensor to be on GPU"), so the configs'
synchronized BN is :class:`visrc.models.sync_bn.VisSyncBN`; the first test checks its statistics
across 2 gloo processes against BatchNorm over the concatenated batch, the second runs
``torchrun --nproc_per_node=2 -m visrc train`` for one short epoch (about a minute on 2 cores).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _sync_bn_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from visrc.models.sync_bn import VisSyncBN

    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.manual_seed(0)
    x = torch.randn(2 * world, 3, 5, 5) * 3 + 1            # same full batch on every rank
    bn = VisSyncBN(3).train()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    xs = x[2 * rank:2 * rank + 2].clone().requires_grad_(True)
    y = bn(xs)
    (y * torch.arange(y.numel()).view_as(y).float()).sum().backward()
    torch.save(dict(y=y.detach(), gx=xs.grad, gw=bn.weight.grad, rm=bn.running_mean, rv=bn.running_var),
               f'{out}/rank{rank}.pt')
    dist.destroy_process_group()


def test_vis_sync_bn_equals_full_batch_bn_across_two_gloo_processes(tmp_path):
    world = 2
    mp.spawn(_sync_bn_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    torch.manual_seed(0)
    x = (torch.randn(2 * world, 3, 5, 5) * 3 + 1).requires_grad_(True)
    bn = torch.nn.BatchNorm2d(3).train()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    y = bn(x)
    w = torch.cat([torch.arange(y[:2].numel()).view_as(y[:2]).float()] * world)
    (y * w).sum().backward()
    for r in range(world):
        got = torch.load(tmp_path / f'rank{r}.pt', weights_only=True)
        torch.testing.assert_close(got['y'], y[2 * r:2 * r + 2].detach(), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got['gx'], x.grad[2 * r:2 * r + 2], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got['rm'], bn.running_mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got['rv'], bn.running_var, atol=1e-5, rtol=1e-5)
        # DDP would average weight grads over ranks; here each rank has its local part
    gw = sum(torch.load(tmp_path / f'rank{r}.pt', weights_only=True)['gw'] for r in range(world))
    torch.testing.assert_close(gw, bn.weight.grad, atol=1e-3, rtol=1e-4)


def test_torchrun_two_processes_trains_with_ddp_and_sync_bn(toy_small, tmp_path):
    wd = tmp_path / 'ddp'
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get('PYTHONPATH', '')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port', str(_free_port()),
           '-m', 'visrc', 'train', 'toy_baseline', '--launcher', 'pytorch', '--data-root', str(toy_small),
           '--work-dir', str(wd), '--max-epochs', '1', '--cfg-options',
           'train_dataloader.dataset.pipeline.1.transforms.2.scale=(96,64)', 'train_dataloader.batch_size=2',
           'default_hooks.logger.interval=1', 'sync_bn=torch']
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    assert 'converted to VisSyncBN' in log
    assert 'Epoch(train) [1]' in log
    # every annotated frame is a key frame once per epoch, split over 2 processes of batch 2
    import math

    from visrc.fileio import read_json
    from visrc.models.checkpoint import load_checkpoint_file
    data = read_json(toy_small / 'train' / 'instances.json')
    annotated = {(a['video_id'], t) for a in data['annotations'] for t, b in enumerate(a['bboxes']) if b}
    ck = load_checkpoint_file(wd / 'epoch_1.pth')
    assert ck['meta']['epoch'] == 1
    assert ck['meta']['iter'] == math.ceil(math.ceil(len(annotated) / 2) / 2)
    assert not any(k.startswith('module.') for k in ck['state_dict'])
    assert any('bn1.running_mean' in k for k in ck['state_dict'])
