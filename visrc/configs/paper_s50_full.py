# The paper's full system with a ResNeSt-50 backbone: Table 1 row 5 (TCIS + MultiTask + MSD +
# BiTrack) on YouTube-VIS 2021, one of Table 2's members. No _base_: the whole model is here.
#   model      Mask R-CNN + FPN P2..P7 + quasi-dense track head (paper_s50.py's baseline) with
#              TCIS (3.3) at 256 channels, mask scoring, semantic segmentation on P3 and
#              multi-label classification on C5 over the C = 40 classes (3.5.1), and box/mask/
#              mask-IoU heads over C + K classes, K auxiliary classes for the non-target COCO
#              objects (3.2, Algorithm 1; the auxiliary classes are dropped at inference)
#   data       Multi-Source Data (3.2): YouTube-VIS 2021 train + COCO 2017 train + an OpenImages
#              subset, mixed by MixedSourceSampler; still images get pseudo reference frames,
#              OpenImages boxes without a usable mask are weak (detection and tracking only)
#   schedule   360x640, 12 epochs, LR x0.1 after epochs 8 and 11, SGD momentum 0.9, batch 16 =
#              4 GPUs x 4, SyncBN; the paper's learning rate was lost in its text extraction:
#              mmdet's standard 0.02 for batch 16
#   inference  BiTrack with label voting (3.4, 3.5.4); association by QDTrack's bi-softmax
# K = 59: one auxiliary index per COCO 2017 class that the reviewed table
# (visrc/data/category_maps/coco2017_to_ytvis.csv) sends to aux for YouTube-VIS 2021 (80 - 21);
# the paper's K was lost in its text extraction, and Algorithm 1 ties no index to a class.
#
# data_root layout (one folder; link the datasets into it, `docs/real_data.md` has the commands):
#   <data_root>/train/instances.json, train/JPEGImages/<video>/<frame>.jpg   YouTube-VIS 2021 train
#   <data_root>/valid/instances.json, valid/JPEGImages/...                   YouTube-VIS 2021 valid
#   <data_root>/coco/annotations/instances_train2017.json, coco/train2017/   COCO 2017 (as released)
#   <data_root>/openimages/train/<ImageID>.jpg                               OpenImages train images
#   <data_root>/openimages/annotations/openimages_ytvis2021.json             written by
#       python -m visrc.data.openimages --version 2021 ... (the released CSVs + mask PNGs -> JSON)
# Train / infer:
#   torchrun --nproc_per_node=4 -m visrc train visrc/configs/paper_s50_full.py --launcher pytorch \
#       --data-root /data/vis --init /path/to/coco_pretrained_mask_rcnn.pth      (paper 4.1)
#   visrc infer visrc/configs/paper_s50_full.py work_dirs/paper_s50_full/epoch_12.pth --data /data/vis \
#       --out results.json --submission-zip submission.zip
custom_imports = dict(imports=['visrc.registry'], allow_failed_imports=False)
default_scope = 'mmdet'

data_root = 'data/vis/'                  # `visrc train --data-root` overrides it (every source)
dataset_version = '2021'                 # YouTube-VIS version: class list and category-table column
classes = ('airplane', 'bear', 'bird', 'boat', 'car', 'cat', 'cow', 'deer', 'dog', 'duck',
           'earless_seal', 'elephant', 'fish', 'flying_disc', 'fox', 'frog', 'giant_panda',
           'giraffe', 'horse', 'leopard', 'lizard', 'monkey', 'motorbike', 'mouse', 'parrot',
           'person', 'rabbit', 'shark', 'skateboard', 'snake', 'snowboard', 'squirrel',
           'surfboard', 'tennis_racket', 'tiger', 'train', 'truck', 'turtle', 'whale', 'zebra')
