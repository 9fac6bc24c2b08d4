"""The paper's full system at paper scale (``paper_*_full`` configs) on synthetic data in the
released formats of YouTube-VIS 2021, COCO 2017 and OpenImages (``tests/realformat.py``).

Per config: it is the paper's system (checked key by key), it builds, trains 2 iterations
(1 image per batch) through the Multi-Source Data loader at 360x640, and tracks one video with
BiTrack. ResNeSt-50 runs in the default suite; ResNeSt-101 and Swin-S are marked ``slow``
(``pytest -m slow tests/test_paper_full.py``): a paper-size iteration takes tens of seconds on CPU.
"""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from realformat import COCO_IMAGES, OPENIMAGES_IMAGES, make_real_format

FULL = ['paper_s50_full', 'paper_s101_full', 'paper_swin_s_full']
C5_CHANNELS = {'paper_s50_full': 2048, 'paper_s101_full': 2048, 'paper_swin_s_full': 768}


@pytest.fixture(scope='module')
def real_root(tmp_path_factory):
    return make_real_format(tmp_path_factory.mktemp('real') / 'vis')


def _cfg(name, root=None, **options):
    from visrc.models.train_cli import prepare_config

    return prepare_config(name, data_root=str(root) if root else None, cfg_options=options or None)


def _loader_cfg(cfg):
    """The config's train dataloader without worker processes (the test's only change)."""
    dl = copy.deepcopy(cfg.train_dataloader)
    dl.num_workers, dl.persistent_workers = 0, False
    return dl


def _resize_scales(pipeline):
    return [tuple(t['scale']) for step in pipeline for t in [step] + list(step.get('transforms', []))
            if t['type'] == 'Resize']


# ------------------------------------------------------------------------------------------ configs
@pytest.mark.parametrize('name', FULL + ['paper_s50_full_ytvis2019'])
def test_full_config_is_the_papers_system(name):
    from visrc.data.category_tables import non_target_classes, ytvis_classes
    from visrc.pipeline import config_tracking

    cfg = _cfg(name)
    version = cfg.dataset_version
    assert tuple(cfg.classes) == ytvis_classes(version) and cfg.num_classes == 40
    C, K = 40, cfg.num_aux
    assert K == len(non_target_classes('coco', '2021')) == 59        # one index per non-target COCO class
    det = cfg.model.detector
    roi = det.roi_head
    assert roi.type == 'VISTCISMaskScoringRoIHead'
    assert (roi.tcis.in_channels, roi.tcis.roi_size, roi.tcis_rois_per_instance) == (256, 14, None)
    assert (roi.bbox_head.type, roi.bbox_head.num_target_classes, roi.bbox_head.num_aux_classes) == \
        ('AuxClassBBoxHead', C, K)
    assert roi.mask_head.type == 'WeakMaskFCNMaskHead' and roi.mask_head.num_classes == C + K
    assert roi.mask_iou_head.type == 'WeakMaskIoUHead' and roi.mask_iou_head.num_classes == C + K
    assert det.neck.out_channels == 256 and det.neck.num_outs == 6             # P2..P7
    semseg, multilabel = cfg.model.aux_heads.semseg, cfg.model.aux_heads.multilabel
    assert (semseg.num_classes, semseg.in_channels, semseg.in_index, semseg.feat_stride) == (C, 256, 1, 8)  # P3
    assert (multilabel.num_classes, multilabel.in_index) == (C, -1)                                          # C5
    assert multilabel.in_channels == C5_CHANNELS.get(name, 2048) == det.neck.in_channels[-1]
    if det.backbone.type == 'ResNeSt':
        assert det.backbone.norm_cfg.type == 'SyncBN' and roi.tcis.norm_cfg.type == 'SyncBN'
    assert cfg.sync_bn
    # 360x640 everywhere, 12 epochs with drops after 8 and 11, 4 images per GPU
    for ds in cfg.train_dataloader.dataset.datasets:
        assert _resize_scales(ds.pipeline) == [(640, 360)]
    assert _resize_scales(cfg.test_pipeline) == [(640, 360)]
    assert cfg.train_cfg.max_epochs == 12 and cfg.train_dataloader.batch_size == 4
    ms = [s for s in cfg.param_scheduler if s['type'] == 'MultiStepLR'][0]
    assert ms['milestones'] == [8, 11] and ms['gamma'] == 0.1
    # Multi-Source Data: YouTube-VIS + COCO + OpenImages through the reviewed tables of this version
    video, coco, oi = cfg.train_dataloader.dataset.datasets
    assert (video.type, coco.type, oi.type) == ('YTVISRawDataset', 'MSDImageDataset', 'MSDImageDataset')
    assert video.dataset_version == version and coco.category_table == oi.category_table == version
    assert (coco.source, coco.num_aux, oi.source, oi.require_target) == ('coco', K, 'openimages', True)
    assert cfg.train_dataloader.sampler.type == 'MixedSourceSampler'
    # inference: BiTrack with label voting, QDTrack's bi-softmax association
    tracking, mode = config_tracking(cfg)
    assert mode == 'bitrack' and tracking.tracker.similarity == 'bisoftmax'
    assert tracking.tracker.backdrop_frames == 1 and tracking.tracker.momentum == 0.8
    assert not tracking.tracker.class_aware                   # label voting picks the track's class


