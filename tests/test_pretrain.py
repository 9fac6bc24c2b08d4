"""The toy COCO pretraining: its configs are toy_baseline's / toy_swin's detector as an image Mask
R-CNN, they train on the still-image set, and the run cache keys a video run by its init checkpoint
(path and content) and trains the pretraining of the right backbone."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from visrc.data.toy import COCO_CLASSES, VIDEO_CLASSES

PAIRS = [('toy_pretrain_coco', 'toy_baseline'), ('toy_pretrain_coco_swin', 'toy_swin')]


def _tiny(config, data_root):
    """The config on ``data_root`` with its images resized to 96 x 64."""
    from visrc.models.train_cli import prepare_config

    cfg = prepare_config(config, data_root=data_root)
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (96, 64)
    return cfg


@pytest.mark.parametrize('pretrain, video', PAIRS)
def test_pretrain_config_is_the_video_models_detector(pretrain, video, tmp_path):
    """Every detector tensor of the video config has a tensor of the same name and shape in the
    pretraining model, so loading the pretraining re-initialises the track head only."""
    from visrc.models.config import build_model, load_config
    from visrc.models.init_weights import transfer_pretrained

    cfg = load_config(pretrain)
    assert cfg.model.type == 'MaskRCNN' and cfg.train_dataloader.dataset.type == 'CocoDataset'
    assert tuple(cfg.classes) == COCO_CLASSES == tuple(cfg.train_dataloader.dataset.metainfo.classes)
    assert cfg.runner_type == 'VISRunner' and cfg.get('init_checkpoint') is None
    src = build_model(cfg).state_dict()
    dst = build_model(load_config(video)).state_dict()
    detector = {k[len('detector.'):]: v.shape for k, v in dst.items() if k.startswith('detector.')}
    assert detector == {k: v.shape for k, v in src.items()}

    path = tmp_path / 'pretrain.pth'
    torch.save({'state_dict': src, 'meta': {'dataset_meta': {'classes': COCO_CLASSES}}}, path)
    torch.manual_seed(0)
    report = transfer_pretrained(build_model(load_config(video)), path, dst_classes=VIDEO_CLASSES)
    assert set(report.prefixes(report.reinitialised)) == {'track_head.embed_head'} and report.unused == []


def test_pretrain_config_trains_two_iterations(toy_small):
    """Two optimiser steps on two still images of the small preset: the Mask R-CNN losses are there
    and finite, and the weights move."""
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate

    cfg = _tiny('toy_pretrain_coco', toy_small)
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(ds) > 0 and ds.metainfo['classes'] == COCO_CLASSES
    torch.manual_seed(0)
    np.random.seed(0)
    model = MODELS.build(cfg.model).train()
    data = model.data_preprocessor(pseudo_collate([ds[0], ds[1]]), True)
    before = model.backbone.conv1.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(2):
        losses = model(**copy.deepcopy(data), mode='loss')
        for k in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'):
            v = losses[k]
            assert all(torch.isfinite(x).all() for x in (v if isinstance(v, (list, tuple)) else [v])), k
        loss, _ = model.parse_losses(losses)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(before, model.backbone.conv1.weight)


@pytest.mark.slow
def test_visrc_train_runs_the_pretraining_for_one_epoch(toy_small, tmp_path):
    """The real command on the small preset (2 iterations); its checkpoint carries the class names."""
    import os

    from visrc.models.checkpoint import load_checkpoint_file

    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get('PYTHONPATH', '')
    r = subprocess.run([sys.executable, '-m', 'visrc', 'train', 'toy_pretrain_coco', '--data-root', str(toy_small),
                        '--work-dir', str(tmp_path), '--max-epochs', '1'], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = load_checkpoint_file(tmp_path / 'epoch_1.pth')
    assert list(ckpt['meta']['dataset_meta']['classes']) == list(COCO_CLASSES)
    assert ckpt['meta']['iter'] >= 2 and 'backbone.conv1.weight' in ckpt['state_dict']


def test_backbone_of_reads_the_config_not_the_name(tmp_path):
    from visrc.experiments.pretrain import PRETRAIN_CONFIGS, backbone_of
    from visrc.models.config import CONFIG_DIR

    assert backbone_of('toy_baseline') == backbone_of('toy_tcis_multitask_msd') == 'resnet'
    assert backbone_of('toy_swin') == backbone_of('paper_swin_s') == 'swin'
    assert {k: backbone_of(v) for k, v in PRETRAIN_CONFIGS.items()} == {'resnet': 'resnet', 'swin': 'swin'}
    misnamed = tmp_path / 'toy_swin_but_resnet.py'       # the name says swin, the backbone is ResNet
    misnamed.write_text(f"_base_ = ['{CONFIG_DIR / 'toy_baseline.py'}']\n")
    assert backbone_of(misnamed) == 'resnet'
    odd = tmp_path / 'odd.py'
    odd.write_text("model = dict(type='MaskRCNN', backbone=dict(type='RegNet'))\n")
    with pytest.raises(ValueError, match="odd.py: model backbone type 'RegNet'"):
        backbone_of(odd)


def _fake_training(calls):
    """Stands in for the `visrc train` subprocess: records the command, writes a checkpoint."""
    def run(cmd, **kwargs):
        calls.append(cmd)
        work = Path(cmd[cmd.index('--work-dir') + 1])
        (work / 'epoch_1.pth').write_bytes(b'weights')
        (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
        return SimpleNamespace(returncode=0)
    return run


def test_run_key_holds_the_init_path_and_content(tmp_path, monkeypatch):
    from visrc.experiments import runs

    monkeypatch.setenv('VISRC_RUNS_DIR', str(tmp_path / 'runs'))
    init = tmp_path / 'init.pth'
    init.write_bytes(b'one')
    plain = runs.run_dir('toy_baseline', tmp_path)
    first = runs.run_dir('toy_baseline', tmp_path, init=init)
    assert first != plain and runs.run_dir('toy_baseline', tmp_path, init=init) == first
    init.write_bytes(b'two')                              # a retrained pretraining: a new run
    assert runs.run_dir('toy_baseline', tmp_path, init=init) not in (first, plain)
    other = tmp_path / 'other.pth'
    other.write_bytes(b'two')                             # same bytes elsewhere: the path counts too
    assert runs.run_dir('toy_baseline', tmp_path, init=other) != runs.run_dir('toy_baseline', tmp_path, init=init)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        runs.run_dir('toy_baseline', tmp_path, init=tmp_path / 'missing.pth')

    calls = []
    monkeypatch.setattr(runs.subprocess, 'run', _fake_training(calls))
    ckpt = runs.train_cached('toy_baseline', tmp_path, init=init)
    assert ckpt.parent == runs.run_dir('toy_baseline', tmp_path, init=init)
    assert calls[0][calls[0].index('--init') + 1] == str(init.resolve())
    assert runs.train_cached('toy_baseline', tmp_path, init=init) == ckpt and len(calls) == 1   # cached
    runs.train_cached('toy_baseline', tmp_path)
    assert '--init' not in calls[1]


def test_run_key_holds_the_generated_data_config(tmp_path, monkeypatch):
    from visrc.experiments import runs

    monkeypatch.setenv('VISRC_RUNS_DIR', str(tmp_path / 'runs'))
    plain = runs.run_dir('toy_baseline', tmp_path)            # a real data root: its path only
    (tmp_path / 'toy_config.json').write_text('{"n_valid_videos": 16}')
    first = runs.run_dir('toy_baseline', tmp_path)
    assert first != plain and runs.run_dir('toy_baseline', tmp_path) == first
    (tmp_path / 'toy_config.json').write_text('{"n_valid_videos": 64}')   # regenerated in place
    assert runs.run_dir('toy_baseline', tmp_path) not in (first, plain)


def test_pretrained_checkpoint_trains_the_backbones_pretraining(tmp_path, monkeypatch):
    from visrc.experiments import pretrain

    seen = []
    monkeypatch.setattr(pretrain, 'train_cached', lambda config, data_root, seed, max_epochs:
                        seen.append((config, data_root, seed, max_epochs)) or Path(f'/ckpt/{config}.pth'))
    assert pretrain.pretrained_checkpoint('toy_tcis_multitask_msd', tmp_path) == Path('/ckpt/toy_pretrain_coco.pth')
    assert pretrain.pretrained_checkpoint('toy_swin', tmp_path, seed=1, max_epochs=2) == \
        Path('/ckpt/toy_pretrain_coco_swin.pth')
    assert seen == [('toy_pretrain_coco', tmp_path, 0, None), ('toy_pretrain_coco_swin', tmp_path, 1, 2)]
