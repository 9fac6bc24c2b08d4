"""Online inference: per-frame detections (box, class, score, mask, embedding) of a video.

::

    predictor = VideoPredictor.from_files('toy_baseline', 'work/epoch_3.pth')
    video = predictor.predict_video(frame_paths, video_id=3)     # data.predictions.VideoPredictions
    masks, embeds = predictor.predict_boxes(frame_paths[0], boxes, labels)   # given proposals

The model runs frame by frame, in time order (the online setting of the paper's section 2); a
frame's output is a :class:`visrc.data.predictions.FramePredictions` (boxes (N, 4) xyxy in
original-image pixels, scores (N,), 0-based labels (N,), embeddings (N, D), masks as compressed
RLE). :mod:`visrc.pipeline` runs it over a split, saves the predictions (``.npz``), tracks them
and evaluates.

Test-time scale (paper 3.5.5): ``VideoPredictor(..., scale=s)`` multiplies the test pipeline's
``Resize`` scale by ``s``; predictions still come back in original-image pixels. Given proposals
(paper 3.5.2: the ensemble's boxes fed back to each model): :meth:`VideoPredictor.predict_boxes`
runs the mask head and the track head on boxes the caller gives.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from visrc.models.config import build_model, load_config


def _check_image(path, error: Exception) -> None:
    """Re-raise a failed frame load as one message naming the frame (``FileNotFoundError`` when it is
    missing, :class:`visrc.data.frames.BadFrameError` when it does not decode); return for a good
    frame (the caller re-raises ``error`` as is: the model's, not the frame's)."""
    from visrc.data.frames import check_frame

    try:
        check_frame(path)
    except (FileNotFoundError, ValueError) as bad:
        raise bad.with_traceback(None) from error


def scale_test_pipeline(pipeline: Sequence[dict], scale: float) -> list[dict]:
    """A copy of ``pipeline`` whose ``Resize`` transforms (also inside ``TransformBroadcaster``)
    have their ``scale`` (w, h) multiplied by ``scale``, rounded to whole pixels."""
    import copy

    if not scale > 0:
        raise ValueError(f'test-time scale must be > 0, got {scale}')
    found = []

    def visit(t):
        t = {k: (list(map(visit, v)) if k == 'transforms' else copy.deepcopy(v)) for k, v in dict(t).items()}
        if t.get('type') == 'Resize' and scale != 1.0:
            if t.get('scale') is None:
                raise ValueError(f'test pipeline Resize without a fixed scale: {t}; cannot apply test-time scale')
            w, h = t['scale'] if not isinstance(t['scale'], int) else (t['scale'], t['scale'])
            t['scale'] = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
        found.append(t.get('type'))
        return t

    out = [visit(t) for t in pipeline]
    if scale != 1.0 and 'Resize' not in found:
        raise ValueError('test pipeline has no Resize transform; cannot apply test-time scale')
    return out


class VideoPredictor:
    """Runs a :class:`~visrc.models.vis_model.VISQDTrack` over a video's frames, one at a time.

    ``scale``: test-time scale factor on the test pipeline's ``Resize`` (outputs stay in
    original-image pixels).
    """

    def __init__(self, model, cfg, device: str = 'cpu', scale: float = 1.0):
        from mmengine.dataset import Compose

        self.model = model.to(device).eval()
        self.cfg = cfg
        self.device = device
        self.scale = float(scale)
        self.pipeline = Compose(scale_test_pipeline(cfg.test_pipeline, self.scale))
        self._feats = None   # (path, preprocessed sample, FPN features) of the last frame seen

    @classmethod
    def from_files(cls, config, checkpoint, device: str = 'cpu', scale: float = 1.0) -> 'VideoPredictor':
        cfg = load_config(config)
        return cls(build_model(cfg, checkpoint, device), cfg, device, scale)

    def _prepare(self, path: str, frame_id: int, video_id: int, length: int):
        try:
            packed = self.pipeline(dict(img_path=[str(path)], img_id=[frame_id], frame_id=[frame_id],
                                        video_id=[video_id], ori_video_length=[length], video_length=[1]))
        except Exception as e:
            _check_image(path, e)
            raise
        batch = self.model.data_preprocessor(
            dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
        return batch['inputs'][:, 0].contiguous(), batch['data_samples'][0][0]

    @torch.no_grad()
    def predict_frame(self, path: str, frame_id: int = 0, video_id: int = 0, length: int = 1):
        """One image file -> :class:`visrc.data.predictions.FramePredictions`."""
        from visrc.data.masks import encode_masks
        from visrc.data.predictions import FramePredictions

        img, sample = self._prepare(path, frame_id, video_id, length)
        res, x = self.model._predict_frame(img, sample, rescale=True)
        self._feats = (str(path), sample, x)   # predict_boxes on this frame reuses them
        masks = res.masks.cpu().numpy().astype(np.uint8) if 'masks' in res else None
        return FramePredictions(
            boxes=res.bboxes.cpu().numpy(), scores=res.scores.cpu().numpy(),
            labels=res.labels.cpu().numpy(), embeddings=res.embeds.cpu().numpy(),
            masks=encode_masks(masks) if masks is not None else None)

    @torch.no_grad()
    def predict_boxes(self, path: str, boxes, labels) -> tuple[np.ndarray, np.ndarray]:
        """The model's mask head and track head on given proposals of one image file.

        boxes (K, 4) xyxy in original-image pixels, labels (K,) 0-based (the mask head is
        class-specific) -> (masks (K, H, W) float32 probabilities in [0, 1], quantised to 1/255 by
        mmdet's paste, in original-image pixels; embeddings (K, D) float32). The backbone features
        of the last frame seen (by this method or :meth:`predict_frame`) are reused.
        """
        from mmengine.config import ConfigDict
        from mmengine.structures import InstanceData

        boxes = torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4), device=self.device)
        labels = torch.as_tensor(np.asarray(labels, np.int64).reshape(-1), device=self.device)
        if len(labels) != len(boxes):
            raise ValueError(f'predict_boxes: {len(boxes)} boxes but {len(labels)} labels')
        if self._feats is None or self._feats[0] != str(path):
            img, sample = self._prepare(path, 0, 0, 1)
            _, x = self.model.extract_feats(img)
            self._feats = (str(path), sample, x)
        _, sample, x = self._feats
        meta = sample.metainfo
        h, w = meta['ori_shape'][:2]
        d = self.model.track_head.embed_head.fc_embed.out_features
        if len(boxes) == 0:
            return np.zeros((0, h, w), np.float32), np.zeros((0, d), np.float32)
        # boxes at the network's input scale, where the features live
        boxes_in = boxes * boxes.new_tensor(meta['scale_factor']).repeat((1, 2))
        roi_head = self.model.detector.roi_head
        from mmdet.structures.bbox import bbox2roi
        mask_preds = roi_head._mask_forward(x, bbox2roi([boxes_in]))['mask_preds']
        test_cfg = ConfigDict(dict(roi_head.test_cfg, mask_thr_binary=-1))   # < 0: soft masks (uint8 * 255)
        res = roi_head.mask_head.predict_by_feat(
            (mask_preds,), [InstanceData(bboxes=boxes_in.clone(), labels=labels)], [meta], test_cfg, rescale=True)[0]
        masks = res.masks.float().div_(255.0).cpu().numpy()
        embeds = self.model.track_head.predict(x, [boxes_in]).cpu().numpy().astype(np.float32)
        return masks, embeds

    def predict_video(self, frame_paths: Sequence[str], video_id: int = 0,
                      height: int | None = None, width: int | None = None):
        """Frames in time order -> :class:`visrc.data.predictions.VideoPredictions`."""
        from visrc.data.predictions import VideoPredictions

        frames = [self.predict_frame(p, t, video_id, len(frame_paths)) for t, p in enumerate(frame_paths)]
        if height is None or width is None:
            from PIL import Image
            with Image.open(frame_paths[0]) as im:
                width, height = im.size
        return VideoPredictions(int(video_id), int(height), int(width), frames)
