"""The plain-torch path of :mod:`visrc.ops`: RoIAlign, NMS and deformable convolution on any device.

:mod:`visrc.ops.roi_align`, :mod:`visrc.ops.nms` and :mod:`visrc.ops.deform_conv` call these functions
for everything that is not CPU float32 (CUDA; float16 / bfloat16 under AMP; float64). They compute the
definitions of mmcv's kernels (``mmcv/ops/csrc/common/cuda/*.cuh``): bilinear interpolation with mmcv's
border rules, the adaptive sampling grid ``ceil(roi_size / pooled_size)`` when ``sampling_ratio == 0``,
greedy NMS with ``offset`` and a strict ``>`` threshold, deformable sampling that is zero outside the map.
They are vectorized (gathers, batched matmuls, ``index_add_``) and chunked so that memory stays bounded.
Sums run in another order than the CPU kernels, so results agree with the exact numba path to float32
rounding, not bit for bit (``tests/test_torch_ops.py``).

Half-precision inputs are computed in float32 and returned in their own dtype; float64 is computed in
float64 (so it can serve as a precision reference); everything else in float32.
"""
from __future__ import annotations

import numpy as np
import torch

_LIMIT = 1 << 26
"""At most this many elements are gathered at once (RoIAlign samples x channels); bounds the memory of a chunk."""
_DCN_LIMIT = 1 << 25
"""Deformable conv: at most this many im2col elements per batch chunk (autograd keeps ~6 such tensors)."""
_NMS_BLOCK = 1 << 24
"""NMS: IoU-matrix elements computed per block."""


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


# ---------------------------------------------------------------------------- RoIAlign
def _roi_geometry(rois, output_size, spatial_scale, sampling_ratio, aligned, dtype):
    """Per RoI, in ``dtype`` with mmcv's operation order: start_h, start_w, bin_h, bin_w, grid_h, grid_w (int64)."""
    ph_n, pw_n = output_size
    rois = rois.detach().to(dtype)
    scale = torch.tensor(spatial_scale, dtype=dtype, device=rois.device)  # the kernels get scale as a T
    off = 0.5 if aligned else 0.0
    start_w, start_h = rois[:, 1] * scale - off, rois[:, 2] * scale - off
    roi_w = (rois[:, 3] * scale - off) - start_w
    roi_h = (rois[:, 4] * scale - off) - start_h
    if not aligned:  # mmcv's legacy mode: RoIs at least 1x1
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    bin_h, bin_w = roi_h / ph_n, roi_w / pw_n
    if sampling_ratio > 0:
        grid_h = grid_w = torch.full_like(start_h, sampling_ratio, dtype=torch.long)
    else:  # ceil(roi_h / pooled_h) == ceil(bin_h); <= 0 for empty aligned RoIs: no samples
        grid_h, grid_w = bin_h.ceil().long().clamp(min=0), bin_w.ceil().long().clamp(min=0)
    return start_h, start_w, bin_h, bin_w, grid_h, grid_w


def _roi_axis(start, bin_size, grid, n_bins, n_grid, size):
    """Samples along one axis, (R, n_bins, n_grid, 2) low/high neighbour indices and weights: mmcv's
    bilinear_interpolate per axis (the 2-D weights are products), 0 outside [-1, size] and for the padded
    samples beyond a RoI's own grid."""
    dtype, dev = start.dtype, start.device
    p = torch.arange(n_bins, device=dev, dtype=dtype).view(1, -1, 1)
    s = torch.arange(n_grid, device=dev, dtype=dtype).view(1, 1, -1)
    bin_size = bin_size.view(-1, 1, 1)
    pos = start.view(-1, 1, 1) + p * bin_size + (s + 0.5) * bin_size / grid.clamp(min=1).to(dtype).view(-1, 1, 1)
    valid = (pos >= -1) & (pos <= size) & (s < grid.view(-1, 1, 1))
    pos = pos.clamp(min=0)
    low = pos.floor()  # pos >= 0: C's int() truncation
    edge = low >= size - 1
    low = torch.where(edge, torch.full_like(low, size - 1), low)
    pos = torch.where(edge, low, pos)
    frac = pos - low
    idx = torch.stack((low, torch.where(edge, low, low + 1)), -1).long()
    w = torch.stack((1 - frac, frac), -1) * valid.unsqueeze(-1)
    return idx, w


