"""Temporally Correlated Instance Segmentation (paper section 3.3), a training-only auxiliary.

For one instance seen in the key frame (RoI feature F_k) and the reference frame (F_r, GT mask M_r):

    offsets = CT(F_k - F_r)                   Correlation Transform: a ResNet BasicBlock + 3x3 conv
    F_c     = DeformConv(F_r * M_r, offsets)  the attention-masked reference feature, moved
    logits  = mask_head(F_c + F_k)            the *shared* mask head
    loss    = mask_head.loss_mask(logits, key GT mask in the RoI)   ("loss_mask_tcis")

The offset conv is zero-initialised, so training starts from plain (non-deformed) sampling.
Nothing here is called by ``predict``: the inference graph and speed are those of the model
without TCIS, and checkpoints with/without the ``tcis.*`` weights give identical predictions.

RoI convention (what :func:`tcis_loss_from_sampling` does and what the tests assume): both RoI
features are pooled **at the same box**, the key frame's positive proposal, from the key and the
reference FPN maps. In that common window the instance's motion between the frames appears as a
displacement, which ``F_k - F_r`` exposes and the deformable conv undoes; ``M_r`` is the reference
GT mask cropped/resized to that box (soft, at the RoI feature size S), and the target is the key GT
mask cropped/resized to the box at ``mask_size`` (mmdet's ``mask_target``). Instances not present
in the reference frame (no GT with the same ``instances_ids``) and instances whose key or reference
mask is weak are left out.
"""
from __future__ import annotations

import inspect
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import DeformConv2d
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.models.backbones.resnet import BasicBlock
from mmdet.models.roi_heads import MaskScoringRoIHead, StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures.mask import BaseInstanceMasks

from .heads import _zero_loss, instance_weak_flags


