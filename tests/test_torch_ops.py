"""visrc.ops.torch_ops, the plain-torch path of the ops (CUDA, float16/bfloat16 under AMP, float64), against
the exact path: mmcv's public ops on CPU float32, which run visrc's numba kernels (equal to mmcv-full's CPU
ops bit for bit, ``tests/test_ops.py``).

Tolerances: float32 results (outputs, input / offset / weight gradients) agree to ``TOL`` (they differ only
in the order of the float32 sums); float64 runs are compared with the float32 exact results to the same
``TOL``; float16 / bfloat16 (computed in float32, rounded at the end) to ``TOL_HALF`` / ``TOL_BF16``. NMS keeps
exactly the same indices in the same order. Deformable-conv offsets are kept away from integer sample
positions (fractions in [0.2, 0.8]), where the offset gradient jumps, rather than loosening the tolerance.
"""
from __future__ import annotations

import pytest
import torch

import visrc  # noqa: F401  (before mmcv.ops: provides mmcv._ext on mmcv-lite)
from mmcv.ops import deform_conv2d, nms, roi_align

from visrc.ops import torch_ops

TOL = dict(atol=1e-5, rtol=1e-4)
TOL_HALF = dict(atol=1e-2, rtol=1e-2)
TOL_BF16 = dict(atol=6e-2, rtol=4e-2)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(),
                          reason='no CUDA device: the CUDA path of visrc.ops runs in benchmarks/device_check.sh')
DEVICES = ['cpu', pytest.param('cuda', marks=CUDA)]


@pytest.fixture(autouse=True)
def _no_tf32():
    """mmcv's CUDA kernels are plain float32: compare without TF32 matmuls (torch's default anyway)."""
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = old


def _close(got, want, tol=TOL):
    assert got.shape == want.shape and got.dtype == want.dtype
    torch.testing.assert_close(got.cpu(), want.cpu(), **tol)


# ---------------------------------------------------------------------------- RoIAlign
SCALE = 0.5
OUT = (7, 5)


