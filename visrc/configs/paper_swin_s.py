# The paper's baseline (Table 1 row 1's model) with a Swin-S backbone (section 4.1; the full system:
# paper_swin_s_full.py): as paper_s50.py except the backbone, the FPN input channels and the
# optimizer (AdamW; mmdet's Swin Mask R-CNN values: the paper's exact learning rate was lost in its
# text extraction). 12 epochs, LR x0.1 after epochs 8 and 11.
_base_ = './paper_s50.py'

model = dict(
    detector=dict(
        backbone=dict(
            _delete_=True, type='SwinTransformer', pretrain_img_size=224, embed_dims=96,
            depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4,
            qkv_bias=True, qk_scale=None, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.2,
            patch_norm=True, out_indices=(0, 1, 2, 3), with_cp=False, convert_weights=True,
            init_cfg=None),
        neck=dict(in_channels=[96, 192, 384, 768])))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05, foreach=True),
    paramwise_cfg=dict(custom_keys={
        'absolute_pos_embed': dict(decay_mult=0.),
        'relative_position_bias_table': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.)}),
    clip_grad=dict(max_norm=35, norm_type=2))
