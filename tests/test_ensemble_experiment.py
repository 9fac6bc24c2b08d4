"""Table 2 plumbing on a tiny untrained toy model: test-time scale, proposals fed back to a model,
cached model ensembles, pseudo-label datasets and the weak-mask fine-tuning options."""
import copy
import json
import os

import numpy as np
import pytest
import torch

from visrc.data.masks import decode_rle


@pytest.fixture(scope="module")
def tiny_root(toy_small, tmp_path_factory):
    """The small toy benchmark with its valid split cut to 2 videos (images shared by symlink)."""
    root = tmp_path_factory.mktemp("tiny_toy")
    os.symlink(toy_small / "train", root / "train")
    (root / "valid").mkdir()
    os.symlink(toy_small / "valid" / "JPEGImages", root / "valid" / "JPEGImages")
    data = json.loads((toy_small / "valid" / "instances.json").read_text())
    keep = {v["id"] for v in data["videos"][:2]}
    data["videos"] = [v for v in data["videos"] if v["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["video_id"] in keep]
    (root / "valid" / "instances.json").write_text(json.dumps(data))
    return root


def _checkpoint(tmp_path_factory, config: str, seed: int):
    from mmdet.registry import MODELS

    from visrc.models.config import load_config

    torch.manual_seed(seed)
    model = MODELS.build(load_config(config).model)
    model.init_weights()
    path = tmp_path_factory.mktemp(f"ckpt_{config}_{seed}") / "epoch_0.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return [_checkpoint(tmp_path_factory, "toy_baseline", 0), _checkpoint(tmp_path_factory, "toy_baseline", 1)]


@pytest.fixture(scope="module")
def predictor(ckpts):
    from visrc.models.predictor import VideoPredictor

    return VideoPredictor.from_files("toy_baseline", ckpts[0])


def _low_thresholds():
    """Pseudo-label settings under which an untrained model's weak detections become tracks."""
    from visrc.ensemble import PseudoLabelConfig
    from visrc.tracking import BiTrackConfig, TrackerConfig

    tracker = TrackerConfig(init_score_thr=0.0, obj_score_thr=0.0, match_thr=0.0)
    return PseudoLabelConfig(score_thr=0.0, min_track_len=1, tracking=BiTrackConfig(tracker=tracker), with_masks=False)


def _frame_path(root, video=0, t=0):
    data = json.loads((root / "valid" / "instances.json").read_text())
    return str(root / "valid" / "JPEGImages" / data["videos"][video]["file_names"][t])


def test_scale_multiplies_resize_and_predictions_stay_in_original_pixels(predictor, ckpts, tiny_root):
    from visrc.models.predictor import VideoPredictor, scale_test_pipeline

    pipe = scale_test_pipeline(predictor.cfg.test_pipeline, 0.5)
    assert pipe[0]["transforms"][1]["scale"] == (128, 72)              # (256, 144) * 0.5
    assert predictor.cfg.test_pipeline[0]["transforms"][1]["scale"] == (256, 144)   # the config is untouched
    with pytest.raises(ValueError, match="scale must be > 0"):
        scale_test_pipeline(predictor.cfg.test_pipeline, 0)

    small = VideoPredictor.from_files("toy_baseline", ckpts[0], scale=0.5)
    path = _frame_path(tiny_root)
    img, sample = small._prepare(path, 0, 0, 1)
    assert sample.metainfo["img_shape"] == (72, 128) and sample.metainfo["ori_shape"] == (72, 128)
    img1, sample1 = predictor._prepare(path, 0, 0, 1)
    assert sample1.metainfo["img_shape"] == (144, 256)
    f = small.predict_frame(path)
    assert len(f) > 0
    assert f.boxes[:, [0, 2]].max() <= 128 and f.boxes[:, [1, 3]].max() <= 72 and f.boxes.min() >= 0
    assert all(tuple(m["size"]) == (72, 128) for m in f.masks)          # original image size
    assert not np.allclose(f.boxes[:5], predictor.predict_frame(path).boxes[:5])   # another input size


def test_predict_boxes_on_own_detections_reproduces_masks_and_embeddings(predictor, tiny_root, monkeypatch):
    path = _frame_path(tiny_root, 1, 2)
    f = predictor.predict_frame(path)
    assert len(f) > 1
    calls = []
    extract = predictor.model.extract_feats
    monkeypatch.setattr(predictor.model, "extract_feats", lambda x: calls.append(1) or extract(x))
    masks, emb = predictor.predict_boxes(path, f.boxes, f.labels)
    assert calls == []                                 # the frame's features were cached by predict_frame
    assert masks.shape == (len(f), 72, 128) and masks.dtype == np.float32 and 0 <= masks.min() <= masks.max() <= 1
    assert emb.shape == f.embeddings.shape
    np.testing.assert_allclose(emb, f.embeddings, rtol=1e-4, atol=1e-5)
    own = np.stack([decode_rle(m) for m in f.masks]).astype(bool)
    agree = ((masks >= 0.5) == own).mean()
    assert agree > 0.995, agree                        # only pixels within 1/255 of the threshold may flip
    # the mask head is class-specific: other labels give other masks
    other, _ = predictor.predict_boxes(path, f.boxes, (f.labels + 1) % 6)
    assert not np.allclose(other, masks)
    # a new frame is computed once, then reused
    path2 = _frame_path(tiny_root, 1, 3)
    predictor.predict_boxes(path2, f.boxes[:1], f.labels[:1])
    predictor.predict_boxes(path2, f.boxes[:2], f.labels[:2])
    assert len(calls) == 1
    m0, e0 = predictor.predict_boxes(path2, np.zeros((0, 4)), np.zeros(0))
    assert m0.shape == (0, 72, 128) and e0.shape == (0, emb.shape[1])
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        predictor.predict_boxes(path2, f.boxes[:2], f.labels[:1])


@pytest.fixture(scope="module")
def ensemble(ckpts, tiny_root, tmp_path_factory):
    from visrc.experiments.table2 import ensemble_models

    old = os.environ.get("VISRC_RUNS_DIR")
    os.environ["VISRC_RUNS_DIR"] = str(tmp_path_factory.mktemp("runs"))   # never the repo's runs/
    members = [("toy_baseline", ckpts[0]), ("toy_baseline", ckpts[1])]
    yield ensemble_models(members, tiny_root, scales=(1.0, 0.75), refine=True)
    if old is None:
        os.environ.pop("VISRC_RUNS_DIR")
    else:
        os.environ["VISRC_RUNS_DIR"] = old


def test_ensemble_models_refines_tracks_evaluates_and_caches(ensemble, ckpts, tiny_root, monkeypatch):
    from visrc.data.predictions import load_predictions
    from visrc.experiments import table2

    assert len(ensemble.videos) == 2 and set(ensemble.metrics) >= {"AP", "AP50", "AR10"}
    for v in ensemble.videos:
        v.validate()
        assert (v.height, v.width) == (72, 128) and v.embed_dim == 64
    assert (ckpts[0].parent / "predict_forward_scale0p75" / "summary.json").is_file()   # next to the checkpoint
    assert (ckpts[1].parent / "predict_forward" / "summary.json").is_file()
    ms = load_predictions(ckpts[0].parent / "predict_forward_scale0p75" / "results.predictions.npz")
    assert ms[0].height == 72                                                           # original pixels
    # cached: nothing is predicted again
    monkeypatch.setattr("visrc.pipeline.predict", lambda *a, **k: pytest.fail("re-predicted"))
    monkeypatch.setattr("visrc.models.predictor.VideoPredictor.from_files", lambda *a, **k: pytest.fail("rebuilt"))
    again = table2.ensemble_models([("toy_baseline", ckpts[0]), ("toy_baseline", ckpts[1])], tiny_root,
                                   scales=(1.0, 0.75), refine=True)
    assert again.metrics == ensemble.metrics and again.out_dir == ensemble.out_dir
    assert [len(f) for f in again.videos[0].frames] == [len(f) for f in ensemble.videos[0].frames]


def test_pseudo_label_dataset_writes_a_merged_file_the_dataset_loads(ensemble, tiny_root):
    from visrc.data.video_dataset import YTVISRawDataset
    from visrc.data.ytvis import load_ytvis
    from visrc.experiments.pseudo_labels import pseudo_label_dataset

    merged, stats = pseudo_label_dataset(ensemble, _low_thresholds())
    assert merged.is_file() and stats["tracks_kept"] > 0 and stats["boxes_kept"] > 0
    assert 0 <= stats["precision"] <= stats["precision_agnostic"] <= 1
    data = load_ytvis(merged)
    sources = [v["source"] for v in data["videos"]]
    pseudo = [a for a in data["annotations"] if a.get("weak_mask")]
    assert len(pseudo) == stats["tracks_kept"] and stats["videos"] == 2
    # only the valid videos that got a pseudo label join the train set
    assert sources.count("train") == 6 and sources.count("pseudo") == stats["videos_labelled"] == \
        len({a["video_id"] for a in pseudo}) >= 1
    ds = YTVISRawDataset(data_root=str(tiny_root), ann_file=str(merged), data_prefix=dict(img_path=""),
                         metainfo=dict(classes=("fish", "shark", "turtle", "bird", "car", "truck")),
                         pipeline=[], test_mode=True)
    assert len(ds) == 6 + stats["videos_labelled"]
    weak = [i["weak_mask"] for k in range(len(ds)) for im in ds.get_data_info(k)["images"] for i in im["instances"]]
    assert sum(weak) == stats["boxes_kept"] and not all(weak)
    assert all(os.path.isfile(im["img_path"]) for k in range(len(ds)) for im in ds.get_data_info(k)["images"])
    assert pseudo_label_dataset(ensemble, _low_thresholds())[1] == stats  # cached


def test_pseudo_label_options_skip_the_mask_loss_of_pseudo_boxes(ensemble, ckpts, tiny_root):
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate

    from visrc.experiments.pseudo_labels import pseudo_label_dataset, pseudo_label_options
    from visrc.models.train_cli import prepare_config

    merged, _ = pseudo_label_dataset(ensemble, _low_thresholds())
    opts = pseudo_label_options("toy_baseline", ckpts[0], merged)
    assert opts["load_from"] == str(ckpts[0].resolve())
    cfg = prepare_config("toy_baseline", data_root=str(tiny_root), cfg_options=copy.deepcopy(opts))
    assert cfg.model.detector.roi_head.mask_head.type == "WeakMaskFCNMaskHead"
    ds_cfg = cfg.train_dataloader.dataset
    assert [t["type"] for t in ds_cfg.pipeline[1]["transforms"]][1] == "LoadMSDAnnotations"
    ds = DATASETS.build(ds_cfg)
    pseudo_videos = [k for k in range(len(ds)) if ds.get_data_info(k)["images"][0]["img_path"].count("valid")]
    items = [ds[(k, t)] for k in pseudo_videos for t in range(6)
             if ds.get_data_info(k)["images"][t]["instances"]][:2]
    assert items and all(it["data_samples"].get_key_frames()[0].gt_instances.weak_flags.all() for it in items)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    losses = model.loss(**model.data_preprocessor(pseudo_collate(items), True))
    assert float(losses["loss_mask"].detach()) == 0.0          # pseudo masks never supervise
    assert float(losses["loss_cls"].detach()) > 0 and float(losses["loss_track"].detach()) > 0


def test_pseudo_box_precision_counts_one_to_one_matches():
    from visrc.experiments.pseudo_labels import pseudo_box_precision

    gt = {"annotations": [{"video_id": 1, "category_id": 1, "bboxes": [[0, 0, 10, 10], None]},
                          {"video_id": 1, "category_id": 2, "bboxes": [[20, 20, 10, 10], [0, 0, 5, 5]]}]}
    pseudo = {"annotations": [
        {"video_id": 1, "category_id": 1, "score": 0.9, "bboxes": [[0, 0, 10, 11], None]},     # hit
        {"video_id": 1, "category_id": 1, "score": 0.8, "bboxes": [[0, 0, 10, 10], None]},     # duplicate: miss
        {"video_id": 1, "category_id": 3, "score": 0.7, "bboxes": [[20, 20, 10, 10], None]},   # wrong class
        {"video_id": 1, "category_id": 2, "score": 0.6, "bboxes": [None, [40, 40, 5, 5]]}]}    # no overlap
    p = pseudo_box_precision(pseudo, gt)
    assert (p["boxes"], p["gt_boxes"], p["true_positives"]) == (4, 3, 1)
    assert p["precision"] == 0.25 and p["precision_agnostic"] == 0.5 and p["gt_recall"] == pytest.approx(1 / 3)


def test_toy_swin_is_the_baseline_with_a_swin_backbone_of_the_same_channels():
    from mmdet.registry import MODELS

    from visrc.models.config import load_config

    base, swin = load_config("toy_baseline"), load_config("toy_swin")
    bb = swin.model.detector.backbone
    assert bb.type == "SwinTransformer" and bb.init_cfg is None and "depth" not in bb   # _delete_: no ResNet keys
    for key in ("neck", "rpn_head", "roi_head"):
        assert swin.model.detector[key] == base.model.detector[key]
    assert swin.model.track_head == base.model.track_head and swin.train_cfg == base.train_cfg
    assert swin.optim_wrapper == base.optim_wrapper and swin.test_pipeline == base.test_pipeline
    torch.manual_seed(0)
    model = MODELS.build(swin.model).eval()
    with torch.no_grad():
        c, p = model.extract_feats(torch.rand(1, 3, 64, 96))
    assert [f.shape[1] for f in c] == list(base.model.detector.neck.in_channels)      # 16, 32, 64, 128
    assert [tuple(f.shape[2:]) for f in c] == [(16, 24), (8, 12), (4, 6), (2, 3)]     # strides 4..32
    assert len(p) == 6 and all(f.shape[1] == base.ch for f in p)


def test_control_fine_tune_keeps_the_train_set_and_differs_only_in_weights_and_lr(ensemble, ckpts, tiny_root):
    from visrc.experiments.runs import run_dir
    from visrc.experiments.pseudo_labels import pseudo_label_dataset, retrain_jobs
    from visrc.models.train_cli import prepare_config

    merged, _ = pseudo_label_dataset(ensemble, _low_thresholds())
    members = [("toy_baseline", ckpts[0])]
    control, = retrain_jobs(members, None, tiny_root, seed=0, epochs=2, lr=2e-4)
    pseudo, = retrain_jobs(members, merged, tiny_root, seed=0, epochs=2, lr=2e-4)
    assert control["cfg_options"] == {"load_from": str(ckpts[0].resolve()), "optim_wrapper.optimizer.lr": 2e-4}
    assert control["max_epochs"] == pseudo["max_epochs"] == 2
    base = prepare_config("toy_baseline", data_root=str(tiny_root))
    cfg = prepare_config("toy_baseline", data_root=str(tiny_root), cfg_options=copy.deepcopy(control["cfg_options"]))
    assert cfg.train_dataloader.dataset.ann_file == base.train_dataloader.dataset.ann_file
    assert cfg.optim_wrapper.optimizer.lr == 2e-4 and cfg.load_from == str(ckpts[0].resolve())
    runs = {run_dir(j["config"], j["data_root"], j["seed"], j["max_epochs"], j["cfg_options"]) for j in (control, pseudo)}
    assert len(runs) == 2                                  # cached apart


def test_new_networks_on_msd_configs_keep_the_still_images_and_start_from_the_init(ensemble, ckpts, tiny_root,
                                                                                   tmp_path):
    """retrain="new": the pseudo-labelled videos replace the video source of a Multi-Source Data
    config (the COCO / OpenImages sources and the sampler stay), the run starts from the given init,
    not from the member's weights, and there is no separate control run."""
    from visrc.experiments.pseudo_labels import pseudo_label_dataset, retrain_jobs
    from visrc.experiments.table1 import msd_union_length
    from visrc.models.train_cli import prepare_config

    merged, _ = pseudo_label_dataset(ensemble, _low_thresholds())
    init = tmp_path / "pretrained.pth"
    init.write_bytes(b"")
    config = "toy_tcis_multitask_msd"
    job, = retrain_jobs([(config, ckpts[0])], merged, tiny_root, seed=0, retrain="new", inits={config: init})
    assert job["init"] == init and job["max_epochs"] is None and "load_from" not in job["cfg_options"]
    base = prepare_config(config, data_root=str(tiny_root))
    cfg = prepare_config(config, data_root=str(tiny_root), cfg_options=copy.deepcopy(job["cfg_options"]))
    videos, *stills = cfg.train_dataloader.dataset.datasets
    assert videos.ann_file == str(merged.resolve()) and videos.data_prefix == {"img_path": ""}
    assert [s.ann_file for s in stills] == [s.ann_file for s in base.train_dataloader.dataset.datasets[1:]]
    assert all(d.data_root == str(tiny_root).rstrip("/") + "/" for d in (videos, *stills))   # every source
    # the model's own epoch length (same iterations as the model, the control), fixed as a length
    assert cfg.train_dataloader.sampler.anchor_source is None
    assert cfg.train_dataloader.sampler.length == msd_union_length(config, tiny_root)
    assert cfg.model == base.model
    with pytest.raises(ValueError, match="no control"):
        retrain_jobs([(config, ckpts[0])], None, tiny_root, retrain="new")


def test_pseudo_settings_are_chosen_by_f1_on_the_ensembles_split(ensemble):
    from visrc.experiments.pseudo_labels import choose_pseudo_config, make_split_pseudo_labels

    chosen, grid = choose_pseudo_config(ensemble, _low_thresholds(), score_grid=(0.0, 0.99), track_len_grid=(1, 2))
    assert [(g["score_thr"], g["min_track_len"]) for g in grid] == [(0.0, 1), (0.0, 2), (0.99, 1), (0.99, 2)]
    best = max(grid, key=lambda g: g["f1"])
    assert (chosen.score_thr, chosen.min_track_len) == (best["score_thr"], best["min_track_len"])
    _, p = make_split_pseudo_labels(ensemble, chosen)
    assert p["boxes"] == next(g["boxes"] for g in grid if g is best)
