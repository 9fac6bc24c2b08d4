"""The VIS model on MMDetection 3.3 (paper section 2) and its training/inference plumbing.

Importing this package registers with mmdet/mmengine: ``VISQDTrack`` and ``VISRoIHead``
(:mod:`~visrc.models.vis_model`), the ``VisSyncBN`` norm layer (:mod:`~visrc.models.sync_bn`),
and the ``AtomicCheckpointHook`` / ``RNGStateHook`` hooks (:mod:`~visrc.models.checkpoint`, which
also allow-lists mmengine's checkpoint types for ``torch.load(weights_only=True)``).
Configs name it in ``custom_imports`` so mmengine tools find the modules too.

Modules: ``vis_model`` (model), ``tcis``, ``heads``, ``aux_classes`` (paper components),
``config`` (config name -> Config, class names, built model), ``predictor`` (per-frame
predictions of a video), ``checkpoint`` (safe loading, atomic save, RNG resume), ``sync_bn`` /
``runner`` (SyncBN and DDP on CPU/gloo), ``train_cli`` (``visrc train``).
"""
from visrc.models.checkpoint import (AtomicCheckpointHook, RNGStateHook, load_checkpoint_file,  # noqa: F401
                                     load_weights, register_safe_globals)
from visrc.models.runner import VISRunner  # noqa: F401
from visrc.models.sync_bn import VisSyncBN, convert_sync_batchnorm  # noqa: F401
from visrc.models.vis_model import VISQDTrack, VISRoIHead  # noqa: F401

__all__ = ['VISQDTrack', 'VISRoIHead', 'VISRunner', 'VisSyncBN', 'convert_sync_batchnorm', 'AtomicCheckpointHook',
           'RNGStateHook', 'load_checkpoint_file', 'load_weights', 'register_safe_globals']
