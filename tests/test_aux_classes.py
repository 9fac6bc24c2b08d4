"""Auxiliary classes (paper 3.2, Algorithm 1): label assignment, category mapping, aux-free outputs."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import ConfigDict

from visrc.data.categories import AUX, COCO_ALIASES, build_category_map, mapped_label
from visrc.models.aux_classes import (AuxClassBBoxHead, assign_aux_labels, drop_aux_classes, filter_aux_detections,
                                      is_aux_label)

C, K = 3, 2  # target classes 0..2, auxiliary 3..4, background column 5


def _logits(rows):
    """One-hot-ish logits with the given argmax per row, C + K + 1 columns."""
    out = torch.zeros(len(rows), C + K + 1)
    for i, a in enumerate(rows):
        out[i, a] = 5.0
    return out


def test_prediction_in_aux_range_is_the_label():
    labels = torch.tensor([3, 3, 1])
    out = assign_aux_labels(labels, None, _logits([4, 3, 4]), C, K, torch.Generator().manual_seed(0))
    assert out.tolist() == [4, 3, 1]  # target row untouched although its prediction is auxiliary


def test_prediction_in_target_range_draws_uniformly_from_aux():
    labels = torch.tensor([3, 1, 3, 3])
    logits = _logits([0, 1, 2, 4])  # rows 0 and 2 predict target classes -> draws
    gen = torch.Generator().manual_seed(123)
    out = assign_aux_labels(labels, None, logits, C, K, gen)
    expected_draws = torch.randint(C, C + K, (2,), generator=torch.Generator().manual_seed(123))
    assert out[[0, 2]].tolist() == expected_draws.tolist()
    assert out[1].item() == 1 and out[3].item() == 4
    # same seed, same answer; the input is not modified
    again = assign_aux_labels(labels, None, logits, C, K, torch.Generator().manual_seed(123))
    assert torch.equal(out, again) and labels.tolist() == [3, 1, 3, 3]


def test_background_column_is_not_a_candidate():
    logits = torch.zeros(1, C + K + 1)
    logits[0, C + K] = 9.0  # background highest
    logits[0, 4] = 3.0      # best foreground class is auxiliary 4
    assert assign_aux_labels(torch.tensor([3]), None, logits, C, K).item() == 4
    logits[0, 4], logits[0, 1] = 0.0, 3.0  # best foreground is a target class -> draw
    got = assign_aux_labels(torch.tensor([3]), None, logits, C, K, torch.Generator().manual_seed(5)).item()
    assert C <= got < C + K


def test_logits_without_background_and_explicit_is_aux():
    logits = torch.zeros(2, C + K)
    logits[0, 3] = logits[1, 4] = 1.0
    # explicit flags: row 1 carries label 0 but is declared auxiliary
    out = assign_aux_labels(torch.tensor([0, 0]), torch.tensor([False, True]), logits, C, K)
    assert out.tolist() == [0, 4]


def test_draws_are_uniform_over_aux_indices():
    n, k4 = 4000, 4
    labels = torch.full((n,), C)
    logits = torch.zeros(n, C + k4 + 1)
    logits[:, 0] = 1.0
    out = assign_aux_labels(labels, None, logits, C, k4, torch.Generator().manual_seed(0))
    counts = torch.bincount(out - C, minlength=k4).float() / n
    assert out.min() >= C and out.max() < C + k4
    assert torch.all((counts - 0.25).abs() < 0.03), counts


def test_errors_and_helpers():
    with pytest.raises(ValueError):
        assign_aux_labels(torch.tensor([3]), torch.tensor([True]), torch.zeros(1, 4), 3, 0)
    with pytest.raises(ValueError):
        assign_aux_labels(torch.tensor([3]), None, torch.zeros(1, 9), C, K)
    assert is_aux_label(torch.tensor([0, 2, 3, 4, 5]), C, K).tolist() == [False, False, True, True, False]
    assert mapped_label(AUX, C, K) == C and mapped_label(AUX, C, 0) is None
    assert mapped_label(2, C, K) == 2 and mapped_label(None, C, K) is None


def test_category_map_coco_to_ytvis():
    targets = ["person", "motorbike", "flying_disc", "mouse", "car", "tennis_racket"]
    cats = [dict(id=1, name="person"), dict(id=4, name="motorcycle"), dict(id=34, name="frisbee"),
            dict(id=74, name="mouse"), dict(id=3, name="car"), dict(id=43, name="tennis racket"),
            dict(id=62, name="chair")]
    m = build_category_map(cats, targets, COCO_ALIASES)
    assert m == {1: 0, 4: 1, 34: 2, 74: AUX, 3: 4, 43: 5, 62: AUX}
    m = build_category_map(cats, targets, COCO_ALIASES, unmatched="ignore")
    assert m[62] is None and m[74] is None
    # YouTube-VIS 2019 names: COCO car -> sedan through the alias
    assert build_category_map([dict(id=3, name="car")], ["sedan"], COCO_ALIASES) == {3: 0}


def test_drop_aux_classes_columns_and_argmax():
    probs = torch.softmax(_logits([4, 0, 1]), dim=1)
    cols = drop_aux_classes(probs, C, K, "columns")
    assert cols.shape == (3, C + 1)
    torch.testing.assert_close(cols[:, :C], probs[:, :C])
    torch.testing.assert_close(cols[:, C], probs[:, C + K])  # background kept, not renormalised
    arg = drop_aux_classes(probs, C, K, "argmax")
    assert torch.all(arg[0, :C] == 0) and torch.equal(arg[1:], cols[1:])
    assert drop_aux_classes(probs[:, :C + K], C, K).shape == (3, C)
    with pytest.raises(ValueError):
        drop_aux_classes(probs[:, :4], C, K)


def test_filter_aux_detections():
    from mmengine.structures import InstanceData
    r = InstanceData(labels=torch.tensor([0, 3, 2, 4]), scores=torch.tensor([0.9, 0.8, 0.7, 0.6]))
    assert filter_aux_detections(r, C).labels.tolist() == [0, 2]


def _head(**kw):
    torch.manual_seed(0)
    h = AuxClassBBoxHead(num_target_classes=C, num_aux_classes=K, in_channels=4, fc_out_channels=16,
                         roi_feat_size=2, **kw)
    h.init_weights()
    return h


def test_bbox_head_outputs_exclude_aux_classes():
    head = _head()
    assert head.num_classes == C + K
    n = 12
    rois = torch.cat([torch.zeros(n, 1), torch.tensor([[10., 10., 40., 40.]]).repeat(n, 1)
                      + torch.arange(n)[:, None].float()], 1)
    cls_score = torch.zeros(n, C + K + 1)
    cls_score[:6, 3] = 8.0   # auxiliary dominates
    cls_score[6:, 1] = 8.0   # a target class dominates
    bbox_pred = torch.zeros(n, (C + K) * 4)
    meta = [dict(img_shape=(100, 100), scale_factor=(1.0, 1.0))]
    cfg = ConfigDict(score_thr=0.05, nms=dict(type="nms", iou_threshold=0.99), max_per_img=100)
    res = head.predict_by_feat((rois,), (cls_score,), (bbox_pred,), meta, rcnn_test_cfg=cfg)[0]
    assert len(res) > 0 and int(res.labels.max()) < C
    assert set(res.labels.tolist()) == {1}
    raw = head.predict_by_feat((rois,), (cls_score,), (bbox_pred,), meta, rcnn_test_cfg=None)[0]
    assert raw.scores.shape == (n, C + 1) and raw.bboxes.shape == (n, C * 4)
    # argmax mode: RoIs whose top class is auxiliary are dropped entirely
    head.aux_drop_mode = "argmax"
    cls_score[:6, 0] = 7.0  # a strong target score, but the top class is still auxiliary
    res_cols = _head().predict_by_feat((rois,), (cls_score,), (bbox_pred,), meta, rcnn_test_cfg=cfg)[0]
    res_arg = head.predict_by_feat((rois,), (cls_score,), (bbox_pred,), meta, rcnn_test_cfg=cfg)[0]
    assert 0 in res_cols.labels.tolist() and 0 not in res_arg.labels.tolist()


def test_bbox_head_reassigns_aux_labels_in_sampling_results():
    head = _head(aux_seed=0)
    res = [SimpleNamespace(pos_priors=torch.zeros(3, 4), neg_priors=torch.zeros(2, 4),
                           pos_gt_labels=torch.tensor([3, 1, 3])),
           SimpleNamespace(pos_priors=torch.zeros(1, 4), neg_priors=torch.zeros(1, 4),
                           pos_gt_labels=torch.tensor([3]))]
    # rows: img0 pos(3) neg(2), img1 pos(1) neg(1)
    cls_score = _logits([4, 4, 0, 2, 2, 3, 0])
    head.reassign_aux_labels(cls_score, res)
    assert res[0].pos_gt_labels[0].item() == 4          # predicted aux 4 -> 4
    assert res[0].pos_gt_labels[1].item() == 1          # target untouched
    assert C <= res[0].pos_gt_labels[2].item() < C + K  # predicted target -> drawn
    assert res[1].pos_gt_labels.tolist() == [3]         # row 5 predicts aux 3


def test_bbox_head_k0_is_plain():
    torch.manual_seed(0)
    h = AuxClassBBoxHead(num_target_classes=C, num_aux_classes=0, in_channels=4, fc_out_channels=16,
                         roi_feat_size=2)
    assert h.num_classes == C
    with pytest.raises(ValueError):
        AuxClassBBoxHead(num_target_classes=C, num_aux_classes=K, num_classes=C, in_channels=4)
