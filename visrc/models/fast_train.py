"""Training speed-ups that leave every number unchanged: ``FastTrainHook``, on in every ``visrc train``
(``--no-fast-kernels``: off; :func:`visrc.models.train_cli.set_fast_kernels`).

mmcv's CPU ``RoIAlign`` is a scalar loop that, in its backward, recomputes each sample's
coordinates and bilinear weights once per channel; on the toy configs its forward and backward
are a fifth of a training iteration. :class:`FastRoIAlign` computes the same sums in the same
order (channels-last, coordinates once per RoI, compiled with numba), so its outputs and input
gradients are bit-for-bit mmcv's (``tests/test_fast_train.py``); any case the kernels do not
cover (max pooling, non-float32, non-CPU tensors) goes to mmcv's op unchanged.

Elsewhere (a runner built from a config by hand) it is one entry in the config (the model, the data
and the losses stay the same)::

    custom_hooks = [..., dict(type='FastTrainHook')]

Before training, the hook replaces each ``mmcv.ops.RoIAlign`` in the model by a
:class:`FastRoIAlign` with the same settings, makes each ``mmcv.ops.DeformConv2d`` (TCIS's) a
:class:`visrc.models.fast_deform_conv.FastDeformConv2d` (same numbers, likewise), and, unless
``foreach=False``, lets the optimizer update all parameters with torch's multi-tensor kernels (the
same arithmetic per element). ``benchmarks/bench_train_profile.py --levers fast`` measures the gain.
"""
from __future__ import annotations

import numba
import numpy as np
import torch
from mmcv.ops import RoIAlign
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch.autograd import Function
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair

from .fast_deform_conv import use_fast_deform_conv

_F = np.float32


# ---------------------------------------------------------------------------- kernels
# The arithmetic below mirrors mmcv's roi_align CPU kernels operation by operation in float32
# (same operand order, no fused multiply-add), so results match bit for bit.
@numba.njit(cache=True, nogil=True)
def _roi_geometry(roi, scale, ph_n, pw_n, sampling_ratio, aligned):
    """One RoI (5,) -> (batch index, start_h, start_w, bin_h, bin_w, grid_h, grid_w)."""
    offset = _F(0.5) if aligned else _F(0.0)
    start_w = roi[1] * scale - offset
    start_h = roi[2] * scale - offset
    end_w = roi[3] * scale - offset
    end_h = roi[4] * scale - offset
    roi_w = end_w - start_w
    roi_h = end_h - start_h
    if not aligned:
        roi_w = max(roi_w, _F(1.0))
        roi_h = max(roi_h, _F(1.0))
    bin_h = roi_h / _F(ph_n)
    bin_w = roi_w / _F(pw_n)
    if sampling_ratio > 0:
        grid_h = sampling_ratio
        grid_w = sampling_ratio
    else:
        grid_h = int(np.ceil(roi_h / _F(ph_n)))
        grid_w = int(np.ceil(roi_w / _F(pw_n)))
    return int(roi[0]), start_h, start_w, bin_h, bin_w, grid_h, grid_w


