"""TCIS (paper 3.3): shapes, identity at init, gradients, the loss helpers, no effect on inference."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.structures.mask import BitmapMasks
from visrc.data.pseudo_frames import masks_to_boxes
from visrc.models.tcis import (TCISModule, _random_k_per_instance, build_tcis, crop_masks_to_rois,
                               match_ref_instances, tcis_loss_from_sampling, tcis_mask_loss)

C, S = 8, 14


def _tcis(**kw):
    torch.manual_seed(0)
    m = TCISModule(in_channels=C, roi_size=S, **kw)
    m.init_weights()
    return m


def _mask_head(num_classes=3):
    torch.manual_seed(1)
    h = FCNMaskHead(num_convs=1, in_channels=C, conv_out_channels=C, num_classes=num_classes)
    h.init_weights()
    return h


def test_forward_shape_and_identity_sampling_at_init():
    m = _tcis()
    fk, fr = torch.randn(5, C, S, S), torch.randn(5, C, S, S)
    masks = (torch.rand(5, S, S) > 0.5).float()
    out = m(fk, fr, masks)
    assert out.shape == (5, C, S, S)
    # zero-initialised offsets: the deformable conv is a plain conv of the masked reference feature
    expected = F.conv2d(fr * masks[:, None], m.dcn.weight, padding=1) + fk
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)
    assert torch.count_nonzero(m.offsets(fk, fr)) == 0


def test_empty_reference_mask_gives_key_feature():
    m = _tcis()
    fk, fr = torch.randn(3, C, S, S), torch.randn(3, C, S, S)
    torch.testing.assert_close(m(fk, fr, torch.zeros(3, S, S)), fk)


def test_mask_resized_to_roi_and_empty_batch():
    m = _tcis()
    fk, fr = torch.randn(2, C, S, S), torch.randn(2, C, S, S)
    assert m(fk, fr, torch.ones(2, 28, 28)).shape == (2, C, S, S)
    assert m(fk[:0], fr[:0], torch.ones(0, S, S)).shape == (0, C, S, S)


def test_batch_not_divisible_by_im2col_step():
    m = _tcis(im2col_step=4)
    with torch.no_grad():
        m.conv_offset.weight.normal_(std=0.05)
    m.eval()
    fk, fr, mk = torch.randn(7, C, S, S), torch.randn(7, C, S, S), torch.rand(7, S, S)
    out = m(fk, fr, mk)
    single = torch.cat([m(fk[i:i + 1], fr[i:i + 1], mk[i:i + 1]) for i in range(7)])
    torch.testing.assert_close(out, single, atol=1e-4, rtol=1e-4)


def test_gradients_reach_every_part():
    m, head = _tcis(), _mask_head()
    fk = torch.randn(4, C, S, S, requires_grad=True)
    fr = torch.randn(4, C, S, S, requires_grad=True)
    ref_masks = (torch.rand(4, S, S) > 0.3).float()
    targets = (torch.rand(4, 28, 28) > 0.5).float()
    labels = torch.tensor([0, 1, 2, 1])
    loss = tcis_mask_loss(head, m, fk, fr, ref_masks, targets, labels)["loss_mask_tcis"]
    loss.backward()
    assert torch.isfinite(loss)
    assert fk.grad.abs().sum() > 0 and fr.grad.abs().sum() > 0
    assert m.dcn.weight.grad.abs().sum() > 0
    assert m.conv_offset.weight.grad.abs().sum() > 0  # offsets learn from step one
    assert head.conv_logits.weight.grad.abs().sum() > 0  # the shared mask head is trained too
    # the Correlation Transform gets gradient once the offset conv is non-zero (after a step)
    with torch.no_grad():
        m.conv_offset.weight.normal_(std=0.01)
    m.zero_grad()
    tcis_mask_loss(head, m, fk, fr, ref_masks, targets, labels)["loss_mask_tcis"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.correlation_transform.parameters())


def test_loss_with_instance_masks_equals_precropped():
    m, head = _tcis(), _mask_head()
    H, W = 64, 80
    raw = np.zeros((3, H, W), np.uint8)
    raw[0, 10:40, 10:50] = 1
    raw[1, 20:60, 30:70] = 1
    raw[2, 5:25, 40:75] = 1
    ref = BitmapMasks(np.roll(raw, 3, axis=2), H, W)
    key = BitmapMasks(raw, H, W)
    boxes = torch.tensor([[8., 8., 52., 42.], [28., 18., 72., 62.], [38., 3., 78., 27.]])
    fk, fr = torch.randn(3, C, S, S), torch.randn(3, C, S, S)
    labels = torch.tensor([0, 1, 2])
    a = tcis_mask_loss(head, m, fk, fr, ref, key, labels, boxes=boxes, mask_size=28)["loss_mask_tcis"]
    idx = np.arange(3)
    b = tcis_mask_loss(head, m, fk, fr, crop_masks_to_rois(ref, boxes, idx, S, binarize=False),
                       crop_masks_to_rois(key, boxes, idx, 28, binarize=True), labels)["loss_mask_tcis"]
    torch.testing.assert_close(a, b)


def test_empty_loss_is_connected_zero():
    m, head = _tcis(), _mask_head()
    out = tcis_mask_loss(head, m, torch.zeros(0, C, S, S), torch.zeros(0, C, S, S), torch.zeros(0, S, S),
                         torch.zeros(0, 28, 28), torch.zeros(0, dtype=torch.long))
    assert out["loss_mask_tcis"].item() == 0.0
    out["loss_mask_tcis"].backward()
    assert m.dcn.weight.grad is not None


def _gt(ids, labels, masks, weak=None):
    g = InstanceData()
    g.instances_ids = torch.tensor(ids)
    g.labels = torch.tensor(labels)
    g.masks = masks
    if weak is not None:
        g.weak_flags = torch.tensor(weak)
    return g


def test_match_ref_instances_ids_missing_and_weak():
    H = W = 32
    bm = lambda n: BitmapMasks(np.ones((n, H, W), np.uint8), H, W)  # noqa: E731
    key = _gt([10, 11, 12, 13], [0, 1, 2, 0], bm(4), weak=[False, False, False, True])
    ref = _gt([12, 10, 13], [2, 0, 0], bm(3), weak=[True, False, False])
    res = SimpleNamespace(pos_assigned_gt_inds=torch.tensor([0, 1, 2, 3, 0]))
    valid, ref_inds = match_ref_instances([res], [key], [ref])
    # id 10 -> ref 1; id 11 absent; id 12 weak in ref; id 13 weak in key
    assert valid.tolist() == [True, False, False, False, True]
    assert ref_inds[valid].tolist() == [1, 1]


def test_tcis_loss_from_sampling_with_roi_extractor():
    from mmdet.registry import MODELS
    import mmdet.models  # noqa: F401  (registers modules)
    extractor = MODELS.build(dict(type="SingleRoIExtractor", roi_layer=dict(type="RoIAlign", output_size=S,
                                                                             sampling_ratio=0),
                                  out_channels=C, featmap_strides=[4, 8]))
    m, head = _tcis(), _mask_head()
    H = W = 64
    x = tuple(torch.randn(2, C, H // s, W // s) for s in (4, 8))
    ref_x = tuple(torch.randn(2, C, H // s, W // s) for s in (4, 8))
    km = np.zeros((2, H, W), np.uint8)
    km[0, 5:30, 5:30] = 1
    km[1, 30:60, 20:50] = 1
    rm = np.roll(km, 2, axis=1)
    key = [_gt([1, 2], [0, 2], BitmapMasks(km, H, W)), _gt([7], [1], BitmapMasks(km[:1], H, W))]
    ref = [_gt([2, 1], [2, 0], BitmapMasks(rm[::-1].copy(), H, W)), _gt([8], [1], BitmapMasks(rm[:1], H, W))]
    res = [SimpleNamespace(pos_priors=torch.tensor([[4., 4., 31., 31.], [19., 29., 51., 61.]]),
                           neg_priors=torch.zeros(0, 4), pos_assigned_gt_inds=torch.tensor([0, 1]),
                           pos_gt_labels=torch.tensor([0, 2])),
           SimpleNamespace(pos_priors=torch.tensor([[4., 4., 31., 31.]]), neg_priors=torch.zeros(0, 4),
                           pos_assigned_gt_inds=torch.tensor([0]), pos_gt_labels=torch.tensor([1]))]
    from mmdet.structures.bbox import bbox2roi
    pos_rois = bbox2roi([r.pos_priors for r in res])
    key_feats = extractor(x, pos_rois)
    out = tcis_loss_from_sampling(m, head, extractor, ref_x, pos_rois, key_feats, res, key, ref, mask_size=28)
    loss = out["loss_mask_tcis"]
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert m.dcn.weight.grad.abs().sum() > 0
    # image 2's instance (id 7) is absent from its reference frame: same loss without it
    out2 = tcis_loss_from_sampling(m, head, extractor, ref_x, pos_rois[:2], key_feats[:2], res[:1], key[:1], ref[:1])
    torch.testing.assert_close(out2["loss_mask_tcis"], loss)


@pytest.mark.parametrize("k", [1, 2])
def test_random_k_positives_per_instance(k):
    torch.manual_seed(0)
    res = [SimpleNamespace(pos_assigned_gt_inds=torch.tensor([0, 0, 0, 1, 1, 2])),
           SimpleNamespace(pos_assigned_gt_inds=torch.tensor([0, 0])),
           SimpleNamespace(pos_assigned_gt_inds=torch.zeros(0, dtype=torch.long))]
    keep = _random_k_per_instance(res, k)
    assert keep.shape == (8,)
    for gts, mask in ((res[0].pos_assigned_gt_inds, keep[:6]), (res[1].pos_assigned_gt_inds, keep[6:])):
        for g in gts.unique():
            assert int(mask[gts == g].sum()) == min(k, int((gts == g).sum()))
    picks = {tuple(_random_k_per_instance(res[:1], 1).tolist()) for _ in range(20)}
    assert len(picks) > 1          # random, not always the first positive


def test_build_switch():
    assert build_tcis(None) is None
    assert build_tcis(dict(enabled=False, in_channels=C)) is None
    assert isinstance(build_tcis(dict(in_channels=C, roi_size=S, loss_weight=0.5)), TCISModule)


def _tiny_cfg(tcis=None):
    ch = 16
    return dict(
        type="MaskRCNN",
        data_preprocessor=dict(type="DetDataPreprocessor", mean=[0, 0, 0], std=[255, 255, 255], pad_size_divisor=32),
        backbone=dict(type="ResNet", depth=18, base_channels=8, num_stages=4, out_indices=(0, 1, 2, 3),
                      norm_cfg=dict(type="BN", requires_grad=True), init_cfg=None),
        neck=dict(type="FPN", in_channels=[8, 16, 32, 64], out_channels=ch, num_outs=5),
        rpn_head=dict(type="RPNHead", in_channels=ch, feat_channels=ch,
                      anchor_generator=dict(type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0],
                                            strides=[4, 8, 16, 32, 64]),
                      bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
                      loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True), loss_bbox=dict(type="L1Loss")),
        roi_head=dict(
            type="TCISStandardRoIHead", tcis=tcis,
            bbox_roi_extractor=dict(type="SingleRoIExtractor", roi_layer=dict(type="RoIAlign", output_size=7,
                                                                                sampling_ratio=0),
                                    out_channels=ch, featmap_strides=[4, 8, 16, 32]),
            bbox_head=dict(type="Shared2FCBBoxHead", in_channels=ch, fc_out_channels=32, roi_feat_size=7,
                           num_classes=3, bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                                                          target_stds=[0.1, 0.1, 0.2, 0.2]),
                           loss_cls=dict(type="CrossEntropyLoss"), loss_bbox=dict(type="L1Loss")),
            mask_roi_extractor=dict(type="SingleRoIExtractor", roi_layer=dict(type="RoIAlign", output_size=14,
                                                                                sampling_ratio=0),
                                    out_channels=ch, featmap_strides=[4, 8, 16, 32]),
            mask_head=dict(type="FCNMaskHead", num_convs=1, in_channels=ch, conv_out_channels=ch, num_classes=3)),
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
                      mask_size=28, pos_weight=-1, debug=False)),
        test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=50, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
                      rcnn=dict(score_thr=0.0, nms=dict(type="nms", iou_threshold=0.5), max_per_img=20,
                                mask_thr_binary=0.5)))


def _tiny_mask_rcnn(tcis=None, seed=0):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    torch.manual_seed(seed)
    model = MODELS.build(ConfigDict(_tiny_cfg(tcis)))
    model.init_weights()
    return model.eval()


TCIS_CFG = dict(in_channels=16, roi_size=14)
META = dict(img_shape=(64, 96), ori_shape=(64, 96), scale_factor=(1.0, 1.0), batch_input_shape=(64, 96),
            pad_shape=(64, 96))


def test_inference_identical_with_and_without_tcis_weights():
    from mmdet.structures import DetDataSample
    model = _tiny_mask_rcnn(tcis=TCIS_CFG)
    assert model.roi_head.with_tcis
    calls = []
    model.roi_head.tcis.register_forward_hook(lambda *a: calls.append(1))
    torch.manual_seed(3)
    img = torch.randint(0, 255, (1, 3, 64, 96)).float()

    def run(m):
        with torch.no_grad():
            return m.predict(img, [DetDataSample(metainfo=META)])[0].pred_instances

    with_tcis = run(model)
    with torch.no_grad():  # other TCIS weights: still no effect
        for p in model.roi_head.tcis.parameters():
            p.add_(torch.randn_like(p))
    with_other_tcis = run(model)
    # the same detector built with TCIS switched off, loaded from the TCIS checkpoint
    state = model.state_dict()
    plain = _tiny_mask_rcnn(tcis=None, seed=1)
    assert not plain.roi_head.with_tcis
    result = plain.load_state_dict(state, strict=False)
    assert result.missing_keys == [] and all(k.startswith("roi_head.tcis.") for k in result.unexpected_keys)
    without = run(plain)
    assert not calls, "TCIS must not run at inference"
    assert len(with_tcis) > 0
    for r in (with_other_tcis, without):
        torch.testing.assert_close(r.bboxes, with_tcis.bboxes)
        torch.testing.assert_close(r.scores, with_tcis.scores)
        assert torch.equal(r.labels, with_tcis.labels)
        assert torch.equal(r.masks, with_tcis.masks)


def _pair_samples():
    """A key frame and a reference frame (objects moved by a few pixels, one object missing)."""
    from mmdet.structures import DetDataSample
    H, W = 64, 96
    km = np.zeros((3, H, W), np.uint8)
    km[0, 5:40, 5:40] = 1
    km[1, 20:60, 50:90] = 1
    km[2, 30:50, 10:30] = 1
    rm = np.roll(km[:2], (2, 3), axis=(1, 2))

    def sample(masks, ids, labels):
        s = DetDataSample(metainfo=META)
        g = InstanceData()
        g.masks = BitmapMasks(masks, H, W)
        g.bboxes = torch.from_numpy(masks_to_boxes(masks))
        g.labels = torch.tensor(labels)
        g.instances_ids = torch.tensor(ids)
        s.gt_instances = g
        return s

    return sample(km, [0, 1, 2], [0, 1, 2]), sample(rm, [0, 1], [0, 1])


def test_roi_head_loss_with_ref_adds_tcis_loss():
    model = _tiny_mask_rcnn(tcis=TCIS_CFG).train()
    key, ref = _pair_samples()
    torch.manual_seed(0)
    imgs = torch.rand(2, 3, 64, 96) * 255
    x = model.extract_feat(imgs[:1])
    ref_x = model.extract_feat(imgs[1:])
    rpn_results = model.rpn_head.predict(x, [key])  # any proposals; the GT boxes are added by the sampler
    losses = model.roi_head.loss_with_ref(x, rpn_results, [key], ref_x, [ref])
    assert {"loss_cls", "loss_bbox", "loss_mask", "loss_mask_tcis"} <= set(losses)
    assert torch.isfinite(losses["loss_mask_tcis"]) and losses["loss_mask_tcis"].item() > 0
    sum(v for k, v in losses.items() if k.startswith("loss")).backward()
    assert model.roi_head.tcis.dcn.weight.grad.abs().sum() > 0
    # plain loss (no reference) and TCIS off: no TCIS term
    rpn_results = model.rpn_head.predict(x, [key])
    assert "loss_mask_tcis" not in model.roi_head.loss(x, rpn_results, [key])
    plain = _tiny_mask_rcnn(tcis=dict(enabled=False, **TCIS_CFG)).train()
    rpn_results = plain.rpn_head.predict(plain.extract_feat(imgs[:1]), [key])
    assert "loss_mask_tcis" not in plain.roi_head.loss_with_ref(plain.extract_feat(imgs[:1]), rpn_results, [key],
                                                                plain.extract_feat(imgs[1:]), [ref])


@pytest.mark.parametrize("mask_scoring", [False, True])
def test_mixin_on_vis_roi_head_signature(mask_scoring):
    """The mixin composes with ``visrc.models.vis_model.VISRoIHead`` (loss(..., ref_x, ref_data_samples)),
    with and without mmdet's ``MaskScoringRoIHead`` behind it."""
    vis_model = pytest.importorskip("visrc.models.vis_model")
    from mmdet.models.roi_heads import MaskScoringRoIHead
    from visrc.models.tcis import TCISRoIHeadMixin
    model = _tiny_mask_rcnn(tcis=TCIS_CFG).train()
    cfg = _tiny_cfg(TCIS_CFG)
    roi_cfg = {k: v for k, v in cfg["roi_head"].items() if k != "type"}
    bases = (TCISRoIHeadMixin, vis_model.VISRoIHead)
    if mask_scoring:
        bases += (MaskScoringRoIHead,)
        roi_cfg["mask_iou_head"] = dict(type="WeakMaskIoUHead", num_convs=1, num_fcs=1, roi_feat_size=14,
                                        in_channels=16, conv_out_channels=16, fc_out_channels=32, num_classes=3)
        import visrc.models.heads  # noqa: F401
        cfg["train_cfg"]["rcnn"]["mask_thr_binary"] = 0.5  # MaskIoUHead's targets need it (mmdet ms-rcnn cfg)
    cls = type("VISTCISRoIHead", bases, {})
    head = cls(**roi_cfg, train_cfg=ConfigDict(cfg["train_cfg"]["rcnn"]), test_cfg=ConfigDict(cfg["test_cfg"]["rcnn"]))
    head.train()
    key, ref = _pair_samples()
    imgs = torch.rand(2, 3, 64, 96) * 255
    x, ref_x = model.extract_feat(imgs[:1]), model.extract_feat(imgs[1:])
    losses = head.loss(x, model.rpn_head.predict(x, [key]), [key], ref_x=ref_x, ref_data_samples=[ref])
    assert "loss_mask_tcis" in losses and torch.isfinite(losses["loss_mask_tcis"])
    assert ("loss_mask_iou" in losses) == mask_scoring
    assert "loss_mask_tcis" not in head.loss(x, model.rpn_head.predict(x, [key]), [key])


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
