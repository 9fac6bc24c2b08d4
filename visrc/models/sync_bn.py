"""Synchronized BatchNorm for CPU (gloo) multi-process training.

torch 2.13's ``nn.SyncBatchNorm`` raises ``SyncBatchNorm expected input tensor to be on GPU`` for
CPU tensors as soon as a process group exists, and DDP refuses to wrap a CPU module containing it
(``SyncBatchNorm layers only work with GPU modules``); mmcv's ``MMSyncBN`` needs CUDA ops. The
paper trains with synchronized BN over 4 GPUs, and visrc runs (and tests) the same configs
with ``torchrun --nproc_per_node=2`` on CPU, so:

* :class:`VisSyncBN` (norm layer ``'VisSyncBN'``) is a plain ``_BatchNorm`` whose training
  forward, under a process group of size > 1, all-reduces the per-channel sum, sum of squares
  and count with the differentiable ``torch.distributed.nn.functional.all_reduce`` and normalizes
  with the global mean and (biased) variance, updating running statistics with the unbiased
  variance as torch does. Without a process group (or in eval) it is ordinary BatchNorm. It works
  on any device; on GPUs torch's fused ``nn.SyncBatchNorm`` is faster.
* :func:`convert_sync_batchnorm` converts a model's BatchNorm (and ``nn.SyncBatchNorm``) layers:
  to ``nn.SyncBatchNorm`` when CUDA is available, else to :class:`VisSyncBN`. ``VISRunner`` calls
  it when the config sets ``sync_bn`` (the paper configs' ``SyncBN`` layers are therefore torch's on
  GPUs and ``VisSyncBN`` on CPU).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from mmengine.registry import MODELS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@MODELS.register_module('VisSyncBN')
class VisSyncBN(_BatchNorm):
    """BatchNorm synchronized across processes by all-reduce (see the module docstring).
    Input (N, C, ...) with any number of spatial dims."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f'expected at least 2D input (got {input.dim()}D input)')

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.training and dist.is_available() and dist.is_initialized():
            group = self.process_group or dist.group.WORLD
            if dist.get_world_size(group) > 1:
                self._check_input_dim(input)
                return self._sync_forward(input, group)
        return super().forward(input)

    def _sync_forward(self, x: torch.Tensor, group) -> torch.Tensor:
        from torch.distributed.nn.functional import all_reduce

        c = x.size(1)
        dims = [0] + list(range(2, x.dim()))
        xf = x.float()
        count = xf.new_full((1,), float(x.numel() // c) if c else 0.0)
        stats = torch.cat([xf.sum(dims), (xf * xf).sum(dims), count])
        stats = all_reduce(stats, group=group)          # differentiable sum over ranks
        total = stats[-1].clamp(min=1.0)
        mean = stats[:c] / total
        var = (stats[c:2 * c] / total - mean * mean).clamp(min=0.0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                unbiased = var * (total / (total - 1).clamp(min=1.0))
                self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased.detach())
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, process_group=None, use_cuda: bool | None = None,
                           only_torch_sync: bool = False) -> nn.Module:
    """Replace BatchNorm layers by synchronized ones: ``nn.SyncBatchNorm`` with CUDA, else
    :class:`VisSyncBN` (which also replaces existing ``nn.SyncBatchNorm`` layers).
    ``only_torch_sync``: on CPU replace only ``nn.SyncBatchNorm`` layers (which cannot run there)."""
    if use_cuda is None:
        use_cuda = torch.cuda.is_available()
    if use_cuda:
        return module if only_torch_sync else nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)
    out = module
    wanted = nn.SyncBatchNorm if only_torch_sync else _BatchNorm
    if isinstance(module, wanted) and not isinstance(module, VisSyncBN):
        out = VisSyncBN(module.num_features, module.eps, module.momentum, module.affine,
                        module.track_running_stats, process_group)
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, process_group, use_cuda, only_torch_sync))
    return out


__all__ = ['VisSyncBN', 'convert_sync_batchnorm']
