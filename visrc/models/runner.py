"""mmengine's Runner, with DDP + synchronized BN that also work on CPU (gloo).

``VISRunner`` (registered in mmengine's RUNNERS, so ``runner_type='VISRunner'`` works with mmengine
tools) changes only :meth:`wrap_model`:

* ``cfg.sync_bn`` set (any value) -> BatchNorm layers become torch's ``nn.SyncBatchNorm`` with
  CUDA, :class:`visrc.models.sync_bn.VisSyncBN` (all-reduce BN over gloo) without; on CPU,
  ``nn.SyncBatchNorm`` layers built from a config (``norm_cfg=dict(type='SyncBN')``) become
  ``VisSyncBN`` in any case, since DDP refuses them there;
* no CUDA -> ``MMDistributedDataParallel`` without ``device_ids`` (torch refuses device ids for
  CPU modules; mmengine always passes ``LOCAL_RANK``).
"""
from __future__ import annotations

import torch
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from visrc.models.sync_bn import convert_sync_batchnorm


@RUNNERS.register_module()
class VISRunner(Runner):

    def wrap_model(self, model_wrapper_cfg, model):
        sync_bn = self.cfg.get('sync_bn', None)
        if self.distributed and sync_bn:
            model = convert_sync_batchnorm(model)
            kind = 'SyncBatchNorm' if torch.cuda.is_available() else 'VisSyncBN'
            self.logger.info(f'BatchNorm layers converted to {kind} (synchronized across processes)')
        elif self.distributed and not torch.cuda.is_available():
            model = convert_sync_batchnorm(model, only_torch_sync=True)   # DDP refuses them on CPU
        if self.distributed and not torch.cuda.is_available() and model_wrapper_cfg is None:
            model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False,
                                     find_unused_parameters=self.cfg.get('find_unused_parameters', False))
        self.cfg['sync_bn'] = None      # mmengine's own conversion would use torch's SyncBatchNorm
        try:
            return super().wrap_model(model_wrapper_cfg, model)
        finally:
            self.cfg['sync_bn'] = sync_bn
