"""Multi-task heads (paper 3.5.1) and weak-mask handling (3.2)."""
from types import SimpleNamespace

import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.structures.mask import BitmapMasks
from visrc.models.heads import (MultiLabelClsHead, SemSegHead, WeakMaskFCNMaskHead, WeakMaskIoUHead,
                                strong_positive_mask)

NC = 4


def _gt(labels, masks, weak=None, boxes=None):
    g = InstanceData()
    g.labels = torch.tensor(labels, dtype=torch.long)
    h, w = masks.shape[-2:]
    g.masks = BitmapMasks(masks.astype(np.uint8), h, w)
    if boxes is not None:
        g.bboxes = torch.tensor(boxes, dtype=torch.float32)
    if weak is not None:
        g.weak_flags = torch.tensor(weak)
    return g


# ---------------------------------------------------------------------------------------------- semseg
def test_semseg_shapes_targets_and_gradient():
    head = SemSegHead(num_classes=NC, in_channels=8, num_convs=2, conv_channels=8, feat_stride=8)
    head.init_weights()
    x = torch.randn(2, 8, 6, 10, requires_grad=True)  # P3 of a 48 x 80 padded input
    logits = head(x)
    assert logits.shape == (2, NC, 6, 10)
    m = np.zeros((3, 40, 72), np.uint8)  # unpadded image 40 x 72
    m[0, 0:16, 0:16] = 1      # class 2, exactly cells (0..1, 0..1)
    m[1, 8:16, 8:24] = 1      # class 2 again (union)
    m[2, 16:40, 40:72] = 1    # class 5 >= NC: auxiliary -> ignored
    g0 = _gt([2, 2, 5], m)
    g1 = _gt([], np.zeros((0, 40, 72), np.uint8))
    targets, valid = head.get_targets([g0, g1], (6, 10))
    assert valid.tolist() == [True, True]
    assert targets.shape == (2, NC, 6, 10)
    assert targets[0, 2, 0:2, 0:2].eq(1).all() and targets[0, 2, 1, 2] == 1
    assert targets[0, 2].sum() == 5 and targets[0, [0, 1, 3]].sum() == 0 and targets[1].sum() == 0
    loss = head.loss_by_feat(logits, [g0, g1])["loss_semseg"]
    loss.backward()
    assert torch.isfinite(loss) and x.grad.abs().sum() > 0


def test_semseg_soft_targets_and_weak_images():
    head = SemSegHead(num_classes=NC, in_channels=8, num_convs=1, conv_channels=8, feat_stride=8)
    m = np.zeros((1, 16, 16), np.uint8)
    m[0, 0:4, 0:8] = 1  # half of P3 cell (0, 0) (an 8 x 8 block of pixels) -> soft target 0.5
    t, _ = head.get_targets([_gt([1], m)], (2, 2))
    assert abs(t[0, 1, 0, 0].item() - 0.5) < 1e-6
    logits = head(torch.randn(2, 8, 2, 2))
    weak = _gt([1], m, weak=[True])
    assert head.get_targets([weak], (2, 2))[1].tolist() == [False]
    out = head.loss_by_feat(logits[:1], [weak])["loss_semseg"]
    assert out.item() == 0.0 and out.requires_grad
    # a weak image does not change the loss of the others
    strong = _gt([1], m)
    torch.testing.assert_close(head.loss_by_feat(logits, [strong, weak])["loss_semseg"],
                               head.loss_by_feat(logits[:1], [strong])["loss_semseg"])


# ---------------------------------------------------------------------------------------------- multilabel
def test_multilabel_head():
    head = MultiLabelClsHead(num_classes=NC, in_channels=16, hidden_channels=8)
    x = torch.randn(3, 16, 4, 5, requires_grad=True)
    logits = head(x)
    assert logits.shape == (3, NC)
    gts = [_gt([0, 2, 2], np.zeros((3, 4, 4))), _gt([], np.zeros((0, 4, 4))), _gt([3, 7], np.zeros((2, 4, 4)))]
    t = head.get_targets(gts)
    assert t.tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]]  # label 7 (auxiliary) ignored
    loss = head.loss_by_feat(logits, gts)["loss_multilabel"]
    loss.backward()
    assert torch.isfinite(loss) and x.grad.abs().sum() > 0
    assert head.predict(x).shape == (3, NC)