@MODELS.register_module()
class TCISModule(BaseModule):
    """TCIS feature transform.

    Args:
        in_channels: C, channels of the mask RoI features (256 for the FPN Mask R-CNN).
        roi_size: S, spatial size of the mask RoI features (14); stored for checks/docs.
        deform_kernel: k of the deformable conv (offsets have 2 * k * k * deform_groups channels).
        deform_groups: offset groups of the deformable conv.
        norm_cfg: norm of the Correlation Transform's BasicBlock (``dict(type='BN')`` as in ResNet;
            ``SyncBN`` / ``GN`` for multi-GPU / tiny batches).
        im2col_step: mmcv's DeformConv2d needs batch % step == 0; batches are zero-padded to a
            multiple of ``min(im2col_step, N)`` internally, so any N works.

    Shapes: ``forward(feat_key (N, C, S, S), feat_ref (N, C, S, S), ref_masks (N, S, S) in [0, 1])``
    -> (N, C, S, S) = DCN(F_r * M_r, CT(F_k - F_r)) + F_k.
    """

    def __init__(self, in_channels: int = 256, roi_size: int = 14, deform_kernel: int = 3, deform_groups: int = 1,
                 norm_cfg: Optional[dict] = None, im2col_step: int = 32, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels, self.roi_size = in_channels, roi_size
        self.deform_kernel, self.deform_groups = deform_kernel, deform_groups
        self.im2col_step = im2col_step
        norm_cfg = norm_cfg if norm_cfg is not None else dict(type="BN")
        self.correlation_transform = BasicBlock(in_channels, in_channels, norm_cfg=norm_cfg)
        n_off = 2 * deform_kernel * deform_kernel * deform_groups
        self.conv_offset = nn.Conv2d(in_channels, n_off, 3, padding=1)
        self.dcn = DeformConv2d(in_channels, in_channels, deform_kernel, padding=deform_kernel // 2,
                                deform_groups=deform_groups, bias=False, im2col_step=im2col_step)
        self._zero_offsets()

    def _zero_offsets(self) -> None:
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def init_weights(self) -> None:
        super().init_weights()
        self._zero_offsets()  # identity sampling at the start, whatever init_cfg did

    def offsets(self, feat_key: Tensor, feat_ref: Tensor) -> Tensor:
        """(N, C, S, S) x 2 -> offsets (N, 2*k*k*deform_groups, S, S)."""
        return self.conv_offset(self.correlation_transform(feat_key - feat_ref))

    def forward(self, feat_key: Tensor, feat_ref: Tensor, ref_masks: Tensor) -> Tensor:
        if feat_key.shape != feat_ref.shape:
            raise ValueError(f"feat_key {tuple(feat_key.shape)} != feat_ref {tuple(feat_ref.shape)}")
        n = feat_key.size(0)
        if n == 0:
            return feat_key + 0 * feat_ref
        if ref_masks.dim() == 3:
            ref_masks = ref_masks[:, None]
        if ref_masks.shape[-2:] != feat_ref.shape[-2:]:
            ref_masks = F.interpolate(ref_masks.float(), size=feat_ref.shape[-2:], mode="bilinear",
                                      align_corners=False)
        masked_ref = feat_ref * ref_masks.to(feat_ref.dtype)
        offset = self.offsets(feat_key, feat_ref)
        step = min(self.im2col_step, n)
        pad = (-n) % step
        if pad:
            masked_ref = torch.cat([masked_ref, masked_ref.new_zeros((pad,) + masked_ref.shape[1:])])
            offset = torch.cat([offset, offset.new_zeros((pad,) + offset.shape[1:])])
        self.dcn.im2col_step = step
        correlated = self.dcn(masked_ref.contiguous(), offset.contiguous())[:n]
        return correlated + feat_key


def crop_masks_to_rois(gt_masks: BaseInstanceMasks, boxes: Union[Tensor, np.ndarray], inds: Union[Tensor, np.ndarray],
                       size: int, binarize: bool, device=None) -> Tensor:
    """GT masks -> (N, size, size) float, one per box, with mmdet's ``mask_target`` conventions.

    ``boxes`` (N, 4) xyxy in the masks' image coordinates (clipped to the mask size like mmdet);
    ``inds`` (N,) the GT index of each box. ``binarize=True`` gives mmdet's mask targets (>= 0.5),
    ``False`` the soft (RoIAlign-interpolated) coverage used as the attention mask M_r.
    """
    boxes = boxes.detach().cpu().numpy() if isinstance(boxes, Tensor) else np.asarray(boxes)
    inds = inds.detach().cpu().numpy() if isinstance(inds, Tensor) else np.asarray(inds)
    if len(boxes) == 0:
        return torch.zeros((0, size, size), device=device)
    boxes = boxes.astype(np.float32).copy()
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, gt_masks.width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, gt_masks.height)
    out = gt_masks.crop_and_resize(boxes, (size, size), inds=inds.astype(np.int64), device=device or "cpu",
                                   binarize=binarize).to_ndarray()
    return torch.from_numpy(np.ascontiguousarray(out)).float().to(device or "cpu")


def tcis_mask_loss(mask_head: nn.Module, tcis: TCISModule, feat_key: Tensor, feat_ref: Tensor,
                   ref_gt_masks: Union[Tensor, BaseInstanceMasks], key_gt_masks: Union[Tensor, BaseInstanceMasks],
                   labels: Tensor, boxes: Optional[Tensor] = None, mask_size: int = 28,
                   loss_weight: float = 1.0) -> dict:
    """TCIS mask loss for N matched instances, through the shared mask head's own loss.

    Args:
        mask_head: the detector's mask head (``FCNMaskHead``-like: ``forward(feats) -> (N, ncls, M, M)``,
            ``loss_mask(preds, targets, labels)``, ``class_agnostic``).
        tcis: the :class:`TCISModule`.
        feat_key, feat_ref: (N, C, S, S) key / reference RoI features of the same boxes.
        ref_gt_masks: the reference GT mask of each instance either already in the RoI frame,
            (N, S, S) float in [0, 1], or as ``BitmapMasks``/``PolygonMasks`` with N masks aligned with
            ``boxes`` (mask i belongs to box i), cropped here softly to (S, S).
        key_gt_masks: the key GT mask of each instance either as mask targets (N, M, M) in {0, 1}
            (exactly mmdet's ``mask_target`` output) or as instance masks aligned with ``boxes``,
            cropped and binarised here to (mask_size, mask_size).
        labels: (N,) class of each instance (selects the mask channel; ignored if class-agnostic).
        boxes: (N, 4) xyxy RoIs in image coordinates; needed only when masks are instance masks.

    Returns:
        ``{'loss_mask_tcis': scalar}`` (``loss_weight`` times the mask head's loss). With N == 0 a
        zero connected to the TCIS and mask-head parameters.
    """
    n = feat_key.size(0)
    if n == 0:
        return dict(loss_mask_tcis=_zero_loss(tcis, mask_head, feat_key, feat_ref))
    S = feat_key.shape[-1]
    idx = np.arange(n)
    if isinstance(ref_gt_masks, BaseInstanceMasks):
        assert boxes is not None, "boxes are needed to crop instance masks"
        ref_gt_masks = crop_masks_to_rois(ref_gt_masks, boxes, idx, S, binarize=False, device=feat_key.device)
    if isinstance(key_gt_masks, BaseInstanceMasks):
        assert boxes is not None, "boxes are needed to crop instance masks"
        key_gt_masks = crop_masks_to_rois(key_gt_masks, boxes, idx, mask_size, binarize=True, device=feat_key.device)
    fused = tcis(feat_key, feat_ref, ref_gt_masks.to(feat_key))
    mask_preds = mask_head(fused)
    lbl = torch.zeros_like(labels) if getattr(mask_head, "class_agnostic", False) else labels
    loss = mask_head.loss_mask(mask_preds, key_gt_masks.to(mask_preds), lbl.long())
    return dict(loss_mask_tcis=loss * loss_weight)


