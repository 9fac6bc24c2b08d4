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