def _roi_data():
    """Feature map (2, 3, 12, 14) at scale 1/2 and RoIs in image coordinates: random ones (grids of 1 to 3
    samples with sampling_ratio 0) and the border cases."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 12, 14, generator=g)
    xy = torch.rand(12, 2, generator=g) * 26 - 2
    wh = torch.rand(12, 2, generator=g) * 16 + 0.5
    random = torch.cat([torch.randint(0, 2, (12, 1), generator=g).float(), xy, xy + wh], 1)
    border = torch.tensor([
        [0, -6.0, -4.0, 8.0, 6.0],          # partly outside, top left
        [1, 20.0, 18.0, 40.0, 36.0],        # partly outside, bottom right
        [0, -30.0, -30.0, -10.0, -12.0],    # fully outside, above and left
        [1, 50.0, 40.0, 70.0, 60.0],        # fully outside, beyond H and W
        [0, 3.1, 4.2, 3.6, 4.5],            # under a pixel: clamped to 1x1 when not aligned
        [1, 9.0, 7.0, 5.0, 6.0],            # x2 < x1, y2 < y1: no samples when aligned and adaptive
        [0, 0.0, 0.0, 28.0, 24.0],          # the whole map: the largest adaptive grid (2 x 3)
        [1, 27.0, 23.0, 28.0, 24.0],        # the last pixel: samples clamped at H - 1, W - 1
    ])
    return x, torch.cat([random, border])


def _roi_exact(x, rois, sampling_ratio, aligned, grad):
    xr = x.clone().requires_grad_(True)
    y = roi_align(xr, rois, OUT, SCALE, sampling_ratio, 'avg', aligned)
    (gx,) = torch.autograd.grad(y, xr, grad)
    return y.detach(), gx


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_matches_the_exact_path(device, sampling_ratio, aligned):
    x, rois = _roi_data()
    grad = torch.randn(len(rois), 3, *OUT, generator=torch.Generator().manual_seed(1))
    want_y, want_gx = _roi_exact(x, rois, sampling_ratio, aligned, grad)
    assert want_y.abs().sum() > 0 and want_gx.abs().sum() > 0
    assert want_y[len(rois) - 6:len(rois) - 4].abs().sum() == 0   # the fully outside RoIs pool nothing
    xd, rd, gd = x.to(device), rois.to(device), grad.to(device)
    y = torch_ops.roi_align(xd, rd, OUT, SCALE, sampling_ratio, aligned)
    gx = torch_ops.roi_align_backward(gd, rd, tuple(x.shape), SCALE, sampling_ratio, aligned)
    assert y.device.type == device and gx.device.type == device
    _close(y, want_y)
    _close(gx, want_gx)
    # through mmcv's wrapper and visrc's dispatch (CUDA here; float64 in the test below), autograd included
    if device != 'cpu':
        xr = xd.clone().requires_grad_(True)
        y2 = roi_align(xr, rd, OUT, SCALE, sampling_ratio, 'avg', aligned)
        (gx2,) = torch.autograd.grad(y2, xr, gd)
        _close(y2, want_y)
        _close(gx2, want_gx)


@pytest.mark.parametrize('device', DEVICES)
def test_roi_align_without_rois(device):
    x = torch.randn(2, 3, 12, 14, device=device)
    rois = torch.zeros((0, 5), device=device)
    y = torch_ops.roi_align(x, rois, OUT, SCALE, 0, True)
    assert y.shape == (0, 3, *OUT) and y.device.type == device
    gx = torch_ops.roi_align_backward(torch.zeros((0, 3, *OUT), device=device), rois, tuple(x.shape), SCALE, 0, True)
    assert gx.shape == x.shape and gx.abs().sum() == 0
    assert roi_align(x.cpu(), rois.cpu(), OUT, SCALE, 0, 'avg', True).shape == y.shape


def test_roi_align_chunks_give_the_same_numbers(monkeypatch):
    """Tiny chunk limits: several RoI chunks (sorted by grid size, padded per chunk) and channel chunks."""
    x, rois = _roi_data()
    grad = torch.randn(len(rois), 3, *OUT, generator=torch.Generator().manual_seed(1))
    want_y, want_gx = _roi_exact(x, rois, 0, True, grad)
    for limit in (3000, 100):   # 100 < one RoI's samples x channels: chunks over channels too
        monkeypatch.setattr(torch_ops, '_LIMIT', limit)
        _close(torch_ops.roi_align(x, rois, OUT, SCALE, 0, True), want_y)
        _close(torch_ops.roi_align_backward(grad, rois, tuple(x.shape), SCALE, 0, True), want_gx)


@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_float64_through_mmcv_routes_to_torch_ops(aligned):
    x, rois = _roi_data()
    grad = torch.randn(len(rois), 3, *OUT, generator=torch.Generator().manual_seed(1))
    want_y, want_gx = _roi_exact(x, rois, 0, aligned, grad)
    x64 = x.double().requires_grad_(True)
    y = roi_align(x64, rois.double(), OUT, SCALE, 0, 'avg', aligned)
    (gx,) = torch.autograd.grad(y, x64, grad.double())
    _close(y.float(), want_y)
    _close(gx.float(), want_gx)
    small = x64[:, :1, :6, :7].detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois[:5].double(), (2, 3), SCALE, 0, 'avg', aligned),
                                    (small,), fast_mode=True)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_roi_align_half_precision_through_mmcv(device, dtype):
    """AMP: half-precision features, computed in float32, returned in their dtype."""
    x, rois = _roi_data()
    x = x.to(dtype).float()   # the exact reference sees the same rounded inputs
    grad = torch.randn(len(rois), 3, *OUT, generator=torch.Generator().manual_seed(1)).to(dtype).float()
    want_y, want_gx = _roi_exact(x, rois, 0, True, grad)
    xh = x.to(device, dtype).requires_grad_(True)
    y = roi_align(xh, rois.to(device), OUT, SCALE, 0, 'avg', True)
    (gx,) = torch.autograd.grad(y, xh, grad.to(device, dtype))
    assert y.dtype == dtype and gx.dtype == dtype
    tol = TOL_HALF if dtype == torch.float16 else TOL_BF16
    _close(y.float(), want_y, tol)
    _close(gx.float(), want_gx, tol)


# ---------------------------------------------------------------------------- NMS
def _nms_data(n=300, seed=0):
    """Overlapping boxes with scores rounded to one decimal: many ties; the first two boxes have IoU exactly
    0.5 (kept both at threshold 0.5: suppression is strictly greater)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 60
    boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 30 + 1], 1)
    boxes[0], boxes[1] = torch.tensor([100.0, 100.0, 110.0, 110.0]), torch.tensor([100.0, 100.0, 110.0, 105.0])
    boxes[2] = torch.tensor([5.0, 5.0, 5.0, 9.0])   # zero width: 0 / 0 IoU with offset 0 suppresses nothing
    scores = (torch.rand(n, generator=g) * 10).round() / 10
    scores[:3] = torch.tensor([2.0, 1.9, 1.8])
    return boxes, scores


