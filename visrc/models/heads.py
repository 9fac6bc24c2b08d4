"""Multi-task heads (paper section 3.5.1) and weak-mask-aware mask heads (section 3.2).

* :class:`SemSegHead` - stacked convs on FPN P3 -> one channel per target class; per-pixel BCE
  against the instances' GT masks rasterised onto the P3 grid.
* :class:`MultiLabelClsHead` - global average pool on backbone C5 -> one logit per target class;
  BCE against the set of target classes present in the image.
* Mask scoring: mmdet's ``MaskScoringRoIHead`` + ``MaskIoUHead`` work with visrc's setup as they are
  (BitmapMasks, class-specific mask head over C + K classes, any ``num_classes``; composes with
  ``VISRoIHead`` as ``class X(VISRoIHead, MaskScoringRoIHead)``). Requirements: the mask-IoU head's
  ``num_classes`` equals the mask head's, and ``train_cfg.rcnn.mask_thr_binary`` must be set (the
  IoU targets binarise the predicted masks with it). The only thing missing is weak masks, so
  :class:`WeakMaskIoUHead` (a ``MaskIoUHead``) leaves weak instances out of the IoU regression.
  The predicted mask IoU multiplies the class score at inference (``MaskIoUHead.predict_by_feat``).
* :class:`WeakMaskFCNMaskHead` - ``FCNMaskHead`` whose mask loss skips positives assigned to a
  weak GT instance (no/noisy mask: OpenImages-style data). Detection and tracking still use them.

Weak flags travel as a per-instance bool field ``gt_instances.weak_flags`` (see
``visrc.data.msd.PackMSDInputs``); instances without the field are strong.
All ``loss`` methods return dicts whose keys start with ``loss_`` (mmengine sums those).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.models.roi_heads.mask_heads import FCNMaskHead, MaskIoUHead
from mmdet.registry import MODELS

WEAK_FIELD = "weak_flags"


# ------------------------------------------------------------------------------------------------
# weak-mask helpers
# ------------------------------------------------------------------------------------------------
def instance_weak_flags(gt_instances) -> Tensor:
    """(num_gt,) bool: True where the instance's mask must not be supervised."""
    n = len(gt_instances)
    device = gt_instances.labels.device if "labels" in gt_instances else torch.device("cpu")
    if WEAK_FIELD in gt_instances:
        return torch.as_tensor(gt_instances.get(WEAK_FIELD), device=device).bool().reshape(n)
    return torch.zeros(n, dtype=torch.bool, device=device)


def strong_positive_mask(sampling_results: Sequence, batch_gt_instances: Sequence) -> Tensor:
    """(num_pos_total,) bool over the concatenated positives: True where the assigned GT is strong."""
    out = []
    for res, gt in zip(sampling_results, batch_gt_instances):
        weak = instance_weak_flags(gt).to(res.pos_assigned_gt_inds.device)
        if len(weak) == 0:
            out.append(torch.ones_like(res.pos_assigned_gt_inds, dtype=torch.bool))
        else:
            out.append(~weak[res.pos_assigned_gt_inds.long()])
    if not out:
        return torch.zeros(0, dtype=torch.bool)
    return torch.cat(out)


def _zero_loss(*tensors_or_modules) -> Tensor:
    """A zero that stays connected to the graph (DDP needs every parameter used)."""
    total = None
    for t in tensors_or_modules:
        ps = [t] if isinstance(t, Tensor) else list(t.parameters())
        for p in ps:
            z = p.sum() * 0
            total = z if total is None else total + z
    return total if total is not None else torch.zeros(())


