# Table 1 row "+TCIS +MultiTask +MSD" on the toy benchmark: toy_tcis_multitask.py's model trained
# with Multi-Source Data (paper 3.2): the toy videos mixed with the COCO-style and OpenImages-style
# still images (pseudo reference frames by a random affine warp, weak masks left out of every mask
# loss), non-target COCO objects (kite, frisbee, umbrella) kept as K auxiliary classes (Algorithm 1).
# _base_: toy_baseline.py (which has the model block and runtime of _base_/ as its own _base_);
# changed keys vs the baseline (the schedule is the baseline's):
#   model.detector.roi_head.type          VISRoIHead -> VISTCISMaskScoringRoIHead
#   model.detector.roi_head.tcis / tcis_loss_weight         (as in toy_tcis.py)
#   model.detector.roi_head.bbox_head     AuxClassBBoxHead over C + K classes (outputs C only)
#   model.detector.roi_head.mask_head     WeakMaskFCNMaskHead over C + K classes
#   model.detector.roi_head.mask_iou_head WeakMaskIoUHead over C + K classes
#   model.detector.train_cfg.rcnn.mask_thr_binary
#   model.aux_heads                       semseg + multilabel over the C target classes
#   train_pipeline, train_dataloader      ConcatDataset(videos, coco, openimages) drawn by
#                                         MixedSourceSampler in the ratio msd_ratios
# Epoch: the paper's union. `anchor_source=0`: the videos get one sample per train frame, as many
# as in the baseline's epoch (TrackImgSampler: every frame once), and with 2:1:1 the still images
# come on top (2 x the frames in all: 1440 samples on the default toy set). For the baseline's
# iterations instead (the videos' share halved), pass `--cfg-options train_dataloader.sampler.length=720
# train_dataloader.sampler.anchor_source=None` (notebook 03's `msd_equal_compute` row does this).
_base_ = ['./toy_baseline.py']

data_root = 'data/toy/'            # `visrc train --data-root` overrides it (every source)
classes = ('fish', 'shark', 'turtle', 'bird', 'car', 'truck')   # = toy_baseline's
num_classes = 6                    # C: target (video) classes
num_aux = 2                        # K: auxiliary classes for the non-target COCO objects
img_scale = (256, 144)             # = toy_baseline's
ch = 64                            # = toy_baseline's FPN / head channels
c5_channels = 128                  # toy ResNet-18 with base_channels=16: C5 has 16 * 8 channels
msd_ratios = [2, 1, 1]             # videos : coco : openimages

model = dict(
    detector=dict(
        roi_head=dict(
            type='VISTCISMaskScoringRoIHead',
            tcis=dict(in_channels=ch, roi_size=14, deform_kernel=3, deform_groups=1,
                      norm_cfg=dict(type='BN', requires_grad=True)),
            tcis_loss_weight=1.0, tcis_rois_per_instance=1,
            bbox_head=dict(
                type='AuxClassBBoxHead', num_target_classes=num_classes, num_aux_classes=num_aux,
                num_classes=num_classes + num_aux, aux_drop_mode='columns'),
            mask_head=dict(type='WeakMaskFCNMaskHead', num_classes=num_classes + num_aux),
            mask_iou_head=dict(
                type='WeakMaskIoUHead', num_convs=2, num_fcs=2, roi_feat_size=14,
                in_channels=ch, conv_out_channels=ch, fc_out_channels=256,
                num_classes=num_classes + num_aux,  # = the mask head's
                loss_iou=dict(type='MSELoss', loss_weight=0.5))),
        train_cfg=dict(rcnn=dict(mask_thr_binary=0.5))),
    aux_heads=dict(
        semseg=dict(type='SemSegHead', num_classes=num_classes, in_channels=ch, num_convs=2,
                    conv_channels=ch, feat_stride=8, in_index=1, loss_weight=1.0),
        multilabel=dict(type='MultiLabelClsHead', num_classes=num_classes, in_channels=c5_channels,
                        in_index=-1, loss_weight=1.0)))

# ---------------------------------------------------------------- data
# one pipeline for every source: a still image is a 1-frame video whose reference copy
# PseudoRefFrame warps (video frames are left alone); weak flags ride along to the losses
train_pipeline = [
    dict(type='UniformRefFrameSample', num_ref_imgs=1, frame_range=3, filter_key_img=True),
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
train_dataloader = dict(
    _delete_=True,
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='MixedSourceSampler', ratios=msd_ratios, anchor_source=0),   # the union (see the header)
    batch_sampler=None,   # mmdet's TrackAspectRatioBatchSampler needs sampler.dataset; all toy images are landscape
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(type='YTVISRawDataset', data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='train/instances.json', data_prefix=dict(img_path='train/JPEGImages'),
                 pipeline=train_pipeline),
            dict(type='MSDImageDataset', data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='coco/annotations.json', data_prefix=dict(img_path='coco/images'),
                 source='coco', num_aux=num_aux, pipeline=train_pipeline),
            dict(type='MSDImageDataset', data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='openimages/annotations.json', data_prefix=dict(img_path='openimages/images'),
                 source='openimages', num_aux=num_aux, id_offset=10**6,
                 pipeline=train_pipeline),
        ]))
