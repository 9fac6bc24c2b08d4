# The paper's baseline (Mask R-CNN + FPN P2..P7 + quasi-dense track head) shrunk to train in a few
# CPU minutes on the embedded toy benchmark (`visrc make-toy`). The model is the base's as is
# (_base_/mask_rcnn_p7_track.py, at the toy sizes: ResNet-18 with base_channels 16, 64 channels);
# the runtime is _base_/default_runtime.py's; this file adds the data and the schedule. One _base_ level.
# Run: `visrc train visrc/configs/toy_baseline.py --data-root DATA_ROOT`.
# Schedule: 3 epochs with the paper's shape (12 epochs, LR x0.1 after 8 and 11: drops at 2/3 and
# 11/12 of training), shortened so every notebook's trainings fit the main job on a 2-core machine.
# The video models start from the toy COCO pretraining (`--init`, toy_pretrain_coco.py), as the
# paper's start from COCO. Training cost per config: `python benchmarks/bench_ablation_train.py`.
_base_ = ['./_base_/mask_rcnn_p7_track.py', './_base_/default_runtime.py']   # + num_classes (6), fpn_strides

data_root = 'data/toy/'          # `visrc train/infer --data-root` overrides it
classes = ('fish', 'shark', 'turtle', 'bird', 'car', 'truck')   # the toy video classes (the base's 6)
img_scale = (256, 144)           # (w, h): the toy frames' size
ch = 64                          # FPN / head channels, = the base's (256 in the paper configs)

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
# _base_/default_runtime.py's (VISRunner, hooks, logging every 20 iterations, 2 checkpoints kept, gloo, seed 0)
