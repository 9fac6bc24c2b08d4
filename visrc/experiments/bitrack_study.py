"""Notebook 06's inputs: per-frame predictions to track (a trained model's or noisy ground truth) and
the video that illustrates BiTrack best (paper Fig. 4)."""
from __future__ import annotations

from pathlib import Path

SOURCES = ("auto", "model", "gt_noisy")


def resolve_source(source: str, data_root, config: str = "toy_baseline", seed: int = 0,
                   train_epochs: int | None = None, init="pretrained") -> tuple[str, str]:
    """``(source, one-line reason)``: ``"auto"`` becomes ``"model"`` when ``config``'s run for
    ``seed`` from ``init`` (as notebook 03's rows) is trained and its predictions are cached (the
    main job makes them), else ``"gt_noisy"``, so an interactive session never waits for a
    training; other sources pass through."""
    from visrc.experiments.pretrain import cached_init
    from visrc.experiments.runs import run_dir

    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if source != "auto":
        return source, f"source={source!r} (as asked)"
    start = cached_init(config, Path(data_root), init)
    work = run_dir(config, Path(data_root), seed, train_epochs, init=start) if start is not False else None
    if work is not None and (work / "final_checkpoint.json").is_file() and any(work.glob("predict_forward/summary.json")):
        return "model", f"source='model': cached predictions of {config} (seed {seed}) in {work}"
    return "gt_noisy", (f"source='gt_noisy': no cached predictions of {config} (seed {seed}) yet; "
                        f"`make reproduce` trains it, or pass source='model' to train it now")


def explorer_predictions(source: str, data_root, split: str = "valid", config: str = "toy_baseline", seed: int = 0,
                         train_epochs: int | None = None, emb_noise: float = 1.0, label_flip: float = 0.1,
                         box_jitter: float = 0.1, miss_rate: float = 0.1, duplicate_rate: float = 0.5,
                         init="pretrained"):
    """(videos, class names) of ``split``: ``source="auto"`` -> :func:`resolve_source` (prints which it
    took); ``"model"`` -> the cached predictions of ``config``
    trained with ``seed`` from ``init`` (:func:`visrc.experiments.pretrain.resolve_init`; trained on
    first use); ``"gt_noisy"`` -> detections made from the ground
    truth (no model) with noisy embeddings, flipped labels, jittered boxes, missed detections and
    near-duplicates (:func:`visrc.data.predictions.predictions_from_gt`). The defaults are notebook
    06's: with them the merge threshold changes the merges of some toy videos, since the two passes
    sometimes follow a duplicate in one direction and the original in the other. The last five
    arguments apply to ``"gt_noisy"`` only."""
    from visrc.data.predictions import load_predictions, predictions_from_gt
    from visrc.data.ytvis import load_ytvis
    from visrc.experiments.pretrain import resolve_init
    from visrc.experiments.runs import predict_cached, train_cached
    from visrc.models.config import config_classes, load_config

    root = Path(data_root)
    if source == "auto":
        source, reason = resolve_source(source, root, config, seed, train_epochs, init)
        print(reason)
    elif source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if source == "model":
        checkpoint = train_cached(config, root, seed=seed, max_epochs=train_epochs,
                                  init=resolve_init(config, root, init))
        return load_predictions(predict_cached(config, checkpoint, root)["predictions"]), list(config_classes(load_config(config)))
    data = load_ytvis(root / split / "instances.json")
    videos = predictions_from_gt(data, emb_noise=emb_noise, label_flip=label_flip, seed=seed, box_jitter=box_jitter,
                                 miss_rate=miss_rate, duplicate_rate=duplicate_rate)
    return videos, [c["name"] for c in data["categories"]]


def fig4_ranking(result) -> tuple[int, int, int]:
    """The key :func:`choose_fig4_video` maximises for one :class:`visrc.tracking.BiTrackResult`:
    (frames only the backward pass followed, |forward - backward tracklets|, merges)."""
    from visrc.tracking.merge_events import backward_recovered_frames

    return backward_recovered_frames(result), abs(len(result.forward) - len(result.backward)), len(result.pairs)


def choose_fig4_video(results: dict) -> int:
    """The video id that shows best what the backward pass adds (``results``: video id ->
    :class:`visrc.tracking.BiTrackResult`): the most output frames only the backward pass followed
    (a merge that filled frames the forward tracklet lacks, or a backward-only track over frames no
    forward tracklet holds), then the most tracklets that only one direction found, then the most
    merges; ties go to the first video."""
    return max(results, key=lambda vid: fig4_ranking(results[vid]))
