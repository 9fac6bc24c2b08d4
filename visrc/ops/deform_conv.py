"""Deformable convolution (TCIS) for ``mmcv._ext``: ``deform_conv_forward`` / ``_backward_input`` /
``_backward_parameters``.

mmcv's CPU kernels (``mmcv/ops/csrc/pytorch/cpu/deform_conv.cpp``) recompute each sampling point's
coordinates and bilinear weights once per channel. The numba kernels below compute the geometry once
per sampling point and loop over the channels inside it; every output and gradient element gets the
same float32 operations in the same order as mmcv's (the col2im sums per input element still run over
(kernel row, kernel column, output row, output column) in mmcv's order), and the matrix products are
mmcv's own ``addmm_`` calls on tensors of the same shapes and strides, so outputs and gradients are bit
for bit mmcv-full's (``tests/test_ops.py``). Elsewhere (CUDA, other dtypes) :mod:`visrc.ops.torch_ops`
computes the same definition in plain torch.

Shapes: input (N, C, H, W), offset (N, 2 * kh * kw * deform_groups, Ho, Wo), weight
(C_out, C / groups, kh, kw) -> output (N, C_out, Ho, Wo). The im2col columns of one block of
``step`` images are (C * kh * kw, step * Ho * Wo): row ``c * kh * kw + i * kw + j``, column
``(b * Ho + y) * Wo + x``.
"""
from __future__ import annotations

import numba
import numpy as np
import torch

_F = np.float32


# ---------------------------------------------------------------------------- kernels
# Integer terms are converted to float32 before they meet a float32 (C++'s int -> float
# promotion); numba would otherwise promote int64 op float32 to float64.
@numba.njit(cache=True, nogil=True)
def _sample_point(off, i, j, kw, y, x, pad_h, pad_w, stride_h, stride_w, dil_h, dil_w):
    """Where kernel tap (i, j) of output (y, x) samples the input: (h, w) in float32, as mmcv
    computes it (integer position, then + the float offset)."""
    h = _F(y * stride_h - pad_h + i * dil_h) + off[2 * (i * kw + j), y, x]
    w = _F(x * stride_w - pad_w + j * dil_w) + off[2 * (i * kw + j) + 1, y, x]
    return h, w


@numba.njit(cache=True, nogil=True)
def _im2col(data_im, data_offset, kh, kw, pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, dgroups, col):
    """data_im (step, C, H, W), data_offset (step, dg*2*kh*kw, Ho, Wo) -> col (C*kh*kw, step*Ho*Wo)
    (every element written): mmcv's deformable_im2col_cpu_kernel."""
    step, channels, height, width = data_im.shape
    height_col, width_col = data_offset.shape[2], data_offset.shape[3]
    cpg = channels // dgroups
    for b in range(step):
        for g in range(dgroups):
            off = data_offset[b, g * 2 * kh * kw:(g + 1) * 2 * kh * kw]
            for i in range(kh):
                for j in range(kw):
                    for y in range(height_col):
                        for x in range(width_col):
                            h_im, w_im = _sample_point(off, i, j, kw, y, x, pad_h, pad_w,
                                                        stride_h, stride_w, dil_h, dil_w)
                            colpos = (b * height_col + y) * width_col + x
                            inside = h_im > -1 and w_im > -1 and h_im < height and w_im < width
                            h_low = int(np.floor(h_im)) if inside else 0
                            w_low = int(np.floor(w_im)) if inside else 0
                            h_high = h_low + 1
                            w_high = w_low + 1
                            lh = h_im - _F(h_low)
                            lw = w_im - _F(w_low)
                            hh = _F(1) - lh
                            hw = _F(1) - lw
                            w1 = hh * hw
                            w2 = hh * lw
                            w3 = lh * hw
                            w4 = lh * lw
                            ok1 = h_low >= 0 and w_low >= 0
                            ok2 = h_low >= 0 and w_high <= width - 1
                            ok3 = h_high <= height - 1 and w_low >= 0
                            ok4 = h_high <= height - 1 and w_high <= width - 1
                            for c in range(g * cpg, (g + 1) * cpg):
                                val = _F(0)
                                if inside:
                                    img = data_im[b, c]
                                    v1 = img[h_low, w_low] if ok1 else _F(0)
                                    v2 = img[h_low, w_high] if ok2 else _F(0)
                                    v3 = img[h_high, w_low] if ok3 else _F(0)
                                    v4 = img[h_high, w_high] if ok4 else _F(0)
                                    val = w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4
                                col[(c * kh + i) * kw + j, colpos] = val


