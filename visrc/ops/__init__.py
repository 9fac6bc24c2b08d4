"""The compiled mmcv ops the model calls, without a compiler: RoIAlign, NMS and deformable convolution.

mmcv-lite is mmcv without its compiled extension ``mmcv._ext``. Importing :mod:`visrc` lets
``import mmcv._ext`` (which ``mmcv.ops`` does) find :func:`visrc.ops.ext.module` when no compiled one is
installed; with mmcv-full installed its own extension is found first and visrc adds nothing
(:func:`backend` says which is in use).

- CPU, float32: numba kernels equal to mmcv-full's CPU ops bit for bit (``tests/test_ops.py``);
- CUDA and other dtypes: plain torch (:mod:`visrc.ops.torch_ops`), the same definitions.

This layer sits below ``data``: mmdet's data structures import ``mmcv.ops``.
"""
from __future__ import annotations


def backend() -> str:
    """``'visrc.ops'`` when visrc provides ``mmcv._ext``, ``'mmcv'`` when mmcv's compiled one is in use."""
    import mmcv._ext

    return getattr(mmcv._ext, 'PROVIDED_BY', 'mmcv')
