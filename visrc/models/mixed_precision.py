"""bf16 mixed-precision training on CPU: the convolution- and matrix-heavy modules under autocast.

:class:`MixedPrecisionHook` runs the backbone, the FPN, the RPN head, the box, mask and mask-IoU
heads and the track head's embedding head under ``torch.autocast(dtype=torch.bfloat16)``, and hands
their outputs on as float32. Inside them, autocast runs convolutions and matrix products in bf16
(oneDNN's AMX kernels on a CPU that has them: the ``amx`` kernel profile of :mod:`visrc.numerics`)
with float32 accumulation; everything between them stays float32, as in the fp32 model: RoIAlign,
TCIS's deformable convolution, proposal decoding and NMS, target assignment, every loss, the
optimizer and its master weights (the parameters stay float32). The backward pass follows the
forward's dtypes. Predictions (:class:`visrc.models.predictor.VideoPredictor`) stay float32.

``visrc train`` adds the hook when ``VISRC_TRAIN_PRECISION=bf16`` (:func:`visrc.numerics.train_precision`),
which also keys the run cache, so bf16 and fp32 runs never share a checkpoint. What it costs in
accuracy and gains in speed: README "Table 1 in bf16 mixed precision".

This module is models layer: torch, mmengine and :mod:`visrc.numerics`.
"""
from __future__ import annotations

import functools
from typing import Any

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def module_paths(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The modules a :class:`MixedPrecisionHook` runs in bf16, by attribute path, where ``model``
    (a :class:`visrc.models.vis_model.VISQDTrack` or an mmdet two-stage detector) has them."""
    det = getattr(model, 'detector', model)
    roi = getattr(det, 'roi_head', None)
    track = getattr(model, 'track_head', None)
    found = {
        'backbone': getattr(det, 'backbone', None),
        'neck': getattr(det, 'neck', None),
        'rpn_head': getattr(det, 'rpn_head', None),
        'roi_head.bbox_head': getattr(roi, 'bbox_head', None),
        'roi_head.mask_head': getattr(roi, 'mask_head', None),
        'roi_head.mask_iou_head': getattr(roi, 'mask_iou_head', None),
        'track_head.embed_head': getattr(track, 'embed_head', None),
    }
    return {path: m for path, m in found.items() if isinstance(m, torch.nn.Module)}


def to_float32(value: Any) -> Any:
    """``value`` with every floating-point tensor in it (through tuples, lists and dicts) as float32."""
    if torch.is_tensor(value):
        return value.float() if value.is_floating_point() and value.dtype != torch.float32 else value
    if isinstance(value, (list, tuple)):
        items = [to_float32(v) for v in value]
        return type(value)(*items) if hasattr(value, '_fields') else type(value)(items)
    if isinstance(value, dict):
        return type(value)((k, to_float32(v)) for k, v in value.items())
    return value


def autocast_forward(module: torch.nn.Module, dtype: torch.dtype = torch.bfloat16) -> bool:
    """Make ``module.forward`` (this instance only) run under ``torch.autocast`` of ``dtype`` on its
    parameters' device and return float32; ``False`` if it already does."""
    if getattr(module.forward, '_visrc_autocast', None) is not None:
        return False
    inner = module.forward
    param = next(module.parameters(), None)
    device = param.device.type if param is not None else 'cpu'

    @functools.wraps(inner)
    def forward(*args, **kwargs):
        with torch.autocast(device, dtype=dtype):
            out = inner(*args, **kwargs)
        return to_float32(out)

    forward._visrc_autocast = dtype
    module.forward = forward
    return True


def check_bf16_kernels(environ=None) -> None:
    """Refuse bf16 training in a pinned process started without the ``amx`` profile's oneDNN cap
    (``ONEDNN_MAX_CPU_ISA`` as the process started): below AMX, bf16 would be emulated, slower than
    fp32, and the run would not be the ``amx`` profile's."""
    from visrc import numerics

    environ = numerics.start_environ() if environ is None else environ
    if numerics.mode(environ) != 'pinned':
        return
    isa = environ.get('ONEDNN_MAX_CPU_ISA', '')
    if isa.upper() != numerics.KERNEL_PROFILES['amx']['ONEDNN_MAX_CPU_ISA']:
        raise RuntimeError(
            f'bf16 training in a process started with ONEDNN_MAX_CPU_ISA={isa or "<unset>"}: oneDNN would '
            f'emulate bf16 (slower than fp32); start it with {numerics.KERNELS_VARIABLE}=amx '
            f'(or {numerics.PRECISION_VARIABLE}=bf16, which chooses it) through visrc.numerics.pinned_env()')


@HOOKS.register_module()
class MixedPrecisionHook(Hook):
    """Before training: the modules of :func:`module_paths` run under bf16 autocast and return
    float32 (:func:`autocast_forward`); parameters, optimizer state and losses stay float32.

    Args:
        dtype: ``'bfloat16'`` (the one CPU autocast type with AMX kernels).
        check_kernels: refuse a pinned process without AMX (:func:`check_bf16_kernels`).
    """

    priority = 'VERY_HIGH'

    def __init__(self, dtype: str = 'bfloat16', check_kernels: bool = True) -> None:
        if dtype != 'bfloat16':
            raise ValueError(f"MixedPrecisionHook: dtype {dtype!r} is not supported (only 'bfloat16')")
        self.dtype = torch.bfloat16
        self.check_kernels = bool(check_kernels)

    def before_train(self, runner) -> None:
        if self.check_kernels:
            check_bf16_kernels()
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        paths = [p for p, m in module_paths(model).items() if autocast_forward(m, self.dtype)]
        runner.logger.info(f'MixedPrecisionHook: bf16 autocast in {", ".join(paths) or "no module"}')