@numba.njit(cache=True, nogil=True)
def _col2im(col, data_offset, kh, kw, pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, dgroups, grad_im):
    """col (C*kh*kw, step*Ho*Wo) -> grad_im (step, C, H, W) (accumulated into): mmcv's
    deformable_col2im_cpu_kernel. Per element of grad_im the additions come in mmcv's order
    (kernel row, kernel column, output row, output column)."""
    step, channels, height, width = grad_im.shape
    height_col, width_col = data_offset.shape[2], data_offset.shape[3]
    cpg = channels // dgroups
    plane = height * width
    n_col = col.shape[1]
    col_flat = col.reshape(-1)
    grad_flat = grad_im.reshape(-1)
    pos = np.empty(25, dtype=np.int64)
    wts = np.empty(25, dtype=np.float32)
    for b in range(step):
        for g in range(dgroups):
            off = data_offset[b, g * 2 * kh * kw:(g + 1) * 2 * kh * kw]
            for i in range(kh):
                for j in range(kw):
                    for y in range(height_col):
                        for x in range(width_col):
                            inv_h, inv_w = _sample_point(off, i, j, kw, y, x, pad_h, pad_w,
                                                          stride_h, stride_w, dil_h, dil_w)
                            cur_h = int(inv_h)
                            cur_w = int(inv_w)
                            n = 0
                            for dy in range(-2, 3):
                                for dx in range(-2, 3):
                                    hh = cur_h + dy
                                    ww = cur_w + dx
                                    if (hh >= 0 and hh < height and ww >= 0 and ww < width
                                            and abs(inv_h - _F(hh)) < 1 and abs(inv_w - _F(ww)) < 1):
                                        pos[n] = hh * width + ww
                                        wts[n] = _gradient_weight(inv_h, inv_w, hh, ww, height, width)
                                        n += 1
                            if n == 0:
                                continue
                            colpos = (b * height_col + y) * width_col + x
                            for k in range(n):
                                p = pos[k]
                                wk = wts[k]
                                for c in range(g * cpg, (g + 1) * cpg):
                                    grad_flat[(b * channels + c) * plane + p] += (
                                        wk * col_flat[((c * kh + i) * kw + j) * n_col + colpos])


@numba.njit(cache=True, nogil=True)
def _gradient_weight(argmax_h, argmax_w, h, w, height, width):
    """mmcv's get_gradient_weight_cpu."""
    if argmax_h <= -1 or argmax_h >= height or argmax_w <= -1 or argmax_w >= width:
        return _F(0)
    h_low = int(np.floor(argmax_h))
    w_low = int(np.floor(argmax_w))
    h_high = h_low + 1
    w_high = w_low + 1
    weight = _F(0)
    if h == h_low and w == w_low:
        weight = (_F(h + 1) - argmax_h) * (_F(w + 1) - argmax_w)
    if h == h_low and w == w_high:
        weight = (_F(h + 1) - argmax_h) * (argmax_w + _F(1) - _F(w))
    if h == h_high and w == w_low:
        weight = (argmax_h + _F(1) - _F(h)) * (_F(w + 1) - argmax_w)
    if h == h_high and w == w_high:
        weight = (argmax_h + _F(1) - _F(h)) * (argmax_w + _F(1) - _F(w))
    return weight


