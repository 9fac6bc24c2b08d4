# Table 1 row "+TCIS" on the toy benchmark: toy_baseline.py + Temporally Correlated Instance
# Segmentation (paper 3.3), a training-only loss (`loss_mask_tcis`) through the shared mask head.
# Changed keys vs the baseline (everything else, schedule included, is toy_baseline.py's):
#   model.detector.roi_head.type       VISRoIHead -> VISTCISRoIHead
#   model.detector.roi_head.tcis       the TCIS module (Correlation Transform + deformable conv)
#   model.detector.roi_head.tcis_loss_weight, tcis_rois_per_instance
# Inference is the baseline's: checkpoints with or without `tcis.*` weights predict the same.
_base_ = ['./toy_baseline.py']

ch = 64   # = toy_baseline's FPN / mask RoI channels

model = dict(
    detector=dict(
        roi_head=dict(
            type='VISTCISRoIHead',
            # RoI features: ch channels at the mask extractor's 14 x 14
            tcis=dict(in_channels=ch, roi_size=14, deform_kernel=3, deform_groups=1,
                      norm_cfg=dict(type='BN', requires_grad=True)),
            tcis_loss_weight=1.0,
            # one random positive RoI per matched instance (paper: "for each matched instance");
            # all positives would make mmcv's CPU deformable-conv backward dominate training
            tcis_rois_per_instance=1)))