def match_ref_instances(sampling_results: Sequence, key_gt_instances: Sequence, ref_gt_instances: Sequence):
    """Find each key positive's instance in the reference frame.

    Returns ``(valid (P,) bool, ref_inds (P,) int64)`` over the concatenated positives of all images
    (``bbox2roi([res.pos_priors ...])`` order). ``valid`` is False where the instance id is absent from
    the reference GT, or where the key or the reference instance is weak (no usable mask).
    ``ref_inds`` indexes the reference ``gt_instances`` of the same image (0 where invalid).
    Needs ``instances_ids`` on both frames' ``gt_instances`` (``PackTrackInputs`` provides them).
    """
    valids, refs = [], []
    for res, kgt, rgt in zip(sampling_results, key_gt_instances, ref_gt_instances):
        pos = res.pos_assigned_gt_inds.long().cpu()
        k_ids = kgt.instances_ids.cpu()[pos] if len(pos) else torch.zeros(0, dtype=torch.long)
        k_weak = instance_weak_flags(kgt).cpu()[pos] if len(pos) else torch.zeros(0, dtype=torch.bool)
        r_ids = rgt.instances_ids.cpu().tolist()
        r_weak = instance_weak_flags(rgt).cpu()
        lookup = {int(t): j for j, t in enumerate(r_ids)}
        ref_ind = torch.tensor([lookup.get(int(t), -1) for t in k_ids.tolist()], dtype=torch.long)
        found = ref_ind >= 0
        r_weak_of = torch.zeros_like(found)
        r_weak_of[found] = r_weak[ref_ind[found]]
        valid = found & ~k_weak & ~r_weak_of
        valids.append(valid)
        refs.append(ref_ind.clamp(min=0))
    if not valids:
        return torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.long)
    return torch.cat(valids), torch.cat(refs)


