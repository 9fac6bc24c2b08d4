"""Helpers shared by several test modules (``from helpers import ...``: pytest puts tests/ on
``sys.path`` because tests/ holds conftest.py and is not a package)."""
from __future__ import annotations

import numpy as np

TINY = (96, 64)   # (w, h) network input for tests


def train_datasets(cfg) -> list:
    """The train dataset configs: the ConcatDataset's members (the MSD config) or the one dataset."""
    ds = cfg.train_dataloader.dataset
    return ds.get('datasets') or [ds]


def tiny_cfg(config, data_root=None, scale=TINY):
    """``prepare_config(config, data_root)`` with every ``Resize`` of the train and test pipelines set
    to ``scale`` (w, h): the real model at a size a CPU trains in seconds."""
    from visrc.models.train_cli import prepare_config

    cfg = prepare_config(config, data_root=data_root)
    for pipe in [d.pipeline for d in train_datasets(cfg)] + [cfg.test_pipeline]:
        for t in pipe:
            for tt in t.get('transforms', []):
                if tt['type'] == 'Resize':
                    tt['scale'] = scale
    return cfg


def tracking_tiny_cfg():
    """:func:`tiny_cfg` of an untrained toy_baseline that keeps a few low-score detections per frame
    and tracks them all (so an untrained model yields tracks)."""
    cfg = tiny_cfg("toy_baseline")
    cfg.model.detector.test_cfg.rcnn.update(score_thr=0.0, max_per_img=5)
    cfg.model.embed_score_thr = 0.0
    cfg.tracking = dict(tracker=dict(init_score_thr=0.0, obj_score_thr=0.0))
    return cfg


def video_batch(cfg, n=2):
    """(train dataset, a collated batch of its first ``n`` (key, reference) video pairs)."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    ds = DATASETS.build(cfg.train_dataloader.dataset)
    return ds, pseudo_collate([ds[(i, 1)] for i in range(n)])


def _value(v, t):
    return v(t) if callable(v) else v


def make_video(objects, num_frames, dim=8, video_id=1, height=100, width=100, masks=False):
    """A hand-made video: each object is a dict with ``frames`` (iterable), ``box`` (xyxy), ``score``,
    ``label``, ``emb`` (index of a one-hot embedding); each may be a function of the frame index.
    Detections of a frame are in object order."""
    from visrc.data.masks import encode_mask
    from visrc.data.predictions import FramePredictions, VideoPredictions

    frames = []
    for t in range(num_frames):
        present = [o for o in objects if t in o["frames"]]
        boxes = [_value(o["box"], t) for o in present]
        emb = np.zeros((len(present), dim))
        for i, o in enumerate(present):
            emb[i, _value(o.get("emb", 0), t)] = 1.0
        rles = None
        if masks:
            rles = []
            for x0, y0, x1, y1 in boxes:
                m = np.zeros((height, width), np.uint8)
                m[int(y0):int(y1), int(x0):int(x1)] = 1
                rles.append(encode_mask(m))
        frames.append(FramePredictions(np.array(boxes).reshape(-1, 4), [_value(o.get("score", 0.9), t) for o in present],
                                       [_value(o.get("label", 0), t) for o in present], emb, rles))
    return VideoPredictions(video_id, height, width, frames)
