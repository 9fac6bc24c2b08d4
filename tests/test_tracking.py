"""Predictions file, the association pass (either direction) and label voting, on hand-made cases."""
import json
import zipfile

import numpy as np
import pytest

from helpers import make_video
from visrc.data.masks import decode_rle, encode_mask
from visrc.tracking import (QDTRACK, FramePredictions, PredictionsFormatError, Tracker, TrackerConfig, VideoPredictions,
                            box_iou, build_tracker, load_predictions, save_predictions, synthetic_video, associate_video,
                            vote_label, vote_labels)


# ------------------------------------------------------------------------------- predictions file

def _assert_same(a: list[VideoPredictions], b: list[VideoPredictions]):
    assert [v.video_id for v in a] == [v.video_id for v in b]
    for va, vb in zip(a, b):
        assert (va.height, va.width, len(va)) == (vb.height, vb.width, len(vb))
        for fa, fb in zip(va.frames, vb.frames):
            np.testing.assert_array_equal(fa.boxes, fb.boxes)
            np.testing.assert_array_equal(fa.scores, fb.scores)
            np.testing.assert_array_equal(fa.labels, fb.labels)
            np.testing.assert_array_equal(fa.embeddings, fb.embeddings)
            assert fa.embeddings.shape == fb.embeddings.shape
            assert fa.masks == fb.masks


def _split():
    with_masks = make_video([{"frames": range(3), "box": (10, 10, 30, 40), "emb": 1, "label": 2},
                             {"frames": range(1, 3), "box": (50, 50, 90, 70), "emb": 2, "score": 0.4}], 3, video_id=7, masks=True)
    with_masks.frames.insert(1, FramePredictions.empty(8, with_masks=True))  # an empty frame in the middle
    boxes_only = make_video([{"frames": [0], "box": (0, 0, 5, 5)}], 2, video_id=3, height=40, width=60)
    no_frames = VideoPredictions(11, 20, 30, [])
    return [with_masks, boxes_only, no_frames]


@pytest.mark.parametrize("compress", [True, False])
def test_predictions_roundtrip(tmp_path, compress):
    videos = _split()
    path = save_predictions(videos, tmp_path / "valid.npz", compress=compress)
    back = load_predictions(path)
    _assert_same(videos, back)
    assert back[0].has_masks and not back[1].has_masks and len(back[2]) == 0
    assert decode_rle(back[0].frames[0].masks[0]).sum() == 20 * 30
    with np.load(path, allow_pickle=False) as z:  # the file is pickle-free
        assert z["det_video"].dtype == np.int64 and z["mask_bytes"].dtype == np.uint8
    _assert_same([videos[1]], load_predictions(path, video_ids=[3]))
    with pytest.raises(KeyError, match=r"\[99\]"):
        load_predictions(path, video_ids=[3, 99])


