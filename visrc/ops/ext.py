"""visrc's stand-in for mmcv's compiled extension ``mmcv._ext`` (mmcv-lite ships none).

:func:`module` builds the module that ``import mmcv._ext`` returns when no compiled one is
installed (``visrc/__init__.py`` arranges that). It holds the ops the model calls (:data:`PROVIDED`);
every other name mmcv.ops asks for exists, so ``import mmcv.ops`` succeeds (mmcv checks only that
the names are there), and calling one raises one line naming the op.
"""
from __future__ import annotations

import types

from visrc.ops import deform_conv, nms, roi_align

PROVIDED = {
    'roi_align_forward': roi_align.roi_align_forward,
    'roi_align_backward': roi_align.roi_align_backward,
    'nms': nms.nms,
    'deform_conv_forward': deform_conv.deform_conv_forward,
    'deform_conv_backward_input': deform_conv.deform_conv_backward_input,
    'deform_conv_backward_parameters': deform_conv.deform_conv_backward_parameters,
}
"""The compiled mmcv functions visrc provides, by their ``mmcv._ext`` names."""


class MissingOpError(NotImplementedError):
    """An mmcv op that visrc.ops does not provide was called."""


def _missing(name: str):
    def op(*args, **kwargs):
        raise MissingOpError(f'mmcv op {name} is not provided by visrc.ops (mmcv-lite): it needs mmcv built '
                             'with ops, see docs/gpu.md')
    op.__name__ = name
    return op


def module(name: str = 'mmcv._ext') -> types.ModuleType:
    """A module with :data:`PROVIDED` and, for any other public name, a function raising
    :class:`MissingOpError`."""
    ext = types.ModuleType(name, __doc__)
    ext.__dict__.update(PROVIDED)
    ext.PROVIDED_BY = 'visrc.ops'

    def __getattr__(attr: str):
        if attr.startswith('__'):
            raise AttributeError(attr)
        return _missing(attr)

    ext.__getattr__ = __getattr__
    return ext
