# The toy stand-in for the paper's MS COCO pretraining (section 4.1: "networks are pretrained on the
# MS COCO 2017 dataset"): a plain mmdet image Mask R-CNN with exactly toy_baseline.py's backbone
# (ResNet-18, base_channels 16), FPN (P2..P7), RPN and box/mask heads, trained on the toy benchmark's
# COCO-style still images (`coco/` of the data root, all 6 of its classes). Its checkpoint is the
# init of the video models: `visrc train toy_baseline --init <its checkpoint>` (visrc.models.
# init_weights.transfer_pretrained maps `backbone.*` -> `detector.backbone.*` etc., and copies the
# class rows of the classes both sets share: bird, car, truck). Cached once per backbone by
# visrc.experiments.pretrain.pretrained_checkpoint; docs/pretraining.md says what transfers.
# Schedule: 12 epochs, LR x0.1 after 8 and 11 (mmdet's 1x COCO schedule, the shape that produced
# the paper's COCO weights). On the default toy set (160 images) that is at most 1920 single-image
# samples, fewer than the 3 x 720 key frames of a toy_baseline training, each of which also carries
# a reference frame: the pretraining, shared by every video model of its backbone, costs less than
# one of them. `--max-epochs` shortens it (milestones kept as configured).
# The model: the base's detector (_base_/mask_rcnn_p7_track.py, the one toy_baseline.py trains
# inside its video model), so the two cannot drift apart; the runtime: _base_/default_runtime.py's.
# One _base_ level.
_base_ = ['./_base_/mask_rcnn_p7_track.py', './_base_/default_runtime.py']   # + num_classes (6), fpn_strides

data_root = 'data/toy/'          # `visrc train --data-root` overrides it
classes = ('bird', 'car', 'truck', 'kite', 'frisbee', 'umbrella')   # = visrc.data.toy.COCO_CLASSES (the base's 6)
img_scale = (256, 144)           # (w, h): = toy_baseline's
ch = 64                          # FPN / head channels, = the base's and toy_baseline's

# the base's detector is the whole model (`_delete_`: no track head around it), with mmdet's image
# data preprocessor and its own RoI head (toy_baseline's VISRoIHead only adds the reference-frame
# losses); everything else (backbone, FPN, RPN, heads, samplers, thresholds) is the base's
model = dict(
    _base_.model.detector,
    _delete_=True,
    data_preprocessor=dict(_base_.model.data_preprocessor, type='DetDataPreprocessor'),
    roi_head=dict(_base_.model.detector.roi_head, type='StandardRoIHead'))

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

# ---------------------------------------------------------------- runtime
# _base_/default_runtime.py's (VISRunner, hooks, logging every 20 iterations, 2 checkpoints kept, gloo, seed 0)
init_checkpoint = None   # `visrc train --init CKPT`: a detector checkpoint to start from
