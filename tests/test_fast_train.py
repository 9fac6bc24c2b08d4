"""visrc.models.fast_train: same outputs, gradients and losses as mmcv's RoIAlign path, bit for bit."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

from visrc.models.fast_train import FastRoIAlign, FastRoIAlignFunction, FastTrainHook, use_fast_roi_align

mmcv_roi_align = importlib.import_module('mmcv.ops.roi_align')
BENCH = Path(__file__).resolve().parents[1] / 'benchmarks'


def _rois(n, b, h, w, scale, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w / scale, h / scale]) - 4   # some start outside
    wh = torch.rand(n, 2, generator=g) * torch.tensor([w / scale, h / scale]) * 0.6 + 0.5
    idx = torch.randint(0, b, (n, 1), generator=g).float()
    return torch.cat([idx, xy, xy + wh], 1)


@pytest.mark.parametrize('out,scale,ratio,aligned', [(7, 0.25, 0, True), (14, 0.125, 0, True),
                                                     (7, 0.25, 2, True), (5, 0.5, 0, False)])
def test_fast_roi_align_equals_mmcv(out, scale, ratio, aligned):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 20, requires_grad=True)
    rois = _rois(9, 2, 12, 20, scale, seed=out)
    ref = mmcv_roi_align.RoIAlignFunction.apply(x, rois, out, scale, ratio, 'avg', aligned)
    got = FastRoIAlignFunction.apply(x, rois, out, scale, ratio, aligned)
    assert got.shape == ref.shape and got.is_contiguous()
    assert torch.equal(got, ref)
    grad_out = torch.randn_like(ref)
    (g_ref,) = torch.autograd.grad(ref, x, grad_out)
    (g_got,) = torch.autograd.grad(got, x, grad_out)
    assert g_got.is_contiguous() and torch.equal(g_got, g_ref)
    assert g_ref.abs().sum() > 0                           # the comparison is not of zeros


def test_fast_roi_align_falls_back_and_replaces():
    layer = FastRoIAlign(output_size=3, spatial_scale=1.0, pool_mode='max')
    x = torch.randn(1, 2, 6, 6)
    rois = torch.tensor([[0, 0.5, 0.5, 4.0, 5.0]])
    plain = mmcv_roi_align.RoIAlign(3, 1.0, pool_mode='max')
    assert torch.equal(layer(x, rois), plain(x, rois))      # max pooling: mmcv's op
    empty = FastRoIAlignFunction.apply(x, rois[:0], 3, 1.0, 0, True)
    assert empty.shape == (0, 2, 3, 3)
    model = torch.nn.ModuleDict({'a': torch.nn.ModuleList([mmcv_roi_align.RoIAlign(7, 0.25)]),
                                 'b': mmcv_roi_align.RoIAlign(14, 0.5, sampling_ratio=2, aligned=False)})
    assert use_fast_roi_align(model) == 2
    assert type(model['a'][0]) is FastRoIAlign and model['b'].sampling_ratio == 2 and not model['b'].aligned
    assert use_fast_roi_align(model) == 0


def _losses(config: str, fast: bool, iters: int):
    """The first ``iters`` batches and loss dicts of ``config``'s training on the small toy."""
    sys.path.insert(0, str(BENCH))
    from bench_train_profile import record_losses
    return record_losses(config, iters, "fast" if fast else None)


def test_fast_training_same_batches_and_losses():
    """toy_tcis has both replaced ops (RoIAlign, TCIS's DeformConv2d); from the second iteration on
    the losses depend on their backward."""
    iters = 3
    plain = _losses('toy_tcis', False, iters)
    fast = _losses('toy_tcis', True, iters)
    assert fast['replaced']['FastDeformConv2d'] == 1 and fast['replaced']['FastRoIAlign'] > 0
    assert plain['replaced'] == {'FastRoIAlign': 0, 'FastDeformConv2d': 0}
    from bench_train_profile import batches_equal
    assert batches_equal(plain['batches'], fast['batches'])
    assert len(plain['losses']) == len(fast['losses']) == iters
    assert any(loss['loss_mask_tcis'] > 0 for loss in plain['losses'])   # TCIS ran
    assert plain['losses'] == fast['losses']                # bitwise: float equality of every loss
    assert isinstance(FastTrainHook(), FastTrainHook)


def test_visrc_train_adds_the_hook_by_default_once(tmp_path):
    import argparse

    from visrc.models.train_cli import add_arguments, prepare_config

    p = argparse.ArgumentParser()
    add_arguments(p)
    assert p.parse_args(['toy_baseline']).fast_kernels is True
    assert p.parse_args(['toy_baseline', '--no-fast-kernels']).fast_kernels is False

    def hooks(cfg):
        return [h['type'] for h in cfg.custom_hooks]

    plain = prepare_config('toy_baseline', work_dir=tmp_path)
    fast = prepare_config('toy_baseline', work_dir=tmp_path, fast_kernels=True)
    assert 'FastTrainHook' not in hooks(plain)
    assert hooks(fast) == hooks(plain) + ['FastTrainHook']
    assert 'visrc.models.fast_train' in fast.custom_imports['imports']
    again = prepare_config('toy_baseline', work_dir=tmp_path, fast_kernels=True,
                           cfg_options={'custom_hooks': [dict(type='FastTrainHook', foreach=False)]})
    assert hooks(again) == ['FastTrainHook']                # a config's own hook (its settings) is kept
    assert again.custom_hooks[0]['foreach'] is False
