# The paper's baseline with a ResNeSt-50 backbone (sections 2 and 4.1; Table 1 row 1, Exp 1; the full
# system of row 5 is paper_s50_full.py): Mask R-CNN + FPN P2..P7 + quasi-dense track head, 360x640
# frames, 12 epochs (LR x0.1 after epochs 8 and 11), SGD momentum 0.9, batch 16 = 4 GPUs x 4 frame
# pairs, synchronized BatchNorm. GPU config: not run here (a test builds it and runs one forward
# pass). The paper's exact learning rates and reference-frame interval were lost in the paper's
# text extraction; the values below are mmdet's standard ones.
#   torchrun --nproc_per_node=4 -m visrc train visrc/configs/paper_s50.py --launcher pytorch \
#       --data-root data/youtube_vis_2021 --init /path/to/coco_pretrained.pth
# One _base_ level: the model block (at the toy sizes; overridden below to the paper's) and the runtime
_base_ = ['./_base_/mask_rcnn_p7_track.py', './_base_/default_runtime.py']

data_root = 'data/youtube_vis_2021/'
dataset_version = '2021'
classes = ('airplane', 'bear', 'bird', 'boat', 'car', 'cat', 'cow', 'deer', 'dog', 'duck',
           'earless_seal', 'elephant', 'fish', 'flying_disc', 'fox', 'frog', 'giant_panda',
           'giraffe', 'horse', 'leopard', 'lizard', 'monkey', 'motorbike', 'mouse', 'parrot',
           'person', 'rabbit', 'shark', 'skateboard', 'snake', 'snowboard', 'squirrel',
           'surfboard', 'tennis_racket', 'tiger', 'train', 'truck', 'turtle', 'whale', 'zebra')
num_classes = 40
img_scale = (640, 360)                   # (w, h)
norm_cfg = dict(type='SyncBN', requires_grad=True)   # under CPU DDP, VISRunner swaps in VisSyncBN

# the base's model at the paper's sizes: ResNeSt-50, 256 channels (FPN and every head), 40 classes,
# and mmdet's standard head widths, sampler sizes and proposal counts; the rest is the base's
model = dict(
    data_preprocessor=dict(mean=[123.68, 116.779, 103.939], std=[58.393, 57.12, 57.375]),  # ResNeSt's
    detector=dict(
        backbone=dict(
            _delete_=True,
            type='ResNeSt', stem_channels=64, depth=50, radix=2, reduction_factor=4,
            avg_down_stride=True, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
            norm_cfg=norm_cfg, norm_eval=False, style='pytorch', init_cfg=None),
        neck=dict(in_channels=[256, 512, 1024, 2048], out_channels=256),
        rpn_head=dict(in_channels=256, feat_channels=256),
        roi_head=dict(
            bbox_roi_extractor=dict(out_channels=256),
            bbox_head=dict(in_channels=256, fc_out_channels=1024, num_classes=num_classes),
            mask_roi_extractor=dict(out_channels=256),
            mask_head=dict(num_convs=4, in_channels=256, conv_out_channels=256,
                           num_classes=num_classes)),
        train_cfg=dict(
            rpn=dict(sampler=dict(num=256)),
            rpn_proposal=dict(nms_pre=2000, max_per_img=1000),
            rcnn=dict(sampler=dict(num=512))),       # mmdet's 512 RoIs per image
        # test-time proposals as mmdet's MaskTrack R-CNN YouTube-VIS configs (few objects per video)
        test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=200), rcnn=dict(max_per_img=100))),
    track_head=dict(
        roi_extractor=dict(out_channels=256),
        embed_head=dict(num_convs=4, in_channels=256, conv_out_channels=256, fc_out_channels=1024,
                        embed_channels=256, norm_cfg=dict(num_groups=32)),
        train_cfg=dict(sampler=dict(num=256))))

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
