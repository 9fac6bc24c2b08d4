# Table 1 row "+TCIS +MultiTask" on the toy benchmark: toy_baseline.py + TCIS (paper 3.3) + the
# multi-task add-ins of 3.5.1: semantic segmentation on P3, multi-label classification on C5
# (both training-only) and mask scoring (a mask-IoU head; its IoU multiplies the class score at
# inference). Changed keys vs the baseline (everything else, schedule included, is toy_baseline.py's):
#   model.detector.roi_head.type          VISRoIHead -> VISTCISMaskScoringRoIHead
#   model.detector.roi_head.tcis / tcis_loss_weight         (as in toy_tcis.py)
#   model.detector.roi_head.mask_iou_head WeakMaskIoUHead (loss_mask_iou)
#   model.detector.train_cfg.rcnn.mask_thr_binary            (the IoU targets binarise with it)
#   model.aux_heads                       semseg (SemSegHead, loss_semseg), multilabel
#                                         (MultiLabelClsHead, loss_multilabel)
_base_ = ['./toy_baseline.py']

num_classes = 6    # C, = toy_baseline's
ch = 64            # = toy_baseline's FPN / head channels
c5_channels = 128  # toy ResNet-18 with base_channels=16: C5 has 16 * 8 channels

model = dict(
    detector=dict(
        roi_head=dict(
            type='VISTCISMaskScoringRoIHead',
            tcis=dict(in_channels=ch, roi_size=14, deform_kernel=3, deform_groups=1,
                      norm_cfg=dict(type='BN', requires_grad=True)),
            tcis_loss_weight=1.0, tcis_rois_per_instance=1,
            mask_iou_head=dict(
                type='WeakMaskIoUHead', num_convs=2, num_fcs=2, roi_feat_size=14,
                in_channels=ch, conv_out_channels=ch, fc_out_channels=256,
                num_classes=num_classes,            # = the mask head's
                loss_iou=dict(type='MSELoss', loss_weight=0.5))),
        train_cfg=dict(rcnn=dict(mask_thr_binary=0.5))),
    aux_heads=dict(
        # FPN P3 (in_index 1 of P2..P7, stride 8) -> one channel per target class
        semseg=dict(type='SemSegHead', num_classes=num_classes, in_channels=ch, num_convs=2,
                    conv_channels=ch, feat_stride=8, in_index=1, loss_weight=1.0),
        # backbone C5 -> a C-vector, BCE
        multilabel=dict(type='MultiLabelClsHead', num_classes=num_classes, in_channels=c5_channels,
                        in_index=-1, loss_weight=1.0)))
