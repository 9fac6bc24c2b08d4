"""The VIS model: builds, trains a few iterations on tiny key/reference pairs, predicts per-frame
detections with embeddings, feeds the tracker and the YouTube-VIS results; paper configs build
and run one forward pass."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from helpers import tiny_cfg, video_batch


def test_toy_model_is_the_paper_architecture(toy_small):
    from mmdet.registry import MODELS
    from visrc.models import VISQDTrack, VISRoIHead

    cfg = tiny_cfg('toy_baseline', toy_small)
    model = MODELS.build(cfg.model)
    assert isinstance(model, VISQDTrack) and isinstance(model.detector.roi_head, VISRoIHead)
    det = model.detector
    # six FPN levels P2..P7, and anchors / RoI extractors over the same six strides
    assert det.neck.num_outs == 6
    strides = [s[0] for s in det.rpn_head.prior_generator.strides]
    assert strides == [4, 8, 16, 32, 64, 128]
    assert det.roi_head.bbox_roi_extractor.featmap_strides == strides
    assert det.roi_head.mask_roi_extractor.featmap_strides == strides
    assert model.track_head.roi_extractor.featmap_strides == strides
    x = det.extract_feat(torch.zeros(1, 3, 64, 96))
    assert [f.shape[-1] for f in x] == [24, 12, 6, 3, 2, 1]
    assert type(model.track_head).__name__ == 'QuasiDenseTrackHead'


def test_trains_on_key_reference_pairs(toy_small):
    from mmdet.registry import MODELS

    torch.manual_seed(0)
    cfg = tiny_cfg('toy_baseline', toy_small)
    model = MODELS.build(cfg.model).train()
    _, batch = video_batch(cfg)
    data = model.data_preprocessor(batch, True)
    assert data['inputs'].shape[:3] == (2, 2, 3)              # N pairs of (key, ref)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(3):
        d = copy.deepcopy(data)
        labels = [s.get_key_frames()[0].gt_instances.labels.clone() for s in d['data_samples']]
        losses = model.loss(**d)
        for k in ('loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask', 'loss_track', 'loss_track_aux'):
            assert k in losses, k
        # class labels reach the RoI head untouched (mmdet's QDTrack zeroes them: class-agnostic MOT)
        after = [s.get_key_frames()[0].gt_instances.labels for s in d['data_samples']]
        assert all(torch.equal(a, b) for a, b in zip(labels, after))
        assert int(torch.cat(labels).max()) > 0
        loss, log = model.parse_losses(losses)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        # every head gets gradients: detection, mask, and the embedding head
        for name in ('detector.roi_head.mask_head', 'detector.roi_head.bbox_head',
                     'track_head.embed_head', 'detector.backbone'):
            g = [p.grad for n, p in model.named_parameters() if n.startswith(name) and p.grad is not None]
            assert g and any(float(x.abs().sum()) > 0 for x in g), name
        opt.step()


def test_aux_heads_are_training_only(toy_small):
    """The extension point for multi-task heads: losses added in training, nothing at inference."""
    from mmdet.registry import MODELS
    from mmengine.model import BaseModule

    calls = []

    @MODELS.register_module(force=True)
    class _CountingAuxHead(BaseModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def loss(self, backbone_feats, neck_feats, data_samples):
            calls.append((len(backbone_feats), len(neck_feats), len(data_samples)))
            return dict(loss_aux=self.w.sum() * 0.0)

    cfg = tiny_cfg('toy_baseline', toy_small)
    cfg.model.aux_heads = dict(counter=dict(type='_CountingAuxHead'))
    model = MODELS.build(cfg.model)
    _, batch = video_batch(cfg)
    losses = model.loss(**model.data_preprocessor(batch, True))
    assert 'loss_aux' in losses and calls == [(4, 6, 2)]
    model.eval()
    data = model.data_preprocessor(batch, False)
    model.predict_frame(data['inputs'][:, 0], data['data_samples'][0][0])
    assert len(calls) == 1


def test_predict_frame_outputs_embeddings_and_full_size_masks(toy_small, tmp_path):
    from visrc.data.predictions import load_predictions, save_predictions
    from visrc.data.ytvis import load_ytvis
    from visrc.models.config import build_model
    from visrc.models.predictor import VideoPredictor

    cfg = tiny_cfg('toy_baseline', toy_small)
    cfg.model.detector.test_cfg.rcnn.score_thr = 0.0     # untrained: keep whatever it finds
    cfg.model.embed_score_thr = 0.0
    torch.manual_seed(0)
    predictor = VideoPredictor(build_model(cfg), cfg)
    data = load_ytvis(toy_small / 'valid' / 'instances.json')
    v = data['videos'][0]
    paths = [str(toy_small / 'valid' / 'JPEGImages' / f) for f in v['file_names']]
    video = predictor.predict_video(paths, v['id'], v['height'], v['width'])
    assert len(video) == v['length']
    d = cfg.model.track_head.embed_head.embed_channels
    n_total = 0
    for fr in video.frames:
        n_total += len(fr)
        assert fr.embeddings.shape == (len(fr), d)
        assert fr.masks is not None and len(fr.masks) == len(fr)
        for rle in fr.masks:
            assert rle['size'] == [v['height'], v['width']] and isinstance(rle['counts'], str)
        if len(fr):
            assert (fr.boxes[:, 2] <= v['width'] + 1).all() and (fr.boxes[:, 3] <= v['height'] + 1).all()
            assert fr.labels.min() >= 0 and fr.labels.max() < len(cfg.classes)
    assert n_total > 0
    path = save_predictions([video], tmp_path / 'p.npz')
    back = load_predictions(path)[0]
    np.testing.assert_allclose(back.frames[0].embeddings, video.frames[0].embeddings)


def test_run_inference_writes_results_and_evaluates(toy_small, tmp_path):
    """The pipeline's summary agrees with its files: the metrics are evaluate_ytvis of the written
    results.json, and re-tracking the saved per-frame predictions gives the same results."""
    from mmdet.registry import MODELS
    from visrc.data.predictions import load_predictions
    from visrc.data.ytvis import load_ytvis
    from visrc.evaluation.export import load_results
    from visrc.evaluation.ytvis_eval import evaluate_ytvis
    from visrc.fileio import read_json
    from visrc.models.config import config_classes
    from visrc.pipeline import config_tracking, run_inference, track_and_evaluate

    cfg = tiny_cfg('toy_baseline', toy_small)
    cfg.model.detector.test_cfg.rcnn.score_thr = 0.0
    cfg.tracking = dict(tracker=dict(init_score_thr=0.0, obj_score_thr=0.0))
    torch.manual_seed(0)
    ckpt = tmp_path / 'untrained.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {'epoch': 0}}, ckpt)
    summary = run_inference(cfg, ckpt, data_root=toy_small, out=tmp_path / 'results.json',
                            max_videos=2, log=None)
    results = read_json(tmp_path / 'results.json')
    assert summary['videos'] == 2 and summary['tracks'] == len(results) > 0
    assert summary['results'] == str(tmp_path / 'results.json') and summary['mode'] == 'forward'
    gt = load_ytvis(toy_small / 'valid' / 'instances.json')
    cat_ids = {c['id'] for c in gt['categories']}
    lengths = {v['id']: v['length'] for v in gt['videos']}
    kept = {v['id'] for v in gt['videos'][:2]}
    assert {r['video_id'] for r in results} <= kept
    assert summary['frames'] == sum(lengths[v] for v in kept)
    for r in results:
        assert r['category_id'] in cat_ids and 0 <= r['score'] <= 1
        assert len(r['segmentations']) == lengths[r['video_id']]
    # the metrics are the evaluator's on the file written, against the same 2 videos
    gt2 = dict(gt, videos=[v for v in gt['videos'] if v['id'] in kept],
               annotations=[a for a in gt['annotations'] if a['video_id'] in kept])
    expected = evaluate_ytvis(gt2, load_results(tmp_path / 'results.json', gt2)).as_dict()
    assert summary['metrics'] == pytest.approx(expected['metrics'])
    assert summary['per_category'] == expected['per_category']
    # the saved per-frame predictions are what was tracked: re-tracking them gives the same results
    videos = load_predictions(summary['predictions'])
    assert [v.video_id for v in videos] == [v['id'] for v in gt2['videos']]
    tracking, mode = config_tracking(cfg)
    again, ev = track_and_evaluate(videos, gt2, config_classes(cfg), tracking, mode)
    assert len(again) == len(results) and ev['metrics'] == pytest.approx(summary['metrics'])
    assert [(r['video_id'], r['category_id']) for r in again] == [(r['video_id'], r['category_id']) for r in results]


@pytest.mark.parametrize('name', ['paper_s50', 'paper_s101', 'paper_swin_s'])
def test_paper_configs_build_and_run_one_forward_pass(name, toy_small):
    """The GPU configs are not trained here; they must build and run on a tiny input."""
    from mmdet.registry import MODELS
    from visrc.models.config import load_config, resolve_config_path

    cfg = load_config(resolve_config_path(name))
    assert cfg.train_cfg.max_epochs == 12
    ms = [s for s in cfg.param_scheduler if s['type'] == 'MultiStepLR'][0]
    assert ms['milestones'] == [8, 11]
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.get('momentum')) == (('AdamW', None) if name == 'paper_swin_s' else ('SGD', 0.9))
    assert cfg.train_dataloader.batch_size == 4 and cfg.sync_bn
    resize = [t for t in cfg.train_pipeline[1]['transforms'] if t['type'] == 'Resize'][0]
    assert tuple(resize['scale']) == (640, 360)
    cfg.model.detector.test_cfg.rpn.max_per_img = 50
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    scaled = tiny_cfg(name, toy_small)   # paper pipeline on the toy data (its classes are YTVIS-2021 ones)
    _, batch = video_batch(scaled, n=1)
    model.train()
    losses = model.loss(**model.data_preprocessor(batch, True))
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    model.eval()
    data = model.data_preprocessor(batch, False)
    res = model.predict_frame(data['inputs'][:, 0], data['data_samples'][0][0])
    assert res.embeds.shape[1] == cfg.model.track_head.embed_head.embed_channels


def test_vis_sync_bn_matches_batchnorm_without_process_group():
    from visrc.models.sync_bn import VisSyncBN, convert_sync_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ref = copy.deepcopy(net)
    conv = convert_sync_batchnorm(net)
    assert isinstance(conv[1], VisSyncBN)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(conv(x), ref(x))
    torch.testing.assert_close(conv[1].running_var, ref[1].running_var)


def test_demo_draws_tracks_into_a_gif(toy_small, tmp_path):
    from mmdet.registry import MODELS
    from PIL import Image

    from visrc.demo_cli import list_frames, render_demo
    from visrc.viz.draw import draw_frame, track_color

    cfg = tiny_cfg('toy_baseline', toy_small)
    cfg.model.detector.test_cfg.rcnn.score_thr = 0.0
    cfg.tracking = dict(tracker=dict(init_score_thr=0.0, obj_score_thr=0.0))
    torch.manual_seed(0)
    ckpt = tmp_path / 'untrained.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, ckpt)
    video_dir = sorted((toy_small / 'valid' / 'JPEGImages').iterdir())[0]
    out, n_tracks = render_demo(cfg, ckpt, video_dir, tmp_path / 'demo.gif', score_thr=0.0)
    assert n_tracks > 0
    with Image.open(out) as im:
        assert im.n_frames == len(list_frames(video_dir))
        assert im.size == Image.open(list_frames(video_dir)[0]).size
    # drawing: the mask is blended in the track's colour, the box outline is that colour
    img = np.zeros((40, 60, 3), np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[10:20, 10:30] = True
    drawn = draw_frame(img, np.array([[5, 5, 50, 35]], np.float32), [mask], [3], [1], [0.9], ['a', 'b'])
    assert drawn.shape == img.shape
    assert tuple(drawn[25, 50]) == track_color(3)                # the box's right edge
    assert drawn[15, 20].sum() > 0 and drawn[30, 20].sum() == 0  # inside the mask / outside it


def test_a_config_file_alone_registers_visrc_modules():
    """``custom_imports=['visrc.registry']``: a fresh process that only reads a config file with
    mmengine (as ``tools/train.py`` would) finds visrc's datasets, samplers, transforms and heads."""
    import subprocess
    import sys

    from visrc.models.config import resolve_config_path

    code = f'''
import sys
from mmengine.config import Config
assert not [m for m in sys.modules if m.startswith("visrc")]
cfg = Config.fromfile({resolve_config_path('toy_tcis_multitask_msd')!r})   # first, as mmdet's tools/train.py
assert "visrc.registry" in sys.modules
from mmdet.registry import DATA_SAMPLERS, DATASETS, MODELS, TRANSFORMS
from mmdet.utils import register_all_modules
register_all_modules()
for registry, name in ((MODELS, "VISQDTrack"), (MODELS, "SemSegHead"), (MODELS, "AuxClassBBoxHead"),
                       (DATASETS, "YTVISRawDataset"), (DATASETS, "MSDImageDataset"),
                       (DATA_SAMPLERS, "MixedSourceSampler"), (DATA_SAMPLERS, "FixedLengthTrackImgSampler"),
                       (TRANSFORMS, "PseudoRefFrame")):
    assert registry.get(name) is not None, name
print(type(MODELS.build(cfg.model)).__name__)
'''
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == 'VISQDTrack'
