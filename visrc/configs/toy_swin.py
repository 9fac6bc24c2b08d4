# Table 2's second backbone on the toy benchmark: toy_baseline.py with a tiny Swin Transformer
# (mmdet's `SwinTransformer`, random init, no pretrained weights) in place of the tiny ResNet-18.
# The paper's model B is Swin-S (its model A ResNeSt-101); here model A is toy_baseline (ResNet).
# Changed keys vs the baseline (everything else, schedule and AdamW optimizer included, is
# toy_baseline.py's; the paper also trains Swin with AdamW):
#   model.detector.backbone     ResNet(depth 18, base 16) -> SwinTransformer(embed_dims 16,
#                               depths 2/2/2/2, heads 1/2/4/8, window 7), `_delete_` (other keys)
# Its stage outputs have ResNet's channels (16, 32, 64, 128 at strides 4..32), so the FPN and the
# heads are unchanged. Training cost: benchmarks/bench_ablation_train.py --rows toy_baseline toy_swin.
_base_ = ['./toy_baseline.py']

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
