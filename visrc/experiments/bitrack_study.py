"""Notebook 06's inputs: per-frame predictions to track (a trained model's or noisy ground truth) and
the video that illustrates BiTrack best (paper Fig. 4)."""
from __future__ import annotations

from pathlib import Path

SOURCES = ("model", "gt_noisy")


def explorer_predictions(source: str, data_root, split: str = "valid", config: str = "toy_baseline", seed: int = 0,
                         train_epochs: int | None = None, emb_noise: float = 1.0, label_flip: float = 0.1):
    """(videos, class names) of ``split``: ``source="model"`` -> the cached predictions of ``config``
    trained with ``seed`` (trained on first use); ``"gt_noisy"`` -> detections made from the ground
    truth with noisy embeddings and flipped labels (no model)."""
    from visrc.data.predictions import load_predictions, predictions_from_gt
    from visrc.data.ytvis import load_ytvis
    from visrc.experiments.runs import predict_cached, train_cached
    from visrc.models.config import config_classes, load_config

    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    root = Path(data_root)
    if source == "model":
        checkpoint = train_cached(config, root, seed=seed, max_epochs=train_epochs)
        return load_predictions(predict_cached(config, checkpoint, root)["predictions"]), list(config_classes(load_config(config)))
    data = load_ytvis(root / split / "instances.json")
    videos = predictions_from_gt(data, emb_noise=emb_noise, label_flip=label_flip, seed=seed)
    return videos, [c["name"] for c in data["categories"]]


def choose_fig4_video(results: dict) -> int:
    """The video id whose BiTrack result shows the most tracklets that only one direction found, then
    the most merges (``results``: video id -> :class:`visrc.tracking.BiTrackResult`)."""
    return max(results, key=lambda vid: (abs(len(results[vid].forward) - len(results[vid].backward)),
                                         len(results[vid].pairs)))
