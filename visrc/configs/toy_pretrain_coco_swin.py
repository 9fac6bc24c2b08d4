# The toy COCO pretraining (toy_pretrain_coco.py) for Table 2's second backbone: the same image
# Mask R-CNN, data and 12-epoch schedule with toy_swin.py's tiny Swin Transformer in place of the
# tiny ResNet-18, so its checkpoint initialises toy_swin (`visrc train toy_swin --init <ckpt>`).
# Changed keys vs toy_pretrain_coco.py:
#   model.backbone     ResNet(depth 18, base 16) -> SwinTransformer, = toy_swin.py's (`_delete_`)
# Its stage outputs have ResNet's channels (16, 32, 64, 128 at strides 4..32), so the FPN and the
# heads are unchanged.
_base_ = ['./toy_pretrain_coco.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        embed_dims=16,              # Swin-S: 96; channels double per stage -> 16, 32, 64, 128
        depths=(2, 2, 2, 2),        # Swin-S: (2, 2, 18, 2)
        num_heads=(1, 2, 4, 8),
        window_size=7,
        mlp_ratio=4,
        patch_size=4,
        strides=(4, 2, 2, 2),
        out_indices=(0, 1, 2, 3),
        qkv_bias=True,
        drop_path_rate=0.1,
        patch_norm=True,
        use_abs_pos_embed=False,
        with_cp=False,
        convert_weights=False,
        init_cfg=None))
