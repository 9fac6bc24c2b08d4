"""``visrc train --init`` with every checkpoint layout a user of this field has, each built here from
mmdet's own model definitions (random weights, real key names and file structure; nothing is
downloaded) and loaded into its paper config. Each report is checked tensor by tensor: what it says
was copied equals the file's tensor, everything else is the model's fresh initialisation.

Layouts: mmdet 3.x model-zoo file (``publish_model.py``: ``meta`` + ``state_dict``, old non-zip
format), mmdet 2.x zoo file (``meta.CLASSES`` and a config string), a full mmdet 3.x training
checkpoint (mmengine's ``message_hub``, optimizer, schedulers), the official Swin-S ImageNet file
(``model`` key, Swin's own names), the ResNeSt ImageNet file mmdet's configs name and a
torchvision-style ResNet (bare top level, ``fc.*``), plus a truncated file, a file that is not a
checkpoint and malicious pickles."""
from __future__ import annotations

import copyreg
import json
import os
from pathlib import Path

import pytest
import torch

import visrc  # noqa: F401  (before mmdet: provides mmcv's ops)
from visrc.data.toy import COCO_CLASSES, VIDEO_CLASSES

MMDET_CONFIGS = None
BEFORE = Path(__file__).parent / 'reference' / 'toy_init_transfers.json'


def _coco80():
    from mmdet.datasets import CocoDataset
    return list(CocoDataset.METAINFO['classes'])


