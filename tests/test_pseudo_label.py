"""Pseudo labels from tracked ensemble detections, the written YouTube-VIS file, and train + pseudo merging."""
import numpy as np
import pytest

from visrc.data.masks import decode_rle, encode_mask, rle_area
from visrc.data.ytvis import load_ytvis, validate_ytvis
from visrc.ensemble import (PseudoLabelConfig, ensemble_videos, filter_tracks, make_pseudo_labels, merge_ytvis,
                            select_tracks, write_pseudo_labels)
from visrc.tracking import FramePredictions, VideoPredictions, predictions_from_gt, tracks_from_tracklets

H, W = 60, 100


def video(objects, num_frames, video_id=1, masks=False):
    """objects: dicts with frames, box (xyxy or fn of t), score (or fn), label, emb (one-hot index)."""
    val = lambda v, t: v(t) if callable(v) else v
    frames = []
    for t in range(num_frames):
        present = [o for o in objects if t in o["frames"]]
        boxes = np.array([val(o["box"], t) for o in present], float).reshape(-1, 4)
        emb = np.zeros((len(present), 4))
        for i, o in enumerate(present):
            emb[i, o.get("emb", 0)] = 1.0
        rles = None
        if masks:
            rles = []
            for x0, y0, x1, y1 in boxes:
                m = np.zeros((H, W), np.uint8)
                m[max(int(y0), 0) + 1:int(y1) - 1, max(int(x0), 0) + 1:int(x1) - 1] = 1  # smaller than the box
                rles.append(encode_mask(m))
        frames.append(FramePredictions(boxes, [val(o.get("score", 0.9), t) for o in present],
                                       [o.get("label", 0) for o in present], emb, rles))
    return VideoPredictions(video_id, H, W, frames)


def split_json(videos):
    return {"videos": [{"id": v.video_id, "length": len(v), "height": H, "width": W,
                        "file_names": [f"vid{v.video_id}/{t:05d}.jpg" for t in range(len(v))]} for v in videos],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "annotations": [], "info": {"x": 1}}


MOVING = {"frames": range(6), "box": lambda t: (10 + t, 10, 40 + t, 40), "emb": 0}


def test_tracked_object_is_kept_and_a_one_frame_blip_dropped():
    v = video([MOVING, {"frames": [2], "box": (60, 5, 90, 30), "emb": 1, "label": 1}], 6)
    data = make_pseudo_labels(split_json([v]), [v], [1, 2], PseudoLabelConfig(with_masks=False))
    (ann,) = data["annotations"]
    assert ann["category_id"] == 1 and ann["weak_mask"] is True and ann["score"] == pytest.approx(0.9)
    assert ann["bboxes"] == [[10.0 + t, 10.0, 30.0, 30.0] for t in range(6)]
    assert all(s is not None for s in ann["segmentations"])  # box-filled: mmdet's loader keeps the frame
    assert ann["areas"] == [900.0] * 6 and decode_rle(ann["segmentations"][0])[10:40, 10:40].all()
    assert data["pseudo_label"]["detection_only"] is True and data["videos"] == split_json([v])["videos"]
    validate_ytvis(data)


def test_score_threshold_and_min_track_len():
    weak_tail = dict(MOVING, score=lambda t: 0.9 if t < 2 else 0.4)  # linked by the tracker (obj thr 0.3)
    v = video([weak_tail], 6)
    assert make_pseudo_labels(split_json([v]), [v], [1, 2])["annotations"] == []  # 2 confident < 3
    (ann,) = make_pseudo_labels(split_json([v]), [v], [1, 2], PseudoLabelConfig(min_track_len=2))["annotations"]
    assert [b is not None for b in ann["bboxes"]] == [True, True, False, False, False, False]
    assert ann["segmentations"][2] is None and ann["areas"][2] is None
    assert select_tracks([v], PseudoLabelConfig(score_thr=0.3))[1][0].frames.tolist() == list(range(6))


def test_masks_are_the_ensembles_when_present_and_boxes_are_clipped():
    v = video([dict(MOVING, box=lambda t: (-5 + t, 10, 40 + t, 70))], 6, masks=True)  # leaves the image
    (ann,) = make_pseudo_labels(split_json([v]), [v], [1, 2])["annotations"]
    assert ann["bboxes"][0] == [0.0, 10.0, 40.0, 50.0]
    assert ann["segmentations"][0]["counts"] == v.frames[0].masks[0]["counts"]
    assert ann["areas"][0] == rle_area(v.frames[0].masks[0])
    (boxed,) = make_pseudo_labels(split_json([v]), [v], [1, 2], PseudoLabelConfig(with_masks=False))["annotations"]
    assert boxed["areas"][0] == 40 * 50
    outside = video([dict(MOVING, box=lambda t: (10, 10, 40, 40) if t < 5 else (120, 10, 150, 40))], 6)
    (ann,) = make_pseudo_labels(split_json([outside]), [outside], [1, 2])["annotations"]
    assert ann["bboxes"][5] is None and ann["bboxes"][4] is not None


