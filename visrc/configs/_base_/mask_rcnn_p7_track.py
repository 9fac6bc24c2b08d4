# The model block every root config shares (not a config to train: `visrc configs` leaves `_base_/`
# out): the paper's video model, Mask R-CNN + FPN P2..P7 + quasi-dense track head (VISQDTrack), at
# the toy benchmark's sizes, i.e. toy_baseline.py's model as is. The roots inherit it with
# `_base_ = ['./_base_/mask_rcnn_p7_track.py', './_base_/default_runtime.py']` (the runtime) and
# override what differs:
#   toy_baseline.py        nothing in the model
#   toy_pretrain_coco.py   the detector alone as a plain image Mask R-CNN (StandardRoIHead,
#                          DetDataPreprocessor; no track head)
#   paper_s50.py           ResNeSt-50, 256 channels and mmdet's standard head/sampler/proposal sizes
#   paper_s50_full.py      paper_s50.py's sizes + TCIS, mask scoring, C + K class heads, aux heads
# mmengine builds this file before the root: the numbers below are values, not references; a root
# that changes num_classes or norm_cfg must also override the model keys that use them.
custom_imports = dict(imports=['visrc.registry'], allow_failed_imports=False)   # VISQDTrack & co.
default_scope = 'mmdet'

num_classes = 6                          # the box and mask heads' classes (the toy sets have 6)
fpn_strides = [4, 8, 16, 32, 64, 128]   # P2..P7 (the paper's extra P7: 6 levels), shared by anchors and RoI extractors
norm_cfg = dict(type='BN', requires_grad=True)   # the backbone's

# channels: 64 for the FPN and every head (the paper roots: 256)
model = dict(
    type='VISQDTrack',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_mask=True, pad_size_divisor=32),
    detector=dict(
        type='MaskRCNN',
        backbone=dict(
            type='ResNet', depth=18, base_channels=16, num_stages=4, out_indices=(0, 1, 2, 3),
            frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, style='pytorch', init_cfg=None),
        neck=dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=64, num_outs=6),
        rpn_head=dict(
            type='RPNHead', in_channels=64, feat_channels=64,
            anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                                  strides=fpn_strides),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                            target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        roi_head=dict(
            type='VISRoIHead',
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=64, featmap_strides=fpn_strides),
            bbox_head=dict(
                type='Shared2FCBBoxHead', in_channels=64, fc_out_channels=256, roi_feat_size=7,
                num_classes=num_classes,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
            mask_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
                out_channels=64, featmap_strides=fpn_strides),
            mask_head=dict(
                type='FCNMaskHead', num_convs=2, in_channels=64, conv_out_channels=64,
                num_classes=num_classes,
                loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
        train_cfg=dict(
            rpn=dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                              min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
                sampler=dict(type='RandomSampler', num=128, pos_fraction=0.5, neg_pos_ub=-1,
                             add_gt_as_proposals=False),
                allowed_border=-1, pos_weight=-1, debug=False),
            rpn_proposal=dict(nms_pre=600, max_per_img=300, nms=dict(type='nms', iou_threshold=0.7),
                              min_bbox_size=0),
            rcnn=dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                              min_pos_iou=0.5, match_low_quality=True, ignore_iof_thr=-1),
                # 64 RoIs per image (mmdet: 512): the toy frames hold 1-4 objects, and RoIAlign's
                # CPU cost grows with the number of RoIs
                sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                             add_gt_as_proposals=True),
                mask_size=28, pos_weight=-1, debug=False)),
        test_cfg=dict(
            rpn=dict(nms_pre=300, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7),
                     min_bbox_size=0),
            rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=30,
                      mask_thr_binary=0.5)),
        init_cfg=None),
    track_head=dict(
        type='QuasiDenseTrackHead',
        roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=64, featmap_strides=fpn_strides),
        embed_head=dict(
            type='QuasiDenseEmbedHead', num_convs=2, num_fcs=1, in_channels=64,
            conv_out_channels=64, fc_out_channels=256, embed_channels=64,
            norm_cfg=dict(type='GN', num_groups=8),
            loss_track=dict(type='MultiPosCrossEntropyLoss', loss_weight=0.25),
            loss_track_aux=dict(type='MarginL2Loss', neg_pos_ub=3, pos_margin=0, neg_margin=0.1,
                                hard_mining=True, loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.5,
                          min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type='CombinedSampler', num=64, pos_fraction=0.5, neg_pos_ub=3,
                         add_gt_as_proposals=True,
                         pos_sampler=dict(type='InstanceBalancedPosSampler'),
                         neg_sampler=dict(type='RandomSampler')))),
    tracker=None,            # association: visrc.tracking (the roots' `tracking`; visrc.models.predictor)
    embed_score_thr=0.05,
    init_cfg=None)
