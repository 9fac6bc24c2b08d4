# The paper's full system with a ResNeSt-50 backbone: Table 1 row 5 (TCIS + MultiTask + MSD +
# BiTrack) on YouTube-VIS 2021, one of Table 2's members. One _base_ level: the model block of
# _base_/mask_rcnn_p7_track.py, overridden below to the paper's sizes and the full system's heads,
# and _base_/default_runtime.py.
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
_base_ = ['./_base_/mask_rcnn_p7_track.py', './_base_/default_runtime.py']

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
ch = 256                                 # FPN, RoI, TCIS and semantic-segmentation channels
c5_channels = 2048                       # ResNeSt-50 C5
norm_cfg = dict(type='SyncBN', requires_grad=True)   # under CPU DDP, VISRunner swaps in VisSyncBN
msd_ratios = [2, 1, 1]                   # videos : COCO : OpenImages samples per epoch

# the base's model at paper_s50.py's sizes (ResNeSt-50, 256 channels, mmdet's standard head widths,
# sampler sizes and proposal counts) with the full system's RoI head, C + K class heads and
# multi-task heads; the rest is the base's
model = dict(
    data_preprocessor=dict(mean=[123.68, 116.779, 103.939], std=[58.393, 57.12, 57.375]),  # ResNeSt's
    detector=dict(
        backbone=dict(
            _delete_=True,
            type='ResNeSt', stem_channels=64, depth=50, radix=2, reduction_factor=4,
            avg_down_stride=True, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
            norm_cfg=norm_cfg, norm_eval=False, style='pytorch', init_cfg=None),
        neck=dict(in_channels=[256, 512, 1024, 2048], out_channels=ch),
        rpn_head=dict(in_channels=ch, feat_channels=ch),
        roi_head=dict(
            type='VISTCISMaskScoringRoIHead',
            # TCIS: Correlation Transform + deformable conv on the 14x14 mask RoI features,
            # training only, through the shared mask head; every positive RoI of a matched instance
            tcis=dict(in_channels=ch, roi_size=14, deform_kernel=3, deform_groups=1, norm_cfg=norm_cfg),
            tcis_loss_weight=1.0, tcis_rois_per_instance=None,
            bbox_roi_extractor=dict(out_channels=ch),
            # C + K classes in training (Algorithm 1 labels the auxiliary objects); outputs C
            bbox_head=dict(
                type='AuxClassBBoxHead', num_target_classes=num_classes, num_aux_classes=num_aux,
                num_classes=num_classes + num_aux, aux_drop_mode='columns',
                in_channels=ch, fc_out_channels=1024),
            mask_roi_extractor=dict(out_channels=ch),
            # weak instances (no or noisy mask) are left out of every mask loss
            mask_head=dict(type='WeakMaskFCNMaskHead', num_convs=4, in_channels=ch, conv_out_channels=ch,
                           num_classes=num_classes + num_aux),
            # mask scoring: predicted mask IoU x class score at inference (mmdet's MaskIoUHead sizes)
            mask_iou_head=dict(
                type='WeakMaskIoUHead', num_convs=4, num_fcs=2, roi_feat_size=14,
                in_channels=ch, conv_out_channels=ch, fc_out_channels=1024,
                num_classes=num_classes + num_aux,
                loss_iou=dict(type='MSELoss', loss_weight=0.5))),
        train_cfg=dict(
            rpn=dict(sampler=dict(num=256)),
            rpn_proposal=dict(nms_pre=2000, max_per_img=1000),
            rcnn=dict(sampler=dict(num=512), mask_thr_binary=0.5)),   # the IoU targets binarise with it
        test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=200), rcnn=dict(max_per_img=100))),
    track_head=dict(
        roi_extractor=dict(out_channels=ch),
        embed_head=dict(num_convs=4, in_channels=ch, conv_out_channels=ch, fc_out_channels=1024,
                        embed_channels=256, norm_cfg=dict(num_groups=32)),
        train_cfg=dict(sampler=dict(num=256))),
    # training-only multi-task heads over the C target classes (auxiliary objects are ignored)
    aux_heads=dict(
        semseg=dict(type='SemSegHead', num_classes=num_classes, in_channels=ch, num_convs=4,
                    conv_channels=ch, feat_stride=8, in_index=1, loss_weight=1.0),     # P3
        multilabel=dict(type='MultiLabelClsHead', num_classes=num_classes, in_channels=c5_channels,
                        in_index=-1, loss_weight=1.0)))                                 # C5

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
# _base_/default_runtime.py's, on GPUs: nccl, and a 50-iteration log and 3 checkpoints kept
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(max_keep_ckpts=3))
env_cfg = dict(dist_cfg=dict(backend='nccl'))
log_processor = dict(window_size=50)