def _nms_expected(boxes, scores, iou_threshold, offset, device):
    """The exact CPU NMS, in the score order the device's sort gives (tied scores may sort differently on
    CUDA; mmcv's CUDA op uses that order too)."""
    order = scores.to(device).sort(0, descending=True)[1].cpu()
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(len(scores), 0, -1, dtype=scores.dtype)
    return nms(boxes, ranks, iou_threshold, offset=offset)[1]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('offset', [0, 1])
@pytest.mark.parametrize('iou_threshold', [0.5, 0.3])
def test_nms_keeps_the_same_boxes_in_the_same_order(device, offset, iou_threshold):
    boxes, scores = _nms_data()
    want = _nms_expected(boxes, scores, iou_threshold, offset, device)
    if device == 'cpu':   # same sort on the same device: the exact op on the tied scores themselves
        assert torch.equal(want, nms(boxes, scores, iou_threshold, offset=offset)[1])
    assert 20 < len(want) < len(boxes)
    got = torch_ops.nms(boxes.to(device), scores.to(device), iou_threshold, offset)
    assert got.dtype == torch.long and got.device.type == device
    assert torch.equal(got.cpu(), want)
    if iou_threshold == 0.5 and offset == 0:
        assert {0, 1, 2} <= set(got.tolist())
    # through mmcv's wrapper: CUDA float32 and CPU float64 reach torch_ops
    for b, s in ((boxes.to(device), scores.to(device)), (boxes.double(), scores.double())):
        assert torch.equal(nms(b, s, iou_threshold, offset=offset)[1].cpu(),
                           _nms_expected(boxes, scores, iou_threshold, offset, b.device.type))


def test_nms_blocks_and_empty_input(monkeypatch):
    boxes, scores = _nms_data()
    monkeypatch.setattr(torch_ops, '_NMS_BLOCK', 1000)   # 3 rows per block
    assert torch.equal(torch_ops.nms(boxes, scores, 0.5, 0), nms(boxes, scores, 0.5)[1])
    keep = torch_ops.nms(torch.zeros((0, 4)), torch.zeros(0), 0.5, 0)
    assert keep.shape == (0,) and keep.dtype == torch.long


@CUDA
def test_nms_empty_input_on_cuda():
    keep = torch_ops.nms(torch.zeros((0, 4), device='cuda'), torch.zeros(0, device='cuda'), 0.5, 0)
    assert keep.shape == (0,) and keep.dtype == torch.long and keep.device.type == 'cuda'


# ---------------------------------------------------------------------------- deformable convolution
# (kernel, stride, padding, dilation, groups, deform_groups, im2col_step)
DCN_CASES = {
    'dg2-g2-stride2-dil2': ((3, 3), (2, 2), (2, 2), (2, 2), 2, 2, 1),
    'rect-kernel-stride-2x1': ((3, 2), (2, 1), (1, 0), (1, 2), 1, 1, 2),
    'dg2-g1-3x3': ((3, 3), (1, 1), (1, 1), (1, 1), 1, 2, 2),
}


