"""Frame sampling for the data-redundancy study (paper section 3.1, Fig. 2b).

:func:`subsample_frames` keeps ``n`` uniformly spaced frames of every video of a YouTube-VIS dict
(all frames when ``n`` is None or >= the video's length), slicing ``file_names`` and every
annotation's per-frame lists consistently. A video left with one frame has no real reference
frame: training then warps the key frame into a pseudo reference (``visrc.data.msd``), as the
paper does.

:class:`FixedLengthTrackImgSampler` gives every epoch a fixed number of key frames, so runs on
fewer frames per video can get the same number of iterations as the all-frames run ("equal
iterations"), instead of the same number of passes over their smaller data ("equal epochs").
"""
from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Iterator

import numpy as np
from mmdet.datasets.samplers import TrackImgSampler
from mmdet.registry import DATA_SAMPLERS


def uniform_frame_indices(length: int, n: int | None) -> np.ndarray:
    """``n`` frame indices spread evenly over ``[0, length)``, centred in their segments.

    (n,) int64, strictly increasing. n=1 gives the middle frame; n >= length gives every frame.
    """
    if length <= 0:
        raise ValueError(f"video length must be positive, got {length}")
    if n is None or n >= length:
        return np.arange(length)
    if n < 1:
        raise ValueError(f"frames per video must be >= 1 (or None for all), got {n}")
    return np.floor((np.arange(n) + 0.5) * length / n).astype(np.int64)


def subsample_frames(data: dict, n: int | None) -> dict:
    """A copy of a YouTube-VIS dict with ``n`` uniformly sampled frames per video.

    Tracks with no annotated frame left are dropped (a track must appear somewhere in its video).
    """
    out = {k: copy.deepcopy(v) for k, v in data.items() if k not in ("videos", "annotations")}
    keep = {}
    out["videos"] = []
    for video in data["videos"]:
        idx = uniform_frame_indices(int(video["length"]), n)
        keep[video["id"]] = idx
        v = dict(video, file_names=[video["file_names"][i] for i in idx], length=len(idx))
        out["videos"].append(v)
    out["annotations"] = []
    for ann in data.get("annotations", []):
        idx = keep[ann["video_id"]]
        a = dict(ann, **{f: [ann[f][i] for i in idx] for f in ("segmentations", "bboxes", "areas")})
        if any(b is not None for b in a["bboxes"]):
            out["annotations"].append(a)
    return out


@DATA_SAMPLERS.register_module()
class FixedLengthTrackImgSampler(TrackImgSampler):
    """mmdet's ``TrackImgSampler`` (training) with ``length`` key frames per epoch over all ranks.

    The epoch is whole shuffled passes over every (video, frame) pair, cut at ``length``: a
    dataset of F frames is seen ``length / F`` times per epoch, each frame as evenly as possible.
    Config: ``sampler=dict(type='FixedLengthTrackImgSampler', length=720)``.
    """

    def __init__(self, dataset, length: int, seed: int | None = None) -> None:
        super().__init__(dataset, seed=seed)
        if self.test_mode:
            raise ValueError("FixedLengthTrackImgSampler is for training; the dataset is in test mode")
        if int(length) < 1:
            raise ValueError(f"FixedLengthTrackImgSampler: length must be >= 1, got {length}")
        if not self.indices:
            raise ValueError("FixedLengthTrackImgSampler: the dataset has no frames")
        self.length = int(length)
        self.num_samples = -(-self.length // self.world_size)
        self.total_size = self.num_samples * self.world_size

    def __iter__(self) -> Iterator:
        rng = random.Random(self.epoch + self.seed)
        indices = []
        while len(indices) < self.total_size:
            indices += rng.sample(self.indices, len(self.indices))
        return iter(indices[:self.total_size][self.rank::self.world_size])


FRAME_SAMPLING_SCHEDULES = ("equal_iterations", "equal_epochs")


def frame_sampling_options(cfg, data_root: str | Path, n: int | None, schedule: str = "equal_epochs",
                           out_dir: str | Path | None = None, warp_every_reference: bool = False) -> dict | None:
    """``cfg_options`` that train a loaded config ``cfg`` on ``n`` uniformly sampled frames per video
    (paper 3.1).

    Writes the subsampled annotation file under ``out_dir`` (default ``runs/data/frame_sampling``) and adds ``PseudoRefFrame`` before
    packing, so a video left with one frame (its key frame sampled as its own reference) gets an
    affine-warped pseudo reference frame, as in the paper. ``n=None``: all frames, no override.
    ``schedule="equal_iterations"``: every epoch takes as many key frames as the full split has
    (``FixedLengthTrackImgSampler``), so the run gets the all-frames run's iterations and LR
    schedule; ``"equal_epochs"``: an epoch is one pass over the sampled frames (fewer iterations).
    ``warp_every_reference``: every key frame's reference is its own affine-warped copy
    (``PseudoRefFrame(from_key=True)``, the paper's "for each key-frame"), not only a one-frame
    video's; the sampled real frames then never serve as references.
    """
    if schedule not in FRAME_SAMPLING_SCHEDULES:
        raise ValueError(f"frame-sampling schedule must be one of {FRAME_SAMPLING_SCHEDULES}, got {schedule!r}")
    if n is None:
        return None
    from visrc.data.ytvis import load_ytvis, write_ytvis
    from visrc.paths import runs_dir

    ds = cfg.train_dataloader.dataset
    src = Path(data_root) / ds.ann_file
    ann = Path(out_dir or runs_dir() / "data" / "frame_sampling") / f"{Path(data_root).name}_{Path(ds.ann_file).stem}_{n}frames.json"
    full = load_ytvis(src) if schedule == "equal_iterations" or not ann.is_file() else None
    if not ann.is_file():
        write_ytvis(subsample_frames(full, n), ann)
    pipeline = [t.to_dict() if hasattr(t, "to_dict") else dict(t) for t in ds.pipeline]
    pipeline.insert(len(pipeline) - 1, dict(type="PseudoRefFrame", from_key=warp_every_reference))
    options = {"train_dataloader.dataset.ann_file": str(ann), "train_dataloader.dataset.pipeline": pipeline}
    if schedule == "equal_iterations":
        if cfg.train_dataloader.sampler.get("type") != "TrackImgSampler":
            raise ValueError(f"{cfg.filename}: the equal_iterations schedule needs train_dataloader.sampler TrackImgSampler, "
                             f"got {cfg.train_dataloader.sampler.get('type')}")
        options["train_dataloader.sampler"] = dict(type="FixedLengthTrackImgSampler",
                                                   length=sum(int(v["length"]) for v in full["videos"]))
    return options
