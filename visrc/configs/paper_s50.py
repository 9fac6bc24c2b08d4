# The paper's baseline with a ResNeSt-50 backbone (sections 2 and 4.1; Table 1 row 1, Exp 1; the full
# system of row 5 is paper_s50_full.py): Mask R-CNN + FPN P2..P7 + quasi-dense track head, 360x640
# frames, 12 epochs (LR x0.1 after epochs 8 and 11), SGD momentum 0.9, batch 16 = 4 GPUs x 4 frame
# pairs, synchronized BatchNorm. GPU config: not run here (a test builds it and runs one forward
# pass). The paper's exact learning rates and reference-frame interval were lost in the paper's
# text extraction; the values below are mmdet's standard ones.
#   torchrun --nproc_per_node=4 -m visrc train visrc/configs/paper_s50.py --launcher pytorch \
#       --data-root data/youtube_vis_2021 --init /path/to/coco_pretrained.pth
custom_imports = dict(imports=['visrc.registry'], allow_failed_imports=False)
default_scope = 'mmdet'

data_root = 'data/youtube_vis_2021/'
dataset_version = '2021'
classes = ('airplane', 'bear', 'bird', 'boat', 'car', 'cat', 'cow', 'deer', 'dog', 'duck',
           'earless_seal', 'elephant', 'fish', 'flying_disc', 'fox', 'frog', 'giant_panda',
           'giraffe', 'horse', 'leopard', 'lizard', 'monkey', 'motorbike', 'mouse', 'parrot',
           'person', 'rabbit', 'shark', 'skateboard', 'snake', 'snowboard', 'squirrel',
           'surfboard', 'tennis_racket', 'tiger', 'train', 'truck', 'turtle', 'whale', 'zebra')
num_classes = 40
img_scale = (640, 360)                   # (w, h)
fpn_strides = [4, 8, 16, 32, 64, 128]    # P2..P7 (the paper's extra P7: 6 levels)
norm_cfg = dict(type='SyncBN', requires_grad=True)   # under CPU DDP, VISRunner swaps in VisSyncBN

model = dict(
    type='VISQDTrack',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[123.68, 116.779, 103.939], std=[58.393, 57.12, 57.375],
        bgr_to_rgb=True, pad_mask=True, pad_size_divisor=32),
    detector=dict(
        type='MaskRCNN',
        backbone=dict(
            type='ResNeSt', stem_channels=64, depth=50, radix=2, reduction_factor=4,
            avg_down_stride=True, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
            norm_cfg=norm_cfg, norm_eval=False, style='pytorch', init_cfg=None),
        neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=6),
        rpn_head=dict(
            type='RPNHead', in_channels=256, feat_channels=256,
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
                out_channels=256, featmap_strides=fpn_strides),
            bbox_head=dict(
                type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024, roi_feat_size=7,
                num_classes=num_classes,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
            mask_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
                out_channels=256, featmap_strides=fpn_strides),
            mask_head=dict(
                type='FCNMaskHead', num_convs=4, in_channels=256, conv_out_channels=256,
                num_classes=num_classes,
                loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
        train_cfg=dict(
            rpn=dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                              min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
                sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                             add_gt_as_proposals=False),
                allowed_border=-1, pos_weight=-1, debug=False),
            rpn_proposal=dict(nms_pre=2000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                              min_bbox_size=0),
            rcnn=dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                              min_pos_iou=0.5, match_low_quality=True, ignore_iof_thr=-1),
                sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                             add_gt_as_proposals=True),
                mask_size=28, pos_weight=-1, debug=False)),
        # test-time proposals as mmdet's MaskTrack R-CNN YouTube-VIS configs (few objects per video)
        test_cfg=dict(
            rpn=dict(nms_pre=200, max_per_img=200, nms=dict(type='nms', iou_threshold=0.7),
                     min_bbox_size=0),
            rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100,
                      mask_thr_binary=0.5)),
        init_cfg=None),
    track_head=dict(
        type='QuasiDenseTrackHead',
        roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256, featmap_strides=fpn_strides),
        embed_head=dict(
            type='QuasiDenseEmbedHead', num_convs=4, num_fcs=1, in_channels=256,
            conv_out_channels=256, fc_out_channels=1024, embed_channels=256,
            norm_cfg=dict(type='GN', num_groups=32),
            loss_track=dict(type='MultiPosCrossEntropyLoss', loss_weight=0.25),
            loss_track_aux=dict(type='MarginL2Loss', neg_pos_ub=3, pos_margin=0, neg_margin=0.1,
                                hard_mining=True, loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.5,
                          min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type='CombinedSampler', num=256, pos_fraction=0.5, neg_pos_ub=3,
                         add_gt_as_proposals=True,
                         pos_sampler=dict(type='InstanceBalancedPosSampler'),
                         neg_sampler=dict(type='RandomSampler')))),
    tracker=None,               # association: visrc.tracking (`tracking` below)
    embed_score_thr=0.05,
    init_cfg=None)

# association used by `visrc infer` / `visrc demo` (visrc.tracking.build_bitrack_config)
tracking = dict(tracker=dict(match_thr=0.5, init_score_thr=0.5, obj_score_thr=0.3, max_age=10),
                merge_iou_thr=0.5)
tracking_mode = 'forward'       # 'bitrack' for the paper's BiTrack (3.4)

# ---------------------------------------------------------------- data
train_pipeline = [
    dict(type='UniformRefFrameSample', num_ref_imgs=1, frame_range=10, filter_key_img=True),
    dict(type='TransformBroadcaster', share_random_params=True, transforms=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadTrackAnnotations', with_mask=True),
        dict(type='Resize', scale=img_scale, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
    ]),
    dict(type='PackTrackInputs'),
]
test_pipeline = [
    dict(type='TransformBroadcaster', transforms=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=img_scale, keep_ratio=True),
    ]),
    dict(type='PackTrackInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,      # x 4 GPUs = 16
    sampler=dict(type='TrackImgSampler'),
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),
    dataset=dict(
        type='YTVISRawDataset', data_root=data_root, dataset_version=dataset_version,
        metainfo=dict(classes=classes),
        ann_file='train/instances.json', data_prefix=dict(img_path='train/JPEGImages'),
        pipeline=train_pipeline))
test_split = dict(ann_file='valid/instances.json', img_prefix='valid/JPEGImages')
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
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001, foreach=True),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
sync_bn = 'torch'               # any BatchNorm becomes synchronized under DDP (VISRunner)

# ---------------------------------------------------------------- runtime
runner_type = 'VISRunner'
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='RNGStateHook')]
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None                # a checkpoint of this model; COCO-pretrained weights (paper 4.1): `--init CKPT`
resume = False
randomness = dict(seed=0)