def tcis_loss_from_sampling(tcis: TCISModule, mask_head: nn.Module, mask_roi_extractor: nn.Module, ref_x: Sequence[Tensor],
                            pos_rois: Tensor, key_mask_feats: Tensor, sampling_results: Sequence,
                            key_gt_instances: Sequence, ref_gt_instances: Sequence, mask_size: int = 28,
                            loss_weight: float = 1.0, rois_per_instance: Optional[int] = None) -> dict:
    """TCIS loss inside a RoI head's mask loss: one call after the main mask forward.

    Args:
        tcis, mask_head, mask_roi_extractor: the TCIS module and the RoI head's own mask head and
            mask RoI extractor (TCIS shares both).
        ref_x: the reference frame's FPN features (the same levels as the key's ``x``).
        pos_rois: (P, 5) ``bbox2roi([res.pos_priors for res in sampling_results])``, the key positives.
        key_mask_feats: (P, C, S, S) the key mask RoI features of ``pos_rois``
            (``StandardRoIHead._mask_forward(x, pos_rois)['mask_feats']``).
        sampling_results: the key frame's sampling results (after any aux-label re-assignment).
        key_gt_instances, ref_gt_instances: per image ``InstanceData`` with ``masks``, ``labels``,
            ``instances_ids`` (and optional ``weak_flags``) of the key and reference frames.
        mask_size: M of the mask targets (``rcnn_train_cfg.mask_size``).
        rois_per_instance: keep at most this many (random) positives per matched instance and image
            (``None``: all). The paper runs TCIS "for each matched instance"; one RoI per instance
            keeps mmcv's CPU deformable-conv backward (far slower than its forward) affordable.

    Returns:
        ``{'loss_mask_tcis': scalar}``.
    """
    valid, ref_inds = match_ref_instances(sampling_results, key_gt_instances, ref_gt_instances)
    if rois_per_instance is not None:
        valid = valid & _random_k_per_instance(sampling_results, rois_per_instance)
    device = key_mask_feats.device
    valid = valid.to(device)
    if not bool(valid.any()):
        return dict(loss_mask_tcis=_zero_loss(tcis, mask_head, key_mask_feats))
    S = key_mask_feats.shape[-1]
    ref_masks, key_targets, labels = [], [], []
    offset = 0
    for i, res in enumerate(sampling_results):
        n = res.pos_priors.size(0)
        v = valid[offset:offset + n].cpu()
        if v.any():
            boxes = res.pos_priors[v.to(res.pos_priors.device)]
            ref_masks.append(crop_masks_to_rois(ref_gt_instances[i].masks, boxes, ref_inds[offset:offset + n][v], S,
                                                binarize=False, device=device))
            key_targets.append(crop_masks_to_rois(key_gt_instances[i].masks, boxes,
                                                  res.pos_assigned_gt_inds.cpu()[v], mask_size, binarize=True,
                                                  device=device))
            labels.append(res.pos_gt_labels[v.to(res.pos_gt_labels.device)].to(device))
        offset += n
    rois = pos_rois[valid]
    feat_ref = mask_roi_extractor(tuple(ref_x[:mask_roi_extractor.num_inputs]), rois)
    return tcis_mask_loss(mask_head, tcis, key_mask_feats[valid], feat_ref, torch.cat(ref_masks),
                          torch.cat(key_targets), torch.cat(labels), loss_weight=loss_weight)


def _random_k_per_instance(sampling_results: Sequence, k: int) -> Tensor:
    """(P,) bool over the concatenated positives: at most ``k`` random positives per (image, GT index)."""
    keep = []
    for res in sampling_results:
        gt = res.pos_assigned_gt_inds.long().cpu()
        order = torch.randperm(len(gt))                  # random pick, the training RNG's seed
        rank = torch.zeros(len(gt), dtype=torch.long)
        seen: dict = {}
        for i in order.tolist():
            g = int(gt[i])
            rank[i] = seen.get(g, 0)
            seen[g] = rank[i].item() + 1
        keep.append(rank < k)
    return torch.cat(keep) if keep else torch.zeros(0, dtype=torch.bool)