def test_aux_head_contract_of_vis_model():
    """``loss(backbone_feats, neck_feats, data_samples)`` as VISQDTrack's ``aux_heads`` call it."""
    from mmdet.structures import DetDataSample
    sem = SemSegHead(num_classes=NC, in_channels=8, num_convs=1, conv_channels=8)
    ml = MultiLabelClsHead(num_classes=NC, in_channels=32)
    c = (torch.randn(2, 8, 16, 16), torch.randn(2, 32, 2, 2))                  # C2 .. C5
    p = (torch.randn(2, 8, 16, 16), torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4))  # P2, P3, P4
    samples = []
    for labels in ([1, 2], [3]):
        s = DetDataSample()
        s.gt_instances = _gt(labels, np.ones((len(labels), 64, 64)))
        samples.append(s)
    out = {**sem.loss(c, p, samples), **ml.loss(c, p, samples)}
    assert set(out) == {"loss_semseg", "loss_multilabel"} and all(torch.isfinite(v) for v in out.values())
    torch.testing.assert_close(out["loss_semseg"], sem.loss_by_feat(sem(p[1]), [s.gt_instances for s in samples])[
        "loss_semseg"])


# ---------------------------------------------------------------------------------------------- weak masks
def _mask_setup():
    torch.manual_seed(0)
    head = WeakMaskFCNMaskHead(num_convs=1, in_channels=8, conv_out_channels=8, num_classes=NC)
    head.init_weights()
    H = W = 32
    m = np.zeros((2, H, W), np.uint8)
    m[0, 2:20, 2:20] = 1
    m[1, 10:30, 8:30] = 1
    res = [SimpleNamespace(pos_priors=torch.tensor([[0., 0., 22., 22.], [6., 8., 31., 31.], [1., 1., 20., 21.]]),
                           pos_assigned_gt_inds=torch.tensor([0, 1, 0]), pos_gt_labels=torch.tensor([1, 3, 1]))]
    preds = head(torch.randn(3, 8, 14, 14))
    return head, m, res, preds


def test_weak_samples_give_zero_mask_loss():
    head, m, res, preds = _mask_setup()
    cfg = ConfigDict(mask_size=28)
    all_weak = [_gt([1, 3], m, weak=[True, True])]
    out = head.loss_and_target(preds, res, all_weak, cfg)
    assert out["loss_mask"]["loss_mask"].item() == 0.0
    out["loss_mask"]["loss_mask"].backward()  # connected zero: backward works
    assert out["mask_targets"].shape == (3, 28, 28)


def test_weak_rows_excluded_from_mask_loss():
    head, m, res, preds = _mask_setup()
    cfg = ConfigDict(mask_size=28)
    strong = head.loss_and_target(preds, res, [_gt([1, 3], m)], cfg)["loss_mask"]["loss_mask"]
    half = head.loss_and_target(preds, res, [_gt([1, 3], m, weak=[False, True])], cfg)
    # only rows assigned to GT 0 (rows 0 and 2) count
    res0 = [SimpleNamespace(pos_priors=res[0].pos_priors[[0, 2]], pos_assigned_gt_inds=torch.tensor([0, 0]),
                            pos_gt_labels=torch.tensor([1, 1]))]
    ref = head.loss_and_target(preds[[0, 2]], res0, [_gt([1, 3], m)], cfg)["loss_mask"]["loss_mask"]
    torch.testing.assert_close(half["loss_mask"]["loss_mask"], ref)
    assert not torch.allclose(strong, ref)
    assert strong_positive_mask(res, [_gt([1, 3], m, weak=[False, True])]).tolist() == [True, False, True]


def test_weak_mask_iou_targets():
    _, m, res, _ = _mask_setup()
    iou_head = WeakMaskIoUHead(num_convs=1, num_fcs=1, roi_feat_size=14, in_channels=8, conv_out_channels=8,
                               fc_out_channels=16, num_classes=NC)
    mask_preds = torch.rand(3, 28, 28)
    targets = torch.rand(3, 28, 28).round()
    cfg = ConfigDict(mask_thr_binary=0.5)
    t_strong = iou_head.get_targets(res, [_gt([1, 3], m)], mask_preds, targets, cfg)
    t_weak = iou_head.get_targets(res, [_gt([1, 3], m, weak=[False, True])], mask_preds, targets, cfg)
    assert t_weak[1] == 0 and torch.equal(t_weak[[0, 2]], t_strong[[0, 2]]) and t_strong[1] > 0