def _roi_chunks(grid_h, grid_w, per_cell):
    """Host plan: RoI order (sorted by grid size, so a chunk pads to similar grids) and chunks
    (start, end, GH, GW) with at most ``_LIMIT`` elements, ``per_cell`` elements per sample cell."""
    gh, gw = grid_h.cpu().numpy(), grid_w.cpu().numpy()  # one sync: the grid sizes shape the tensors
    order = np.argsort(gh * gw, kind='stable')
    gh, gw = np.maximum(gh[order], 1), np.maximum(gw[order], 1)
    chunks, start, n = [], 0, len(gh)
    while start < n:
        mh, mw = np.maximum.accumulate(gh[start:]), np.maximum.accumulate(gw[start:])
        cost = np.arange(1, n - start + 1) * mh * mw * per_cell  # non-decreasing
        end = start + max(1, int(np.searchsorted(cost, _LIMIT, side='right')))
        chunks.append((start, end, int(mh[end - start - 1]), int(mw[end - start - 1])))
        start = end
    return order, chunks


def _roi_plan(rois, feat_shape, output_size, spatial_scale, sampling_ratio, aligned, dtype):
    """Yields (RoI indices, flat gather indices (n_bins, S), weights (n_bins, S), count (Rc,)) per chunk."""
    b, c, h, w = feat_shape
    ph_n, pw_n = output_size
    start_h, start_w, bin_h, bin_w, grid_h, grid_w = _roi_geometry(rois, output_size, spatial_scale,
                                                                   sampling_ratio, aligned, dtype)
    batch = rois[:, 0].detach().long()  # C's int(): truncation
    order, chunks = _roi_chunks(grid_h, grid_w, ph_n * pw_n * 4 * max(c, 1))
    order = torch.from_numpy(order).to(rois.device)
    for s, e, gh, gw in chunks:
        sel = order[s:e]
        yi, wy = _roi_axis(start_h[sel], bin_h[sel], grid_h[sel], ph_n, gh, h)   # (Rc, PH, GH, 2)
        xi, wx = _roi_axis(start_w[sel], bin_w[sel], grid_w[sel], pw_n, gw, w)   # (Rc, PW, GW, 2)
        # (Rc, PH, PW, GH, 2, GW, 2): one row of S = GH*2*GW*2 samples x corners per output bin
        idx = ((batch[sel] * (h * w)).view(-1, 1, 1, 1, 1, 1, 1) + (yi * w)[:, :, None, :, :, None, None]
               + xi[:, None, :, None, None, :, :])
        wt = wy[:, :, None, :, :, None, None] * wx[:, None, :, None, None, :, :]
        count = (grid_h[sel] * grid_w[sel]).clamp(min=1).to(dtype)
        n_bins = len(sel) * ph_n * pw_n
        yield sel, idx.reshape(n_bins, -1), wt.reshape(n_bins, -1), count