def test_ytvis2019_variant_differs_only_by_class_list():
    a, b = _cfg('paper_s50_full'), _cfg('paper_s50_full_ytvis2019')
    for key in ('model', 'tracking', 'tracking_mode', 'train_cfg', 'optim_wrapper', 'param_scheduler',
                'train_pipeline', 'test_pipeline', 'num_aux'):
        assert a[key] == b[key], key
    sa, sb = a.train_dataloader.dataset.datasets, b.train_dataloader.dataset.datasets
    for da, db in zip(sa, sb):
        diff = {k for k in set(da) | set(db) if da.get(k) != db.get(k)}
        assert diff <= {'metainfo', 'dataset_version', 'category_table', 'ann_file'}, diff
    assert set(a.classes) ^ set(b.classes) == {'bird', 'car', 'flying_disc', 'squirrel', 'whale',
                                               'sedan', 'ape', 'hand', 'owl', 'eagle'}


# ------------------------------------------------------------------------------------ MSD, real data
def test_msd_loader_reads_the_released_formats(real_root):
    from mmengine.runner import Runner

    cfg = _cfg('paper_s50_full', real_root)
    classes = list(cfg.classes)
    C = len(classes)
    loader = Runner.build_dataloader(_loader_cfg(cfg), seed=0)
    ds = loader.dataset
    video, coco, oi = ds.datasets
    assert len(video) == 2
    # COCO: the image without annotations is dropped, the one with only non-target objects is kept
    coco_ids = [coco.get_data_info(i)['images'][0]['img_id'] for i in range(len(coco))]
    assert coco_ids == [i for i, _, objs in COCO_IMAGES if objs]
    labels = {coco_ids[i]: [(x['bbox_label'], x['ignore_flag']) for x in coco.get_data_info(i)['images'][0]['instances']]
              for i in range(len(coco))}
    idx = classes.index
    assert labels[139] == [(idx('person'), 0), (idx('flying_disc'), 0), (idx('motorbike'), 0)]  # frisbee, motorcycle
    assert labels[285] == [(idx('bear'), 0), (C, 0)]            # COCO mouse (a computer mouse): auxiliary
    assert labels[632] == [(C, 0)] * 3                          # chair, mouse, laptop: all auxiliary
    assert labels[776] == [(idx('dog'), 0), (idx('person'), 1), (idx('car'), 0)]   # the crowd is ignored
    # OpenImages: target classes only; the animal Mouse is YouTube-VIS mouse, its noisy mask weak
    oi_files = [oi.get_data_info(i)['images'][0]['img_path'].rsplit('/', 1)[-1] for i in range(len(oi))]
    assert oi_files == [f'{iid}.jpg' for iid, _, objs in OPENIMAGES_IMAGES if iid != '2c3d4e5f60718293']
    inst = [oi.get_data_info(i)['images'][0]['instances'] for i in range(len(oi))]
    assert [(x['bbox_label'], x['weak_mask']) for x in inst[0]] == [(idx('dog'), False)]
    assert [(x['bbox_label'], x['weak_mask']) for x in inst[1]] == [(idx('mouse'), True)]
    assert [(x['bbox_label'], x['weak_mask'], x['ignore_flag']) for x in inst[2]] == \
        [(idx('flying_disc'), False, 0), (idx('motorbike'), True, 0), (idx('person'), True, 1)]
    # the epoch: one sample per train video frame, COCO and OpenImages half as many each on top
    frames = 2 * 3
    sampler = loader.batch_sampler.sampler
    assert type(sampler).__name__ == 'MixedSourceSampler' and len(sampler) == frames * 4 // 2
    assert type(loader.batch_sampler).__name__ == 'TrackAspectRatioBatchSampler'
    batches = list(loader.batch_sampler)   # portrait and landscape apart, but for mmdet's epoch-end leftovers
    assert sum(len(b) for b in batches) == len(sampler)
    orientations = [{ds.get_data_info(i)['images'][0]['width'] < ds.get_data_info(i)['images'][0]['height']
                     for i in b} for b in batches]
    assert sum(len(o) > 1 for o in orientations) <= 1 and any(True in o for o in orientations)
    # each source through the pipeline: a key/reference pair scaled into 640x360 (long x short side)
    np.random.seed(0)
    shapes = {}
    for name, i in (('video', 0), ('coco', ds.cumulative_sizes[0] + coco_ids.index(285)),
                    ('oi', ds.cumulative_sizes[1])):
        item = ds[i]
        shapes[name] = tuple(item['inputs'].shape)
        key = item['data_samples'].get_key_frames()[0]
        assert len(key.gt_instances) > 0 and 'weak_flags' in key.gt_instances
    assert shapes['video'] == (2, 3, 360, 640) and shapes['coco'] == (2, 3, 480, 360)   # portrait 480x640
    assert shapes['oi'] == (2, 3, 360, 480)


