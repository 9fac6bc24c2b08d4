# The paper's baseline (Mask R-CNN + FPN P2..P7 + quasi-dense track head) shrunk to train in a few
# CPU minutes on the embedded toy benchmark (`visrc make-toy`). Everything the model is, is here:
# no _base_ inheritance. Run: `visrc train visrc/configs/toy_baseline.py --data-root DATA_ROOT`.
# Schedule: 3 epochs with the paper's shape (12 epochs, LR x0.1 after 8 and 11: drops at 2/3 and
# 11/12 of training), shortened so every notebook's trainings fit the main job on a 2-core machine.
# The video models start from the toy COCO pretraining (`--init`, toy_pretrain_coco.py), as the
# paper's start from COCO. Training cost per config: `python benchmarks/bench_ablation_train.py`.
custom_imports = dict(imports=['visrc.registry'], allow_failed_imports=False)
default_scope = 'mmdet'

data_root = 'data/toy/'          # `visrc train/infer --data-root` overrides it
classes = ('fish', 'shark', 'turtle', 'bird', 'car', 'truck')   # the toy video classes
num_classes = 6
img_scale = (256, 144)           # (w, h): the toy frames' size
fpn_strides = [4, 8, 16, 32, 64, 128]   # P2..P7: 6 levels, shared by anchors and RoI extractors
ch = 64                          # FPN / head channels (256 in the paper configs)
norm_cfg = dict(type='BN', requires_grad=True)

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
            type='VISRoIHead',
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
            out_channels=ch, featmap_strides=fpn_strides),
        embed_head=dict(
            type='QuasiDenseEmbedHead', num_convs=2, num_fcs=1, in_channels=ch,
            conv_out_channels=ch, fc_out_channels=256, embed_channels=64,
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
    tracker=None,            # association: visrc.tracking (see visrc.models.predictor)
    embed_score_thr=0.05,
    init_cfg=None)

# association used by `visrc infer` / `visrc demo` (visrc.tracking.build_bitrack_config)
tracking = dict(tracker=dict(match_thr=0.5, init_score_thr=0.5, obj_score_thr=0.3, max_age=10),
                merge_iou_thr=0.5)
tracking_mode = 'forward'    # 'bitrack' for the paper's BiTrack (3.4)

# ---------------------------------------------------------------- data
# key frame t + one reference frame uniform in [t - 3, t + 3] (toy videos are 15 frames)
train_pipeline = [
    dict(type='UniformRefFrameSample', num_ref_imgs=1, frame_range=3, filter_key_img=True),
    dict(type='TransformBroadcaster', share_random_params=True, transforms=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadTrackAnnotations', with_mask=True),
        dict(type='Resize', scale=img_scale, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
    ]),
    dict(type='PackTrackInputs'),
]
# one frame at a time at inference (visrc.models.predictor)
test_pipeline = [
    dict(type='TransformBroadcaster', transforms=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=img_scale, keep_ratio=True),
    ]),
    dict(type='PackTrackInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='TrackImgSampler'),          # every frame of every video is a key once per epoch
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),
    dataset=dict(
        type='YTVISRawDataset', data_root=data_root, metainfo=dict(classes=classes),
        ann_file='train/instances.json', data_prefix=dict(img_path='train/JPEGImages'),
        pipeline=train_pipeline))
# the split `visrc infer` runs on by default (GT included in the toy valid split)
test_split = dict(ann_file='valid/instances.json', img_prefix='valid/JPEGImages')
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

# ---------------------------------------------------------------- schedule
max_epochs = 3
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs + 1)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05, foreach=True),   # foreach: multi-tensor, same arithmetic
    clip_grad=dict(max_norm=35, norm_type=2))
# warm-up over the first epoch, whatever its length (a run on 1 frame per video has 12 iterations
# per epoch: a fixed 100-iteration warm-up would cover all of it), then x0.1 after 2/3 and again
# after 11/12 of the iterations (visrc.models.schedule; `--max-epochs` keeps the shape)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='FractionMultiStepLR', fractions=(2 / 3, 11 / 12), gamma=0.1, begin=0, end=max_epochs,
         by_epoch=True, convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=False, base_batch_size=4)

# ---------------------------------------------------------------- runtime
runner_type = 'VISRunner'    # mmengine Runner + DDP/SyncBN that also work on CPU (gloo)
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
randomness = dict(seed=0)