def _dcn_data(kernel, stride, padding, dilation, groups, deform_groups, n=2, h=9, w=11):
    g = torch.Generator().manual_seed(0)
    c, c_out = 4, 6
    kh, kw = kernel
    ho = (h + 2 * padding[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    wo = (w + 2 * padding[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    x = torch.randn(n, c, h, w, generator=g)
    # offsets up to a few pixels (some samples leave the map), fractions kept away from integers
    whole = (torch.randn(n, deform_groups * 2 * kh * kw, ho, wo, generator=g) * 2.5).floor()
    offset = whole + 0.2 + 0.6 * torch.rand(whole.shape, generator=g)
    weight = torch.randn(c_out, c // groups, kh, kw, generator=g)
    grad = torch.randn(n, c_out, ho, wo, generator=g)
    return x, offset, weight, grad


def _dcn_exact(x, offset, weight, grad, case):
    kernel, stride, padding, dilation, groups, dg, step = case
    t = [v.clone().requires_grad_(True) for v in (x, offset, weight)]
    y = deform_conv2d(*t, stride, padding, dilation, groups, dg, False, step)
    return (y.detach(), *torch.autograd.grad(y, t, grad))


def _dcn_args(case):
    kernel, stride, padding, dilation, groups, dg, step = case
    return (*padding, *stride, *dilation, dg, groups)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('name', list(DCN_CASES))
def test_deform_conv_matches_the_exact_path(device, name):
    case = DCN_CASES[name]
    x, offset, weight, grad = _dcn_data(*case[:6])
    want = _dcn_exact(x, offset, weight, grad, case)
    for t in want:
        assert t.abs().sum() > 0
    assert (want[2] == 0).any() and (want[2] != 0).float().mean() > 0.5   # some samples fell off the map
    xd, od, wd, gd = (t.to(device) for t in (x, offset, weight, grad))
    args = _dcn_args(case)
    y = torch_ops.deform_conv(xd, od, wd, *args)
    gx, go = torch_ops.deform_conv_backward_input(xd, od, wd, gd, *args)
    gw = torch_ops.deform_conv_backward_weight(xd, od, gd, tuple(weight.shape), *args)
    assert y.device.type == device
    for got, exp in zip((y, gx, go, gw), want):
        _close(got, exp)
    if device != 'cpu':   # through mmcv's wrapper and visrc's dispatch, autograd included
        t = [v.clone().requires_grad_(True) for v in (xd, od, wd)]
        y2 = deform_conv2d(*t, case[1], case[2], case[3], case[4], case[5], False, case[6])
        for got, exp in zip((y2, *torch.autograd.grad(y2, t, gd)), want):
            _close(got, exp)


def test_deform_conv_batch_chunks_give_the_same_numbers(monkeypatch):
    case = DCN_CASES['dg2-g2-stride2-dil2']
    x, offset, weight, grad = _dcn_data(*case[:6])
    want = _dcn_exact(x, offset, weight, grad, case)
    monkeypatch.setattr(torch_ops, '_DCN_LIMIT', 1)   # one image per chunk
    args = _dcn_args(case)
    got = (torch_ops.deform_conv(x, offset, weight, *args),
           *torch_ops.deform_conv_backward_input(x, offset, weight, grad, *args),
           torch_ops.deform_conv_backward_weight(x, offset, grad, tuple(weight.shape), *args))
    for g, w in zip(got, want):
        _close(g, w)


@pytest.mark.parametrize('name', list(DCN_CASES))
def test_deform_conv_float64_through_mmcv_routes_to_torch_ops(name):
    case = DCN_CASES[name]
    x, offset, weight, grad = _dcn_data(*case[:6])
    want = _dcn_exact(x, offset, weight, grad, case)
    t = [v.double().requires_grad_(True) for v in (x, offset, weight)]
    y = deform_conv2d(*t, case[1], case[2], case[3], case[4], case[5], False, case[6])
    for got, exp in zip((y, *torch.autograd.grad(y, t, grad.double())), want):
        _close(got.float(), exp)
    # float64 autograd against finite differences, on a smaller map
    small = [v.double().requires_grad_(True) for v in _dcn_data(*case[:6], n=1, h=5, w=6)[:3]]
    assert torch.autograd.gradcheck(
        lambda a, b, c: deform_conv2d(a, b, c, case[1], case[2], case[3], case[4], case[5], False, 1), small,
        fast_mode=True)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_deform_conv_half_precision_through_mmcv(device, dtype):
    """AMP: mmcv casts input and weight to the offset's dtype; computed in float32, returned in it."""
    case = DCN_CASES['dg2-g2-stride2-dil2']
    x, offset, weight, grad = (t.to(dtype).float() for t in _dcn_data(*case[:6]))
    want = _dcn_exact(x, offset, weight, grad, case)
    t = [v.to(device, dtype).requires_grad_(True) for v in (x, offset, weight)]
    y = deform_conv2d(*t, case[1], case[2], case[3], case[4], case[5], False, case[6])
    got = (y, *torch.autograd.grad(y, t, grad.to(device, dtype)))
    assert all(g.dtype == dtype for g in got)
    tol = TOL_HALF if dtype == torch.float16 else TOL_BF16
    scale = [max(1.0, w.abs().max().item()) for w in want]   # relative to each tensor's magnitude
    for g, w, s in zip(got, want, scale):
        _close(g.float() / s, w / s, tol)
