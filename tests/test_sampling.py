from pathlib import Path

import numpy as np
import pytest

from visrc.data.sampling import subsample_frames, uniform_frame_indices
from visrc.data.ytvis import load_ytvis, validate_ytvis


def test_uniform_indices():
    assert uniform_frame_indices(10, 1).tolist() == [5]
    assert uniform_frame_indices(10, 2).tolist() == [2, 7]
    assert uniform_frame_indices(10, 5).tolist() == [1, 3, 5, 7, 9]
    assert uniform_frame_indices(4, 10).tolist() == [0, 1, 2, 3]
    assert uniform_frame_indices(7, None).tolist() == list(range(7))
    for length in range(1, 40):
        for n in range(1, length + 1):
            idx = uniform_frame_indices(length, n)
            assert len(idx) == n and np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < length
    with pytest.raises(ValueError, match=">= 1"):
        uniform_frame_indices(5, 0)


def test_subsample_keeps_frames_and_annotations_consistent(toy_small):
    data = load_ytvis(toy_small / "train" / "instances.json")
    for n in (1, 2, None):
        sub = subsample_frames(data, n)
        validate_ytvis(sub, source=f"subsample n={n}")
        for v, v0 in zip(sub["videos"], data["videos"]):
            idx = uniform_frame_indices(v0["length"], n)
            assert v["length"] == len(idx) and v["file_names"] == [v0["file_names"][i] for i in idx]
        orig = {a["id"]: a for a in data["annotations"]}
        for a in sub["annotations"]:
            idx = uniform_frame_indices(next(v["length"] for v in data["videos"] if v["id"] == a["video_id"]), n)
            assert a["bboxes"] == [orig[a["id"]]["bboxes"][i] for i in idx]
            assert any(b is not None for b in a["bboxes"])
    assert subsample_frames(data, None)["annotations"] == data["annotations"]


def _train_dataset(root, ann_path):
    from visrc.data.video_dataset import YTVISRawDataset

    raw = load_ytvis(ann_path)
    return YTVISRawDataset(ann_file=str(ann_path), data_prefix=dict(img_path=str(root / "train" / "JPEGImages")),
                           metainfo=dict(classes=tuple(c["name"] for c in raw["categories"])), pipeline=[],
                           test_mode=False, lazy_init=False)


def test_fixed_length_sampler_repeats_a_subsampled_split_evenly(toy_small, tmp_path):
    from visrc.data.sampling import FixedLengthTrackImgSampler
    from visrc.data.ytvis import write_ytvis

    data = load_ytvis(toy_small / "train" / "instances.json")
    total = sum(v["length"] for v in data["videos"])
    write_ytvis(subsample_frames(data, 1), tmp_path / "one.json")
    ds = _train_dataset(toy_small, tmp_path / "one.json")
    sampler = FixedLengthTrackImgSampler(ds, length=total, seed=3)
    epoch = list(sampler)
    assert len(sampler) == len(epoch) == total
    frames = [(v, f) for v in range(len(ds)) for f in range(ds.get_len_per_video(v))]
    assert all(f == 0 for _, f in frames)       # one frame per video left
    counts = {k: epoch.count(k) for k in frames}
    assert set(counts) == set(frames)
    assert max(counts.values()) - min(counts.values()) <= 1    # whole passes, then a partial one
    sampler.set_epoch(1)
    assert list(sampler) != epoch                              # a new shuffle per epoch
    again = FixedLengthTrackImgSampler(ds, length=total, seed=3)
    assert list(again) == epoch                                 # deterministic for (seed, epoch)
    with pytest.raises(ValueError, match="length must be >= 1"):
        FixedLengthTrackImgSampler(ds, length=0)


def test_frame_sampling_schedules_set_the_epoch_length(toy_small, tmp_path):
    from visrc.data.sampling import frame_sampling_options
    from visrc.models.config import load_config

    cfg = load_config("toy_baseline")
    total = sum(v["length"] for v in load_ytvis(toy_small / "train" / "instances.json")["videos"])
    epochs = frame_sampling_options(cfg, toy_small, 2, "equal_epochs", out_dir=tmp_path)
    iters = frame_sampling_options(cfg, toy_small, 2, "equal_iterations", out_dir=tmp_path)
    assert "train_dataloader.sampler" not in epochs
    assert iters["train_dataloader.sampler"] == dict(type="FixedLengthTrackImgSampler", length=total)
    ann = iters["train_dataloader.dataset.ann_file"]
    assert ann == epochs["train_dataloader.dataset.ann_file"] and Path(ann).parent == tmp_path
    sampled = load_ytvis(ann)
    assert all(len(v["file_names"]) == min(2, v["length"]) for v in sampled["videos"])
    assert [t["type"] for t in iters["train_dataloader.dataset.pipeline"]][-2] == "PseudoRefFrame"   # before packing
    assert frame_sampling_options(cfg, toy_small, None, "equal_iterations") is None
    with pytest.raises(ValueError, match="schedule must be one of"):
        frame_sampling_options(cfg, toy_small, 2, "equal_time")
