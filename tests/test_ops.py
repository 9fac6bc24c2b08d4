"""visrc.ops equals mmcv-full's compiled CPU ops bit for bit: every output and gradient of the recorded
fixture (``tests/reference/ops_fixture.pt``, made by ``tests/record_ops_fixture.py`` with mmcv 2.1.0
built with ops) is reproduced exactly (``torch.equal``) through mmcv's own Python wrappers, on any
CPU and thread count (the deformable-conv cases keep the matrix products exact: see the recorder)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import visrc  # noqa: F401  (before mmcv.ops: provides mmcv._ext on mmcv-lite)
from mmcv.ops import DeformConv2d, RoIAlign, batched_nms, deform_conv2d, nms, roi_align

from visrc.ops import backend
from visrc.ops.ext import MissingOpError

FIXTURE = Path(__file__).resolve().parent / 'reference' / 'ops_fixture.pt'
DATA = torch.load(FIXTURE, weights_only=True)


def _ids(kind):
    return [case['name'] for case in DATA[kind]]


LITE = pytest.mark.skipif(backend() != 'visrc.ops', reason='mmcv-full is installed: mmcv._ext is its own')


@LITE
def test_the_fixture_was_recorded_with_mmcv_full_and_the_ops_are_visrcs():
    assert DATA['mmcv'] == '2.1.0' and len(DATA['roi_align']) >= 8 and len(DATA['nms']) >= 5
    import mmcv._ext
    assert mmcv._ext.roi_align_forward.__module__ == 'visrc.ops.roi_align'


@pytest.mark.parametrize('case', DATA['roi_align'], ids=_ids('roi_align'))
def test_roi_align_equals_mmcv_full(case):
    x = case['input'].clone().requires_grad_(True)
    y = roi_align(x, case['rois'], tuple(case['output_size']), case['spatial_scale'], case['sampling_ratio'],
                  'avg', case['aligned'])
    assert y.shape == case['output'].shape and torch.equal(y, case['output'])
    if y.numel():
        (gx,) = torch.autograd.grad(y, x, case['grad_output'])
        assert torch.equal(gx, case['grad_input'])
    if case['name'] not in ('empty', 'outside'):
        assert case['output'].abs().sum() > 0 and case['grad_input'].abs().sum() > 0   # not a comparison of zeros


@pytest.mark.parametrize('case', DATA['nms'], ids=_ids('nms'))
def test_nms_equals_mmcv_full_ties_included(case):
    dets, keep = nms(case['boxes'], case['scores'], case['iou_threshold'], offset=case['offset'])
    assert keep.dtype == torch.long and torch.equal(keep, case['keep'])
    assert dets.shape == (len(case['keep']), 5)


@pytest.mark.parametrize('case', DATA['deform_conv'], ids=_ids('deform_conv'))
def test_deform_conv_equals_mmcv_full(case):
    x, offset, weight = (case[k].clone().requires_grad_(True) for k in ('input', 'offset', 'weight'))
    y = deform_conv2d(x, offset, weight, case['stride'], case['padding'], case['dilation'], case['groups'],
                      case['deform_groups'], False, case['im2col_step'])
    assert torch.equal(y, case['output'])
    gx, goff = torch.autograd.grad(y, (x, offset), case['grad_output'], retain_graph=True)
    (gw,) = torch.autograd.grad(y, (weight,), case['grad_output_weight'])
    for got, key in ((gx, 'grad_input'), (goff, 'grad_offset'), (gw, 'grad_weight')):
        assert torch.equal(got, case[key]), key
        assert case[key].abs().sum() > 0


def test_the_modules_mmdet_builds_run_on_visrc_ops():
    """RoIAlign and DeformConv2d modules and batched_nms (as mmdet's heads call them) give the fixture's numbers."""
    case = DATA['roi_align'][0]
    layer = RoIAlign(tuple(case['output_size']), case['spatial_scale'], case['sampling_ratio'],
                     aligned=case['aligned'])
    assert torch.equal(layer(case['input'], case['rois']), case['output'])
    case = DATA['deform_conv'][0]
    conv = DeformConv2d(case['input'].size(1), case['weight'].size(0), case['weight'].shape[2:],
                        padding=case['padding'], bias=False, im2col_step=case['im2col_step'])
    with torch.no_grad():
        conv.weight.copy_(case['weight'])
    assert torch.equal(conv(case['input'], case['offset']), case['output'])
    case = DATA['nms'][0]
    _, keep = batched_nms(case['boxes'], case['scores'], torch.zeros(len(case['scores']), dtype=torch.long),
                          dict(type='nms', iou_threshold=case['iou_threshold']))
    assert torch.equal(keep, case['keep'])


@LITE
def test_an_op_visrc_does_not_provide_fails_with_one_line_naming_it():
    from mmcv.ops import soft_nms

    with pytest.raises(MissingOpError, match=r'^mmcv op softnms is not provided by visrc\.ops.*docs/gpu\.md$'):
        soft_nms(torch.rand(3, 4), torch.rand(3), 0.5)
    with pytest.raises(NotImplementedError, match='roi_align with pool_mode=max'):
        roi_align(torch.rand(1, 1, 4, 4), torch.tensor([[0., 0, 0, 2, 2]]), 2, 1.0, 0, 'max', True)


@LITE
def test_import_order_is_visrc_first():
    """A fresh interpreter: ``import visrc, mmdet.models`` works; mmdet.models before visrc does not."""
    ok = subprocess.run([sys.executable, '-c', 'import visrc, mmdet.models'], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = subprocess.run([sys.executable, '-c', 'import mmdet.models'], capture_output=True, text=True)
    assert bad.returncode != 0 and "No module named 'mmcv._ext'" in bad.stderr
