# The runtime every root config shares (not a config to train): the runner, hooks, logging, seed and
# no mmengine evaluation loops (`visrc evaluate` scores the predictions). The values are the toy
# configs'; the paper roots (paper_s50.py, paper_s50_full.py) override the logging interval, the
# checkpoints kept and the distributed backend (nccl). Inherited next to mask_rcnn_p7_track.py:
# `_base_ = ['./_base_/mask_rcnn_p7_track.py', './_base_/default_runtime.py']`.
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

runner_type = 'VISRunner'    # mmengine Runner + DDP/SyncBN that also work on CPU (gloo)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='RNGStateHook')]
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
log_level = 'INFO'
load_from = None             # a checkpoint of this model; pretrained weights to start from: `--init CKPT`
resume = False
randomness = dict(seed=0)
