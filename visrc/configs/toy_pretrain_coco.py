# The toy stand-in for the paper's MS COCO pretraining (section 4.1: "networks are pretrained on the
# MS COCO 2017 dataset"): a plain mmdet image Mask R-CNN with exactly toy_baseline.py's backbone
# (ResNet-18, base_channels 16), FPN (P2..P7), RPN and box/mask heads, trained on the toy benchmark's
# COCO-style still images (`coco/` of the data root, all 6 of its classes). Its checkpoint is the
# init of the video models: `visrc train toy_baseline --init <its checkpoint>` (visrc.models.
# init_weights.transfer_pretrained maps `backbone.*` -> `detector.backbone.*` etc., and copies the
# class rows of the classes both sets share: bird, car, truck). Cached once per backbone by
# visrc.experiments.pretrain.pretrained_checkpoint; docs/pretraining.md says what transfers.
# No _base_: everything the model is, is here.
# Schedule: 12 epochs, LR x0.1 after 8 and 11 (mmdet's 1x COCO schedule, the shape that produced
# the paper's COCO weights). On the default toy set (160 images) that is at most 1920 single-image
# samples, fewer than the 3 x 720 key frames of a toy_baseline training, each of which also carries
# a reference frame: the pretraining, shared by every video model of its backbone, costs less than
# one of them. `--max-epochs` shortens it (milestones kept as configured).
custom_imports = dict(imports=['visrc.registry'], allow_failed_imports=False)
default_scope = 'mmdet'

data_root = 'data/toy/'          # `visrc train --data-root` overrides it
classes = ('bird', 'car', 'truck', 'kite', 'frisbee', 'umbrella')   # = visrc.data.toy.COCO_CLASSES
num_classes = 6
img_scale = (256, 144)           # (w, h): = toy_baseline's
fpn_strides = [4, 8, 16, 32, 64, 128]   # P2..P7, = toy_baseline's
ch = 64                          # FPN / head channels, = toy_baseline's
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    type='MaskRCNN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_mask=True, pad_size_divisor=32),
    backbone=dict(
        type='ResNet', depth=18, base_channels=16, num_stages=4, out_indices=(0, 1, 2, 3),
        frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, style='pytorch', init_cfg=None),
    neck=dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=ch, num_outs=6),
    rpn_head=dict(
        type='RPNHead', in_channels=ch, feat_channels=ch,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=fpn_strides),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        # mmdet's own head: toy_baseline's VISRoIHead only adds the reference-frame losses
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=ch, featmap_strides=fpn_strides),
        bbox_head=dict(
            type='Shared2FCBBoxHead', in_channels=ch, fc_out_channels=256, roi_feat_size=7,
            num_classes=num_classes,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=ch, featmap_strides=fpn_strides),
        mask_head=dict(
            type='FCNMaskHead', num_convs=2, in_channels=ch, conv_out_channels=ch,
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
            # = toy_baseline's: 64 RoIs per image (the toy images hold 1-4 objects)
            sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                         add_gt_as_proposals=True),
            mask_size=28, pos_weight=-1, debug=False)),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7),
                 min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=30,
                  mask_thr_binary=0.5)),
    init_cfg=None)

# ---------------------------------------------------------------- data
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,   # = toy_baseline's
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='CocoDataset', data_root=data_root, metainfo=dict(classes=classes),
        ann_file='coco/annotations.json', data_prefix=dict(img='coco/images/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),   # images without objects teach nothing here
        pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

# ---------------------------------------------------------------- schedule
max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs + 1)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05, foreach=True),   # = toy_baseline's
    clip_grad=dict(max_norm=35, norm_type=2))
# warm-up over the first epoch, then x0.1 after epochs 8 and 11
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=4)

# ---------------------------------------------------------------- runtime (= toy_baseline's)
runner_type = 'VISRunner'
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='RNGStateHook')]
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
init_checkpoint = None   # `visrc train --init CKPT`: a detector checkpoint to start from
randomness = dict(seed=0)
