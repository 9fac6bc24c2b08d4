"""Dataset fusion with auxiliary classes (paper section 3.2, Algorithm 1).

Objects of a source dataset (COCO, OpenImages) whose category is not one of the C target (video)
classes are not thrown away: they are "auxiliary" objects. The detector predicts C + K classes
(plus background); the K auxiliary indices ``[C, C + K)`` have no fixed meaning. During training the
label of every auxiliary object is chosen from the current prediction (Algorithm 1):

    p = argmax over the C + K foreground classes of the prediction for that object
    label = p                          if C <= p < C + K
    label = uniform draw from [C, C+K) otherwise

so the network groups the non-target classes into K clusters by itself, and the random draw keeps
any one auxiliary index from swallowing everything. At inference auxiliary classes are removed
(:func:`drop_aux_classes`, :func:`filter_aux_detections`, :class:`AuxClassBBoxHead`).

Label convention used across ``visrc`` (datasets, pipeline, heads):

* target objects carry their target index ``0 <= label < C``;
* auxiliary objects carry the placeholder label ``C`` (the first auxiliary index) until the bbox head
  re-assigns it with Algorithm 1. ``is_aux = (C <= label < C + K)``;
* with ``K == 0`` the datasets drop non-target objects (the "simply ignore them" baseline).

Where it plugs in: :class:`AuxClassBBoxHead` (a ``Shared2FCBBoxHead``) applies Algorithm 1 inside
``loss_and_target`` on the positive RoIs assigned to auxiliary GT objects, using that RoI's own
``cls_score`` (detached), and writes the new labels back into the ``SamplingResult`` so the mask head
(and a mask-IoU head) of the same RoI head train the same class channel. At inference it removes the
auxiliary score columns before the per-class NMS.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def is_aux_label(labels: Tensor, num_target: int, num_aux: int) -> Tensor:
    """Boolean mask of labels in the auxiliary range ``[C, C + K)``."""
    return (labels >= num_target) & (labels < num_target + num_aux)


def assign_aux_labels(labels: Tensor, is_aux: Optional[Tensor], cls_logits: Tensor, num_target: int,
                      num_aux: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Algorithm 1: labels for auxiliary objects from the current prediction.

    Args:
        labels: (N,) int64 labels; rows with ``is_aux`` are replaced, the rest are returned as is.
        is_aux: (N,) bool, or ``None`` for ``is_aux_label(labels, C, K)``.
        cls_logits: (N, C + K) or (N, C + K + 1) class scores (logits or probabilities; only the
            argmax is used). A last background column, if present, is ignored: the argmax is over
            the C + K foreground classes. Not differentiated through.
        num_target: C. num_aux: K (>= 1 when any row is auxiliary).
        generator: a CPU ``torch.Generator`` for the uniform draws (reproducible on any device);
            one draw per auxiliary row whose argmax is a target class, in row order.

    Returns:
        (N,) int64 new labels (a new tensor; the input is not modified).
    """
    C, K = num_target, num_aux
    if is_aux is None:
        is_aux = is_aux_label(labels, C, K)
    is_aux = is_aux.bool()
    out = labels.clone()
    if not bool(is_aux.any()):
        return out
    if K <= 0:
        raise ValueError("auxiliary objects present but num_aux == 0; drop them in the dataset instead")
    if cls_logits.size(-1) not in (C + K, C + K + 1):
        raise ValueError(f"cls_logits has {cls_logits.size(-1)} columns, expected {C + K} or {C + K + 1}")
    pred = cls_logits.detach()[:, :C + K].argmax(dim=1)
    aux_rows = torch.nonzero(is_aux, as_tuple=False).flatten()
    pred_aux = pred[aux_rows]
    hit = pred_aux >= C  # the prediction already is an auxiliary index: keep it
    new = pred_aux.clone()
    n_draw = int((~hit).sum())
    if n_draw:
        draws = torch.randint(C, C + K, (n_draw,), generator=generator, dtype=torch.long)
        new[~hit] = draws.to(new.device)
    out[aux_rows] = new.to(out.dtype)
    return out


def drop_aux_classes(scores: Tensor, num_target: int, num_aux: int, mode: str = "columns") -> Tensor:
    """Remove the auxiliary classes from class scores (inference).

    Args:
        scores: (N, C + K + 1) with a last background column, or (N, C + K) without; probabilities
            (softmax/sigmoid already applied).
        mode:
            ``"columns"`` (default): slice the K auxiliary columns out **after** the softmax, without
            renormalising. Per-class NMS then only ever emits target classes, which is exactly
            "run the C + K class detector and discard detections labelled auxiliary" (per-class
            NMS treats classes independently). Probability mass on auxiliary classes still counts
            against the target classes, so a distractor that looks auxiliary keeps a low target
            score. Removing the auxiliary logits *before* the softmax would renormalise that mass
            into the target classes and inflate distractor scores, so it is not done.
            ``"argmax"``: additionally zero the target scores of rows whose argmax over the C + K
            foreground classes is auxiliary (the whole RoI is dropped by any score threshold):
            stricter, removes distractors, may lose true objects that were confused.

    Returns:
        (N, C + 1) or (N, C): target columns (and the background column if present).
    """
    C, K = num_target, num_aux
    width = scores.size(-1)
    if width == C + K + 1:
        has_bg = True
    elif width == C + K:
        has_bg = False
    else:
        raise ValueError(f"scores has {width} columns, expected {C + K} or {C + K + 1}")
    out = scores[:, :C]
    if mode == "argmax" and K > 0:
        aux_top = scores[:, :C + K].argmax(dim=1) >= C
        out = out * (~aux_top).to(out.dtype)[:, None]
    elif mode != "columns" and mode != "argmax":
        raise ValueError(f"mode must be 'columns' or 'argmax', got {mode!r}")
    if has_bg:
        out = torch.cat([out, scores[:, C + K:]], dim=1)
    return out


