"""visrc.models.init_weights: a pretrained image detector loaded into the video models transfers
exactly the tensors its report says (compared tensor by tensor), class rows by class name, and
leaves every other tensor at the model's fresh initialisation."""
from __future__ import annotations

import json

import pytest
import torch

from visrc.data.toy import COCO_CLASSES, VIDEO_CLASSES

CLASS_INDEXED = {f'detector.roi_head.{m}.{kind}' for m in ('bbox_head.fc_cls', 'bbox_head.fc_reg',
                                                          'mask_head.conv_logits')
                 for kind in ('weight', 'bias')}


def _build(config, seed=0):
    from visrc.models.config import build_model, load_config

    torch.manual_seed(seed)
    return build_model(load_config(config))


def _pretrain_state(seed=1) -> dict:
    """toy_pretrain_coco's state dict, every float tensor moved off its init (so a copy shows)."""
    sd = _build('toy_pretrain_coco', seed).state_dict()
    g = torch.Generator().manual_seed(seed)
    for v in sd.values():
        if v.is_floating_point():
            v.add_(torch.randn(v.shape, generator=g))
    return sd


@pytest.fixture(scope='module')
def src_state():
    return _pretrain_state()


@pytest.fixture(scope='module')
def src_ckpt(src_state, tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'pretrain.pth'
    torch.save({'state_dict': src_state, 'meta': {'dataset_meta': {'classes': COCO_CLASSES}}}, path)
    return path


def _rows(key: str) -> int:
    return 4 if '.fc_reg.' in key else 1


@pytest.mark.parametrize('config', ['toy_baseline', 'toy_tcis_multitask_msd'])
def test_transfer_copies_what_it_reports_and_nothing_else(config, src_state, src_ckpt):
    from visrc.models.init_weights import transfer_pretrained

    model, fresh = _build(config), _build(config)
    fresh_sd = fresh.state_dict()
    report = transfer_pretrained(model, src_ckpt, dst_classes=VIDEO_CLASSES)
    sd = model.state_dict()

    # the three lists partition the model's tensors
    copied, rows, reinit = set(report.copied), set(report.class_rows), set(report.reinitialised)
    assert copied | rows | reinit == set(sd) and len(copied) + len(rows) + len(reinit) == len(sd)
    assert report.src_classes == list(COCO_CLASSES) and report.src_classes_from == 'checkpoint meta'
    assert report.unused == [] and report.skipped == {}

    for k in report.copied:
        assert torch.equal(sd[k], src_state[k[len('detector.'):]]), k
    # backbone, neck, RPN and the class-independent RoI layers all transfer
    for k in sd:
        if k.startswith(('detector.backbone.', 'detector.neck.', 'detector.rpn_head.',
                         'detector.roi_head.bbox_head.shared_fcs', 'detector.roi_head.mask_head.convs',
                         'detector.roi_head.mask_head.upsample')):
            assert k in copied, k

    assert rows == CLASS_INDEXED
    num_dst = 6 if config == 'toy_baseline' else 8      # C (+ K auxiliary classes)
    for k in rows:
        entry = report.class_rows[k]
        assert sorted(map(tuple, entry['pairs'])) == [('bird', 'bird'), ('car', 'car'), ('truck', 'truck')]
        n = _rows(k)
        src, dst, ini = src_state[k[len('detector.'):]], sd[k], fresh_sd[k]
        for name in ('bird', 'car', 'truck'):
            s, d = COCO_CLASSES.index(name), VIDEO_CLASSES.index(name)
            assert torch.equal(dst[d * n:(d + 1) * n], src[s * n:(s + 1) * n]), (k, name)
            assert not torch.equal(dst[d * n:(d + 1) * n], ini[d * n:(d + 1) * n])
        unmatched = [VIDEO_CLASSES.index(c) for c in ('fish', 'shark', 'turtle')] + list(range(6, num_dst))
        for d in unmatched:
            assert torch.equal(dst[d * n:(d + 1) * n], ini[d * n:(d + 1) * n]), (k, d)
        assert entry['fresh_rows'] == ['fish', 'shark', 'turtle'] + [f'aux{i}' for i in range(num_dst - 6)]
        if '.fc_cls.' in k:            # background: mmdet's last row, always copied
            assert entry['background_rows'] == 1 and dst.shape[0] == num_dst + 1
            assert torch.equal(dst[-1], src[-1])
        else:
            assert entry['background_rows'] == 0 and dst.shape[0] == num_dst * n

    for k in report.reinitialised:
        assert torch.equal(sd[k], fresh_sd[k]), k
    expected = {'track_head.embed_head'}
    if config == 'toy_tcis_multitask_msd':
        expected |= {'detector.roi_head.tcis', 'detector.roi_head.mask_iou_head', 'aux_heads.semseg',
                     'aux_heads.multilabel'}
    assert set(report.prefixes(report.reinitialised)) == expected

    data = json.loads(report.to_json())
    assert data['class_rows'].keys() == rows and data['reinitialised'] == report.reinitialised
    assert 'bird, car, truck' in report.summary() and 'track_head.embed_head' in report.summary()


def test_classes_from_the_argument_or_unknown(src_state, tmp_path):
    from visrc.models.init_weights import transfer_pretrained

    bare = tmp_path / 'bare.pth'
    torch.save(src_state, bare)                         # a bare state dict, no meta
    model, fresh_sd = _build('toy_baseline'), _build('toy_baseline').state_dict()
    report = transfer_pretrained(model, bare, dst_classes=VIDEO_CLASSES)
    assert report.src_classes is None and report.class_rows == {}
    assert CLASS_INDEXED <= set(report.reinitialised)
    assert {f'roi_head.{k.split(".", 2)[2]}' for k in CLASS_INDEXED} <= set(report.skipped)
    assert any('class-indexed tensors re-initialised' in n for n in report.notes)
    for k in CLASS_INDEXED:
        assert torch.equal(model.state_dict()[k], fresh_sd[k])

    report = transfer_pretrained(_build('toy_baseline'), bare, src_classes=COCO_CLASSES,
                                 dst_classes=VIDEO_CLASSES)
    assert report.src_classes_from == 'argument' and set(report.class_rows) == CLASS_INDEXED


def test_checkpoint_meta_classes_win_over_the_argument(src_ckpt):
    from visrc.models.init_weights import transfer_pretrained

    report = transfer_pretrained(_build('toy_baseline'), src_ckpt, src_classes=VIDEO_CLASSES,
                                 dst_classes=VIDEO_CLASSES)
    assert report.src_classes == list(COCO_CLASSES)
    assert report.class_rows['detector.roi_head.bbox_head.fc_cls.weight']['pairs'] == [
        ['bird', 'bird'], ['car', 'car'], ['truck', 'truck']]


def test_video_checkpoint_into_a_video_model_copies_everything(tmp_path):
    """A visrc checkpoint (``detector.`` keys, under ``module.`` from DDP) of the same config: all of
    it transfers, track head included, every class row matched."""
    from visrc.models.init_weights import transfer_pretrained

    src = _build('toy_baseline', seed=3).state_dict()
    path = tmp_path / 'video.pth'
    torch.save({'state_dict': {f'module.{k}': v for k, v in src.items()},
                'meta': {'dataset_meta': {'classes': VIDEO_CLASSES}}}, path)
    model = _build('toy_baseline')
    report = transfer_pretrained(model, path, dst_classes=VIDEO_CLASSES)
    assert report.reinitialised == [] and report.unused == []
    assert len(report.class_rows['detector.roi_head.bbox_head.fc_cls.weight']['pairs']) == 6
    for k, v in model.state_dict().items():
        assert torch.equal(v, src[k]), k


def test_wrong_shapes_and_foreign_keys_are_reported_not_raised(src_state, tmp_path):
    """A tensor of another shape makes its whole module (an FPN ConvModule, the box head, the mask
    head) stay fresh, listed in ``mismatched``; its other tensors are not copied either."""
    from visrc.models.init_weights import transfer_pretrained

    state = dict(src_state)
    state['neck.fpn_convs.0.conv.weight'] = torch.zeros(3, 3, 3, 3)
    state['roi_head.bbox_head.fc_cls.weight'] = torch.zeros(7, 12)     # right rows, wrong width
    state['roi_head.mask_head.conv_logits.bias'] = torch.zeros(5)      # fewer rows than classes
    state['something.else'] = torch.zeros(2)
    path = tmp_path / 'odd.pth'
    torch.save({'state_dict': state, 'meta': {'dataset_meta': {'classes': list(COCO_CLASSES)}}}, path)
    model, fresh_sd = _build('toy_baseline'), _build('toy_baseline').state_dict()
    report = transfer_pretrained(model, path, dst_classes=VIDEO_CLASSES)
    sd = model.state_dict()
    for k in ('neck.fpn_convs.0.conv.weight', 'roi_head.bbox_head.fc_cls.weight',
              'roi_head.mask_head.conv_logits.bias'):
        assert k in report.unused and k in report.skipped, k
    for unit in ('neck.fpn_convs.0', 'roi_head.bbox_head', 'roi_head.mask_head'):
        assert 'detector.' + unit in report.mismatched, unit
        keys = [k for k in sd if k.startswith(f'detector.{unit}.')]
        assert keys
        for k in keys:                       # the whole module, its fitting tensors included
            assert torch.equal(sd[k], fresh_sd[k]) and k in report.reinitialised, k
    assert 'shape' in report.mismatched['detector.neck.fpn_convs.0']
    assert 'shape' in report.skipped['neck.fpn_convs.0.conv.weight']
    assert 'roi_head.bbox_head.shared_fcs.0.weight' in report.skipped       # fits, but its head does not
    assert 'something.else' in report.unused and 'something.else' not in report.skipped
    assert 'detector.neck.fpn_convs.1.conv.bias' in report.copied
    assert report.class_rows == {}
    assert 'detector.neck.fpn_convs.0 (' in report.summary()
    assert report.modules['neck'] == dict(tensors=16, copied=14, class_rows=0, fresh=2, unused=2)


def test_bad_files_raise_checkpoint_error_naming_the_path(tmp_path):
    from visrc.models.checkpoint import CheckpointError
    from visrc.models.init_weights import transfer_pretrained

    model = _build('toy_baseline')
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint at all')
    with pytest.raises(CheckpointError, match=str(garbage)):
        transfer_pretrained(model, garbage)
    listed = tmp_path / 'list.pth'
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(CheckpointError, match=f'{listed}: holds a list'):
        transfer_pretrained(model, listed)
    bad_meta = tmp_path / 'meta.pth'
    torch.save({'state_dict': {}, 'meta': {'dataset_meta': {'classes': 'bird'}}}, bad_meta)
    with pytest.raises(CheckpointError, match=f'{bad_meta}: meta.dataset_meta.classes'):
        transfer_pretrained(model, bad_meta)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        transfer_pretrained(model, tmp_path / 'missing.pth')


def test_match_classes_by_name_and_alias():
    from visrc.data.categories import COCO_ALIASES
    from visrc.models.init_weights import match_classes

    assert match_classes(['Motorcycle', 'car', 'mouse', 'dog'], ['sedan', 'motorbike', 'mouse'],
                         COCO_ALIASES) == [(1, 0), (0, 1)]          # COCO's mouse is not the animal
    assert match_classes(['car', 'sedan'], ['sedan'], COCO_ALIASES) == [(1, 0)]   # exact name first
    assert match_classes(['Tennis_Racket'], ['tennis racket']) == [(0, 0)]


# ---------------------------------------------------------------- `visrc train --init`
def _env():
    import os
    from pathlib import Path

    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get('PYTHONPATH', '')
    return env


def _train(data_root, work_dir, *extra):
    """`visrc train toy_baseline` for one iteration (4 key frames at 96 x 64, batch 4)."""
    import subprocess
    import sys

    cmd = [sys.executable, '-m', 'visrc', 'train', 'toy_baseline', '--data-root', str(data_root),
           '--work-dir', str(work_dir), '--max-epochs', '1', *extra, '--cfg-options',
           'train_dataloader.dataset.pipeline.1.transforms.2.scale=(96,64)',
           'train_dataloader.sampler.type=FixedLengthTrackImgSampler', 'train_dataloader.sampler.length=4']
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def test_visrc_train_init_writes_the_report_and_a_resumed_run_keeps_its_weights(toy_small, src_ckpt, tmp_path):
    from visrc.models.checkpoint import load_checkpoint_file

    init = tmp_path / 'init.pth'
    init.write_bytes(src_ckpt.read_bytes())
    wd = tmp_path / 'run'
    out = _train(toy_small, wd, '--init', str(init))
    report = json.loads((wd / 'init_report.json').read_text())
    assert report['checkpoint'] == str(init) and report['dst_classes'] == list(VIDEO_CLASSES)
    assert set(report['class_rows']) == CLASS_INDEXED and 'detector.backbone.conv1.weight' in report['copied']
    assert 'init from ' + str(init) in out and 'classes matched: bird, car, truck' in out
    before = load_checkpoint_file(wd / 'epoch_1.pth')['state_dict']

    # the finished run resumed: the init file is not even read (garbage now), the weights stay
    init.write_bytes(b'garbage')
    out = _train(toy_small, wd, '--init', str(init), '--resume', 'auto')
    assert f'init {init} not applied: the run resumed' in out
    assert json.loads((wd / 'init_report.json').read_text()) == report
    after = load_checkpoint_file(wd / 'epoch_1.pth')['state_dict']
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_init_option_checks(tmp_path):
    from visrc.models.train_cli import prepare_config

    with pytest.raises(FileNotFoundError, match='nope.pth'):
        prepare_config('toy_baseline', init=tmp_path / 'nope.pth')
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'x')
    with pytest.raises(ValueError, match='load_from'):
        prepare_config('toy_baseline', init=ckpt, cfg_options={'load_from': str(ckpt)})
    cfg = prepare_config('toy_baseline', cfg_options={'init_checkpoint': str(ckpt)})   # the config key
    hooks = [h for h in cfg.custom_hooks if h['type'] == 'PretrainedInitHook']
    assert len(hooks) == 1 and hooks[0]['checkpoint'] == str(ckpt)
    assert hooks[0]['dst_classes'] == list(VIDEO_CLASSES)
    assert not any(h['type'] == 'PretrainedInitHook' for h in prepare_config('toy_baseline').custom_hooks)
    # resuming: the init file is not needed (the resumed run never reads it)
    wd = tmp_path / 'wd'
    wd.mkdir()
    (wd / 'epoch_1.pth').write_bytes(b'x')
    cfg = prepare_config('toy_baseline', work_dir=wd, resume='auto', init=tmp_path / 'gone.pth')
    assert cfg.resume and any(h['type'] == 'PretrainedInitHook' for h in cfg.custom_hooks)


def test_visrc_train_stops_on_another_backbone_with_one_line_unless_partial(toy_small, tmp_path):
    """A ResNet-50 file into toy_baseline's small ResNet: `visrc train --init` stops with one line naming
    what matched, before any checkpoint is written; `--allow-partial-init` trains with the backbone fresh."""
    import subprocess
    import sys

    from mmdet.models.backbones import ResNet

    torch.manual_seed(0)
    foreign = tmp_path / 'resnet50.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in ResNet(depth=50).state_dict().items()}}, foreign)
    wd = tmp_path / 'run'
    cmd = [sys.executable, '-m', 'visrc', 'train', 'toy_baseline', '--data-root', str(toy_small),
           '--work-dir', str(wd), '--max-epochs', '1', '--init', str(foreign)]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode != 0
    lines = [line for line in r.stderr.strip().splitlines() if 'backbone' in line]
    assert len(lines) == 1 and '--allow-partial-init' in lines[0] and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert not list(wd.glob('*.pth'))
    _train(toy_small, wd, '--init', str(foreign), '--allow-partial-init')
    report = json.loads((wd / 'init_report.json').read_text())
    assert not [k for k in report['copied'] if '.backbone.' in k]