# ---------------------------------------------------------------------------------------------- integration
def tiny_msrcnn_cfg(num_target=3, num_aux=2, ch=16):
    """A CPU-sized Mask Scoring R-CNN with our heads (aux classes, weak masks)."""
    ncls = num_target + num_aux
    return dict(
        type="MaskRCNN",
        data_preprocessor=dict(type="DetDataPreprocessor", mean=[0, 0, 0], std=[255, 255, 255], pad_size_divisor=32),
        backbone=dict(type="ResNet", depth=18, base_channels=8, num_stages=4, out_indices=(0, 1, 2, 3), init_cfg=None),
        neck=dict(type="FPN", in_channels=[8, 16, 32, 64], out_channels=ch, num_outs=5),
        rpn_head=dict(type="RPNHead", in_channels=ch, feat_channels=ch,
                      anchor_generator=dict(type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0],
                                            strides=[4, 8, 16, 32, 64]),
                      bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
                      loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True), loss_bbox=dict(type="L1Loss")),
        roi_head=dict(
            type="MaskScoringRoIHead",
            bbox_roi_extractor=dict(type="SingleRoIExtractor",
                                    roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
                                    out_channels=ch, featmap_strides=[4, 8, 16, 32]),
            bbox_head=dict(type="AuxClassBBoxHead", num_target_classes=num_target, num_aux_classes=num_aux,
                           aux_seed=0, in_channels=ch, fc_out_channels=32, roi_feat_size=7,
                           bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                                           target_stds=[0.1, 0.1, 0.2, 0.2]),
                           loss_cls=dict(type="CrossEntropyLoss"), loss_bbox=dict(type="L1Loss")),
            mask_roi_extractor=dict(type="SingleRoIExtractor",
                                    roi_layer=dict(type="RoIAlign", output_size=14, sampling_ratio=0),
                                    out_channels=ch, featmap_strides=[4, 8, 16, 32]),
            mask_head=dict(type="WeakMaskFCNMaskHead", num_convs=1, in_channels=ch, conv_out_channels=ch,
                           num_classes=ncls),
            mask_iou_head=dict(type="WeakMaskIoUHead", num_convs=1, num_fcs=1, roi_feat_size=14, in_channels=ch,
                               conv_out_channels=ch, fc_out_channels=32, num_classes=ncls)),
        train_cfg=dict(
            rpn=dict(assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                                   match_low_quality=True, ignore_iof_thr=-1),
                     sampler=dict(type="RandomSampler", num=64, pos_fraction=0.5, neg_pos_ub=-1,
                                  add_gt_as_proposals=False),
                     allowed_border=-1, pos_weight=-1, debug=False),
            rpn_proposal=dict(nms_pre=200, max_per_img=100, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
            rcnn=dict(assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                    match_low_quality=True, ignore_iof_thr=-1),
                      sampler=dict(type="RandomSampler", num=64, pos_fraction=0.25, neg_pos_ub=-1,
                                   add_gt_as_proposals=True),
                      mask_size=28, pos_weight=-1, mask_thr_binary=0.5, debug=False)),
        test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=50, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
                      rcnn=dict(score_thr=0.0, nms=dict(type="nms", iou_threshold=0.5), max_per_img=20,
                                mask_thr_binary=0.5)))


def test_mask_scoring_rcnn_with_aux_and_weak_heads_trains_and_predicts():
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import visrc.models.aux_classes  # noqa: F401  (registers AuxClassBBoxHead)
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(tiny_msrcnn_cfg()))
    model.init_weights()
    H, W = 64, 96
    img = torch.rand(2, 3, H, W) * 255
    m = np.zeros((3, H, W), np.uint8)
    m[0, 5:40, 5:40] = 1
    m[1, 20:60, 50:90] = 1
    m[2, 30:50, 10:30] = 1
    boxes = [[5, 5, 40, 40], [50, 20, 90, 60], [10, 30, 30, 50]]
    meta = dict(img_shape=(H, W), ori_shape=(H, W), scale_factor=(1.0, 1.0), batch_input_shape=(H, W),
                pad_shape=(H, W))
    samples = []
    for weak in ([False, False, False], [True, True, True]):
        s = DetDataSample(metainfo=meta)
        s.gt_instances = _gt([0, 3, 2], m, weak=weak, boxes=boxes)  # label 3 = auxiliary placeholder
        samples.append(s)
    model.train()
    losses = model.loss(img, samples)
    for k in ("loss_cls", "loss_bbox", "loss_mask", "loss_mask_iou"):
        assert k in losses and torch.isfinite(losses[k]), k
    total = sum(v for k, v in losses.items() if k.startswith("loss") and isinstance(v, torch.Tensor))
    total.backward()
    # all-weak batch: detection losses but zero mask losses
    losses_weak = model.loss(img[1:], samples[1:])
    assert losses_weak["loss_mask"].item() == 0.0 and losses_weak["loss_mask_iou"].item() == 0.0
    assert losses_weak["loss_cls"].item() > 0
    model.eval()
    with torch.no_grad():
        pred = model.predict(img[:1], [DetDataSample(metainfo=meta)])[0].pred_instances
    assert len(pred) > 0 and int(pred.labels.max()) < 3  # auxiliary classes never come out
    assert pred.masks.shape[1:] == (H, W)