def _mmdet_cfg(rel):
    import mmdet
    from mmengine.config import Config
    return Config.fromfile(os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs', rel))


def _build_mmdet(model_cfg, seed):
    """An mmdet model from mmdet's own config, every float tensor moved off its init (a copy shows)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    register_all_modules(init_default_scope=False)
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmdet'):
        sd = MODELS.build(model_cfg).state_dict()
    g = torch.Generator().manual_seed(seed)
    for v in sd.values():
        if v.is_floating_point():
            v.add_(torch.randn(v.shape, generator=g))
    return {k: v.clone() for k, v in sd.items()}


class Paper:
    """One paper model per module; ``fresh()`` puts its initial weights back before each transfer."""

    def __init__(self, config):
        from visrc.models.config import build_model, load_config
        torch.manual_seed(0)
        self.model = build_model(load_config(config))
        self.init = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.classes = list(load_config(config).classes)

    def fresh(self):
        self.model.load_state_dict(self.init)
        return self.model


@pytest.fixture(scope='module')
def s50():
    return Paper('paper_s50')


@pytest.fixture(scope='module')
def swin_s():
    return Paper('paper_swin_s')


@pytest.fixture(scope='module')
def s50_zoo_state():
    """mmdet's ResNeSt-50 Mask R-CNN (4-conv + 1-FC box head, normalised mask head convs)."""
    cfg = _mmdet_cfg('resnest/mask-rcnn_s50_fpn_syncbn-backbone+head_ms-1x_coco.py')
    cfg.model.backbone.init_cfg = None
    return _build_mmdet(cfg.model, seed=2)


def _check(report, model, init, expected_copy: dict, class_rows=()):
    """Copied tensors equal their source, everything else is fresh; the lists partition the model."""
    sd = model.state_dict()
    copied, rows, fresh = set(report.copied), set(report.class_rows), set(report.reinitialised)
    assert copied | rows | fresh == set(sd) and len(copied) + len(rows) + len(fresh) == len(sd)
    assert copied == set(expected_copy), (sorted(copied ^ set(expected_copy))[:6])
    for k, src in expected_copy.items():
        assert torch.equal(sd[k], src), k
    assert rows == set(class_rows)
    for k in fresh:
        assert torch.equal(sd[k], init[k]), k


def _stats(report):
    return {top: (s['copied'], s['tensors']) for top, s in report.modules.items() if s['tensors']}


# ------------------------------------------------------------------ official Swin-S ImageNet file
def _to_original_swin(sd: dict) -> dict:
    """mmdet's Swin names -> the official repository's (the inverse of mmdet's swin_converter), with
    the official file's classifier, final norm and shifted-window attention masks."""
    out = {}
    for k, v in sd.items():
        if k.startswith('norm'):              # mmdet's per-output norms: not in a classifier file
            continue
        nk = k.replace('stages.', 'layers.', 1).replace('.attn.w_msa.', '.attn.')
        nk = nk.replace('.ffn.layers.0.0.', '.mlp.fc1.').replace('.ffn.layers.1.', '.mlp.fc2.')
        nk = nk.replace('patch_embed.projection', 'patch_embed.proj')
        if '.downsample.reduction.' in k:
            o, i = v.shape
            v = v.reshape(o, i // 4, 4).transpose(1, 2)[:, [0, 2, 1, 3], :].reshape(o, i)
        elif '.downsample.norm.' in k:
            v = v.reshape(v.shape[0] // 4, 4).transpose(0, 1)[[0, 2, 1, 3]].reshape(-1)
        out[nk] = v
    c = sd['norm3.weight'].shape[0]
    out.update({'norm.weight': torch.ones(c), 'norm.bias': torch.zeros(c),
                'head.weight': torch.randn(1000, c), 'head.bias': torch.randn(1000)})
    for i, n in enumerate((64, 16, 4)):       # 56/28/14 px at window 7: shifted blocks keep a mask
        for j in range(1, 18 if i == 2 else 2, 2):
            out[f'layers.{i}.blocks.{j}.attn_mask'] = torch.zeros(n, 49, 49)
    return out


def test_swin_s_imagenet_file_transfers_the_whole_backbone(swin_s, tmp_path):
    from mmdet.models.backbones.swin import swin_converter
    from visrc.models.init_weights import transfer_pretrained

    cfg = _mmdet_cfg('swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py')
    cfg.model.backbone.init_cfg = None
    mm = _build_mmdet(cfg.model.backbone, seed=4)               # mmdet's SwinTransformer, Swin-S
    original = _to_original_swin(mm)
    converted = swin_converter(original)                        # the inverse above is exact
    for k, v in mm.items():
        if not k.startswith('norm'):
            assert torch.equal(converted['backbone.' + k], v), k
    path = tmp_path / 'swin_small_patch4_window7_224.pth'
    torch.save({'model': original}, path)

    model = swin_s.fresh()
    report = transfer_pretrained(model, path, dst_classes=swin_s.classes)
    expected = {f'detector.backbone.{k}': v for k, v in mm.items() if not k.startswith('norm')}
    _check(report, model, swin_s.init, expected)
    st = _stats(report)
    assert st['backbone'] == (349, 357) and all(c == 0 for t, (c, _) in st.items() if t != 'backbone')
    fresh_bb = {k for k in report.reinitialised if k.startswith('detector.backbone.')}
    assert fresh_bb == {f'detector.backbone.norm{i}.{p}' for i in range(4) for p in ('weight', 'bias')}
    assert {'head.weight', 'head.bias', 'norm.weight', 'norm.bias', 'layers.0.blocks.1.attn_mask'} <= set(report.unused)
    assert report.mismatched == {} and any('swin_converter' in n for n in report.notes)
    assert 'backbone 349/357' in report.summary().splitlines()[0]


# ------------------------------------------------------------------ mmdet zoo files into paper_s50
def test_resnest_zoo_2x_file_no_shape_coincidence(s50, s50_zoo_state, tmp_path):
    """mmdet 2.x ResNeSt-50 Mask R-CNN (meta.CLASSES, config string, non-zip) -> paper_s50: the
    backbone, FPN and RPN transfer; its 4-conv + 1-FC box head (whose first FC has the shape of
    paper_s50's first FC) and its normalised mask head are other kinds: fresh, whole."""
    from visrc.models.init_weights import transfer_pretrained

    path = tmp_path / 'mask_rcnn_s50_fpn_syncbn-backbone+head_mstrain_1x_coco.pth'
    meta = {'mmdet_version': '2.25.0', 'CLASSES': tuple(_coco80()), 'config': 'model = dict(...)\n',
            'epoch': 12, 'iter': 87960}
    torch.save({'meta': meta, 'state_dict': s50_zoo_state}, path, _use_new_zipfile_serialization=False)
    model = s50.fresh()
    report = transfer_pretrained(model, path, dst_classes=s50.classes)
    assert report.src_classes == _coco80() and report.src_classes_from == 'checkpoint meta'
    sd = model.state_dict()
    expected = {f'detector.{k}': v for k, v in s50_zoo_state.items()
                if k.startswith(('backbone.', 'neck.', 'rpn_head.')) and f'detector.{k}' in sd}
    _check(report, model, s50.init, expected)
    assert _stats(report)['backbone'] == (474, 474) and _stats(report)['roi_head'][0] == 0
    assert set(report.mismatched) == {'detector.roi_head.bbox_head', 'detector.roi_head.mask_head'}
    assert s50_zoo_state['roi_head.bbox_head.shared_fcs.0.weight'].shape == \
        s50.init['detector.roi_head.bbox_head.shared_fcs.0.weight'].shape       # the coincidence
    assert 'roi_head.bbox_head.shared_fcs.0.weight' in report.skipped
    assert report.class_rows == {}


def test_r50_zoo_file_into_resnest_stops_unless_partial(s50, tmp_path):
    """mmdet 3.x ResNet-50 Mask R-CNN (publish_model.py layout, non-zip) -> paper_s50 (ResNeSt-50):
    their bottlenecks share conv1/conv3/bn names and shapes but are other kinds: one line stops the
    run, nothing written; with allow_partial the backbone stays entirely fresh (no mix)."""
    from visrc.models.init_weights import InitMismatchError, transfer_pretrained

    cfg = _mmdet_cfg('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg = None
    state = _build_mmdet(cfg.model, seed=3)
    path = tmp_path / 'mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth'
    torch.save({'meta': {'dataset_meta': {'classes': tuple(_coco80())}, 'mmdet_version': '3.3.0'},
                'state_dict': state}, path, _use_new_zipfile_serialization=False)
    model = s50.fresh()
    with pytest.raises(InitMismatchError) as e:
        transfer_pretrained(model, path, dst_classes=s50.classes)
    line = str(e.value)
    assert '\n' not in line and 'only 0 of 474 backbone tensors' in line and 'another architecture' in line
    assert 'neck 16/16' in line and '--allow-partial-init' in line and str(path) in line
    assert all(torch.equal(v, s50.init[k]) for k, v in model.state_dict().items())

    report = transfer_pretrained(model, path, dst_classes=s50.classes, allow_partial=True)
    sd = model.state_dict()
    layouts = set(report.class_rows)
    expected = {f'detector.{k}': v for k, v in state.items()
                if not k.startswith('backbone.') and f'detector.{k}' in sd and f'detector.{k}' not in layouts}
    _check(report, model, s50.init, expected, class_rows=layouts)
    assert _stats(report)['backbone'] == (0, 474)
    assert len(report.mismatched) == 16 and 'detector.backbone.layer1.0' in report.mismatched   # the bottlenecks
    assert any('allow-partial-init' in n for n in report.notes)
    rows = report.class_rows['detector.roi_head.bbox_head.fc_cls.weight']
    assert ['person', 'person'] in rows['pairs'] and ['motorcycle', 'motorbike'] in rows['pairs']
    s, d = _coco80().index('person'), s50.classes.index('person')
    assert torch.equal(sd['detector.roi_head.bbox_head.fc_cls.weight'][d],
                       state['roi_head.bbox_head.fc_cls.weight'][s])


def test_resnest_imagenet_file(s50, s50_zoo_state, tmp_path):
    """open-mmlab://resnest50 style: a bare top-level backbone state dict plus the classifier."""
    from visrc.models.init_weights import transfer_pretrained

    bb = {k[len('backbone.'):]: v for k, v in s50_zoo_state.items() if k.startswith('backbone.')}
    path = tmp_path / 'resnest50_d2-7497a55b.pth'
    torch.save({**bb, 'fc.weight': torch.randn(1000, 2048), 'fc.bias': torch.randn(1000)}, path)
    model = s50.fresh()
    report = transfer_pretrained(model, path, dst_classes=s50.classes)
    _check(report, model, s50.init, {f'detector.backbone.{k}': v for k, v in bb.items()})
    assert report.unused == ['fc.weight', 'fc.bias'] and _stats(report)['backbone'] == (474, 474)
    assert any('backbone-only' in n for n in report.notes)


def _torchvision_resnet(depth, base_channels, seed):
    from mmengine.config import ConfigDict
    sd = _build_mmdet(ConfigDict(type='ResNet', depth=depth, base_channels=base_channels, init_cfg=None), seed)
    sd = {k: v for k, v in sd.items() if not k.endswith('num_batches_tracked')}   # old torchvision files
    c = sd['layer4.0.conv1.weight'].shape[1] if depth < 50 else sd['layer4.2.conv3.weight'].shape[0]
    return sd, {**sd, 'fc.weight': torch.randn(1000, c), 'fc.bias': torch.randn(1000)}


def test_torchvision_resnet_file_into_the_toy_backbone(tmp_path):
    from visrc.models.config import build_model, load_config
    from visrc.models.init_weights import transfer_pretrained

    bb, file_state = _torchvision_resnet(18, 16, seed=5)
    path = tmp_path / 'resnet18.pth'
    torch.save(file_state, path)
    torch.manual_seed(0)
    model = build_model(load_config('toy_baseline'))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    report = transfer_pretrained(model, path, dst_classes=VIDEO_CLASSES)
    _check(report, model, init, {f'detector.backbone.{k}': v for k, v in bb.items()})
    assert _stats(report)['backbone'] == (len(bb), 120) and report.mismatched == {}


def test_torchvision_resnet50_into_resnest_stops(s50, tmp_path):
    from visrc.models.init_weights import InitMismatchError, transfer_pretrained

    _, file_state = _torchvision_resnet(50, 64, seed=6)
    path = tmp_path / 'resnet50-0676ba61.pth'
    torch.save(file_state, path)
    with pytest.raises(InitMismatchError, match='only 0 of 474 backbone tensors'):
        transfer_pretrained(s50.fresh(), path, dst_classes=s50.classes)


# ------------------------------------------------------------------ a user's own mmdet 3.x training checkpoint
def _training_checkpoint(state, path):
    """The dict mmengine's Runner.save_checkpoint writes, pickled as mmengine does (HistoryBuffer's
    statistics methods as getattr(HistoryBuffer, 'min'), not visrc's reduced form)."""
    import numpy as np
    from mmengine.logging import HistoryBuffer, MessageHub
    from mmengine.optim import LinearLR, MultiStepLR

    hub = MessageHub.get_instance('init-layouts-probe')
    for i in range(3):
        hub.update_scalar('train/loss', np.float64(1.0 / (i + 1)))
        hub.update_scalar('train/lr', 0.02)
    hub.update_info('epoch', 12)
    hub.update_info('iter', 87960)
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = torch.optim.SGD(params, lr=0.02, momentum=0.9)
    params[0].grad = torch.ones(2)
    opt.step()
    scheds = [LinearLR(opt, start_factor=0.001, by_epoch=False, begin=0, end=500),
              MultiStepLR(opt, milestones=[8, 11], by_epoch=True, begin=0, end=12)]
    ckpt = {'meta': {'epoch': 12, 'iter': 87960, 'cfg': "model = dict(type='MaskRCNN')\n", 'seed': 0,
                     'experiment_name': 'mask-rcnn_20240101_000000', 'time': '20240101_000000',
                     'mmengine_version': '0.10.7',
                     'dataset_meta': {'classes': tuple(COCO_CLASSES), 'palette': [(220, 20, 60)] * 6}},
            'state_dict': state, 'message_hub': hub.state_dict(), 'optimizer': opt.state_dict(),
            'param_schedulers': [s.state_dict() for s in scheds]}
    reduce = copyreg.dispatch_table.pop(HistoryBuffer)
    try:
        torch.save(ckpt, path)
    finally:
        copyreg.dispatch_table[HistoryBuffer] = reduce


def test_mmdet3_training_checkpoint_loads_weights_only(tmp_path):
    from visrc.models.checkpoint import load_checkpoint_file
    from visrc.models.config import build_model, load_config
    from visrc.models.init_weights import transfer_pretrained

    torch.manual_seed(1)
    state = build_model(load_config('toy_pretrain_coco')).state_dict()     # a plain mmdet MaskRCNN
    path = tmp_path / 'epoch_12.pth'
    _training_checkpoint(state, path)
    assert b'getattr' in Path(path).read_bytes()     # what failed before: "it holds getattr"
    ckpt = load_checkpoint_file(path)                # weights_only=True
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() == pytest.approx(1 / 3)
    torch.manual_seed(0)
    model = build_model(load_config('toy_baseline'))
    report = transfer_pretrained(model, path, dst_classes=VIDEO_CLASSES)
    before = json.loads(BEFORE.read_text())['toy_pretrain_coco->toy_baseline']
    assert report.copied == before['copied'] and report.class_rows == before['class_rows']
    sd = model.state_dict()
    for k in report.copied:
        assert torch.equal(sd[k], state[k[len('detector.'):]]), k


# ------------------------------------------------------------------ bad files
class _Evil:
    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class _EvilGetattr:
    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_bad_files_are_refused_safely(s50_zoo_state, tmp_path):
    from visrc.models.checkpoint import CheckpointError
    from visrc.models.init_weights import transfer_pretrained
    from visrc.models.config import build_model, load_config

    model = build_model(load_config('toy_baseline'))
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {k: v for k, v in list(s50_zoo_state.items())[:50]}}, good)
    data = good.read_bytes()
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=f'{truncated}: cannot load: not a torch checkpoint, or truncated'):
        transfer_pretrained(model, truncated)
    text = tmp_path / 'notes.pth'
    text.write_text('model = dict(type="MaskRCNN")\n')
    with pytest.raises(CheckpointError, match=f'{text}: cannot load'):
        transfer_pretrained(model, text)

    evil = _Evil()
    evil.marker = str(tmp_path / 'pwned')
    bad = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': evil}, bad)
    with pytest.raises(CheckpointError, match='system, which is not among the allowed checkpoint types.*publish_model'):
        transfer_pretrained(model, bad)
    assert not os.path.exists(evil.marker)
    bad2 = tmp_path / 'evil_getattr.pth'
    torch.save({'state_dict': {}, 'x': _EvilGetattr()}, bad2)
    with pytest.raises(CheckpointError, match="getattr\\(HistoryBuffer, '__init__'\\) is not allowed"):
        transfer_pretrained(model, bad2)


# ------------------------------------------------------------------ the toy path is unchanged
@pytest.mark.parametrize('pair', sorted(json.loads(BEFORE.read_text())))
def test_toy_pretraining_transfers_exactly_as_before(pair, tmp_path):
    """The report of the implementation before structural matching (tests/reference/toy_init_transfers.json,
    recorded on the same files) is reproduced list for list."""
    from visrc.models.config import build_model, load_config
    from visrc.models.init_weights import transfer_pretrained

    src, dst = pair.split('->')
    torch.manual_seed(1)
    state = build_model(load_config(src)).state_dict()
    path = tmp_path / 'pretrain.pth'
    torch.save({'state_dict': state, 'meta': {'dataset_meta': {'classes': list(COCO_CLASSES)}}}, path)
    torch.manual_seed(0)
    model = build_model(load_config(dst))
    report = transfer_pretrained(model, path, dst_classes=VIDEO_CLASSES)
    before = json.loads(BEFORE.read_text())[pair]
    assert dict(copied=report.copied, class_rows=report.class_rows, reinitialised=report.reinitialised,
                unused=report.unused) == before
    assert report.mismatched == {}


def test_allow_partial_init_flag_reaches_the_hook(tmp_path):
    import argparse

    from visrc.models.train_cli import add_arguments, prepare_config

    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'x')
    hook = [h for h in prepare_config('toy_baseline', init=ckpt, allow_partial_init=True).custom_hooks
            if h['type'] == 'PretrainedInitHook'][0]
    assert hook['allow_partial'] is True
    hook = [h for h in prepare_config('toy_baseline', init=ckpt).custom_hooks
            if h['type'] == 'PretrainedInitHook'][0]
    assert 'allow_partial' not in hook                   # configs without the flag stay as they were
    p = argparse.ArgumentParser()
    add_arguments(p)
    assert p.parse_args(['toy_baseline', '--init', 'x', '--allow-partial-init']).allow_partial_init