class TCISRoIHeadMixin:
    """Adds TCIS to an mmdet ``StandardRoIHead`` subclass without copying its ``loss``.

    Use it first in the bases: ``class X(TCISRoIHeadMixin, VISRoIHead)`` or
    ``class X(TCISRoIHeadMixin, VISRoIHead, MaskScoringRoIHead)``. ``__init__`` takes
    ``tcis=dict(in_channels=..., roi_size=..., ...)`` (``None`` or ``enabled=False``: off, the head
    is exactly its base class), ``tcis_loss_weight`` and ``tcis_rois_per_instance`` (see
    :func:`tcis_loss_from_sampling`).

    Training: ``loss(x, rpn_results_list, batch_data_samples, ref_x=None, ref_data_samples=None)``
    (the signature of ``visrc.models.vis_model.VISRoIHead.loss``; :meth:`loss_with_ref` is the same
    call). It keeps the reference frame's FPN features and GT for the duration of the call, and
    :meth:`mask_loss` (run by ``StandardRoIHead.loss`` after ``bbox_loss``, so auxiliary labels are
    already re-assigned) adds ``loss_mask_tcis`` next to ``loss_mask``, from the main branch's own
    positive mask RoI features and sampling results. Without a reference, or with TCIS off, the loss
    is the base class's. ``predict`` is never touched.
    """

    def __init__(self, *args, tcis: Optional[dict] = None, tcis_loss_weight: float = 1.0,
                 tcis_rois_per_instance: Optional[int] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tcis = build_tcis(tcis)
        self.tcis_loss_weight = tcis_loss_weight
        self.tcis_rois_per_instance = tcis_rois_per_instance
        self._tcis_ref = None

    @property
    def with_tcis(self) -> bool:
        return getattr(self, "tcis", None) is not None

    def loss(self, x, rpn_results_list, batch_data_samples, ref_x=None, ref_data_samples=None, **kwargs) -> dict:
        if self.with_tcis and ref_x is not None and ref_data_samples is not None:
            self._tcis_ref = (ref_x, [s.gt_instances for s in ref_data_samples])
        try:
            base_loss = super().loss
            if "ref_x" in inspect.signature(base_loss).parameters:  # e.g. VISRoIHead
                return base_loss(x, rpn_results_list, batch_data_samples, ref_x=ref_x,
                                 ref_data_samples=ref_data_samples, **kwargs)
            return base_loss(x, rpn_results_list, batch_data_samples, **kwargs)
        finally:
            self._tcis_ref = None

    def loss_with_ref(self, x, rpn_results_list, batch_data_samples, ref_x=None, ref_data_samples=None) -> dict:
        """Alias of :meth:`loss` with the reference frame (same batch order as the key samples)."""
        return self.loss(x, rpn_results_list, batch_data_samples, ref_x=ref_x, ref_data_samples=ref_data_samples)

    def mask_loss(self, x, sampling_results, bbox_feats, batch_gt_instances) -> dict:
        mask_results = super().mask_loss(x, sampling_results, bbox_feats, batch_gt_instances)
        if self.with_tcis and self._tcis_ref is not None:
            from mmdet.structures.bbox import bbox2roi
            ref_x, ref_gt = self._tcis_ref
            pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
            mask_size = self.train_cfg.get("mask_size", 28) if self.train_cfg is not None else 28
            tcis_loss = tcis_loss_from_sampling(self.tcis, self.mask_head, self.mask_roi_extractor, ref_x, pos_rois,
                                                mask_results["mask_feats"], sampling_results, batch_gt_instances,
                                                ref_gt, mask_size=mask_size, loss_weight=self.tcis_loss_weight,
                                                rois_per_instance=self.tcis_rois_per_instance)
            mask_results["loss_mask"] = dict(mask_results["loss_mask"], **tcis_loss)
        return mask_results


@MODELS.register_module()
class TCISStandardRoIHead(TCISRoIHeadMixin, StandardRoIHead):
    """``StandardRoIHead`` + optional TCIS (see :class:`TCISRoIHeadMixin`)."""


def build_tcis(cfg: Optional[dict]) -> Optional[TCISModule]:
    """``None`` / ``dict(enabled=False)`` -> None (TCIS off); otherwise a :class:`TCISModule`."""
    if not cfg or not cfg.get("enabled", True):
        return None
    cfg = {k: v for k, v in cfg.items() if k not in ("enabled", "loss_weight")}
    cfg.setdefault("type", "TCISModule")
    return MODELS.build(cfg)


# The heads the toy / paper configs use: VISQDTrack hands the reference frame only to VISRoIHead
# subclasses, so TCIS goes in front of VISRoIHead (and of mmdet's MaskScoringRoIHead for the
# multi-task rows: MRO Mixin -> VISRoIHead -> MaskScoringRoIHead -> StandardRoIHead).
from .vis_model import VISRoIHead  # noqa: E402


@MODELS.register_module()
class VISTCISRoIHead(TCISRoIHeadMixin, VISRoIHead):
    """``VISRoIHead`` + TCIS: box + mask head, ``loss_mask_tcis`` from the reference frame."""


@MODELS.register_module()
class VISTCISMaskScoringRoIHead(TCISRoIHeadMixin, VISRoIHead, MaskScoringRoIHead):
    """``VISRoIHead`` + mask scoring (``mask_iou_head``, ``loss_mask_iou``) + TCIS."""