def test_ytvis2019_variant_maps_through_the_2019_column(tmp_path):
    from mmdet.registry import DATASETS

    root = make_real_format(tmp_path / 'vis2019', n_videos=1, n_frames=2, version='2019')
    cfg = _cfg('paper_s50_full_ytvis2019', root)
    classes = list(cfg.classes)
    video, coco, oi = (DATASETS.build(dict(d, pipeline=[])) for d in cfg.train_dataloader.dataset.datasets)
    assert video.get_data_info(0)['video_length'] == 2
    by_id = {coco.get_data_info(i)['images'][0]['img_id']: coco.get_data_info(i)['images'][0]['instances']
             for i in range(len(coco))}
    C = 40
    assert [x['bbox_label'] for x in by_id[139]] == [classes.index('person'), C, classes.index('motorbike')]
    assert [x['bbox_label'] for x in by_id[776]] == [classes.index('dog'), classes.index('person'),
                                                     classes.index('sedan')]
    labels = [[x['bbox_label'] for x in oi.get_data_info(i)['images'][0]['instances']] for i in range(len(oi))]
    # Flying disc is no 2019 class: dropped from the OpenImages subset (the image keeps its targets)
    assert labels == [[classes.index('dog')], [classes.index('mouse')],
                      [classes.index('motorbike'), classes.index('person')]]