def test_predictions_empty_split_and_no_tmp_left(tmp_path):
    path = save_predictions([], tmp_path / "empty.npz")
    assert load_predictions(path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.npz"]


def _rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    np.savez(dst, **arrays)
    return dst


# _split() stores 6 detections: det_video [0, 0, 0, 0, 0, 1], det_frame [0, 2, 2, 3, 3, 0]
@pytest.mark.parametrize("change, field, msg", [
    ({"scores": None}, "scores", "missing"),
    ({"format_version": np.int64(99)}, "format_version", "is 99"),
    ({"labels": np.zeros(6, np.float32)}, "labels", "not integer"),
    ({"boxes": np.zeros((6, 3), np.float32)}, "boxes", "shape"),
    ({"scores": np.zeros(5, np.float32)}, "scores", "shape"),
    ({"det_frame": np.array([0, 2, 2, 3, 4, 0])}, "det_frame", "outside"),
    ({"det_frame": np.array([0, 3, 3, 2, 2, 0])}, "det_frame", "not sorted"),
    ({"det_video": np.array([0, 0, 0, 0, 0, 5])}, "det_video", "out of range"),
    ({"mask_offsets": np.zeros(7, np.int64)}, "mask_offsets", "end at"),
    ({"heights": np.array([100, 0, 20])}, "heights", "positive"),
    ({"video_ids": np.array([7, 7, 11])}, "video_ids", "duplicate"),
    ({"boxes": np.full((6, 4), np.nan, np.float32)}, "boxes", "not finite"),
])
def test_predictions_validation_names_file_and_field(tmp_path, change, field, msg):
    src = save_predictions(_split(), tmp_path / "ok.npz")
    bad = _rewrite(src, tmp_path / "bad.npz", **change)
    with pytest.raises(PredictionsFormatError, match=rf"bad\.npz: field '[^']*{field}[^']*': .*{msg}"):
        load_predictions(bad)


def test_predictions_refuses_pickle_and_garbage(tmp_path):
    obj = tmp_path / "obj.npz"
    np.savez(obj, boxes=np.array([{"a": 1}], dtype=object))
    with pytest.raises(PredictionsFormatError, match="obj.npz"):
        load_predictions(obj)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(PredictionsFormatError, match="junk.npz"):
        load_predictions(junk)
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as z:
        z.writestr("x.txt", "hello")
    with pytest.raises(PredictionsFormatError, match="z.npz"):
        load_predictions(tmp_path / "z.npz")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_predictions(tmp_path / "nope.npz")


def test_predictions_save_validates(tmp_path):
    v = _split()[0]
    v.frames[2].masks[0] = {"size": [5, 5], "counts": v.frames[2].masks[0]["counts"]}
    with pytest.raises(PredictionsFormatError, match=r"out\.npz: video 7: frame 2: field 'masks'\[0\]"):
        save_predictions([v], tmp_path / "out.npz")
    mixed = _split()[0]
    mixed.frames[0] = mixed.frames[0].select([0])
    mixed.frames[0].masks = None
    with pytest.raises(PredictionsFormatError, match="every frame or in none"):
        save_predictions([mixed], tmp_path / "out.npz")
    with pytest.raises(PredictionsFormatError, match="'embeddings'"):
        FramePredictions(np.zeros((2, 4)), np.zeros(2), np.zeros(2), np.zeros((3, 8)))
    assert not (tmp_path / "out.npz").exists()


def test_frame_select():
    f = make_video([{"frames": [0], "box": (0, 0, 1, 1), "label": 1}, {"frames": [0], "box": (0, 0, 2, 2), "label": 2}], 1).frames[0]
    assert f.select([1]).labels.tolist() == [2]
    assert f.select(np.array([False, True])).labels.tolist() == [2]
    assert len(f.select([])) == 0 and f.select([]).embeddings.shape == (0, 8)


# ------------------------------------------------------------------------------------- association

def test_box_iou():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[0, 0, 10, 20], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(box_iou(a, b), [[0.5, 0, 1], [0, 0, 0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_tracker_follows_objects_and_ignores_weak_detections():
    objs = [{"frames": range(5), "box": lambda t: (10 + t, 10, 30 + t, 30), "emb": 0},
            {"frames": range(5), "box": (60, 60, 90, 90), "emb": 1},
            {"frames": range(5), "box": (0, 60, 20, 90), "emb": 2, "score": 0.1}]  # below obj_score_thr
    video = make_video(objs, 5)
    ids = associate_video(video)
    assert all(i.tolist() == [0, 1, -1] for i in ids)
    back = associate_video(video, reverse=True)
    assert all(i.tolist() == [0, 1, -1] for i in back)


def test_detection_order_does_not_matter_and_reverse_is_reversed_feed():
    video = synthetic_video(num_frames=12, num_objects=6, dim=16, seed=3)
    tr = Tracker()
    manual = [tr.update(f) for f in reversed(video.frames)][::-1]
    for a, b in zip(manual, associate_video(video, reverse=True)):
        np.testing.assert_array_equal(a, b)


def test_init_vs_obj_score_threshold_makes_directions_differ():
    # weak (0.35) in frames 0-2, confident afterwards: only a confident detection starts a track
    video = make_video([{"frames": range(6), "box": (10, 10, 40, 40), "score": lambda t: 0.35 if t < 3 else 0.9}], 6)
    fwd = [int(i[0]) for i in associate_video(video)]
    bwd = [int(i[0]) for i in associate_video(video, reverse=True)]
    assert fwd == [-1, -1, -1, 0, 0, 0]
    assert bwd == [0] * 6


def test_max_age_boundary():
    # the object vanishes for `gap` frames; it is re-matched iff gap <= max_age
    for gap, same in ((3, True), (4, False)):
        frames = [t for t in range(10) if not 2 <= t < 2 + gap]
        video = make_video([{"frames": frames, "box": (10, 10, 40, 40)}], 10)
        ids = associate_video(video, TrackerConfig(max_age=3))
        seen = {int(i[0]) for i in ids if len(i)}
        assert (seen == {0}) is same, (gap, seen)


def test_embedding_threshold_and_class_gate():
    # same place, orthogonal embedding: a new object, not the old one
    video = make_video([{"frames": range(4), "box": (10, 10, 40, 40), "emb": lambda t: 0 if t < 2 else 1}], 4)
    assert [int(i[0]) for i in associate_video(video)] == [0, 0, 1, 1]
    # same embedding, label flips: linked by default (label consistency relaxed), split when class_aware
    video = make_video([{"frames": range(4), "box": (10, 10, 40, 40), "label": lambda t: t % 2}], 4)
    assert [int(i[0]) for i in associate_video(video)] == [0, 0, 0, 0]
    assert [int(i[0]) for i in associate_video(video, TrackerConfig(class_aware=True))] == [0, 1, 0, 1]


def test_iou_gate():
    video = make_video([{"frames": range(3), "box": lambda t: (10, 10, 30, 30) if t < 2 else (60, 60, 80, 80)}], 3)
    assert [int(i[0]) for i in associate_video(video)] == [0, 0, 0]
    assert [int(i[0]) for i in associate_video(video, TrackerConfig(iou_thr=0.1))] == [0, 0, 1]


def test_greedy_vs_hungarian():
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    frame = FramePredictions(np.zeros((2, 4)), [0.9, 0.8], [0, 0], np.eye(2))
    got = {}
    for matcher in ("greedy", "hungarian"):
        tr = Tracker(TrackerConfig(matcher=matcher, init_score_thr=0.0))
        tr.update(frame)  # tracks 0, 1
        tr.similarity = lambda *a: sim.copy()
        got[matcher] = tr.update(frame).tolist()
    assert got["greedy"] == [0, 2]  # det 0 (higher score) takes track 0; det 1's 0.1 is below match_thr
    assert got["hungarian"] == [1, 0]


def test_bisoftmax_similarity():
    tr = Tracker(TrackerConfig(similarity="bisoftmax"))
    video = make_video([{"frames": range(3), "box": (0, 0, 10, 10), "emb": 0},
                        {"frames": range(3), "box": (50, 50, 60, 60), "emb": 1}], 3)
    ids = [tr.update(f).tolist() for f in video.frames]
    assert ids == [[0, 1]] * 3
    s = tr.similarity(video.frames[0].embeddings.astype(float), video.frames[0].boxes, video.frames[0].labels)
    assert np.all((s >= 0) & (s <= 1)) and s[0, 0] > s[0, 1]


def test_backdrops_refuse_a_new_object_that_bisoftmax_alone_would_match():
    # frame 0: object A (tracked) and a weak untracked detection X; frame 1: A has left and a new
    # object B appears, its embedding like X's. Alone, bi-softmax gives B -> A a similarity of 1.
    frame0 = FramePredictions([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.4], [0, 0], [[4.0, 0.0], [0.0, 4.0]])
    frame1 = FramePredictions([[50, 50, 60, 60]], [0.9], [0], [[0.5, 4.0]])
    plain = Tracker(TrackerConfig(similarity="bisoftmax"))
    assert [plain.update(f).tolist() for f in (frame0, frame1)] == [[0, -1], [0]]
    qd = Tracker(QDTRACK)
    assert [qd.update(f).tolist() for f in (frame0, frame1)] == [[0, -1], [1]]  # X's backdrop wins: new id
    assert len(qd.backdrops) == 1 and qd.backdrops[0].shape == (0, 2)        # frame 1 left none untracked


def test_backdrops_are_nms_thinned_kept_for_backdrop_frames_and_need_bisoftmax():
    tr = Tracker(TrackerConfig(similarity="bisoftmax", backdrop_frames=2, backdrop_nms_iou=0.3, init_score_thr=0.95))
    weak = FramePredictions([[0, 0, 10, 10], [1, 0, 11, 10], [40, 40, 50, 50]], [0.5, 0.6, 0.4], [0, 0, 0], np.eye(3))
    assert tr.update(weak).tolist() == [-1, -1, -1]
    np.testing.assert_array_equal(tr.backdrops[0], np.eye(3)[[1, 2]])  # overlapping lower-score box dropped
    # a duplicate of a *tracked* detection is no backdrop either (it would be that track's negative)
    qd = Tracker(QDTRACK)
    dup = FramePredictions([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.4], [0, 0], [[1.0, 0.0], [0.0, 1.0]])
    assert qd.update(dup).tolist() == [0, -1] and qd.backdrops[0].shape == (0, 2)
    for _ in range(3):
        tr.update(FramePredictions.empty(3))
    assert len(tr.backdrops) == 2 and all(len(b) == 0 for b in tr.backdrops)
    assert (QDTRACK.similarity, QDTRACK.backdrop_frames, QDTRACK.momentum) == ("bisoftmax", 1, 0.8)
    with pytest.raises(ValueError, match="backdrop_frames"):
        TrackerConfig(backdrop_frames=1)  # cosine has no softmax for backdrops to enter
    with pytest.raises(ValueError, match="backdrop_frames"):
        TrackerConfig(similarity="bisoftmax", backdrop_frames=-1)


def test_tracker_empty_frames_and_config_errors():
    tr = build_tracker({"max_age": 1})
    assert tr.update(FramePredictions.empty(4)).shape == (0,)
    f = FramePredictions([[0, 0, 5, 5]], [0.9], [0], np.ones((1, 4)))
    assert tr.update(f).tolist() == [0]
    tr.update(FramePredictions.empty(4))
    assert len(tr) == 1  # missed 1 frame: may still be matched
    tr.update(FramePredictions.empty(4))
    assert len(tr) == 0  # missed 2 > max_age frames: gone
    assert tr.update(f).tolist() == [1]
    tr.reset()
    assert len(tr) == 0 and tr.update(f).tolist() == [0]
    with pytest.raises(ValueError, match="similarity"):
        TrackerConfig(similarity="dot")
    with pytest.raises(ValueError, match="matcher"):
        TrackerConfig(matcher="auction")


# ------------------------------------------------------------------------------------------ voting

def test_vote_label_majority_and_ties():
    assert vote_label([3, 1, 3]) == 3
    assert vote_label([1, 2, 1, 2], [0.9, 0.5, 0.1, 0.6]) == 2  # 2 votes each; summed score 1.0 vs 1.1
    assert vote_label([2, 1, 2, 1], [0.5, 0.5, 0.5, 0.5]) == 1  # full tie: smaller class index
    assert vote_label([5, 5, 0], [0.1, 0.1, 0.99]) == 5  # frequency beats score
    np.testing.assert_array_equal(vote_labels([np.array([0, 1, 1]), np.array([4])], [np.ones(3), np.ones(1)]), [1, 4])
    with pytest.raises(ValueError, match="at least one"):
        vote_label([])
    with pytest.raises(ValueError, match="scores"):
        vote_label([1, 2], [0.5])


def test_predictions_json_safe_masks():
    v = synthetic_video(num_frames=2, num_objects=2, dim=4, height=20, width=30, with_masks=True)
    json.dumps(v.frames[0].masks)
    assert decode_rle(v.frames[0].masks[0]).shape == (20, 30)


def test_predictions_from_gt():
    from visrc.data.predictions import predictions_from_gt
    m = np.zeros((20, 30), np.uint8)
    m[2:6, 3:9] = 1
    rle = encode_mask(m)
    gt = {"videos": [{"id": 5, "length": 3, "height": 20, "width": 30, "file_names": ["a", "b", "c"]}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 7, "name": "c"}],
          "annotations": [{"id": 1, "video_id": 5, "category_id": 7, "segmentations": [None, rle, rle],
                           "bboxes": [None, [3, 2, 6, 4], [3, 2, 6, 4]], "areas": [None, 24.0, 24.0]}]}
    (v,) = predictions_from_gt(gt, dim=4, full_score_area=24 / 600)
    assert [len(f) for f in v.frames] == [0, 1, 1] and v.frames[1].labels.tolist() == [2]
    np.testing.assert_allclose(v.frames[1].boxes, [[3, 2, 9, 6]])
    assert v.frames[1].scores[0] == pytest.approx(0.95) and v.frames[1].masks == [rle]
    (flipped,) = predictions_from_gt(gt, dim=4, label_flip=1.0)
    assert all(f.labels.tolist() in ([0], [1]) for f in flipped.frames[1:])
    again = predictions_from_gt(gt, dim=4)[0]
    np.testing.assert_array_equal(again.frames[2].embeddings, v.frames[2].embeddings)  # deterministic per seed


def test_predictions_from_gt_imperfections():
    from visrc.data.predictions import predictions_from_gt
    m = np.zeros((40, 60), np.uint8)
    m[2:22, 3:33] = 1
    rle = encode_mask(m)
    T = 6
    gt = {"videos": [{"id": 1, "length": T, "height": 40, "width": 60, "file_names": ["f"] * T}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
          "annotations": [{"id": k, "video_id": 1, "category_id": 1 + k, "segmentations": [rle] * T,
                           "bboxes": [[3, 2, 30, 20]] * T, "areas": [600.0] * T} for k in range(2)]}
    (plain,) = predictions_from_gt(gt, dim=4, seed=3)
    (off,) = predictions_from_gt(gt, dim=4, seed=3, box_jitter=0.0, miss_rate=0.0, duplicate_rate=0.0)
    (jit,) = predictions_from_gt(gt, dim=4, seed=3, box_jitter=0.1)
    (dup,) = predictions_from_gt(gt, dim=4, seed=3, duplicate_rate=1.0, box_jitter=0.1)
    (miss,) = predictions_from_gt(gt, dim=4, seed=3, miss_rate=1.0)
    for t in range(T):
        p, o, j, d = plain.frames[t], off.frames[t], jit.frames[t], dup.frames[t]
        for name in ("boxes", "scores", "labels", "embeddings"):
            np.testing.assert_array_equal(getattr(o, name), getattr(p, name))           # off by default
            if name != "boxes":
                np.testing.assert_array_equal(getattr(j, name), getattr(p, name))       # jitter moves boxes only
                np.testing.assert_array_equal(getattr(d, name)[:2], getattr(p, name))   # originals kept, in order
        assert not np.allclose(j.boxes, p.boxes) and np.all(j.boxes[:, 2:] >= j.boxes[:, :2])
        assert np.all(j.boxes >= 0) and np.all(j.boxes[:, [0, 2]] <= 60) and np.all(j.boxes[:, [1, 3]] <= 40)
        assert len(d) == 4 and d.labels[2:].tolist() == p.labels.tolist() and np.all(d.scores[2:] < p.scores)
        assert d.masks[2:] == p.masks and len(miss.frames[t]) == 0
    (some,) = predictions_from_gt(gt, dim=4, seed=3, miss_rate=0.5)
    assert 0 < sum(len(f) for f in some.frames) < 2 * T
    with pytest.raises(ValueError, match="miss_rate"):
        predictions_from_gt(gt, miss_rate=1.5)


def test_tracking_re_exports_the_predictions_of_the_data_layer():
    import visrc.data.predictions as predictions
    import visrc.tracking as tracking

    for name in ("FramePredictions", "VideoPredictions", "PredictionsFormatError", "load_predictions",
                 "save_predictions", "predictions_from_gt", "synthetic_video"):
        assert getattr(tracking, name) is getattr(predictions, name), name
    assert set(tracking.__all__) <= set(dir(tracking))