def _channel_steps(c, per_channel):
    step = max(1, min(c, _LIMIT // max(per_channel, 1)))  # channels too, when one RoI alone is too big
    return [(c0, min(c0 + step, c)) for c0 in range(0, c, step)]


def roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """mmcv's RoIAlign, average pooling: input (B, C, H, W), rois (R, 5) as (batch index, x1, y1, x2, y2),
    output_size (PH, PW) -> (R, C, PH, PW) in input's dtype."""
    b, c, h, w = input.shape
    ph_n, pw_n = output_size
    out = input.new_zeros((rois.size(0), c, ph_n, pw_n))
    if rois.size(0) == 0 or c == 0:
        return out
    dtype = _compute_dtype(input.dtype)
    feat = input.detach().to(dtype).permute(0, 2, 3, 1).reshape(b * h * w, c)  # channels-last rows to gather
    res = feat.new_empty((rois.size(0), ph_n, pw_n, c))
    for sel, idx, wt, count in _roi_plan(rois, input.shape, output_size, spatial_scale, sampling_ratio,
                                         aligned, dtype):
        n_bins, n_samples = idx.shape
        part = feat.new_empty((n_bins, c))
        for c0, c1 in _channel_steps(c, idx.numel()):
            vals = feat[:, c0:c1].index_select(0, idx.view(-1)).view(n_bins, n_samples, c1 - c0)
            part[:, c0:c1] = torch.bmm(wt.unsqueeze(1), vals).squeeze(1)
        res.index_copy_(0, sel, part.view(-1, ph_n, pw_n, c) / count.view(-1, 1, 1, 1))
    return out.copy_(res.permute(0, 3, 1, 2))


def roi_align_backward(grad_output, rois, input_shape, spatial_scale, sampling_ratio, aligned):
    """Gradient of :func:`roi_align` w.r.t. its input: grad_output (R, C, PH, PW) -> (B, C, H, W) =
    ``input_shape``, in grad_output's dtype (the same weights, scattered with ``index_add_``)."""
    b, c, h, w = input_shape
    r, _, ph_n, pw_n = grad_output.shape
    if r == 0 or c == 0:
        return grad_output.new_zeros(input_shape)
    dtype = _compute_dtype(grad_output.dtype)
    grad = grad_output.detach().to(dtype).permute(0, 2, 3, 1)  # (R, PH, PW, C)
    grad_feat = grad.new_zeros((b * h * w, c))
    for sel, idx, wt, count in _roi_plan(rois, input_shape, (ph_n, pw_n), spatial_scale, sampling_ratio,
                                         aligned, dtype):
        n_bins, n_samples = idx.shape
        g = (grad.index_select(0, sel) / count.view(-1, 1, 1, 1)).reshape(n_bins, 1, c)
        for c0, c1 in _channel_steps(c, idx.numel()):
            contrib = torch.bmm(wt.unsqueeze(2), g[:, :, c0:c1])  # (n_bins, S, C')
            grad_feat[:, c0:c1].index_add_(0, idx.view(-1), contrib.view(-1, c1 - c0))
    return grad_feat.view(b, h, w, c).permute(0, 3, 1, 2).to(grad_output.dtype).contiguous()


# ---------------------------------------------------------------------------- NMS
def nms(boxes, scores, iou_threshold, offset):
    """mmcv's greedy NMS: boxes (N, 4) as (x1, y1, x2, y2), scores (N,) -> kept indices (K,) int64,
    highest score first. A box is suppressed by a kept one with IoU > iou_threshold (strictly); areas are
    ``(x2 - x1 + offset) * (y2 - y1 + offset)``."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=boxes.device)
    dtype = _compute_dtype(boxes.dtype)
    order = scores.detach().sort(0, descending=True)[1]
    x1, y1, x2, y2 = boxes.detach().to(dtype).index_select(0, order).unbind(1)
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    n = order.numel()
    over = torch.empty((n, n), dtype=torch.bool, device=boxes.device)
    rows = max(1, _NMS_BLOCK // n)
    for s in range(0, n, rows):  # the IoU matrix of the sorted boxes, in blocks on the device
        e = min(s + rows, n)
        iw = (torch.minimum(x2[s:e, None], x2) - torch.maximum(x1[s:e, None], x1) + offset).clamp(min=0)
        ih = (torch.minimum(y2[s:e, None], y2) - torch.maximum(y1[s:e, None], y1) + offset).clamp(min=0)
        inter = iw * ih
        over[s:e] = inter / (areas[s:e, None] + areas - inter) > iou_threshold  # 0/0 = nan: not suppressed
    # The greedy pass is sequential: one transfer, then a loop over the kept boxes only. Row i's entries
    # for earlier boxes only re-mark boxes already decided, so the full matrix needs no triu.
    over = over.cpu().numpy()
    removed = np.zeros(n, dtype=bool)
    keep = np.zeros(n, dtype=bool)
    for i in range(n):
        if not removed[i]:
            keep[i] = True
            removed |= over[i]
    return order[torch.from_numpy(keep).to(order.device)]


# ---------------------------------------------------------------------------- deformable convolution
def _deform_columns(input, offset, kh, kw, pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, deform_groups):
    """mmcv's deformable im2col, differentiable w.r.t. input and offset: input (N, C, H, W), offset
    (N, dg*2*kh*kw, Ho, Wo) -> columns (N, C, kh*kw, Ho*Wo). A tap samples h = y*stride_h - pad_h +
    i*dil_h + dy (likewise w), bilinearly, 0 unless -1 < h < H and -1 < w < W, each corner 0 off the map."""
    n, c, h, w = input.shape
    ho, wo = offset.shape[-2:]
    dg, cpg, k = deform_groups, c // deform_groups, kh * kw
    dev = input.device
    off = offset.reshape(n, dg, kh, kw, 2, ho, wo)
    base_h = (torch.arange(kh, device=dev) * dil_h).view(-1, 1) + (torch.arange(ho, device=dev) * stride_h - pad_h)
    base_w = (torch.arange(kw, device=dev) * dil_w).view(-1, 1) + (torch.arange(wo, device=dev) * stride_w - pad_w)
    ph = base_h.to(input.dtype).view(1, 1, kh, 1, ho, 1) + off[:, :, :, :, 0]  # (N, dg, kh, kw, Ho, Wo)
    pw = base_w.to(input.dtype).view(1, 1, 1, kw, 1, wo) + off[:, :, :, :, 1]
    inside = (ph > -1) & (pw > -1) & (ph < h) & (pw < w)
    h0, w0 = ph.detach().floor(), pw.detach().floor()
    lh, lw = ph - h0, pw - w0  # the gradient reaches the offsets through these
    h0, w0 = h0.long(), w0.long()
    plane = (torch.arange(n, device=dev).view(-1, 1) * dg + torch.arange(dg, device=dev)).view(n, dg, 1, 1, 1, 1)
    rows = input.reshape(n, dg, cpg, h * w).transpose(2, 3).reshape(n * dg * h * w, cpg)  # channels-last
    cols = None
    for dy, dx, wt in ((0, 0, (1 - lh) * (1 - lw)), (0, 1, (1 - lh) * lw), (1, 0, lh * (1 - lw)), (1, 1, lh * lw)):
        hi, wi = h0 + dy, w0 + dx
        ok = inside & (hi >= 0) & (hi <= h - 1) & (wi >= 0) & (wi <= w - 1)
        idx = torch.where(ok, (plane * h + hi) * w + wi, 0)
        term = rows.index_select(0, idx.view(-1)).view(n, dg, k * ho * wo, cpg) * (wt * ok).view(n, dg, -1, 1)
        cols = term if cols is None else cols + term
    return cols.view(n, dg, k, ho * wo, cpg).permute(0, 1, 4, 2, 3).reshape(n, c, k, ho * wo)


def _batch_chunks(input, kh, kw, ho, wo):
    n, c = input.shape[:2]
    step = max(1, _DCN_LIMIT // max(c * kh * kw * ho * wo, 1))
    return [(s, min(s + step, n)) for s in range(0, n, step)]


def _deform_conv(input, offset, weight, conv_args, groups):
    """One batch chunk in the compute dtype: (N, C, H, W) -> (N, C_out, Ho, Wo)."""
    c_out, cg, kh, kw = weight.shape
    n, ho, wo = input.size(0), offset.size(2), offset.size(3)
    cols = _deform_columns(input, offset, kh, kw, *conv_args).reshape(n, groups, cg * kh * kw, ho * wo)
    out = torch.einsum('gok,ngkl->ngol', weight.reshape(groups, c_out // groups, cg * kh * kw), cols)
    return out.reshape(n, c_out, ho, wo)


def deform_conv(input, offset, weight, pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, deform_groups, groups):
    """mmcv's DeformConv2d (no mask, no bias): input (N, C, H, W), offset (N, deform_groups*2*kh*kw, Ho, Wo)
    as (dy, dx) per kernel tap i*kw+j per deform group, weight (C_out, C/groups, kh, kw)
    -> (N, C_out, Ho, Wo) in input's dtype."""
    dtype = _compute_dtype(input.dtype)
    args = (pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, deform_groups)
    kh, kw = weight.shape[2:]
    ho, wo = offset.shape[2:]
    out = input.new_empty((input.size(0), weight.size(0), ho, wo))
    w = weight.detach().to(dtype)
    with torch.no_grad():
        for s, e in _batch_chunks(input, kh, kw, ho, wo):
            out[s:e] = _deform_conv(input[s:e].detach().to(dtype), offset[s:e].detach().to(dtype), w, args, groups)
    return out


def deform_conv_backward_input(input, offset, weight, grad_output, pad_h, pad_w, stride_h, stride_w, dil_h,
                               dil_w, deform_groups, groups):
    """Gradients of :func:`deform_conv` w.r.t. input (N, C, H, W) and offset (N, dg*2*kh*kw, Ho, Wo), given
    grad_output (N, C_out, Ho, Wo): autograd of the recomputed forward (the caller runs inside an autograd
    Function's backward, where grad mode is off, hence ``enable_grad``), per batch chunk."""
    dtype = _compute_dtype(input.dtype)
    args = (pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, deform_groups)
    kh, kw = weight.shape[2:]
    grad_input, grad_offset = torch.empty_like(input), torch.empty_like(offset)
    w = weight.detach().to(dtype)
    for s, e in _batch_chunks(input, kh, kw, *offset.shape[2:]):
        with torch.enable_grad():
            x = input[s:e].detach().to(dtype).requires_grad_(True)
            o = offset[s:e].detach().to(dtype).requires_grad_(True)
            out = _deform_conv(x, o, w, args, groups)
            gx, go = torch.autograd.grad(out, (x, o), grad_output[s:e].detach().to(dtype))
        grad_input[s:e], grad_offset[s:e] = gx, go
    return grad_input, grad_offset


def deform_conv_backward_weight(input, offset, grad_output, weight_shape, pad_h, pad_w, stride_h, stride_w,
                                dil_h, dil_w, deform_groups, groups):
    """Gradient of :func:`deform_conv` w.r.t. weight, shape ``weight_shape`` (C_out, C/groups, kh, kw), in
    grad_output's dtype: per group grad_output @ columns^T, which needs no weight."""
    dtype = _compute_dtype(grad_output.dtype)
    args = (pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, deform_groups)
    c_out, cg, kh, kw = weight_shape
    ho, wo = grad_output.shape[2:]
    grad = torch.zeros((groups, c_out // groups, cg * kh * kw), dtype=dtype, device=grad_output.device)
    with torch.no_grad():
        for s, e in _batch_chunks(input, kh, kw, ho, wo):
            cols = _deform_columns(input[s:e].detach().to(dtype), offset[s:e].detach().to(dtype), kh, kw, *args)
            cols = cols.reshape(e - s, groups, cg * kh * kw, ho * wo)
            go = grad_output[s:e].detach().to(dtype).reshape(e - s, groups, c_out // groups, ho * wo)
            grad += torch.einsum('ngol,ngkl->gok', go, cols)
    return grad.view(weight_shape).to(grad_output.dtype)