@numba.njit(cache=True, nogil=True)
def _bilinear(y, x, height, width):
    """mmcv's bilinear_interpolate(_gradient): 4 flat positions and weights; valid flag."""
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return False, 0, 0, 0, 0, _F(0.0), _F(0.0), _F(0.0), _F(0.0)
    if y <= 0:
        y = _F(0.0)
    if x <= 0:
        x = _F(0.0)
    y_low = int(y)
    x_low = int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = _F(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = _F(x_low)
    else:
        x_high = x_low + 1
    ly = y - _F(y_low)
    lx = x - _F(x_low)
    hy = _F(1.0) - ly
    hx = _F(1.0) - lx
    return (True, y_low * width + x_low, y_low * width + x_high, y_high * width + x_low,
            y_high * width + x_high, hy * hx, hy * lx, ly * hx, ly * lx)


@numba.njit(cache=True, nogil=True)
def _forward_avg(feat, rois, out, height, width, scale, sampling_ratio, aligned):
    """feat (B, H*W, C) channels-last, rois (R, 5) -> out (R, PH, PW, C), average pooling."""
    n_rois, ph_n, pw_n, channels = out.shape
    acc = np.zeros(channels, dtype=np.float32)
    for n in range(n_rois):
        b, start_h, start_w, bin_h, bin_w, grid_h, grid_w = _roi_geometry(
            rois[n], scale, ph_n, pw_n, sampling_ratio, aligned)
        count = _F(max(grid_h * grid_w, 1))
        img = feat[b]
        for ph in range(ph_n):
            for pw in range(pw_n):
                acc[:] = _F(0.0)
                for iy in range(grid_h):
                    y = start_h + _F(ph) * bin_h + (_F(iy) + _F(0.5)) * bin_h / _F(grid_h)
                    for ix in range(grid_w):
                        x = start_w + _F(pw) * bin_w + (_F(ix) + _F(0.5)) * bin_w / _F(grid_w)
                        _, p1, p2, p3, p4, w1, w2, w3, w4 = _bilinear(y, x, height, width)
                        for c in range(channels):
                            acc[c] += (w1 * img[p1, c] + w2 * img[p2, c]
                                       + w3 * img[p3, c] + w4 * img[p4, c])
                for c in range(channels):
                    out[n, ph, pw, c] = acc[c] / count


@numba.njit(cache=True, nogil=True)
def _backward_avg(grad_out, rois, grad_feat, height, width, scale, sampling_ratio, aligned):
    """grad_out (R, PH, PW, C) -> grad_feat (B, H*W, C) (zero on entry), average pooling.

    Per input element the additions come in mmcv's order (RoI, bin row, bin column, sample row,
    sample column, corner), so the sums are mmcv's."""
    n_rois, ph_n, pw_n, channels = grad_out.shape
    for n in range(n_rois):
        b, start_h, start_w, bin_h, bin_w, grid_h, grid_w = _roi_geometry(
            rois[n], scale, ph_n, pw_n, sampling_ratio, aligned)
        count = _F(grid_h * grid_w)
        img = grad_feat[b]
        for ph in range(ph_n):
            for pw in range(pw_n):
                g = grad_out[n, ph, pw]
                for iy in range(grid_h):
                    y = start_h + _F(ph) * bin_h + (_F(iy) + _F(0.5)) * bin_h / _F(grid_h)
                    for ix in range(grid_w):
                        x = start_w + _F(pw) * bin_w + (_F(ix) + _F(0.5)) * bin_w / _F(grid_w)
                        ok, p1, p2, p3, p4, w1, w2, w3, w4 = _bilinear(y, x, height, width)
                        if not ok:
                            continue
                        for c in range(channels):
                            img[p1, c] += g[c] * w1 / count
                        for c in range(channels):
                            img[p2, c] += g[c] * w2 / count
                        for c in range(channels):
                            img[p3, c] += g[c] * w3 / count
                        for c in range(channels):
                            img[p4, c] += g[c] * w4 / count


# ---------------------------------------------------------------------------- autograd + module
def _covered(input: torch.Tensor, rois: torch.Tensor, pool_mode: str) -> bool:
    return (pool_mode == 'avg' and input.device.type == 'cpu' and input.dtype == torch.float32
            and rois.dtype == torch.float32 and input.dim() == 4 and rois.dim() == 2 and rois.size(1) == 5)


class FastRoIAlignFunction(Function):
    """mmcv's ``RoIAlignFunction`` (average pooling, float32, CPU) on the numba kernels.

    input (B, C, H, W), rois (R, 5) as (batch index, x1, y1, x2, y2) -> (R, C, PH, PW)."""

    @staticmethod
    def forward(ctx, input, rois, output_size, spatial_scale=1.0, sampling_ratio=0, aligned=True):
        ph_n, pw_n = _pair(output_size)
        ctx.args = (np.float32(spatial_scale), int(sampling_ratio), bool(aligned))
        ctx.input_shape = input.shape
        b, c, h, w = input.shape
        feat = input.detach().permute(0, 2, 3, 1).contiguous().view(b, h * w, c)
        rois_c = rois.detach().contiguous()
        out = input.new_empty((rois.size(0), ph_n, pw_n, c))
        if rois.size(0) and c:
            _forward_avg(feat.numpy(), rois_c.numpy(), out.numpy(), h, w, *ctx.args)
        ctx.save_for_backward(rois_c)
        # NCHW like mmcv's output, so later layers pick the same kernels
        return out.permute(0, 3, 1, 2).contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (rois,) = ctx.saved_tensors
        b, c, h, w = ctx.input_shape
        go = grad_output.permute(0, 2, 3, 1).contiguous()
        grad = grad_output.new_zeros((b, h * w, c))
        if rois.size(0) and c:
            _backward_avg(go.numpy(), rois.numpy(), grad.numpy(), h, w, *ctx.args)
        grad_input = grad.view(b, h, w, c).permute(0, 3, 1, 2).contiguous()
        return grad_input, None, None, None, None, None


class FastRoIAlign(RoIAlign):
    """``mmcv.ops.RoIAlign`` (same arguments) whose covered cases run :class:`FastRoIAlignFunction`;
    the rest run mmcv's op. input (B, C, H, W), rois (R, 5) -> (R, C, PH, PW)."""

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        if self.use_torchvision or not _covered(input, rois, self.pool_mode):
            return super().forward(input, rois)
        return FastRoIAlignFunction.apply(input, rois, self.output_size, self.spatial_scale,
                                          self.sampling_ratio, self.aligned)

    @classmethod
    def from_mmcv(cls, layer: RoIAlign) -> 'FastRoIAlign':
        return cls(output_size=layer.output_size, spatial_scale=layer.spatial_scale,
                   sampling_ratio=layer.sampling_ratio, pool_mode=layer.pool_mode,
                   aligned=layer.aligned, use_torchvision=layer.use_torchvision)


def use_fast_roi_align(model: torch.nn.Module) -> int:
    """Replace every ``mmcv.ops.RoIAlign`` (exactly that class) inside ``model`` by a
    :class:`FastRoIAlign` with the same settings; returns how many were replaced."""
    n = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is RoIAlign:
                setattr(module, name, FastRoIAlign.from_mmcv(child))
                n += 1
    return n


def use_foreach(optimizer) -> int:
    """Let ``optimizer`` (torch's Adam/AdamW/SGD family) use its multi-tensor path; returns the
    number of parameter groups changed. Unknown optimizers are left alone."""
    n = 0
    for group in getattr(optimizer, 'param_groups', []):
        if 'foreach' in group and group['foreach'] is None:
            group['foreach'] = True
            n += 1
    return n


@HOOKS.register_module()
class FastTrainHook(Hook):
    """Before training: :func:`use_fast_roi_align` and
    :func:`visrc.models.fast_deform_conv.use_fast_deform_conv` on the model and, with ``foreach``,
    :func:`use_foreach` on the optimizer(s). Same losses, bit for bit (see the module docstring).

    Args:
        roi_align: replace mmcv's ``RoIAlign`` layers.
        deform_conv: make mmcv's ``DeformConv2d`` layers (TCIS) :class:`FastDeformConv2d`.
        foreach: multi-tensor optimizer updates.
    """

    priority = 'VERY_HIGH'

    def __init__(self, roi_align: bool = True, deform_conv: bool = True, foreach: bool = True) -> None:
        self.roi_align = bool(roi_align)
        self.deform_conv = bool(deform_conv)
        self.foreach = bool(foreach)

    def before_train(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        parts = []
        if self.roi_align:
            parts.append(f'{use_fast_roi_align(model)} RoIAlign layers on numba kernels')
        if self.deform_conv:
            parts.append(f'{use_fast_deform_conv(model)} DeformConv2d layers on numba kernels')
        if self.foreach:
            wrappers = getattr(runner.optim_wrapper, 'optim_wrappers', None)
            wrappers = wrappers.values() if wrappers else [runner.optim_wrapper]
            parts.append(f'{sum(use_foreach(w.optimizer) for w in wrappers)} optimizer groups foreach')
        runner.logger.info('FastTrainHook: ' + ', '.join(parts))
