"""Record ``tests/reference/ops_fixture.pt`` with mmcv-full's compiled CPU ops (run once, in an
environment with mmcv 2.1.0 built with ops; ``tests/test_ops.py`` compares visrc.ops with it)::

    MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0     # in a separate venv
    python tests/record_ops_fixture.py

Inputs, outputs and every gradient are stored (torch.save of tensors, numbers and strings only,
loadable with ``weights_only=True``); nothing is random at test time. The deformable-conv cases use
one-hot weights and, for the weight gradient, a sparse output gradient (:func:`_one_hot_weight`,
:func:`_sparse_grad`), so that the matrix products, torch's own in mmcv and in visrc, are exact
whatever the CPU or thread count.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent / 'reference' / 'ops_fixture.pt'


def _rois(n, b, h, w, scale, gen, outside=False):
    """(n, 5) RoIs on a (h, w) map at ``scale``: some start left/above of the map; ``outside``: all
    entirely beyond its bottom-right corner."""
    xy = torch.rand(n, 2, generator=gen) * torch.tensor([w / scale, h / scale]) - 4
    wh = torch.rand(n, 2, generator=gen) * torch.tensor([w / scale, h / scale]) * 0.6 + 0.5
    if outside:
        xy = xy.abs() + torch.tensor([w / scale + 3, h / scale + 3])
    idx = torch.randint(0, b, (n, 1), generator=gen).float()
    return torch.cat([idx, xy, xy + wh], 1)


def roi_align_cases():
    """(name, input, rois, output_size, spatial_scale, sampling_ratio, aligned)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 12, 20, generator=gen)
    out = []
    for name, size, scale, ratio, aligned, n in [('aligned_r0', (7, 7), 0.25, 0, True, 9),
                                                 ('aligned_r2', (7, 7), 0.25, 2, True, 9),
                                                 ('unaligned_r0', (5, 5), 0.5, 0, False, 9),
                                                 ('unaligned_r1', (14, 14), 0.125, 1, False, 5),
                                                 ('tuple_size', (7, 5), 0.25, 0, True, 6),
                                                 ('scale1_mask_targets', (28, 28), 1.0, 0, True, 4)]:
        out.append((name, x, _rois(n, 2, 12, 20, scale, gen), size, scale, ratio, aligned))
    out.append(('empty', x, torch.zeros(0, 5), (7, 7), 0.25, 0, True))
    out.append(('outside', x, _rois(4, 2, 12, 20, 0.25, gen, outside=True), (7, 7), 0.25, 0, True))
    return out


def nms_cases():
    """(name, boxes, scores, iou_threshold, offset)."""
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(300, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + torch.rand(300, 2, generator=gen) * 40 + 1], 1)
    scores = torch.rand(300, generator=gen)
    tied = (scores * 8).floor() / 8                       # 8 score levels: many ties
    dup = torch.cat([boxes[:20], boxes[:20]])             # identical boxes, identical scores
    return [('random', boxes, scores, 0.5, 0), ('tied_scores', boxes, tied, 0.7, 0),
            ('offset1', boxes, scores, 0.3, 1), ('duplicates', dup, torch.cat([tied[:20]] * 2), 0.5, 0),
            ('empty', torch.zeros(0, 4), torch.zeros(0), 0.5, 0)]