@numba.njit(cache=True, nogil=True)
def _col2im_coord(col, data_im, data_offset, kh, kw, pad_h, pad_w, stride_h, stride_w, dil_h, dil_w,
                  dgroups, grad_offset):
    """col (C*kh*kw, step*Ho*Wo), data_im (step, C, H, W) -> grad_offset (step, dg*2*kh*kw, Ho, Wo)
    (every element written): mmcv's deformable_col2im_coord_cpu_kernel. Each element sums over the
    channels in mmcv's order; the loop runs over all output positions inside the channel loop, so the
    positions' independent sums overlap."""
    step, channels, height, width = data_im.shape
    height_col, width_col = data_offset.shape[2], data_offset.shape[3]
    cpg = channels // dgroups
    plane = height * width
    n_pos = height_col * width_col
    n_col = col.shape[1]
    col_flat = col.reshape(-1)
    im_flat = data_im.reshape(-1)
    coef = np.empty((4, n_pos), dtype=np.float32)
    at = np.empty((4, n_pos), dtype=np.int64)
    ok = np.empty((4, n_pos), dtype=np.bool_)
    val = np.empty(n_pos, dtype=np.float32)
    for b in range(step):
        for g in range(dgroups):
            off = data_offset[b, g * 2 * kh * kw:(g + 1) * 2 * kh * kw]
            for oc in range(2 * kh * kw):
                bp_dir = oc % 2
                i = (oc // 2) // kw
                j = (oc // 2) % kw
                for y in range(height_col):
                    for x in range(width_col):
                        q = y * width_col + x
                        inv_h, inv_w = _sample_point(off, i, j, kw, y, x, pad_h, pad_w,
                                                     stride_h, stride_w, dil_h, dil_w)
                        val[q] = _F(0)
                        if inv_h <= -1 or inv_w <= -1 or inv_h >= height or inv_w >= width:
                            # mmcv's coordinate weight is 0 here: val += 0 * col, term by term
                            for t in range(4):
                                ok[t, q] = False
                                at[t, q] = 0
                            continue
                        h_low = int(np.floor(inv_h))
                        w_low = int(np.floor(inv_w))
                        h_high = h_low + 1
                        w_high = w_low + 1
                        ok[0, q] = h_low >= 0 and w_low >= 0
                        ok[1, q] = h_low >= 0 and w_high <= width - 1
                        ok[2, q] = h_high <= height - 1 and w_low >= 0
                        ok[3, q] = h_high <= height - 1 and w_high <= width - 1
                        at[0, q] = h_low * width + w_low
                        at[1, q] = h_low * width + w_high
                        at[2, q] = h_high * width + w_low
                        at[3, q] = h_high * width + w_high
                        if bp_dir == 0:
                            coef[0, q] = -(_F(w_low + 1) - inv_w)
                            coef[1, q] = -(inv_w - _F(w_low))
                            coef[2, q] = _F(w_low + 1) - inv_w
                            coef[3, q] = inv_w - _F(w_low)
                        else:
                            coef[0, q] = -(_F(h_low + 1) - inv_h)
                            coef[1, q] = _F(h_low + 1) - inv_h
                            coef[2, q] = -(inv_h - _F(h_low))
                            coef[3, q] = inv_h - _F(h_low)
                col_base = b * n_pos
                for c in range(g * cpg, (g + 1) * cpg):
                    im_base = (b * channels + c) * plane
                    row = ((c * kh + i) * kw + j) * n_col + col_base
                    for q in range(n_pos):
                        weight = _F(0)
                        if ok[0, q]:
                            weight += coef[0, q] * im_flat[im_base + at[0, q]]
                        if ok[1, q]:
                            weight += coef[1, q] * im_flat[im_base + at[1, q]]
                        if ok[2, q]:
                            weight += coef[2, q] * im_flat[im_base + at[2, q]]
                        if ok[3, q]:
                            weight += coef[3, q] * im_flat[im_base + at[3, q]]
                        val[q] += weight * col_flat[row + q]
                grad_offset[b, g * 2 * kh * kw + oc] = val.reshape(height_col, width_col)


# ---------------------------------------------------------------------------- mmcv._ext entry points
def _exact(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == 'cpu' and t.dtype == torch.float32 for t in tensors)


def _blocks(input, offset, step):
    """(blocks, step, C, H, W) and (blocks, step, 2*dg*kh*kw, Ho, Wo) views of contiguous copies."""
    n, c, h, w = input.shape
    ho, wo = offset.shape[2:]
    if n % step:
        raise ValueError(f'deformable conv: batch size {n} must be divisible by im2col_step {step}')
    blocks = n // step
    return (input.detach().contiguous().view(blocks, step, c, h, w),
            offset.detach().contiguous().view(blocks, step, -1, ho, wo))


def deform_conv_forward(input, weight, offset, output, columns, ones, kW, kH, dW, dH, padW, padH,
                        dilationW, dilationH, group, deformable_group, im2col_step) -> None:
    """mmcv's ``deform_conv_forward``: fills ``output`` (N, C_out, Ho, Wo)."""
    args = (kH, kW, padH, padW, dH, dW, dilationH, dilationW, deformable_group)
    if not _exact(input, weight, offset):
        from visrc.ops import torch_ops
        output.copy_(torch_ops.deform_conv(input, offset, weight, *args[2:], group))
        return
    n, c, h, w = input.shape
    c_out = weight.size(0)
    ho, wo = output.shape[2:]
    step = im2col_step
    inp, off = _blocks(input, offset, step)
    blocks = n // step
    cols = input.new_zeros((c * kH * kW, step * ho * wo))
    out = input.new_zeros((blocks, group, c_out // group, step * ho, wo))
    w_g = weight.detach().contiguous().view(group, c_out // group, -1, kH, kW)
    for elt in range(blocks):
        _im2col(inp[elt].numpy(), off[elt].numpy(), *args, cols.numpy())
        col_g = cols.view(group, -1, cols.size(1))
        for g in range(group):
            out[elt][g].flatten(1).addmm_(w_g[g].flatten(1), col_g[g])
    output.copy_(out.view(blocks, c_out, step, ho, wo).transpose(1, 2).reshape(n, c_out, ho, wo))


def deform_conv_backward_input(input, offset, gradOutput, gradInput, gradOffset, weight, columns, kW, kH,
                               dW, dH, padW, padH, dilationW, dilationH, group, deformable_group,
                               im2col_step) -> None:
    """mmcv's ``deform_conv_backward_input``: adds into ``gradInput`` (N, C, H, W) and ``gradOffset``."""
    args = (kH, kW, padH, padW, dH, dW, dilationH, dilationW, deformable_group)
    if not _exact(input, offset, gradOutput, weight):
        from visrc.ops import torch_ops
        gi, go = torch_ops.deform_conv_backward_input(input, offset, weight, gradOutput, *args[2:], group)
        gradInput.add_(gi)
        gradOffset.add_(go)
        return
    n, c, h, w = input.shape
    c_out, ho, wo = gradOutput.shape[1:]
    step = im2col_step
    inp, off = _blocks(input, offset, step)
    blocks = n // step
    go_t = gradOutput.contiguous().view(blocks, step, c_out, ho, wo).transpose(1, 2)  # mmcv's transpose_(1, 2)
    grad_input = torch.zeros_like(inp)
    grad_offset = torch.zeros_like(off)
    cols = input.new_zeros((c * kH * kW, step * ho * wo))
    w_g = weight.detach().contiguous().view(group, c_out // group, -1, kH, kW)
    go_g = go_t.view(blocks, group, c_out // group, step, ho, wo)
    for elt in range(blocks):
        col_g = cols.view(group, -1, cols.size(1))
        for g in range(group):
            col_g[g].addmm_(w_g[g].flatten(1).transpose(0, 1), go_g[elt][g].flatten(1), beta=0.0, alpha=1.0)
        _col2im_coord(cols.numpy(), inp[elt].numpy(), off[elt].numpy(), *args, grad_offset[elt].numpy())
        _col2im(cols.numpy(), off[elt].numpy(), *args, grad_input[elt].numpy())
    gradInput.add_(grad_input.view_as(gradInput))
    gradOffset.add_(grad_offset.view_as(gradOffset))


def deform_conv_backward_parameters(input, offset, gradOutput, gradWeight, columns, ones, kW, kH, dW, dH,
                                    padW, padH, dilationW, dilationH, group, deformable_group, scale,
                                    im2col_step) -> None:
    """mmcv's ``deform_conv_backward_parameters``: adds ``scale`` times the weight gradient into
    ``gradWeight`` (C_out, C / groups, kh, kw)."""
    args = (kH, kW, padH, padW, dH, dW, dilationH, dilationW, deformable_group)
    if not _exact(input, offset, gradOutput):
        from visrc.ops import torch_ops
        gradWeight.add_(torch_ops.deform_conv_backward_weight(input, offset, gradOutput, tuple(gradWeight.shape),
                                                              *args[2:], group), alpha=scale)
        return
    n, c, h, w = input.shape
    c_out, ho, wo = gradOutput.shape[1:]
    step = im2col_step
    inp, off = _blocks(input, offset, step)
    blocks = n // step
    go_t = gradOutput.contiguous().view(blocks, step, c_out, ho, wo).transpose(1, 2)
    go_buf = go_t.contiguous().view(blocks, group, c_out // group, step * ho, wo)
    cols = input.new_zeros((c * kH * kW, step * ho * wo))
    gw_g = gradWeight.view(group, c_out // group, -1, kH, kW)
    for elt in range(blocks):
        _im2col(inp[elt].numpy(), off[elt].numpy(), *args, cols.numpy())
        col_g = cols.view(group, -1, cols.size(1))
        for g in range(group):
            gw_g[g].flatten(1).addmm_(go_buf[elt][g].flatten(1), col_g[g].transpose(1, 0), beta=1.0, alpha=scale)
