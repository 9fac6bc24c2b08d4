"""visrc.pipeline without a model: ground-truth detections of a few toy videos -> track -> results ->
evaluate, class names matched to the annotation file's categories; the config's split and tracking."""
from __future__ import annotations

import copy

import pytest

from visrc.data.predictions import predictions_from_gt
from visrc.data.ytvis import load_ytvis
from visrc.pipeline import compare_tracking, config_tracking, split_paths, track_and_evaluate

N_VIDEOS = 3


@pytest.fixture(scope="module")
def gt(toy_small):
    """The small toy's valid split cut to its first N_VIDEOS videos."""
    data = load_ytvis(toy_small / "valid" / "instances.json")
    keep = {v["id"] for v in data["videos"][:N_VIDEOS]}
    return dict(data, videos=[v for v in data["videos"] if v["id"] in keep],
                annotations=[a for a in data["annotations"] if a["video_id"] in keep])


@pytest.fixture
def videos(gt):
    """Confident detections of every visible GT instance (labels: category index in ``gt``)."""
    return predictions_from_gt(gt, dim=16, seed=0, min_score=0.6)


def _names(gt):
    return [c["name"] for c in gt["categories"]]


def test_ground_truth_detections_score_perfectly_in_both_modes(gt, videos):
    for mode in ("forward", "bitrack"):
        results, ev = track_and_evaluate(copy.deepcopy(videos), gt, _names(gt), mode=mode)
        assert len(results) == len(gt["annotations"])                 # one track per GT instance
        assert {r["video_id"] for r in results} == {v["id"] for v in gt["videos"]}
        lengths = {v["id"]: v["length"] for v in gt["videos"]}
        assert all(len(r["segmentations"]) == lengths[r["video_id"]] for r in results)
        assert ev["metrics"]["AP"] == pytest.approx(1.0) and ev["metrics"]["AR10"] == pytest.approx(1.0)
        assert {c["id"] for c in ev["per_category"]} <= {c["id"] for c in gt["categories"]}


def test_classes_are_matched_by_name_and_unknown_ones_drop_out(gt, videos):
    n = len(gt["categories"])
    # the model's classes in reverse order: relabelled detections still land on the right category
    for v in videos:
        for f in v.frames:
            f.labels = (n - 1 - f.labels).astype(f.labels.dtype)
    results, ev = track_and_evaluate(videos, gt, _names(gt)[::-1])
    assert ev["metrics"]["AP"] == pytest.approx(1.0)
    # a class the annotation file does not have (an auxiliary class): its tracks are left out
    first = videos[0]
    for f in first.frames:
        f.labels[:] = n
    results_aux, ev_aux = track_and_evaluate(videos, gt, _names(gt)[::-1] + ["distractor"])
    assert not [r for r in results_aux if r["video_id"] == first.video_id]
    assert len(results_aux) == len(results) - sum(a["video_id"] == first.video_id for a in gt["annotations"])
    assert ev_aux["metrics"]["AP"] < 1.0


def test_no_evaluation_without_annotations_or_when_not_asked(gt, videos):
    results, ev = track_and_evaluate(videos, gt, _names(gt), evaluate=False)
    assert ev == {} and len(results) == len(gt["annotations"])
    test_split = {k: v for k, v in gt.items() if k != "annotations"}      # a test split: no GT
    again, ev = track_and_evaluate(videos, test_split, _names(gt))
    assert ev == {} and len(again) == len(results)


def test_compare_tracking_shares_the_detections(gt):
    # weak first frames: the backward pass recovers what the online tracker cannot start on
    videos = predictions_from_gt(gt, dim=16, seed=0, min_score=0.3)
    out = compare_tracking(videos, gt, _names(gt))
    assert list(out) == ["forward", "bitrack"]
    for mode, metrics in out.items():
        assert metrics == track_and_evaluate(videos, gt, _names(gt), mode=mode)[1]["metrics"]
        assert 0.0 < metrics["AP"] <= 1.0
    assert out["bitrack"]["AP"] >= out["forward"]["AP"]
    assert list(compare_tracking(videos, gt, _names(gt), modes=("bitrack",))) == ["bitrack"]
    with pytest.raises(ValueError, match="mode"):
        compare_tracking(videos, gt, _names(gt), modes=("both",))


def test_split_paths_and_config_tracking(tmp_path):
    from visrc.models.config import load_config
    from visrc.tracking import BiTrackConfig

    tracking, mode = config_tracking("toy_baseline")
    assert mode == "forward" and tracking.tracker.init_score_thr == 0.5      # the config's own settings
    ann, img = split_paths("toy_baseline", tmp_path)
    assert (ann, img) == (tmp_path / "valid" / "instances.json", tmp_path / "valid" / "JPEGImages")
    train_ann = split_paths("toy_baseline", tmp_path, ann_file="train/instances.json")[0]
    assert train_ann == tmp_path / "train" / "instances.json"
    cfg = load_config("toy_baseline")
    cfg.tracking = dict(tracker=dict(init_score_thr=0.25), merge_iou_thr=0.3)
    cfg.tracking_mode = "bitrack"
    tracking, mode = config_tracking(cfg)
    assert isinstance(tracking, BiTrackConfig) and mode == "bitrack"
    assert tracking.tracker.init_score_thr == 0.25 and tracking.merge_iou_thr == 0.3
