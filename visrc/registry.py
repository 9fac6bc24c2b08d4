"""Every mmdet/mmengine module visrc adds, registered by importing this one module.

Configs name it in ``custom_imports`` (``imports=['visrc.registry']``), so a config loaded by
:func:`visrc.models.config.load_config`, by ``visrc train`` or by any mmengine tool finds visrc's
datasets, samplers, transforms, heads, hooks and runner without further imports.
"""
import visrc.data.image_cache  # noqa: F401  CachedLoadImageFromFile
import visrc.data.msd  # noqa: F401  MSDImageDataset, MixedSourceSampler, LoadMSDAnnotations, PackMSDInputs
import visrc.data.pseudo_frames  # noqa: F401  PseudoRefFrame
import visrc.data.sampling  # noqa: F401  FixedLengthTrackImgSampler (equal-iteration frame sampling)
import visrc.data.video_dataset  # noqa: F401  YTVISRawDataset
import visrc.models  # noqa: F401  VISQDTrack, VISRoIHead, VisSyncBN, checkpoint / RNG hooks, VISRunner
import visrc.models.aux_classes  # noqa: F401  AuxClassBBoxHead
import visrc.models.heads  # noqa: F401  SemSegHead, MultiLabelClsHead, WeakMaskFCNMaskHead, WeakMaskIoUHead
import visrc.models.init_weights  # noqa: F401  PretrainedInitHook (`visrc train --init`)
import visrc.models.schedule  # noqa: F401  FractionMultiStepLR (the paper's 8/12, 11/12 LR drops at any length)
import visrc.models.tcis  # noqa: F401  TCIS RoI heads
