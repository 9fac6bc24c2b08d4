# Table 2's model B on the toy benchmark: the full model of Table 1's last row (TCIS + MultiTask +
# MSD, toy_tcis_multitask_msd.py) with toy_swin.py's tiny Swin Transformer in place of the tiny
# ResNet-18, as the paper's B is its full model with Swin-S (its A: with ResNeSt-101). It starts
# from the toy COCO pretraining of the Swin backbone (toy_pretrain_coco_swin.py, `--init`).
# Changed keys vs toy_tcis_multitask_msd.py (everything else, schedule and data included, is its):
#   model.detector.backbone     ResNet(depth 18, base 16) -> SwinTransformer, = toy_swin.py's (`_delete_`)
# The Swin stages have ResNet's channels (16, 32, 64, 128 at strides 4..32), so the FPN, the heads and
# the multi-label head on C5 (128 channels) are unchanged. Its _base_ has its own (toy_baseline.py,
# whose _base_ is the model block and runtime in _base_/): repeating the 80 lines of MSD data here
# would hide the one change.
_base_ = ['./toy_tcis_multitask_msd.py']

model = dict(
    detector=dict(
        backbone=dict(
            _delete_=True,
            type='SwinTransformer',
            embed_dims=16,              # Swin-S: 96; channels double per stage -> 16, 32, 64, 128
            depths=(2, 2, 2, 2),        # Swin-S: (2, 2, 18, 2)
            num_heads=(1, 2, 4, 8),     # 16 channels per head, as Swin's 32 scaled down
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
            init_cfg=None)))