# ------------------------------------------------------------------------------------------------
# semantic segmentation on P3
# ------------------------------------------------------------------------------------------------
@MODELS.register_module()
class SemSegHead(BaseModule):
    """Semantic segmentation branch on FPN P3 (paper: "stacked convolutions ... 40 channels").

    Shapes: ``forward(x)``: x (B, in_channels, h, w) = P3 (stride ``feat_stride``) ->
    logits (B, num_classes, h, w).

    Training-only head with the ``aux_heads`` contract of ``visrc.models.vis_model.VISQDTrack``:
    ``loss(backbone_feats, neck_feats, data_samples)`` runs ``forward`` on ``neck_feats[in_index]``
    (P2..P7 -> ``in_index=1`` is P3) and returns ``loss_by_feat(logits, gt_instances)``.

    Loss: per-pixel, per-class **BCE** (multi-label, no background channel). Chosen over a softmax CE
    with background because (a) the paper's head has one channel per class and no background,
    (b) YouTube-VIS instance masks of different classes may overlap (occlusion), which a one-label-
    per-pixel CE cannot represent. Targets: for every target class c present in the image, the union
    of its instances' masks, placed top-left on the padded input canvas (mmdet pads bottom/right) of
    size (h * feat_stride, w * feat_stride) and area-downsampled to (h, w); with ``soft_target``
    the fraction of covered pixels is the target, else it is thresholded at 0.5. Labels >= num_classes
    (auxiliary objects) are ignored. Images with any weak instance are left out of the loss (its
    masks are boxes or noise), as are images without masks.

    Loss key: ``loss_semseg`` (mean over the elements of the images that count, times loss_weight).
    """

    def __init__(self, num_classes: int, in_channels: int = 256, num_convs: int = 4, conv_channels: int = 256,
                 feat_stride: int = 8, in_index: int = 1, norm_cfg: Optional[dict] = None, soft_target: bool = True,
                 loss_weight: float = 1.0, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes, self.feat_stride, self.in_index = num_classes, feat_stride, in_index
        self.soft_target, self.loss_weight = soft_target, loss_weight
        convs = []
        for i in range(num_convs):
            convs.append(ConvModule(in_channels if i == 0 else conv_channels, conv_channels, 3, padding=1,
                                    norm_cfg=norm_cfg, act_cfg=dict(type="ReLU")))
        self.convs = nn.Sequential(*convs)
        self.conv_logits = nn.Conv2d(conv_channels if num_convs else in_channels, num_classes, 1)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.normal_(self.conv_logits.weight, std=0.01)
        nn.init.constant_(self.conv_logits.bias, -4.6)  # sigmoid ~ 0.01: most pixels are negatives

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_logits(self.convs(x))

    @torch.no_grad()
    def get_targets(self, batch_gt_instances: Sequence, feat_hw: tuple) -> tuple[Tensor, Tensor]:
        """-> targets (B, num_classes, h, w) float, valid (B,) bool."""
        h, w = feat_hw
        H, W = h * self.feat_stride, w * self.feat_stride
        targets, valid = [], []
        for gt in batch_gt_instances:
            t = torch.zeros(self.num_classes, h, w)
            # an image without objects counts (all pixels negative); one with a weak instance does not
            ok = "masks" in gt and not bool(instance_weak_flags(gt).any())
            if ok and len(gt):
                masks = gt.masks
                masks = masks.to_tensor(torch.uint8, "cpu") if hasattr(masks, "to_tensor") else torch.as_tensor(masks)
                labels = gt.labels.cpu()
                canvas = torch.zeros(self.num_classes, H, W)
                mh, mw = min(masks.shape[-2], H), min(masks.shape[-1], W)
                for c in labels.unique().tolist():
                    if 0 <= c < self.num_classes:
                        canvas[c, :mh, :mw] = masks[labels == c, :mh, :mw].amax(0).float()
                t = F.adaptive_avg_pool2d(canvas[None], (h, w))[0]
                if not self.soft_target:
                    t = (t >= 0.5).float()
            targets.append(t)
            valid.append(ok)
        return torch.stack(targets), torch.tensor(valid, dtype=torch.bool)

    def loss(self, backbone_feats: Sequence[Tensor], neck_feats: Sequence[Tensor], data_samples: Sequence) -> dict:
        """``VISQDTrack`` aux-head entry: forward on ``neck_feats[in_index]`` + :meth:`loss_by_feat`."""
        return self.loss_by_feat(self(neck_feats[self.in_index]), [s.gt_instances for s in data_samples])

    def loss_by_feat(self, seg_logits: Tensor, batch_gt_instances: Sequence) -> dict:
        """seg_logits (B, num_classes, h, w) from :meth:`forward` -> ``{'loss_semseg': scalar}``."""
        targets, valid = self.get_targets(batch_gt_instances, seg_logits.shape[-2:])
        valid = valid.to(seg_logits.device)
        if not bool(valid.any()):
            return dict(loss_semseg=seg_logits.sum() * 0)
        loss = F.binary_cross_entropy_with_logits(seg_logits[valid], targets.to(seg_logits)[valid])
        return dict(loss_semseg=loss * self.loss_weight)

    def predict(self, x: Tensor) -> Tensor:
        """(B, in_channels, h, w) -> per-class probabilities (B, num_classes, h, w)."""
        return self.forward(x).sigmoid()


# ------------------------------------------------------------------------------------------------
# multi-label classification on C5
# ------------------------------------------------------------------------------------------------
@MODELS.register_module()
class MultiLabelClsHead(BaseModule):
    """Image-level multi-label classification on the backbone's last stage C5.

    Shapes: ``forward(x)``: x (B, in_channels, h, w) = C5 (2048 channels for ResNet/ResNeSt-50+,
    512 for ResNet-18/34, 768 for Swin-S stage 4) -> logits (B, num_classes).
    Architecture: global average pool -> [Linear(in, hidden) -> ReLU] if ``hidden_channels`` ->
    dropout -> Linear(-, num_classes).
    Loss: BCE with logits against the multi-hot vector of target classes present among the image's
    GT instances (labels >= num_classes, i.e. auxiliary objects, are ignored; weak-mask images count:
    the class labels are reliable). Key: ``loss_multilabel`` (mean over B x num_classes, times
    loss_weight).

    Training-only head with the ``aux_heads`` contract of ``visrc.models.vis_model.VISQDTrack``:
    ``loss(backbone_feats, neck_feats, data_samples)`` uses ``backbone_feats[in_index]`` (-1 = C5).
    """

    def __init__(self, num_classes: int, in_channels: int = 2048, hidden_channels: Optional[int] = None,
                 dropout: float = 0.0, in_index: int = -1, loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes, self.loss_weight, self.in_index = num_classes, loss_weight, in_index
        layers: List[nn.Module] = []
        c = in_channels
        if hidden_channels:
            layers += [nn.Linear(c, hidden_channels), nn.ReLU(inplace=True)]
            c = hidden_channels
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(c, num_classes))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def get_targets(self, batch_gt_instances: Sequence, device=None) -> Tensor:
        """-> (B, num_classes) multi-hot float."""
        t = torch.zeros(len(batch_gt_instances), self.num_classes, device=device)
        for i, gt in enumerate(batch_gt_instances):
            labels = gt.labels.to(device).long()
            labels = labels[(labels >= 0) & (labels < self.num_classes)]
            t[i, labels] = 1.0
        return t

    def loss(self, backbone_feats: Sequence[Tensor], neck_feats: Sequence[Tensor], data_samples: Sequence) -> dict:
        """``VISQDTrack`` aux-head entry: forward on ``backbone_feats[in_index]`` + :meth:`loss_by_feat`."""
        return self.loss_by_feat(self(backbone_feats[self.in_index]), [s.gt_instances for s in data_samples])

    def loss_by_feat(self, cls_logits: Tensor, batch_gt_instances: Sequence) -> dict:
        """cls_logits (B, num_classes) -> ``{'loss_multilabel': scalar}``."""
        targets = self.get_targets(batch_gt_instances, cls_logits.device)
        loss = F.binary_cross_entropy_with_logits(cls_logits, targets.to(cls_logits))
        return dict(loss_multilabel=loss * self.loss_weight)

    def predict(self, x: Tensor) -> Tensor:
        """(B, in_channels, h, w) -> per-class probabilities (B, num_classes)."""
        return self.forward(x).sigmoid()


# ------------------------------------------------------------------------------------------------
# weak-mask-aware mask head and mask-IoU head
# ------------------------------------------------------------------------------------------------
@MODELS.register_module()
class WeakMaskFCNMaskHead(FCNMaskHead):
    """``FCNMaskHead`` whose loss skips positives assigned to weak GT instances.

    Same config as ``FCNMaskHead``. ``loss_and_target`` returns mmdet's structure
    ``{'loss_mask': {'loss_mask': scalar}, 'mask_targets': (num_pos, M, M)}``; the loss is the mask
    loss averaged over the strong positives only (a graph-connected zero when there are none), so a
    batch made only of weak samples contributes exactly 0 mask loss. ``mask_targets`` covers all
    positives (mask-IoU heads index it), and :class:`WeakMaskIoUHead` drops the weak rows itself.
    """

    def loss_and_target(self, mask_preds: Tensor, sampling_results, batch_gt_instances, rcnn_train_cfg) -> dict:
        mask_targets = self.get_targets(sampling_results=sampling_results, batch_gt_instances=batch_gt_instances,
                                        rcnn_train_cfg=rcnn_train_cfg)
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        strong = strong_positive_mask(sampling_results, batch_gt_instances).to(mask_preds.device)
        if mask_preds.size(0) == 0 or not bool(strong.any()):
            loss_mask = mask_preds.sum() * 0
        else:
            labels = torch.zeros_like(pos_labels) if self.class_agnostic else pos_labels
            loss_mask = self.loss_mask(mask_preds[strong], mask_targets[strong], labels[strong])
        return dict(loss_mask=dict(loss_mask=loss_mask), mask_targets=mask_targets)


@MODELS.register_module()
class WeakMaskIoUHead(MaskIoUHead):
    """mmdet's ``MaskIoUHead`` with weak instances left out of the IoU regression.

    Use with mmdet's ``MaskScoringRoIHead`` (``mask_iou_head=dict(type='WeakMaskIoUHead', ...)``);
    ``num_classes`` must equal the mask head's (C + K with auxiliary classes). mmdet trains only rows
    whose IoU target is > 0; weak rows get target 0, so they are skipped the same way.
    Loss key: ``loss_mask_iou``. Inference is unchanged: score *= predicted IoU of the label's mask.
    """

    def get_targets(self, sampling_results, batch_gt_instances, mask_preds, mask_targets, rcnn_train_cfg) -> Tensor:
        targets = super().get_targets(sampling_results, batch_gt_instances, mask_preds, mask_targets, rcnn_train_cfg)
        strong = strong_positive_mask(sampling_results, batch_gt_instances).to(targets.device)
        return targets * strong.to(targets.dtype)