def test_a_detection_is_labelled_once_even_if_two_tracks_hold_it():
    v = video([MOVING], 4)
    tracks = tracks_from_tracklets(v, np.array([[0, 0, 0, 0], [0, 0, 0, -1]]))
    kept = filter_tracks(v, tracks, score_thr=0.5, min_track_len=1)
    assert [t.frames.tolist() for t in kept] == [[0, 1, 2, 3]]


def test_one_object_detected_as_two_classes_gives_one_pseudo_track():
    twin = dict(MOVING, emb=1, label=1, score=0.8)  # same boxes, another class (GAE keeps classes apart)
    v = video([MOVING, twin], 6)
    (ann,) = make_pseudo_labels(split_json([v]), [v], [1, 2])["annotations"]
    assert ann["category_id"] == 1 and ann["score"] == pytest.approx(0.9)
    assert len(make_pseudo_labels(split_json([v]), [v], [1, 2], PseudoLabelConfig(dedup_iou=None))["annotations"]) == 2


def test_unmapped_labels_and_bad_inputs():
    v = video([dict(MOVING, label=5)], 6)  # an auxiliary class, say
    assert make_pseudo_labels(split_json([v]), [v], {0: 1, 1: 2})["annotations"] == []
    with pytest.raises(KeyError, match="label 5"):
        make_pseudo_labels(split_json([v]), [v], {0: 1}, PseudoLabelConfig(skip_unmapped=False))
    other = video([MOVING], 6, video_id=9)
    with pytest.raises(ValueError, match="predictions of video 9"):
        make_pseudo_labels(split_json([v]), [other], [1, 2])
    short = video([MOVING], 5)
    with pytest.raises(ValueError, match="video id=1: field 'length'"):
        make_pseudo_labels(split_json([v]), [short], [1, 2])
    with pytest.raises(ValueError, match="min_track_len"):
        PseudoLabelConfig(min_track_len=0)


def test_written_file_validates_and_merges_with_train(tmp_path):
    v = video([MOVING], 6, masks=True)
    pseudo = make_pseudo_labels(split_json([v]), [v], [1, 2])
    path = write_pseudo_labels(pseudo, tmp_path / "pseudo.json")
    assert load_ytvis(path) == pseudo
    with pytest.raises(ValueError, match="pseudo_label"):
        write_pseudo_labels(split_json([v]), tmp_path / "x.json")
    train = split_json([video([MOVING], 3, video_id=1), video([MOVING], 2, video_id=4)])
    train["annotations"] = [{"id": 5, "video_id": 4, "category_id": 2, "iscrowd": 0, "bboxes": [[1, 1, 5, 5], None],
                             "segmentations": [encode_mask(np.ones((H, W), np.uint8)), None], "areas": [25.0, None]}]
    merged = merge_ytvis(train, pseudo)
    assert [x["id"] for x in merged["videos"]] == [1, 2, 3]
    assert [x["source"] for x in merged["videos"]] == ["train", "train", "pseudo"]
    assert merged["videos"][1]["file_names"][0] == "train/JPEGImages/vid4/00000.jpg"
    assert merged["videos"][2]["file_names"][0] == "valid/JPEGImages/vid1/00000.jpg"
    got = [(a["id"], a["video_id"], a.get("weak_mask", False)) for a in merged["annotations"]]
    assert got == [(1, 2, False), (2, 3, True)]
    validate_ytvis(merged)
    bad = dict(pseudo, categories=[{"id": 1, "name": "a"}, {"id": 2, "name": "c"}])
    with pytest.raises(ValueError, match="field 'categories' differs"):
        merge_ytvis(train, bad)


def test_merged_file_is_what_the_video_loader_reads():
    from visrc.data.video_dataset import to_cocovid

    v = video([MOVING], 6)
    pseudo = make_pseudo_labels(split_json([v]), [v], [1, 2], PseudoLabelConfig(with_masks=False))
    coco = to_cocovid(merge_ytvis(split_json([video([MOVING], 2)]), pseudo))
    assert len(coco["annotations"]) == 6  # every pseudo frame survives (no None segmentation)
    assert coco["images"][2]["file_name"] == "valid/JPEGImages/vid1/00000.jpg"


def test_end_to_end_on_the_toy_valid_split(toy_small):
    split = load_ytvis(toy_small / "valid" / "instances.json")
    models = [predictions_from_gt(split, seed=s) for s in (0, 1)]  # two "models" that find the GT
    fused = ensemble_videos(models)
    cfg = PseudoLabelConfig(score_thr=0.3, min_track_len=3)
    pseudo = make_pseudo_labels(split, fused, [c["id"] for c in split["categories"]], cfg, source="toy valid")
    validate_ytvis(pseudo)
    gt = {(a["video_id"], a["category_id"], tuple(map(tuple, (b for b in a["bboxes"] if b is not None))))
          for a in split["annotations"] if sum(b is not None for b in a["bboxes"]) >= 3}
    got = {(a["video_id"], a["category_id"], tuple(tuple(round(x, 3) for x in b) for b in a["bboxes"] if b is not None))
           for a in pseudo["annotations"]}
    assert len(gt) > 0 and got == gt
