"""Greedy Auto Ensemble, mask/embedding averaging and multi-scale merging, on hand-made predictions."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import visrc.ensemble.gae as gae
from visrc.data.boxes import paired_box_iou
from visrc.data.embeddings import unit_rows
from visrc.data.masks import decode_rle, encode_mask, encode_masks
from visrc.ensemble import (ensemble_frame, ensemble_videos, greedy_clusters, greedy_select, merge_scales,
                            refine_with_models)
from visrc.tracking import FramePredictions, VideoPredictions, synthetic_video


def frame(boxes, scores, labels=None, emb=None, masks_hw=None):
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    n = len(boxes)
    labels = np.zeros(n, np.int64) if labels is None else labels
    emb = np.eye(n, 4) if emb is None else emb
    masks = None
    if masks_hw is not None:
        h, w = masks_hw
        m = np.zeros((n, h, w), np.uint8)
        for k, (x0, y0, x1, y1) in enumerate(np.round(boxes).astype(int)):
            m[k, y0:y1, x0:x1] = 1
        masks = encode_masks(m)
    return FramePredictions(boxes, scores, labels, np.asarray(emb, np.float64).reshape(n, -1), masks)


# ------------------------------------------------------------------------------------ boxes

def test_two_models_agreeing_give_one_box_with_max_score():
    a = frame([[10, 10, 50, 50]], [0.6])
    b = frame([[12, 10, 52, 50]], [0.9])
    boxes, scores, labels, members = ensemble_frame([a, b])
    assert boxes.shape == (1, 4) and scores.tolist() == pytest.approx([0.9]) and labels.tolist() == [0]
    expected = (0.6 * np.array([10, 10, 50, 50]) + 0.9 * np.array([12, 10, 52, 50])) / 1.5
    np.testing.assert_allclose(boxes[0], expected, rtol=1e-6)  # score-weighted mean, not the seed's box
    assert members.tolist() == [[0, 1, 0], [0, 0, 0]]  # seed (model 1, the max score) first


def test_different_classes_stay_apart():
    a = frame([[10, 10, 50, 50]], [0.6], labels=[0])
    b = frame([[10, 10, 50, 50]], [0.9], labels=[1])
    res = ensemble_frame([a, b])
    assert res.labels.tolist() == [1, 0] and res.scores.tolist() == pytest.approx([0.9, 0.6])
    np.testing.assert_array_equal(res.boxes, [[10, 10, 50, 50]] * 2)


def test_iou_threshold_is_strict():
    a = frame([[0, 0, 10, 10]], [0.9])
    b = frame([[0, 0, 10, 5]], [0.8])  # IoU exactly 0.5
    assert len(ensemble_frame([a, b], iou_thr=0.5).boxes) == 2
    assert len(ensemble_frame([a, b], iou_thr=0.49).boxes) == 1


def test_empty_inputs():
    empty = FramePredictions.empty(4)
    res = ensemble_frame([empty, empty])
    assert res.boxes.shape == (0, 4) and res.scores.shape == (0,) and res.members.shape == (0, 3)
    one = frame([[0, 0, 10, 10], [20, 20, 30, 30]], [0.5, 0.7])
    res = ensemble_frame([empty, one])
    np.testing.assert_array_equal(res.boxes, one.boxes[[1, 0]])
    assert res.members[:, 1].tolist() == [1, 1]
    with pytest.raises(ValueError, match="no models"):
        ensemble_frame([])


def test_single_model_is_identity_up_to_clustering():
    sep = frame([[0, 0, 10, 10], [20, 20, 30, 30], [50, 0, 60, 10]], [0.5, 0.9, 0.7], labels=[0, 1, 0])
    res = ensemble_frame([sep])
    np.testing.assert_array_equal(res.boxes, sep.boxes[[1, 2, 0]])
    assert res.scores.tolist() == pytest.approx([0.9, 0.7, 0.5]) and res.labels.tolist() == [1, 0, 0]
    dup = frame([[0, 0, 10, 10], [0, 0, 10, 11]], [0.8, 0.4])  # one model's own near-duplicates: NMS-like
    res = ensemble_frame([dup])
    assert len(res.boxes) == 1 and res.scores[0] == pytest.approx(0.8)
    np.testing.assert_allclose(res.boxes[0], [0, 0, 10, (0.8 * 10 + 0.4 * 11) / 1.2], rtol=1e-6)


def test_seeds_are_the_greedy_nms_keep_set_and_members_join_the_best_seed():
    # B overlaps A (seed); C overlaps B but not A -> C is a seed of its own (B is not a seed)
    boxes = [[0, 0, 10, 10], [2, 0, 12, 10], [5, 0, 15, 10]]
    seed = greedy_clusters(boxes, [0.9, 0.8, 0.7], [0, 0, 0], iou_thr=0.5)
    assert seed.tolist() == [0, 0, 2]
    # D overlaps both seeds, more so the second one: joins it, though the first has the higher score
    boxes = [[0, 0, 10, 10], [6, 0, 16, 10], [4, 0, 14, 10]]
    seed = greedy_clusters(boxes, [0.9, 0.8, 0.7], [0, 0, 0], iou_thr=0.3)
    assert seed.tolist() == [0, 1, 1]


def _reference_clusters(boxes, scores, groups, thr):
    """Box-by-box greedy clustering in plain Python (the definition)."""
    seed = list(range(len(boxes)))
    order = sorted(range(len(boxes)), key=lambda i: (groups[i], -scores[i], i))
    seeds = []
    for i in order:
        best, best_iou = None, thr
        for s in seeds:
            if groups[s] != groups[i]:
                continue
            iou = paired_box_iou(np.asarray([boxes[s]], float), np.asarray([boxes[i]], float))[0]
            if iou > best_iou:
                best, best_iou = s, iou
        if best is None:
            seeds.append(i)
        else:
            seed[i] = best
    return seed


@pytest.mark.parametrize("max_pairs", [gae.MAX_PAIRS, 7])
def test_vectorized_clustering_matches_the_box_by_box_definition(monkeypatch, max_pairs):
    monkeypatch.setattr(gae, "MAX_PAIRS", max_pairs)  # 7: many chunks of groups
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(1, 40))
        xy = rng.uniform(0, 40, (n, 2))
        wh = rng.uniform(5, 20, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        scores = np.round(rng.uniform(0, 1, n), 1)  # ties on purpose
        groups = rng.integers(0, 3, n)
        got = greedy_clusters(boxes, scores, groups, 0.4)
        assert got.tolist() == _reference_clusters(boxes, scores, groups, 0.4), trial


def _load_mmdet_wbf():
    spec = importlib.util.find_spec("mmdet")
    path = Path(spec.origin).parent / "models" / "utils" / "wbf.py"  # numpy + torch only; not all of mmdet
    mod_spec = importlib.util.spec_from_file_location("_mmdet_wbf", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod.weighted_boxes_fusion


def test_matches_mmdet_weighted_boxes_fusion_with_max_score_on_separated_objects():
    wbf = _load_mmdet_wbf()
    rng = np.random.default_rng(1)
    centres = np.array([[x, y] for x in range(50, 600, 110) for y in range(50, 400, 110)], float)
    labels = rng.integers(0, 3, len(centres))
    models = []
    for m in range(3):
        keep = rng.random(len(centres)) < 0.8
        c = centres[keep] + rng.normal(0, 2, (keep.sum(), 2))
        boxes = np.concatenate([c - 20, c + 20], 1)
        models.append(frame(boxes, rng.uniform(0.1, 1.0, keep.sum()), labels=labels[keep]))
    res = ensemble_frame(models, iou_thr=0.55)
    norm = np.array([640, 480, 640, 480], float)
    b, s, l = wbf([f.boxes / norm for f in models], [f.scores for f in models], [f.labels for f in models],
                  iou_thr=0.55, conf_type="max")
    ref_boxes, ref_scores, ref_labels = b.numpy() * norm, s.numpy(), l.numpy()
    order_ours = np.lexsort((res.boxes[:, 1], res.boxes[:, 0]))
    order_ref = np.lexsort((ref_boxes[:, 1], ref_boxes[:, 0]))
    np.testing.assert_allclose(res.boxes[order_ours], ref_boxes[order_ref], atol=1e-2)
    np.testing.assert_allclose(res.scores[order_ours], ref_scores[order_ref], atol=1e-6)
    np.testing.assert_array_equal(res.labels[order_ours], ref_labels[order_ref])


def test_min_models_drop_or_scale_and_model_weights():
    a = frame([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8])
    b = frame([[0, 0, 10, 10]], [0.7])
    assert ensemble_frame([a, b], min_models=2).scores.tolist() == pytest.approx([0.9])
    scaled = ensemble_frame([a, b], min_models=2, under_supported="scale")
    assert scaled.scores.tolist() == pytest.approx([0.9, 0.4])  # 0.8 * 1/2
    with pytest.raises(ValueError, match="under_supported"):
        ensemble_frame([a, b], under_supported="mean")
    c = frame([[0, 0, 10, 10]], [0.5])
    d = frame([[0, 0, 10, 12]], [0.5])
    assert ensemble_frame([c, d], model_weights=[1.0, 3.0]).boxes[0, 3] == pytest.approx(11.5)


# ------------------------------------------------------------------------- masks, embeddings

def test_refine_with_models_averages_soft_masks_and_unit_embeddings():
    boxes = np.array([[0, 0, 4, 4], [4, 4, 8, 8]], np.float32)
    calls = []

    def model(prob, emb):
        def fn(b):
            calls.append(b.copy())
            return np.broadcast_to(prob, (len(b), 8, 8)).copy(), np.broadcast_to(emb, (len(b), len(emb))).copy()
        return fn

    p0 = np.zeros((8, 8), np.float32); p0[:, :4] = 0.9; p0[:, 4:] = 0.2
    p1 = np.zeros((8, 8), np.float32); p1[:, :2] = 0.2; p1[:, 2:] = 0.6
    masks, emb = refine_with_models(boxes, [model(p0, [2.0, 0.0]), model(p1, [0.0, 5.0])], 8, 8)
    assert len(calls) == 2 and all(np.array_equal(c, boxes) for c in calls)  # the fused boxes are the proposals
    want = ((p0 + p1) / 2 >= 0.5).astype(np.uint8)  # columns 0-1: 0.55, 2-3: 0.75, 4-7: 0.4
    for rle in masks:
        np.testing.assert_array_equal(decode_rle(rle), want)
    np.testing.assert_allclose(emb, [[np.sqrt(0.5), np.sqrt(0.5)]] * 2, rtol=1e-6)  # normalised before the mean


def test_refine_with_models_votes_binary_rle_masks_and_checks_shapes():
    boxes = np.zeros((1, 4), np.float32)
    on = [np.zeros((6, 6), np.uint8) for _ in range(3)]
    on[0][:3] = 1; on[1][:4] = 1; on[2][:1] = 1
    fns = [lambda b, m=m: ([encode_mask(m)], np.ones((1, 3))) for m in on]
    masks, _ = refine_with_models(boxes, fns, 6, 6)
    assert decode_rle(masks[0])[:, 0].tolist() == [1, 1, 1, 0, 0, 0]  # rows on in >= 2 of 3 models
    with pytest.raises(ValueError, match="model 1 returned embeddings"):
        refine_with_models(boxes, [fns[0], lambda b: ([encode_mask(on[0])], np.ones((2, 3)))])
    with pytest.raises(ValueError, match="expected \\(6, 7\\)"):
        refine_with_models(boxes, fns, 6, 7)
    with pytest.raises(ValueError, match="embed_mode='concat'"):
        refine_with_models(boxes, [fns[0], lambda b: ([encode_mask(on[0])], np.ones((1, 5)))])


def test_concat_embeddings_give_the_mean_of_the_models_cosines():
    rng = np.random.default_rng(0)
    e0, e1 = rng.normal(size=(2, 3)), rng.normal(size=(2, 7))  # two models, different D
    fns = [lambda b, e=e: (np.zeros((2, 4, 4)), e) for e in (e0, e1)]
    _, emb = refine_with_models(np.zeros((2, 4)), fns, embed_mode="concat")
    cos = lambda e: float(unit_rows(e[0]) @ unit_rows(e[1]))
    assert emb.shape == (2, 10)
    assert float(emb[0] @ emb[1]) == pytest.approx((cos(e0) + cos(e1)) / 2, rel=1e-5)


# ------------------------------------------------------------------------------------ a split

def _jittered(video, seed, drop=0.2, noise=2.0):
    rng = np.random.default_rng(seed)
    frames = []
    for f in video.frames:
        keep = rng.random(len(f)) >= drop
        sub = f.select(keep)
        frames.append(FramePredictions(sub.boxes + rng.normal(0, noise, sub.boxes.shape),
                                       np.clip(sub.scores + rng.normal(0, 0.05, len(sub)), 0, 1),
                                       sub.labels, sub.embeddings + rng.normal(0, 0.1, sub.embeddings.shape), sub.masks))
    return VideoPredictions(video.video_id, video.height, video.width, frames)


def test_ensemble_videos_boxes_only_path_matches_frame_by_frame():
    base = [synthetic_video(video_id=i, num_frames=3, num_objects=6, dim=8, height=60, width=80, num_classes=3, seed=i,
                            with_masks=True) for i in range(2)]
    models = [[_jittered(v, 10 * m + k) for k, v in enumerate(base)] for m in range(3)]
    models[2] = models[2][::-1]  # matched by id, not position
    out = ensemble_videos(models)
    assert [v.video_id for v in out] == [0, 1]
    for vi, v in enumerate(out):
        for t, f in enumerate(v.frames):
            per = [next(x for x in split if x.video_id == v.video_id).frames[t] for split in models]
            res = ensemble_frame(per)
            np.testing.assert_allclose(f.boxes, res.boxes, rtol=1e-6)
            np.testing.assert_allclose(f.scores, res.scores, rtol=1e-6)
            np.testing.assert_array_equal(f.labels, res.labels)
            for k in range(len(f)):
                mem = res.members[res.members[:, 0] == k]
                embs = np.stack([unit_rows(per[m].embeddings[d]) for _, m, d in mem])
                np.testing.assert_allclose(f.embeddings[k], unit_rows(embs.mean(0)), rtol=1e-5)
                assert f.masks[k] == per[mem[0, 1]].masks[mem[0, 2]]  # the seed's mask
    voted = ensemble_videos(models, mask_mode="vote", embed_mode="seed")
    assert voted[0].frames[0].masks is not None and voted[0].frames[0].embeddings.shape[1] == 8


def test_ensemble_videos_calls_the_models_with_the_fused_boxes():
    v = VideoPredictions(7, 8, 8, [frame([[0, 0, 4, 4]], [0.9], masks_hw=(8, 8)), FramePredictions.empty(4, True)])
    w = VideoPredictions(7, 8, 8, [frame([[0, 0, 4, 5]], [0.5], masks_hw=(8, 8)), FramePredictions.empty(4, True)])
    seen = []

    def fake(model_id):
        def fn(video_id, t, boxes, labels):
            assert labels.shape == (len(boxes),) and labels.dtype == np.int64   # the fused classes
            seen.append((model_id, video_id, t, len(boxes), labels.tolist()))
            m = np.zeros((len(boxes), 8, 8)); m[:, :2 + 2 * model_id] = 1.0
            return m, np.full((len(boxes), 3), model_id + 1.0)
        return fn

    (out,) = ensemble_videos([[v], [w]], proposal_fns=[fake(0), fake(1)], mask_thr=0.75)
    assert sorted(seen) == [(0, 7, 0, 1, [0]), (1, 7, 0, 1, [0])]  # one call per model, non-empty frame only
    assert decode_rle(out.frames[0].masks[0])[:, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]  # intersection at 0.75
    np.testing.assert_allclose(out.frames[0].embeddings, [[1 / np.sqrt(3)] * 3], rtol=1e-6)
    assert len(out.frames[1]) == 0 and out.frames[1].embeddings.shape == (0, 3) and out.frames[1].masks == []
    out.validate()


def test_ensemble_videos_of_empty_frames_keeps_the_embedding_dim():
    v = VideoPredictions(1, 10, 10, [FramePredictions.empty(4)] * 2)
    (out,) = ensemble_videos([[v], [v]])
    assert len(out) == 2 and out.embed_dim == 4 and len(out.frames[1]) == 0
    assert ensemble_videos([[], []]) == []


def test_ensemble_videos_errors_name_the_model_and_video():
    v = synthetic_video(video_id=3, num_frames=2, num_objects=2, dim=4, height=40, width=40)
    short = VideoPredictions(3, 40, 40, v.frames[:1])
    with pytest.raises(ValueError, match="model 1, video 3"):
        ensemble_videos([[v], [short]])
    with pytest.raises(ValueError, match="model 1 has no predictions for video 3"):
        ensemble_videos([[v], []])
    with pytest.raises(ValueError, match="model 1 has videos \\[4\\]"):
        ensemble_videos([[v], [v, synthetic_video(video_id=4, num_frames=2, dim=4, height=40, width=40)]])


def test_greedy_select_adds_models_while_the_score_improves():
    value = {("a",): 0.30, ("b",): 0.35, ("c",): 0.20, ("a", "b"): 0.40, ("b", "c"): 0.37, ("a", "b", "c"): 0.39}
    chosen, hist = greedy_select(["a", "b", "c"], lambda ms: value[tuple(sorted(ms))])
    assert chosen == ["b", "a"] and hist == pytest.approx([0.35, 0.40])
    assert greedy_select(["a", "b", "c"], lambda ms: value[tuple(sorted(ms))], max_models=1)[0] == ["b"]
    assert greedy_select(["a", "b", "c"], lambda ms: value[tuple(sorted(ms))], min_gain=0.1) == (["b"], [0.35])
    with pytest.raises(ValueError, match="max_models"):
        greedy_select(["a"], lambda ms: 1.0, max_models=0)
    with pytest.raises(ValueError, match="NaN"):
        greedy_select(["a", "b"], lambda ms: float("nan") if "b" in ms else 1.0)


# -------------------------------------------------------------------------------- multi-scale

def test_merge_scales_is_gae_over_scales():
    half = frame([[10, 10, 30, 30]], [0.6])  # predicted at half size, returned in original pixels
    full = frame([[11, 10, 31, 30]], [0.8])
    merged = merge_scales([[VideoPredictions(1, 100, 100, [half])], [VideoPredictions(1, 100, 100, [full])]])
    merged = merged[0].frames[0]
    assert len(merged) == 1 and merged.scores[0] == pytest.approx(0.8)
    want = [(0.6 * 10 + 0.8 * 11) / 1.4, 10, (0.6 * 30 + 0.8 * 31) / 1.4, 30]
    np.testing.assert_allclose(merged.boxes[0], want, rtol=1e-5)
    with pytest.raises(ValueError, match="original image size"):
        merge_scales([[VideoPredictions(1, 50, 50, [half])], [VideoPredictions(1, 100, 100, [full])]])
