"""The paper's baseline VIS model (section 2) as an mmdet 3.3 model.

Mask R-CNN (backbone + FPN with an extra P7: six levels P2..P7, RPN, RoIAlign, box head, mask head)
plus a quasi-dense track head (QDTrack's ``QuasiDenseTrackHead`` / ``QuasiDenseEmbedHead``, which
gives one embedding per box for association). Trained on a key frame t and one reference frame
sampled uniformly in [t - r, t + r] (mmdet's ``UniformRefFrameSample``); the detection and mask
losses use the key frame only (the paper: "either one of the frames is sufficient"), the track
loss uses both.

Registered classes (``@MODELS.register_module()``, imported with :mod:`visrc.models`):

* :class:`VISQDTrack` -- the whole model, a subclass of mmdet's ``QDTrack`` whose ``detector`` is
  a Mask R-CNN. Unlike ``QDTrack`` it keeps the class labels (mmdet's version is class-agnostic,
  built for MOT17 pedestrians), runs the key and reference frames through the backbone as one
  batch, and predicts per-frame detections *with embeddings* (``pred_instances.embeds``), leaving
  association to :mod:`visrc.tracking` (or to an mmdet tracker given as ``tracker=``).
* :class:`VISRoIHead` -- ``StandardRoIHead`` whose ``loss`` also receives the reference frame's
  features and samples. The extension point for TCIS (a subclass overriding
  :meth:`VISRoIHead.loss_ref`) and for RoI-level multi-task heads such as mask scoring.

Training-only auxiliary heads (semantic segmentation on P3, multi-label classification on C5, ...)
are given as ``aux_heads=dict(name=cfg, ...)``; each built head must implement
``loss(backbone_feats, neck_feats, data_samples) -> dict`` and is never run at inference.

Shapes: ``inputs`` is (N, T, 3, H, W) with T = 2 (key + reference) in training and T = 1 per
call at inference; FPN levels have strides 4, 8, 16, 32, 64, 128.
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from mmdet.models.mot import QDTrack
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures import TrackSampleList
from mmengine.structures import InstanceData
from torch import Tensor

FPN_STRIDES = (4, 8, 16, 32, 64, 128)   # P2..P7


@MODELS.register_module()
class VISRoIHead(StandardRoIHead):
    """Box + mask RoI head that also sees the reference frame in training.

    ``loss`` = mmdet's ``StandardRoIHead.loss`` on the key frame + :meth:`loss_ref`, which is
    empty here. TCIS (paper 3.3) subclasses this and overrides ``loss_ref`` (it needs the key and
    reference RoI features of the same instance and the reference GT mask); inference is
    unchanged, so such heads cost nothing at test time.
    """

    def loss(self, x, rpn_results_list, batch_data_samples, ref_x=None,
             ref_data_samples=None) -> dict:
        losses = super().loss(x, rpn_results_list, batch_data_samples)
        if ref_x is not None:
            losses.update(self.loss_ref(x, ref_x, batch_data_samples, ref_data_samples))
        return losses

    def loss_ref(self, x, ref_x, key_data_samples, ref_data_samples) -> dict:
        """Extra losses that use the reference frame (none in the baseline)."""
        return {}


@MODELS.register_module()
class VISQDTrack(QDTrack):
    """Mask R-CNN + FPN(P2..P7) + quasi-dense track head, trained on key/reference frame pairs.

    Args:
        detector: a ``MaskRCNN`` config (``data_preprocessor`` removed, it lives on this model).
        track_head: a ``QuasiDenseTrackHead`` config.
        tracker: optional mmdet tracker config (e.g. ``QuasiDenseTracker``). ``None`` (the visrc
            default): :meth:`predict` returns detections with embeddings and association happens
            in :mod:`visrc.tracking`.
        aux_heads: optional ``dict(name=cfg)`` of training-only heads, see the module docstring.
        embed_score_thr: at inference, embeddings are computed only for detections scoring at
            least this much (others get zero vectors); the track head is the one cost the model
            adds over plain Mask R-CNN, and low-score boxes are never associated anyway.
    """

    def __init__(self, detector: dict, track_head: dict, tracker: Optional[dict] = None,
                 aux_heads: Optional[dict] = None, embed_score_thr: float = 0.0,
                 freeze_detector: bool = False, data_preprocessor=None, init_cfg=None):
        super().__init__(detector=detector, track_head=track_head, tracker=tracker,
                         freeze_detector=freeze_detector, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if tracker is None:
            self.tracker = None
        self.aux_heads = torch.nn.ModuleDict(
            {k: MODELS.build(v) for k, v in (aux_heads or {}).items()})
        self.embed_score_thr = float(embed_score_thr)

    # ------------------------------------------------------------------ features
    def extract_feats(self, imgs: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """(N, 3, H, W) -> (backbone feats C2..C5, neck feats P2..P7)."""
        det = self.detector
        c = det.backbone(imgs)
        p = det.neck(c) if det.with_neck else c
        return tuple(c), tuple(p)

    # ------------------------------------------------------------------ training
    @staticmethod
    def split_pair(inputs: Tensor, data_samples: TrackSampleList):
        """(N, 2, C, H, W) + TrackDataSamples -> key imgs, ref imgs, key samples, ref samples."""
        assert inputs.dim() == 5 and inputs.size(1) == 2, \
            f'training expects (N, 2, C, H, W) key/reference pairs, got {tuple(inputs.shape)}'
        key_inds = [s.key_frames_inds[0] for s in data_samples]
        ref_inds = [s.ref_frames_inds[0] for s in data_samples]
        batch = torch.arange(len(inputs))
        key_imgs = inputs[batch, torch.tensor(key_inds)].contiguous()
        ref_imgs = inputs[batch, torch.tensor(ref_inds)].contiguous()
        key_samples = [s.get_key_frames()[0] for s in data_samples]
        ref_samples = [s.get_ref_frames()[0] for s in data_samples]
        return key_imgs, ref_imgs, key_samples, ref_samples

    def loss(self, inputs: Tensor, data_samples: TrackSampleList, **kwargs) -> dict:
        key_imgs, ref_imgs, key_samples, ref_samples = self.split_pair(inputs, data_samples)
        n = key_imgs.size(0)
        # one backbone pass over key and reference frames (same FLOPs, fewer kernel launches,
        # and BatchNorm statistics over both frames)
        c_all, p_all = self.extract_feats(torch.cat([key_imgs, ref_imgs]))
        c = tuple(f[:n] for f in c_all)
        x = tuple(f[:n] for f in p_all)
        ref_x = tuple(f[n:] for f in p_all)
        det = self.detector
        losses = {}

        # RPN: class-agnostic targets on a copy (the RoI head needs the real labels)
        proposal_cfg = det.train_cfg.get('rpn_proposal', det.test_cfg.rpn)
        rpn_samples = copy.deepcopy(key_samples)
        for s in rpn_samples:
            s.gt_instances.labels = torch.zeros_like(s.gt_instances.labels)
        rpn_losses, rpn_results = det.rpn_head.loss_and_predict(x, rpn_samples, proposal_cfg=proposal_cfg)
        for key in list(rpn_losses):
            if 'loss' in key and 'rpn' not in key:
                rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
        losses.update(rpn_losses)
        with torch.no_grad():
            ref_rpn_results = det.rpn_head.predict(ref_x, ref_samples)

        # box + mask (key frame), plus reference-frame extras of a VISRoIHead subclass
        if isinstance(det.roi_head, VISRoIHead):
            losses.update(det.roi_head.loss(x, rpn_results, key_samples, ref_x=ref_x,
                                            ref_data_samples=ref_samples))
        else:
            losses.update(det.roi_head.loss(x, rpn_results, key_samples))

        # quasi-dense embedding loss between key and reference proposals
        losses.update(self.track_head.loss(x, ref_x, rpn_results, ref_rpn_results, data_samples))

        for name, head in self.aux_heads.items():
            for k, v in head.loss(c, x, key_samples).items():
                losses[f'{k}_{name}' if k in losses else k] = v
        return losses

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_frame(self, img: Tensor, data_sample, rescale: bool = True) -> InstanceData:
        """One preprocessed frame (1, 3, H, W) -> InstanceData with ``bboxes`` (N, 4) xyxy in
        original-image pixels, ``scores`` (N,), ``labels`` (N,), ``masks`` (N, H0, W0) bool and
        ``embeds`` (N, D) float."""
        return self._predict_frame(img, data_sample, rescale)[0]

    @torch.no_grad()
    def _predict_frame(self, img, data_sample, rescale):
        det = self.detector
        _, x = self.extract_feats(img)
        rpn_results = det.rpn_head.predict(x, [data_sample])
        res = det.roi_head.predict(x, rpn_results, [data_sample], rescale=rescale)[0]
        bboxes = res.bboxes
        d = self.track_head.embed_head.fc_embed.out_features
        embeds = bboxes.new_zeros((bboxes.size(0), d))
        keep = res.scores >= self.embed_score_thr
        if keep.any():
            boxes_in = bboxes[keep]
            if rescale:   # back to the network's input scale, where the features live
                sf = boxes_in.new_tensor(data_sample.metainfo['scale_factor']).repeat((1, 2))
                boxes_in = boxes_in * sf
            embeds[keep] = self.track_head.predict(x, [boxes_in])
        res.embeds = embeds
        return res, x

    def predict(self, inputs: Tensor, data_samples: TrackSampleList, rescale: bool = True,
                **kwargs) -> TrackSampleList:
        """(1, T, C, H, W) -> the TrackDataSample with ``pred_instances`` (incl. ``embeds``) per
        frame, and ``pred_track_instances`` too when an mmdet ``tracker`` is configured."""
        assert inputs.dim() == 5 and inputs.size(0) == 1 and len(data_samples) == 1, \
            'inference takes one video clip at a time: (1, T, C, H, W)'
        track_sample = data_samples[0]
        if self.tracker is not None and track_sample[0].frame_id == 0:
            self.tracker.reset()
        for t in range(len(track_sample)):
            sample = track_sample[t]
            img = inputs[:, t].contiguous()
            sample.pred_instances, x = self._predict_frame(img, sample, rescale)
            if self.tracker is not None:
                sample.pred_track_instances = self.tracker.track(
                    model=self, img=img, feats=x, data_sample=sample, rescale=rescale, **kwargs)
        return [track_sample]
