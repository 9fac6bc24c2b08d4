"""RoIAlign (average pooling) for ``mmcv._ext``: ``roi_align_forward`` / ``roi_align_backward``.

On CPU in float32 the numba kernels below compute mmcv's CPU sums in mmcv's order (channels-last,
coordinates once per RoI), so outputs and input gradients are bit for bit mmcv-full's
(``tests/test_ops.py`` against ``tests/reference/ops_fixture.pt``). Elsewhere (CUDA, other dtypes)
:mod:`visrc.ops.torch_ops` computes the same definition in plain torch.

Shapes: input (B, C, H, W), rois (R, 5) as (batch index, x1, y1, x2, y2) -> output (R, C, PH, PW).
"""
from __future__ import annotations

import numba
import numpy as np
import torch

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


# ---------------------------------------------------------------------------- mmcv._ext entry points
def _exact(input: torch.Tensor, rois: torch.Tensor) -> bool:
    return input.device.type == 'cpu' and input.dtype == torch.float32 and rois.dtype == torch.float32


def _check_pool_mode(pool_mode: int) -> None:
    if pool_mode != 1:
        raise NotImplementedError('mmcv op roi_align with pool_mode=max is not provided by visrc.ops: '
                                  'it needs mmcv built with ops (docs/gpu.md)')


def roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height=7, aligned_width=7,
                      spatial_scale=1.0, sampling_ratio=0, pool_mode=1, aligned=True) -> None:
    """mmcv's ``roi_align_forward``: fills ``output`` (R, C, PH, PW) from input (B, C, H, W) and rois (R, 5)."""
    _check_pool_mode(pool_mode)
    if not _exact(input, rois):
        from visrc.ops import torch_ops
        output.copy_(torch_ops.roi_align(input, rois, (aligned_height, aligned_width), spatial_scale,
                                         sampling_ratio, aligned))
        return
    b, c, h, w = input.shape
    if not (rois.size(0) and c):
        return
    feat = input.detach().permute(0, 2, 3, 1).contiguous().view(b, h * w, c)
    out = input.new_empty((rois.size(0), aligned_height, aligned_width, c))
    _forward_avg(feat.numpy(), rois.detach().contiguous().numpy(), out.numpy(), h, w,
                 np.float32(spatial_scale), int(sampling_ratio), bool(aligned))
    output.copy_(out.permute(0, 3, 1, 2))


def roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height=7, aligned_width=7,
                       spatial_scale=1.0, sampling_ratio=0, pool_mode=1, aligned=True) -> None:
    """mmcv's ``roi_align_backward``: adds into ``grad_input`` (B, C, H, W) the gradient of
    ``grad_output`` (R, C, PH, PW)."""
    _check_pool_mode(pool_mode)
    if not _exact(grad_output, rois):
        from visrc.ops import torch_ops
        grad_input.add_(torch_ops.roi_align_backward(grad_output, rois, tuple(grad_input.shape), spatial_scale,
                                                     sampling_ratio, aligned))
        return
    b, c, h, w = grad_input.shape
    if not (rois.size(0) and c):
        return
    go = grad_output.permute(0, 2, 3, 1).contiguous()
    grad = grad_output.new_zeros((b, h * w, c))
    _backward_avg(go.numpy(), rois.detach().contiguous().numpy(), grad.numpy(), h, w,
                  np.float32(spatial_scale), int(sampling_ratio), bool(aligned))
    grad_input.add_(grad.view(b, h, w, c).permute(0, 3, 1, 2))