def test_openimages_conversion_of_the_released_layout(tmp_path, capsys):
    import cv2

    from realformat import write_openimages
    from visrc.data.masks import decode_rle
    from visrc.data.openimages import main, openimages_csv_to_coco

    files = write_openimages(tmp_path)
    # a mask whose box matches no box of the boxes CSV becomes an instance of its own
    cv2.imwrite(str(files['masks'] / 'train-masks-0' / 'extra.png'), np.full((10, 10), 255, np.uint8))
    with open(files['segmentation'], 'a') as f:
        f.write('extra.png,0a1b2c3d4e5f6071,/m/01yrx,ffff,0.0,1.0,0.0,1.0,0.95,\n')
    args = [str(files[k]) for k in ('boxes', 'classes', 'images')]
    data = openimages_csv_to_coco(*args, segmentation_csv=str(files['segmentation']), masks_dir=str(files['masks']),
                                  version='2021')
    names = {c['id']: c['name'] for c in data['categories']}
    first = [a for a in data['annotations'] if a['image_id'] == 1]
    assert [names[a['category_id']] for a in first] == ['Dog', 'Cat']        # Computer mouse, Tree: no targets
    dog, cat = first
    mask = decode_rle(dog['segmentation'])
    assert mask.shape == (768, 1024) and not dog['weak_mask'] and dog['predicted_iou'] == 0.92
    x, y, w, h = dog['bbox']                       # the half-size PNG resized onto the image, inside its box
    ys, xs = np.nonzero(mask)
    assert abs(xs.min() - x) <= 2 and abs(ys.min() - y) <= 2 and abs(xs.max() + 1 - (x + w)) <= 2
    assert cat['bbox'] == [0.0, 0.0, 1024.0, 768.0] and decode_rle(cat['segmentation']).all()
    # without a version: every class, masks optional (all boxes weak)
    plain = openimages_csv_to_coco(*args)
    assert len(plain['images']) == 4 and all(a['weak_mask'] for a in plain['annotations'])
    # the CLI: one line naming the file and the column on a broken CSV
    bad = tmp_path / 'bad.csv'
    bad.write_text('ImageID,LabelName,XMin\n')
    assert main(['--boxes', str(bad), '--classes', args[1], '--images', args[2], '--out', str(tmp_path / 'o.json')]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and 'XMax' in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------- training and tracking
def _train_two_iterations(name, root, work_dir):
    """2 iterations of the config's own runner (batch 1, no workers) through the MSD loader, on the
    runner's device (CUDA where there is one); every loss checked finite. Returns the runner."""
    from visrc.models.train_cli import build_runner, prepare_config

    cfg = prepare_config(name, data_root=str(root), work_dir=str(work_dir), max_epochs=1, cfg_options={
        'train_dataloader.batch_size': 1, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False, 'default_hooks.logger.interval': 1,
        # an epoch of 2 samples: one video, one still image (ratios 2:1:1, largest remainder)
        'train_dataloader.sampler.anchor_source': None, 'train_dataloader.sampler.length': 2})
    torch.manual_seed(0)
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 2
    hub = runner.message_hub
    for key in ('loss_cls', 'loss_bbox', 'loss_mask', 'loss_mask_tcis', 'loss_mask_iou', 'loss_track',
                'loss_semseg', 'loss_multilabel'):
        assert math.isfinite(hub.get_scalar(f'train/{key}').current()), key
    return runner


def _train_two_iterations_and_track(name, root, work_dir):
    """2 iterations of the config's own runner (batch 1, no workers) through the MSD loader, its
    checkpoint, then ``run_inference`` (the `visrc infer` path) with BiTrack on one valid video."""
    from visrc.pipeline import config_tracking, run_inference

    runner = _train_two_iterations(name, root, work_dir)
    ckpt = work_dir / 'epoch_1.pth'
    assert ckpt.is_file()
    del runner

    # an untrained model scores nothing above the config's thresholds: keep 10 boxes per frame and
    # track them all (its mask-IoU head, multiplied into the scores, may even make them negative)
    test = _cfg(name, root)
    test.model.detector.test_cfg.rcnn.update(score_thr=0.0, max_per_img=10)
    tracking = test.tracking.to_dict()
    tracking['tracker'].update(init_score_thr=-1.0, obj_score_thr=-1.0)
    summary = run_inference(test, ckpt, data_root=str(root), out=work_dir / 'results.json', tracking=tracking,
                            max_videos=1, log=None)
    assert summary['mode'] == 'bitrack' and summary['videos'] == 1 and summary['frames'] == 2
    assert config_tracking(test)[0].tracker.similarity == 'bisoftmax'
    results = json.loads((work_dir / 'results.json').read_text())
    assert results and summary['tracks'] == len(results)
    for r in results:
        assert len(r['segmentations']) == 2 and 1 <= r['category_id'] <= 40 and math.isfinite(r['score'])
    assert 'metrics' not in summary               # the released valid split has no annotations


# paper-size iterations: minutes of CPU, more on a shared machine than the suite's hang guard allows
@pytest.mark.timeout(3600)
def test_s50_full_trains_through_msd_and_tracks_with_bitrack(real_root, tmp_path):
    _train_two_iterations_and_track('paper_s50_full', real_root, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize('name', ['paper_s101_full', 'paper_swin_s_full'])
def test_large_backbone_full_trains_and_tracks(name, real_root, tmp_path):
    _train_two_iterations_and_track(name, real_root, tmp_path)


@pytest.mark.timeout(1800)
@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason='no CUDA device: the CUDA run is benchmarks/device_check.sh on a GPU machine')
def test_s50_full_forward_and_backward_on_cuda(real_root, tmp_path):
    """The full model's forward and backward on CUDA: visrc.ops' CUDA path (RoIAlign, NMS, TCIS's
    deformable convolution) under mmengine's runner, which puts the model on the GPU."""
    runner = _train_two_iterations('paper_s50_full', real_root, tmp_path)
    assert next(runner.model.parameters()).device.type == 'cuda'
