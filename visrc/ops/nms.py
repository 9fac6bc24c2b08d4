"""Non-maximum suppression for ``mmcv._ext``: ``nms`` (mmdet's ``batched_nms`` in the RPN and the
box post-processing calls it).

On CPU in float32 the greedy loop runs in numba with mmcv's CPU arithmetic (areas and the score order
from the same torch calls, the overlap in float32, strictly greater than the threshold suppresses),
so the kept indices and their order are mmcv-full's, ties in score included (``tests/test_ops.py``).
Elsewhere (CUDA, other dtypes) :mod:`visrc.ops.torch_ops` computes the same definition.

Shapes: boxes (N, 4) as (x1, y1, x2, y2), scores (N,) -> kept indices (K,) int64, by descending score.
"""
from __future__ import annotations

import numba
import numpy as np
import torch


@numba.njit(cache=True, nogil=True)
def _suppress(x1, y1, x2, y2, areas, order, iou_threshold, offset, keep):
    """mmcv's nms_cpu loop: ``keep`` (N,) bool, True on entry, over boxes in ``order``."""
    n = order.shape[0]
    off = np.float32(offset)
    zero = np.float32(0.0)
    for _i in range(n):
        if not keep[_i]:
            continue
        i = order[_i]
        for _j in range(_i + 1, n):
            if not keep[_j]:
                continue
            j = order[_j]
            w = max(zero, min(x2[i], x2[j]) - max(x1[i], x1[j]) + off)
            h = max(zero, min(y2[i], y2[j]) - max(y1[i], y1[j]) + off)
            inter = w * h
            if inter / (areas[i] + areas[j] - inter) > iou_threshold:
                keep[_j] = False


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float = 0.5, offset: int = 0) -> torch.Tensor:
    """mmcv's ``nms``: indices of the kept boxes (K,) int64, highest score first."""
    if boxes.numel() == 0:
        return boxes.new_empty((0,), dtype=torch.long)
    if boxes.device.type != 'cpu' or boxes.dtype != torch.float32:
        from visrc.ops import torch_ops
        return torch_ops.nms(boxes, scores, iou_threshold, offset)
    boxes, scores = boxes.detach(), scores.detach()
    x1, y1, x2, y2 = (boxes[:, k].contiguous() for k in range(4))
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    order = scores.sort(0, descending=True)[1]
    keep = torch.ones(boxes.size(0), dtype=torch.bool)
    _suppress(x1.numpy(), y1.numpy(), x2.numpy(), y2.numpy(), areas.numpy(), order.numpy(),
              np.float32(iou_threshold), int(offset), keep.numpy())
    return order.masked_select(keep)
