"""The Table 1 ablation configs (+TCIS, +TCIS+MultiTask, +TCIS+MultiTask+MSD): each builds, trains two
iterations on the small toy benchmark with its extra losses present and finite, predicts only the C
target classes, and predicts the same with and without the TCIS weights (TCIS is training-only);
the MSD config feeds still images with weak flags whose masks give no mask loss."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from helpers import tiny_cfg

BASE_LOSSES = ('loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask', 'loss_track', 'loss_track_aux')
ROWS = {   # config -> losses it adds to the baseline's
    'toy_tcis': ('loss_mask_tcis',),
    'toy_tcis_multitask': ('loss_mask_tcis', 'loss_semseg', 'loss_multilabel', 'loss_mask_iou'),
    'toy_tcis_multitask_msd': ('loss_mask_tcis', 'loss_semseg', 'loss_multilabel', 'loss_mask_iou'),
}
C = 6   # toy target classes


def _build_data(cfg):
    from mmdet.registry import DATASETS
    return DATASETS.build(cfg.train_dataloader.dataset)


def _first_batch(cfg, ds):
    """Two video pairs; for the MSD config one video pair + one COCO + one OpenImages still image."""
    from mmengine.dataset import pseudo_collate

    if hasattr(ds, 'datasets'):
        starts = np.concatenate([[0], ds.cumulative_sizes[:-1]])
        items = [ds[int(s)] for s in starts]
    else:
        items = [ds[(i, 1)] for i in range(2)]
    return pseudo_collate(items)


def _loss_value(v):
    return sum(v) if isinstance(v, (list, tuple)) else v


def _assert_same_predictions(a, b):
    assert len(a) == len(b)
    for k in ('bboxes', 'scores', 'labels', 'masks', 'embeds'):
        torch.testing.assert_close(a.get(k), b.get(k), rtol=0, atol=0, msg=k)


@pytest.mark.parametrize('name', list(ROWS))
def test_row_trains_and_tcis_adds_nothing_at_inference(name, toy_small):
    from mmdet.registry import MODELS

    cfg = tiny_cfg(name, toy_small)
    cfg.model.detector.test_cfg.rcnn.score_thr = 0.0   # nearly untrained: keep whatever it finds
    cfg.model.embed_score_thr = 0.0
    torch.manual_seed(0)
    np.random.seed(0)
    model = MODELS.build(cfg.model).train()
    batch = _first_batch(cfg, _build_data(cfg))
    data = model.data_preprocessor(batch, True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for it in range(2):
        losses = model.loss(**copy.deepcopy(data))
        for k in BASE_LOSSES + ROWS[name]:
            assert k in losses, k
            assert torch.isfinite(_loss_value(losses[k])).all(), k
        assert float(losses['loss_mask_tcis'].detach()) > 0          # key/reference instances were matched
        loss, _ = model.parse_losses(losses)
        opt.zero_grad()
        loss.backward()
        tcis_grads = [p.grad for n, p in model.named_parameters()
                      if n.startswith('detector.roi_head.tcis.dcn') and p.grad is not None]
        assert tcis_grads and any(float(g.abs().sum()) > 0 for g in tcis_grads)
        opt.step()
    assert any(k.startswith('aux_heads.') for k in model.state_dict()) == (name != 'toy_tcis')

    # inference: C target classes only, and the same outputs from a model built without TCIS
    model.eval()
    test_data = model.data_preprocessor(batch, False)
    img, sample = test_data['inputs'][:1, 0], test_data['data_samples'][0][0]
    res = model.predict_frame(img, sample)
    assert len(res) > 0 and int(res.labels.max()) < C and int(res.labels.min()) >= 0

    cfg_off = copy.deepcopy(cfg)
    cfg_off.model.detector.roi_head.tcis = None
    plain = MODELS.build(cfg_off.model)
    state = {k: v for k, v in model.state_dict().items() if '.tcis.' not in k}
    assert len(state) < len(model.state_dict())
    plain.load_state_dict(state, strict=True)          # nothing but the TCIS weights differs
    plain.eval()
    assert not any(n.startswith('detector.roi_head.tcis') for n, _ in plain.named_parameters())
    _assert_same_predictions(res, plain.predict_frame(img, sample))


def test_rows_share_the_baseline_schedule_and_differ_where_the_paper_says(toy_small):
    base = tiny_cfg('toy_baseline', toy_small)
    cfgs = {n: tiny_cfg(n, toy_small) for n in ROWS}
    for name, cfg in cfgs.items():
        for key in ('train_cfg', 'param_scheduler', 'optim_wrapper', 'randomness'):
            assert cfg[key] == base[key], (name, key)
        assert cfg.train_dataloader.batch_size == base.train_dataloader.batch_size
        assert cfg.model.detector.backbone == base.model.detector.backbone
        assert cfg.model.track_head == base.model.track_head
        assert cfg.model.detector.roi_head.tcis.in_channels == base.model.detector.neck.out_channels
    assert cfgs['toy_tcis'].model.detector.roi_head.type == 'VISTCISRoIHead'
    assert cfgs['toy_tcis'].model.get('aux_heads') is None
    assert cfgs['toy_tcis'].model.detector.roi_head.bbox_head == base.model.detector.roi_head.bbox_head
    assert cfgs['toy_tcis'].train_dataloader == base.train_dataloader
    mt = cfgs['toy_tcis_multitask']
    assert mt.model.detector.roi_head.type == 'VISTCISMaskScoringRoIHead'
    assert set(mt.model.aux_heads) == {'semseg', 'multilabel'}
    assert mt.train_dataloader == base.train_dataloader
    full = cfgs['toy_tcis_multitask_msd']
    rh = full.model.detector.roi_head
    assert full.num_aux == 2 and rh.bbox_head.num_aux_classes == full.num_aux
    assert rh.bbox_head.num_classes == rh.mask_head.num_classes == rh.mask_iou_head.num_classes == C + 2
    assert full.model.aux_heads.semseg.num_classes == full.model.aux_heads.multilabel.num_classes == C
    assert full.train_dataloader.sampler.ratios == full.msd_ratios == [2, 1, 1]


def test_msd_config_mixes_sources_and_weak_masks_give_no_mask_loss(toy_small):
    from mmdet.registry import MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.runner import Runner

    cfg = tiny_cfg('toy_tcis_multitask_msd', toy_small)
    # the runner's dataloader: sources drawn in the configured ratio, batches of mixed sources
    loader = Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader), seed=0)
    ds = loader.dataset
    assert [type(d).__name__ for d in ds.datasets] == ['YTVISRawDataset', 'MSDImageDataset', 'MSDImageDataset']
    src = np.searchsorted(np.asarray(ds.cumulative_sizes), np.asarray(list(loader.sampler)), side='right')
    from visrc.data.msd import frames_of
    n = frames_of(ds.datasets[0])      # the union: every video frame once, the still images on top in 2:1:1
    assert np.bincount(src, minlength=3).tolist() == [n, n // 2, n // 2]

    # OpenImages-style still images: 1-frame videos turned into warped key/reference pairs, weak flags set
    oi, offset = ds.datasets[2], ds.cumulative_sizes[1]
    all_weak = [i for i in range(len(oi))
                if all(a['weak_mask'] for a in oi.get_data_info(i)['images'][0]['instances'])]
    assert all_weak and len(all_weak) < len(oi)   # the toy mixes weak and strong images
    np.random.seed(0)
    items = [ds[offset + i] for i in all_weak[:2]]
    for it in items:
        key = it['data_samples'].get_key_frames()[0]
        assert it['inputs'].shape[0] == 2 and key.gt_instances.weak_flags.all()
        assert not torch.equal(it['inputs'][0], it['inputs'][1])
    strong = ds[ds.cumulative_sizes[0]]      # a COCO image: masks, not weak
    assert not strong['data_samples'].get_key_frames()[0].gt_instances.weak_flags.any()

    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    losses = model.loss(**model.data_preprocessor(pseudo_collate(items), True))
    for k in ('loss_mask', 'loss_mask_tcis', 'loss_mask_iou', 'loss_semseg'):
        assert float(losses[k].detach()) == 0.0, k      # no mask supervision from weak instances
    for k in ('loss_cls', 'loss_track', 'loss_multilabel'):
        assert float(losses[k].detach()) > 0, k         # boxes, identities and labels still train
    loss, _ = model.parse_losses(losses)
    loss.backward()                            # zeros stay connected to the graph
