"""Online inference: per-frame detections (box, class, score, mask, embedding) of every video,
then association (visrc.tracking) and YouTube-VIS results (+ video AP when the split has GT).

::

    predictor = VideoPredictor.from_files('visrc/configs/toy_baseline.py', 'work/epoch_6.pth')
    video = predictor.predict_video(frame_paths, video_id=3)     # tracking.VideoPredictions
    summary = run_inference(config, checkpoint, data_root='data/toy', out='results.json')
    masks, embeds = predictor.predict_boxes(frame_paths[0], boxes, labels)   # given proposals

The model runs frame by frame, in time order (the online setting of the paper's section 2); a
frame's output is a :class:`visrc.tracking.predictions.FramePredictions` (boxes (N, 4) xyxy in
original-image pixels, scores (N,), 0-based labels (N,), embeddings (N, D), masks as compressed
RLE). A split's predictions are saved once in the tracking package's ``.npz`` so tracking,
BiTrack and the notebooks can re-run without the model.

Test-time scale (paper 3.5.5): ``VideoPredictor(..., scale=s)`` multiplies the test pipeline's
``Resize`` scale by ``s``; predictions still come back in original-image pixels. Given proposals
(paper 3.5.2: the ensemble's boxes fed back to each model): :meth:`VideoPredictor.predict_boxes`
runs the mask head and the track head on boxes the caller gives.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from visrc.models.checkpoint import load_weights, register_safe_globals


def load_config(config):
    """A config path (or a bare name of a file in ``visrc/configs``) or Config -> mmengine Config
    with visrc's and mmdet's modules registered."""
    from mmengine.config import Config
    from mmdet.utils import register_all_modules

    import visrc.models  # noqa: F401  registers VISQDTrack, VISRoIHead, hooks
    import visrc.data.msd  # noqa: F401  registers visrc's transforms (PseudoRefFrame, ...) for any config
    import visrc.data.sampling  # noqa: F401  registers FixedLengthTrackImgSampler (equal-iteration Fig. 2b)
    import visrc.data.video_dataset  # noqa: F401  registers YTVISRawDataset
    import visrc.models.heads  # noqa: F401  registers the weak-mask heads (pseudo-label fine-tuning overrides)

    register_all_modules(init_default_scope=True)
    if isinstance(config, Config):
        return config
    return Config.fromfile(resolve_config_path(config))


def resolve_config_path(config: str | os.PathLike) -> str:
    """``toy_baseline`` / ``toy_baseline.py`` -> ``.../visrc/configs/toy_baseline.py``; paths as is."""
    p = Path(config)
    if p.is_file():
        return str(p)
    name = p.name if p.suffix == '.py' else p.name + '.py'
    packaged = Path(__file__).resolve().parent.parent / 'configs' / name
    if packaged.is_file():
        return str(packaged)
    raise FileNotFoundError(f'{config}: no such config file (nor visrc/configs/{name})')


def config_classes(cfg) -> tuple[str, ...]:
    """The model's class names: ``cfg.classes``, else the train dataset's metainfo, else the
    YouTube-VIS class list of ``dataset_version``."""
    if cfg.get('classes'):
        return tuple(cfg.classes)
    ds = (cfg.get('train_dataloader') or {}).get('dataset', {})
    if ds.get('metainfo', {}).get('classes'):
        return tuple(ds['metainfo']['classes'])
    from mmdet.datasets import YouTubeVISDataset
    YouTubeVISDataset.set_dataset_classes(str(ds.get('dataset_version', '2021')))
    return tuple(YouTubeVISDataset.METAINFO['classes'])


def build_model(cfg, checkpoint: str | os.PathLike | None = None, device: str = 'cpu'):
    """Build ``cfg.model`` (eval mode) and load ``checkpoint`` with ``weights_only=True``."""
    from mmdet.registry import MODELS

    cfg = load_config(cfg)
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model.to(device).eval()


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
        packed = self.pipeline(dict(img_path=[str(path)], img_id=[frame_id], frame_id=[frame_id],
                                    video_id=[video_id], ori_video_length=[length], video_length=[1]))
        batch = self.model.data_preprocessor(
            dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
        return batch['inputs'][:, 0].contiguous(), batch['data_samples'][0][0]

    @torch.no_grad()
    def predict_frame(self, path: str, frame_id: int = 0, video_id: int = 0, length: int = 1):
        """One image file -> :class:`visrc.tracking.predictions.FramePredictions`."""
        from visrc.data.masks import encode_masks
        from visrc.tracking.predictions import FramePredictions

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
        """Frames in time order -> :class:`visrc.tracking.predictions.VideoPredictions`."""
        from visrc.tracking.predictions import VideoPredictions

        frames = [self.predict_frame(p, t, video_id, len(frame_paths)) for t, p in enumerate(frame_paths)]
        if height is None or width is None:
            from PIL import Image
            with Image.open(frame_paths[0]) as im:
                width, height = im.size
        return VideoPredictions(int(video_id), int(height), int(width), frames)


def label_to_category(classes: Sequence[str], categories: Sequence[dict]) -> dict[int, int]:
    """Model label (index into ``classes``) -> the annotation file's ``category_id``, by name.
    Classes without a category of that name (e.g. auxiliary classes) are left out."""
    by_name = {c['name']: c['id'] for c in categories}
    return {i: by_name[n] for i, n in enumerate(classes) if n in by_name}


def predict_split(predictor: VideoPredictor, data: dict, img_root: str | os.PathLike,
                  log: Callable[[str], None] | None = print) -> list:
    """Per-frame predictions of every video of a raw YouTube-VIS dict (``file_names`` relative to
    ``img_root``)."""
    out = []
    t0 = time.time()
    n_frames = 0
    for i, video in enumerate(data['videos']):
        paths = [os.path.join(img_root, f) for f in video['file_names']]
        out.append(predictor.predict_video(paths, video['id'], video['height'], video['width']))
        n_frames += len(paths)
        if log and (i + 1) % 10 == 0:
            log(f'[infer] {i + 1}/{len(data["videos"])} videos, {n_frames / (time.time() - t0):.2f} frames/s')
    return out


def run_inference(config, checkpoint, data_root: str | os.PathLike | None = None,
                  ann_file: str | None = None, img_prefix: str | None = None,
                  out: str | os.PathLike = 'results.json', predictions_out: str | os.PathLike | None = None,
                  tracking: dict | None = None, mode: str | None = None, device: str = 'cpu',
                  max_videos: int | None = None, evaluate: bool = True,
                  submission_zip: str | os.PathLike | None = None,
                  log: Callable[[str], None] | None = print, scale: float = 1.0) -> dict:
    """Predict a split, save its per-frame predictions (``.npz``), track, write YouTube-VIS
    results to ``out`` and, if the split has annotations, evaluate them.

    ``ann_file`` / ``img_prefix`` default to ``cfg.test_split`` (relative to ``data_root``, itself
    defaulting to ``cfg.data_root``). ``tracking``: a :func:`visrc.tracking.build_bitrack_config`
    dict (default ``cfg.tracking``); ``mode`` 'forward' (online baseline, default
    ``cfg.tracking_mode`` or 'forward') or 'bitrack'. ``submission_zip``: also write the CodaLab
    ``submission.zip``. ``scale``: test-time scale (see :class:`VideoPredictor`). Returns a summary
    dict (paths, timings, AP).
    """
    from visrc.data.ytvis import load_ytvis
    from visrc.evaluation.export import write_results, write_submission_zip
    from visrc.tracking import build_bitrack_config, results_for_split, run_tracking, save_predictions

    cfg = load_config(config)
    data_root = Path(data_root if data_root is not None else cfg.get('data_root', '.'))
    split = cfg.get('test_split') or {}
    ann_path = data_root / (ann_file or split.get('ann_file', 'valid/instances.json'))
    img_root = data_root / (img_prefix or split.get('img_prefix', 'valid/JPEGImages'))
    data = load_ytvis(ann_path)
    if max_videos is not None:
        keep = {v['id'] for v in data['videos'][:max_videos]}
        data = dict(data, videos=[v for v in data['videos'] if v['id'] in keep],
                    annotations=[a for a in data.get('annotations', []) if a['video_id'] in keep])

    predictor = VideoPredictor.from_files(cfg, checkpoint, device, scale)
    t0 = time.time()
    videos = predict_split(predictor, data, img_root, log)
    t_pred = time.time() - t0
    n_frames = sum(len(v) for v in videos)

    out = Path(out)
    predictions_out = Path(predictions_out) if predictions_out else out.with_suffix('.predictions.npz')
    save_predictions(videos, predictions_out)

    mode = mode or cfg.get('tracking_mode', 'forward')
    t1 = time.time()
    tracks = run_tracking(videos, build_bitrack_config(tracking or cfg.get('tracking')), mode=mode)
    l2c = label_to_category(config_classes(cfg), data['categories'])
    results = results_for_split(tracks, l2c, skip_unmapped=True)
    t_track = time.time() - t1
    write_results(results, out, gt=data)          # validated against the split's videos
    if submission_zip:
        write_submission_zip(results, submission_zip, gt=data)

    summary = dict(results=str(out), predictions=str(predictions_out), videos=len(videos),
                   frames=n_frames, tracks=len(results), mode=mode, scale=float(scale),
                   predict_seconds=round(t_pred, 2), frames_per_second=round(n_frames / max(t_pred, 1e-9), 3),
                   track_seconds=round(t_track, 3))
    if evaluate and data.get('annotations'):
        from visrc.evaluation.ytvis_eval import evaluate_ytvis
        ev = evaluate_ytvis(data, results).as_dict()
        summary['metrics'] = ev['metrics']
        summary['per_category'] = ev['per_category']
    if log:
        log(f'[infer] {summary}')
    return summary


register_safe_globals()
