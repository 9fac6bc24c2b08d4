# The paper's full system (Table 1 row 5's components) with a Swin-S backbone, a Table 2 member:
# everything as paper_s50_full.py (its header has the data layout and the commands) except
#   model.detector.backbone                  Swin-S (mmdet's Swin Mask R-CNN settings)
#   model.detector.neck.in_channels          Swin-S stages: 96, 192, 384, 768
#   model.aux_heads.multilabel.in_channels   C5 = Swin-S stage 4: 768
#   optim_wrapper                            AdamW (paper 4.1); the paper's learning rate was lost
#                                            in its text extraction: mmdet's Swin Mask R-CNN values
# 12 epochs, LR x0.1 after epochs 8 and 11, as the ResNeSt configs.
_base_ = './paper_s50_full.py'

model = dict(
    detector=dict(
        backbone=dict(
            _delete_=True, type='SwinTransformer', pretrain_img_size=224, embed_dims=96,
            depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4,
            qkv_bias=True, qk_scale=None, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.2,
            patch_norm=True, out_indices=(0, 1, 2, 3), with_cp=False, convert_weights=True,
            init_cfg=None),
        neck=dict(in_channels=[96, 192, 384, 768])),
    aux_heads=dict(multilabel=dict(in_channels=768)))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05, foreach=True),
    paramwise_cfg=dict(custom_keys={
        'absolute_pos_embed': dict(decay_mult=0.),
        'relative_position_bias_table': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.)}),
    clip_grad=dict(max_norm=35, norm_type=2))