def filter_aux_detections(results, num_target: int):
    """Drop detections whose label is auxiliary (``label >= C``) from an ``InstanceData``.

    For post-processing outputs of a head that does not remove the auxiliary columns itself.
    """
    keep = results.labels < num_target
    return results[keep]



# --------------------------------------------------------------------------------------------
# The bbox head that applies Algorithm 1 in training and drops auxiliary classes at inference.
# --------------------------------------------------------------------------------------------
from mmdet.models.layers import multiclass_nms  # noqa: E402
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402


@MODELS.register_module()
class AuxClassBBoxHead(Shared2FCBBoxHead):
    """``Shared2FCBBoxHead`` over C + K classes with Algorithm 1 and auxiliary-free outputs.

    Config: ``dict(type='AuxClassBBoxHead', num_target_classes=C, num_aux_classes=K, ...)`` plus the
    usual ``Shared2FCBBoxHead`` arguments (``num_classes`` is set to C + K; passing another value is
    an error). With K == 0 it behaves exactly like ``Shared2FCBBoxHead``.

    Training (``loss_and_target``): for every image's positive RoIs whose GT label is auxiliary
    (``C <= label < C + K``; the datasets give all of them the placeholder ``C``), the label is
    re-assigned by :func:`assign_aux_labels` from that RoI's ``cls_score`` (detached). The new labels
    are written into ``SamplingResult.pos_gt_labels`` in place, so a mask head / mask-IoU head /
    TCIS loss called afterwards with the same ``sampling_results`` (``StandardRoIHead.loss`` calls
    ``bbox_loss`` before ``mask_loss``) trains the same class channel. Class-specific box regression
    uses the new label too. ``aux_seed`` seeds a private CPU generator (``None``: torch's global RNG).

    Inference (``_predict_by_feat_single``): scores are computed over C + K + 1 classes, the auxiliary
    columns (and their class-specific boxes) are removed with :func:`drop_aux_classes`
    (``aux_drop_mode``: ``'columns'`` or ``'argmax'``), then mmdet's ``multiclass_nms``. Output
    labels are always in ``[0, C)``.
    """

    def __init__(self, num_target_classes: int, num_aux_classes: int = 0, aux_seed: Optional[int] = None,
                 aux_drop_mode: str = "columns", **kwargs) -> None:
        C, K = int(num_target_classes), int(num_aux_classes)
        if "num_classes" in kwargs and kwargs["num_classes"] != C + K:
            raise ValueError(f"num_classes={kwargs['num_classes']} but C + K = {C + K}")
        kwargs["num_classes"] = C + K
        super().__init__(**kwargs)
        self.num_target_classes, self.num_aux_classes = C, K
        self.aux_drop_mode = aux_drop_mode
        self._aux_generator = torch.Generator().manual_seed(aux_seed) if aux_seed is not None else None

    def reassign_aux_labels(self, cls_score: Tensor, sampling_results: list) -> None:
        """Algorithm 1 on the positives of each ``SamplingResult`` (in place).

        ``cls_score`` rows follow ``bbox2roi([res.priors for res in sampling_results])``: per image the
        positives, then the negatives, images concatenated (mmdet's ``StandardRoIHead`` order).
        """
        if self.num_aux_classes <= 0 or cls_score is None:
            return
        offset = 0
        for res in sampling_results:
            n_pos, n_neg = res.pos_priors.size(0), res.neg_priors.size(0)
            if n_pos:
                res.pos_gt_labels = assign_aux_labels(
                    res.pos_gt_labels, None, cls_score[offset:offset + n_pos], self.num_target_classes,
                    self.num_aux_classes, self._aux_generator)
            offset += n_pos + n_neg

    def loss_and_target(self, cls_score, bbox_pred, rois, sampling_results, rcnn_train_cfg, concat=True,
                        reduction_override=None) -> dict:
        self.reassign_aux_labels(cls_score, sampling_results)
        return super().loss_and_target(cls_score, bbox_pred, rois, sampling_results, rcnn_train_cfg,
                                       concat=concat, reduction_override=reduction_override)

    def _predict_by_feat_single(self, roi, cls_score, bbox_pred, img_meta, rescale=False, rcnn_test_cfg=None):
        if self.num_aux_classes <= 0 or roi.shape[0] == 0:
            out = super()._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta, rescale, rcnn_test_cfg)
            if roi.shape[0] == 0 and rcnn_test_cfg is None and self.num_aux_classes > 0:
                out.scores = out.scores[:, :self.num_target_classes + 1] if out.scores.dim() == 2 else out.scores
            return out
        # rcnn_test_cfg=None makes mmdet return raw decoded boxes (n, (C+K)*4 or 4) and scores (n, C+K+1)
        raw = super()._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta, rescale, None)
        C, K = self.num_target_classes, self.num_aux_classes
        scores = drop_aux_classes(raw.scores, C, K, self.aux_drop_mode)
        bboxes = raw.bboxes
        if not self.reg_class_agnostic:
            box_dim = bboxes.size(1) // (C + K)
            bboxes = bboxes[:, :C * box_dim]
        else:
            box_dim = bboxes.size(1)
        results = InstanceData()
        if rcnn_test_cfg is None:
            results.bboxes, results.scores = bboxes, scores
            return results
        det_bboxes, det_labels = multiclass_nms(bboxes, scores, rcnn_test_cfg.score_thr, rcnn_test_cfg.nms,
                                                rcnn_test_cfg.max_per_img, box_dim=box_dim)
        results.bboxes = det_bboxes[:, :-1]
        results.scores = det_bboxes[:, -1]
        results.labels = det_labels
        return results