num_classes = 40                         # C: the YouTube-VIS classes
num_aux = 59                             # K: auxiliary classes (see the header)
img_scale = (640, 360)                   # (w, h)
fpn_strides = [4, 8, 16, 32, 64, 128]    # P2..P7 (the paper's extra P7: 6 levels)
ch = 256                                 # FPN, RoI, TCIS and semantic-segmentation channels
c5_channels = 2048                       # ResNeSt-50 C5
norm_cfg = dict(type='SyncBN', requires_grad=True)   # under CPU DDP, VISRunner swaps in VisSyncBN
msd_ratios = [2, 1, 1]                   # videos : COCO : OpenImages samples per epoch

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
        neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=ch, num_outs=6),
        rpn_head=dict(
            type='RPNHead', in_channels=ch, feat_channels=ch,
            anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                                  strides=fpn_strides),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                            target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        roi_head=dict(
            type='VISTCISMaskScoringRoIHead',
            # TCIS: Correlation Transform + deformable conv on the 14x14 mask RoI features,
            # training only, through the shared mask head; every positive RoI of a matched instance
            tcis=dict(in_channels=ch, roi_size=14, deform_kernel=3, deform_groups=1, norm_cfg=norm_cfg),
            tcis_loss_weight=1.0, tcis_rois_per_instance=None,
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=ch, featmap_strides=fpn_strides),
            # C + K classes in training (Algorithm 1 labels the auxiliary objects); outputs C
            bbox_head=dict(
                type='AuxClassBBoxHead', num_target_classes=num_classes, num_aux_classes=num_aux,
                num_classes=num_classes + num_aux, aux_drop_mode='columns',
                in_channels=ch, fc_out_channels=1024, roi_feat_size=7,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
            mask_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
                out_channels=ch, featmap_strides=fpn_strides),
            # weak instances (no or noisy mask) are left out of every mask loss
            mask_head=dict(
                type='WeakMaskFCNMaskHead', num_convs=4, in_channels=ch, conv_out_channels=ch,
                num_classes=num_classes + num_aux,
                loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0)),
            # mask scoring: predicted mask IoU x class score at inference (mmdet's MaskIoUHead sizes)
            mask_iou_head=dict(
                type='WeakMaskIoUHead', num_convs=4, num_fcs=2, roi_feat_size=14,
                in_channels=ch, conv_out_channels=ch, fc_out_channels=1024,
                num_classes=num_classes + num_aux,
                loss_iou=dict(type='MSELoss', loss_weight=0.5))),
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
                mask_size=28, pos_weight=-1, mask_thr_binary=0.5, debug=False)),
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
            out_channels=ch, featmap_strides=fpn_strides),
        embed_head=dict(
            type='QuasiDenseEmbedHead', num_convs=4, num_fcs=1, in_channels=ch,
            conv_out_channels=ch, fc_out_channels=1024, embed_channels=256,
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
    # training-only multi-task heads over the C target classes (auxiliary objects are ignored)
    aux_heads=dict(
        semseg=dict(type='SemSegHead', num_classes=num_classes, in_channels=ch, num_convs=4,
                    conv_channels=ch, feat_stride=8, in_index=1, loss_weight=1.0),     # P3
        multilabel=dict(type='MultiLabelClsHead', num_classes=num_classes, in_channels=c5_channels,
                        in_index=-1, loss_weight=1.0)),                                 # C5
    tracker=None,               # association: visrc.tracking (`tracking` below)
    embed_score_thr=0.05,
    init_cfg=None)

# inference: BiTrack (forward + backward association, tracklets merged above merge_iou_thr) and
# label voting; QDTrack's association: bi-softmax with one frame of backdrops (`similarity='cosine',
# backdrop_frames=0` is the other option)
tracking = dict(
    tracker=dict(match_thr=0.5, init_score_thr=0.5, obj_score_thr=0.3, max_age=10,
                 similarity='bisoftmax', momentum=0.8, backdrop_frames=1, backdrop_nms_iou=0.3),
    merge_iou_thr=0.5)
tracking_mode = 'bitrack'

# ---------------------------------------------------------------- data
# one pipeline for every source: a still image is a 1-frame video whose reference copy
# PseudoRefFrame warps (shift, rotate, flip: pseudo track ids); weak flags ride along to the losses
train_pipeline = [
    dict(type='UniformRefFrameSample', num_ref_imgs=1, frame_range=10, filter_key_img=True),
    dict(type='TransformBroadcaster', share_random_params=True, transforms=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadMSDAnnotations', with_mask=True),
        dict(type='Resize', scale=img_scale, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
    ]),
    dict(type='PseudoRefFrame', max_shift=0.1, max_rotate_deg=10.0, flip_prob=0.5,
         scale_range=(0.9, 1.1), min_visible=0.25),
    dict(type='PackMSDInputs'),
]
test_pipeline = [
    dict(type='TransformBroadcaster', transforms=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=img_scale, keep_ratio=True),
    ]),
    dict(type='PackTrackInputs'),
]
# Epoch: the videos get one sample per train frame (as TrackImgSampler's epoch of the baseline),
# COCO and OpenImages half as many each on top (msd_ratios), whatever the datasets' sizes.
# COCO: the reviewed table maps its 80 classes (21 targets, 59 auxiliary); images with only
# auxiliary objects are kept. OpenImages: target classes only, images without one dropped.
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,      # x 4 GPUs = 16
    sampler=dict(type='MixedSourceSampler', ratios=msd_ratios, anchor_source=0),
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),  # COCO mixes portrait and landscape
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(type='YTVISRawDataset', data_root=data_root, dataset_version=dataset_version,
                 metainfo=dict(classes=classes),
                 ann_file='train/instances.json', data_prefix=dict(img_path='train/JPEGImages'),
                 pipeline=train_pipeline),
            dict(type='MSDImageDataset', data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='coco/annotations/instances_train2017.json',
                 data_prefix=dict(img_path='coco/train2017'),
                 source='coco', category_table=dataset_version, num_aux=num_aux,
                 pipeline=train_pipeline),
            dict(type='MSDImageDataset', data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='openimages/annotations/openimages_ytvis2021.json',
                 data_prefix=dict(img_path='openimages/train'),
                 source='openimages', category_table=dataset_version, num_aux=num_aux,
                 unmatched='ignore', require_target=True, id_offset=10**8,
                 pipeline=train_pipeline),
        ]))
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
load_from = None                # a checkpoint of this model; COCO-pretrained weights: `--init CKPT`
resume = False
randomness = dict(seed=0)