def _one_hot_weight(c_out, c, groups, k, gen):
    """(c_out, c / groups, k, k): each output channel takes one tap of its group's input (weight 1 or
    0.5), no two channels of a group the same tap. Every product sum of the convolution and of its
    input gradient then has one nonzero term, so it is exact in any order, on any CPU and thread
    count: the comparison tests the sampling kernels (im2col, col2im), not the matrix library."""
    per_group = c_out // groups
    taps = (c // groups) * k * k
    w = torch.zeros(c_out, taps)
    for g in range(groups):
        chosen = torch.randperm(taps, generator=gen)[:per_group]
        for o, tap in enumerate(chosen):
            w[g * per_group + o, tap] = 1.0 if o % 2 == 0 else 0.5
    return w.view(c_out, c // groups, k, k)


def _sparse_grad(shape, step, gen):
    """(n, c_out, ho, wo) output gradient with one nonzero value per channel per im2col block of
    ``step`` images: the weight gradient's sums over positions then have one nonzero term per block."""
    n, c_out, ho, wo = shape
    g = torch.zeros(shape)
    for block in range(n // step):
        for o in range(c_out):
            pos = torch.randint(0, step * ho * wo, (1,), generator=gen).item()
            g[block * step + pos // (ho * wo), o, (pos % (ho * wo)) // wo, pos % wo] = torch.randn(1, generator=gen)
    return g


def deform_conv_cases():
    """(name, input, offset, weight, stride, padding, dilation, groups, deform_groups, im2col_step)."""
    gen = torch.Generator().manual_seed(2)
    out = []
    for name, n, c, c_out, k, stride, pad, dil, groups, dg, step in [
            ('tcis_like', 4, 8, 8, 3, 1, 1, 1, 1, 1, 2),
            ('deform_groups2', 2, 8, 6, 3, 1, 1, 1, 1, 2, 2),
            ('groups2_stride2', 2, 8, 8, 3, 2, 1, 1, 2, 1, 1),
            ('dilation2', 3, 4, 5, 3, 1, 2, 2, 1, 1, 3),
            ('kernel1_dg4', 2, 8, 4, 1, 1, 0, 1, 1, 4, 2)]:
        h, w = 9, 11
        ho = (h + 2 * pad - (dil * (k - 1) + 1)) // stride + 1
        wo = (w + 2 * pad - (dil * (k - 1) + 1)) // stride + 1
        x = torch.randn(n, c, h, w, generator=gen)
        offset = torch.randn(n, dg * 2 * k * k, ho, wo, generator=gen) * 2.5   # some samples fall outside
        offset[0, :, 0, 0] = 1.0                        # whole-pixel offsets: corner weights of 0
        offset[-1, :, -1, -1] = -1.0                    # a sample on the border
        out.append((name, x, offset, _one_hot_weight(c_out, c, groups, k, gen), stride, pad, dil, groups, dg,
                    step))
    return out


def record() -> dict:
    import visrc  # noqa: F401  (with mmcv-full installed, mmcv's own ops are used: checked below)
    from mmcv.ops import deform_conv2d, nms, roi_align

    from visrc.ops import backend

    if backend() != 'mmcv':
        sys.exit('record_ops_fixture: needs mmcv-full (mmcv 2.1.0 built with ops); this environment has mmcv-lite')
    gen = torch.Generator().manual_seed(3)
    fixture = {'mmcv': str(__import__('mmcv').__version__), 'torch': str(torch.__version__),
               'roi_align': [], 'nms': [], 'deform_conv': []}
    for name, x, rois, size, scale, ratio, aligned in roi_align_cases():
        x = x.clone().requires_grad_(True)
        y = roi_align(x, rois, size, scale, ratio, 'avg', aligned)
        grad_out = torch.randn(y.shape, generator=gen)
        (gx,) = torch.autograd.grad(y, x, grad_out) if y.numel() else (torch.zeros_like(x),)
        fixture['roi_align'].append(dict(name=name, input=x.detach(), rois=rois, output_size=list(size),
                                         spatial_scale=scale, sampling_ratio=ratio, aligned=aligned,
                                         output=y.detach(), grad_output=grad_out, grad_input=gx))
    for name, boxes, scores, thr, offset in nms_cases():
        _, keep = nms(boxes, scores, thr, offset=offset)
        fixture['nms'].append(dict(name=name, boxes=boxes, scores=scores, iou_threshold=thr, offset=offset,
                                   keep=keep))
    for name, x, offset, weight, stride, pad, dil, groups, dg, step in deform_conv_cases():
        x, offset, weight = (t.clone().requires_grad_(True) for t in (x, offset, weight))
        y = deform_conv2d(x, offset, weight, stride, pad, dil, groups, dg, False, step)
        grad_out = torch.randn(y.shape, generator=gen)              # dense: input and offset gradients
        gx, goff = torch.autograd.grad(y, (x, offset), grad_out, retain_graph=True)
        grad_out_w = _sparse_grad(tuple(y.shape), step, gen)         # sparse: the weight gradient
        (gw,) = torch.autograd.grad(y, (weight,), grad_out_w)
        fixture['deform_conv'].append(dict(name=name, input=x.detach(), offset=offset.detach(),
                                           weight=weight.detach(), stride=stride, padding=pad, dilation=dil,
                                           groups=groups, deform_groups=dg, im2col_step=step,
                                           output=y.detach(), grad_output=grad_out, grad_input=gx,
                                           grad_offset=goff, grad_output_weight=grad_out_w, grad_weight=gw))
    return fixture


if __name__ == '__main__':
    torch.set_num_threads(1)
    data = record()
    torch.save(data, OUT)
    print(f'{OUT}: {sum(len(data[k]) for k in ("roi_align", "nms", "deform_conv"))} cases, '
          f'{OUT.stat().st_size // 1024} KiB')
