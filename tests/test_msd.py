"""Multi-Source Data (paper 3.2): pseudo pairs, COCO/OpenImages loading, mixed sampling, pipeline."""
import json

import cv2
import numpy as np
import pytest
import torch

from visrc.data.masks import encode_mask
from visrc.data.msd import MixedSourceSampler, load_coco_style, mixed_source_indices, sample_masks, source_counts
from visrc.data.pseudo_frames import affine_matrix, masks_to_boxes, pseudo_pair, warp_boxes

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def _scene(h=120, w=160):
    """Black image with 4 coloured objects and their masks/boxes."""
    img = np.zeros((h, w, 3), np.uint8)
    masks = np.zeros((4, h, w), np.uint8)
    cv2.rectangle(masks[0], (10, 15), (49, 54), 1, -1)
    cv2.ellipse(masks[1], (100, 40), (25, 15), 30, 0, 360, 1, -1)
    cv2.circle(masks[2], (60, 90), 18, 1, -1)
    cv2.rectangle(masks[3], (130, 85), (157, 117), 1, -1)  # at the right border
    for m, c in zip(masks, COLORS):
        img[m.astype(bool)] = c
    return img, masks, masks_to_boxes(masks)


def test_flip_only_is_exact():
    img, masks, boxes = _scene()
    ref, rmasks, rboxes, keep = pseudo_pair(img, masks, boxes, rng=0, max_shift=0, max_rotate_deg=0, flip_prob=1.0,
                                            scale_range=(1, 1))
    w = img.shape[1]
    assert keep.all()
    np.testing.assert_array_equal(ref, img[:, ::-1])
    np.testing.assert_array_equal(rmasks, masks[:, :, ::-1])
    np.testing.assert_allclose(rboxes, np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1))
    # box-only path gives the same boxes for a flip
    _, none, cboxes, keep2 = pseudo_pair(img, None, boxes, rng=0, max_shift=0, max_rotate_deg=0, flip_prob=1.0,
                                         scale_range=(1, 1))
    assert none is None and keep2.all()
    np.testing.assert_allclose(cboxes, rboxes)


def test_integer_shift_moves_everything_by_the_shift():
    img, masks, boxes = _scene()
    M = affine_matrix(*img.shape[:2], tx=7, ty=-4)
    ref, rmasks, rboxes, keep = pseudo_pair(img, masks, boxes, matrix=M)
    assert keep.all()  # object 3 is cut by the right border but mostly visible
    np.testing.assert_array_equal(ref[10:100, 10:120], np.roll(img, (-4, 7), axis=(0, 1))[10:100, 10:120])
    np.testing.assert_array_equal(rmasks[:, 10:100, 10:120], np.roll(masks, (-4, 7), axis=(1, 2))[:, 10:100, 10:120])
    np.testing.assert_allclose(rboxes, (boxes + [7, -4, 7, -4]).clip(0, [160, 120, 160, 120]))


@pytest.mark.parametrize("seed", range(6))
def test_random_warp_keeps_masks_boxes_and_image_consistent(seed):
    img, masks, boxes = _scene()
    ref, rmasks, rboxes, keep = pseudo_pair(img, masks, boxes, rng=seed, max_shift=0.1, max_rotate_deg=20,
                                            flip_prob=0.5, scale_range=(0.8, 1.2))
    assert ref.shape == img.shape and ref.dtype == np.uint8
    assert rmasks.shape[0] == rboxes.shape[0] == keep.sum()
    np.testing.assert_array_equal(rboxes, masks_to_boxes(rmasks))  # boxes are the warped masks' tight boxes
    for j, i in enumerate(np.flatnonzero(keep)):
        colour = np.all(ref == COLORS[i], axis=2)  # where the object's colour landed in the warped image
        m = rmasks[j].astype(bool)
        iou = (colour & m).sum() / max((colour | m).sum(), 1)
        assert iou > 0.85, (seed, i, iou)
    # box-only annotation: the enclosing box of the warped corners contains the mask's box (coarser)
    g = np.random.default_rng(seed)
    _, _, cboxes, ckeep = pseudo_pair(img, None, boxes, rng=g, max_shift=0.1, max_rotate_deg=20, flip_prob=0.5,
                                      scale_range=(0.8, 1.2))
    both = keep & ckeep
    mb = masks_to_boxes(warp_masks_same(img, masks, seed))[both]
    cb = cboxes[both[ckeep]]
    assert np.all(cb[:, :2] <= mb[:, :2] + 1.0) and np.all(cb[:, 2:] >= mb[:, 2:] - 1.0)


def warp_masks_same(img, masks, seed):
    """Warped masks drawn with the same seed (pseudo_pair's draws are deterministic given the seed)."""
    _, rm, _, keep = pseudo_pair(img, masks, masks_to_boxes(masks), rng=seed, max_shift=0.1, max_rotate_deg=20,
                                 flip_prob=0.5, scale_range=(0.8, 1.2), min_visible=0.0)
    full = np.zeros_like(masks)
    full[keep] = rm
    return full


def test_objects_leaving_the_image_are_dropped():
    img, masks, boxes = _scene()
    M = affine_matrix(*img.shape[:2], tx=75)  # object 3 leaves, little of object 1 stays
    _, rmasks, rboxes, keep = pseudo_pair(img, masks, boxes, matrix=M, min_visible=0.25)
    assert keep.tolist() == [True, False, True, False]
    assert len(rmasks) == len(rboxes) == 2
    _, _, cboxes, ckeep = pseudo_pair(img, None, boxes, matrix=M, min_visible=0.25)
    assert ckeep.tolist() == [True, False, True, False] and len(cboxes) == 2


def _pair_results(key_first: bool = True):
    """The list form of a 2-frame video pipeline: frame 0 the scene, frame 1 another (empty) frame."""
    from mmdet.structures.mask import BitmapMasks

    img, masks, boxes = _scene()
    other = np.full_like(img, 7)
    frames = [(img, masks, boxes, "key.jpg"), (other, masks[:1] * 0, boxes[:1], "other.jpg")]
    if not key_first:
        frames = frames[::-1]
    return dict(img=[f[0].copy() for f in frames], img_path=[f[3] for f in frames],
                gt_masks=[BitmapMasks(f[1], *img.shape[:2]) for f in frames],
                gt_bboxes=[f[2].astype(np.float32) for f in frames],
                gt_bboxes_labels=[np.arange(len(f[2])) for f in frames],
                gt_instances_ids=[np.arange(len(f[2])) + 10 for f in frames],
                key_frame_flags=[key_first, not key_first])


@pytest.mark.parametrize("key_first", [True, False])
def test_pseudo_reference_from_the_key_frame(key_first):
    from visrc.data.pseudo_frames import PseudoRefFrame

    key, ref = (0, 1) if key_first else (1, 0)
    still = dict(max_shift=0.0, max_rotate_deg=0.0, flip_prob=0.0, scale_range=(1.0, 1.0))
    out = PseudoRefFrame(**still, from_key=True).transform(_pair_results(key_first))
    assert np.array_equal(out["img"][ref], out["img"][key])          # an identity warp of the key itself
    assert out["gt_instances_ids"][ref].tolist() == out["gt_instances_ids"][key].tolist() == [10, 11, 12, 13]
    assert np.allclose(out["gt_bboxes"][ref], out["gt_bboxes"][key], atol=1.0)
    kept = PseudoRefFrame(**still).transform(_pair_results(key_first))   # a real reference: left alone
    assert (kept["img"][ref] == 7).all() and kept["gt_instances_ids"][ref].tolist() == [10]


def test_warp_boxes_rotation_encloses():
    M = affine_matrix(100, 100, angle_deg=45)
    b = warp_boxes(np.array([[40., 40., 60., 60.]]), M)[0]
    half = 10 * np.sqrt(2)
    np.testing.assert_allclose(b, [50 - half, 50 - half, 50 + half, 50 + half], atol=1e-4)


# ---------------------------------------------------------------------------------------------- loading
TARGETS = ["person", "motorbike", "bird", "fish"]


def _write_sets(tmp_path):
    h, w = 48, 64
    m = np.zeros((h, w), np.uint8)
    m[10:30, 12:40] = 1
    coco = dict(
        images=[dict(id=1, file_name="a.jpg", height=h, width=w), dict(id=2, file_name="b.jpg", height=h, width=w),
                dict(id=3, file_name="c.jpg", height=h, width=w)],
        annotations=[
            dict(id=1, image_id=1, category_id=1, bbox=[12, 10, 28, 20], segmentation=encode_mask(m), area=560),
            dict(id=2, image_id=1, category_id=4, bbox=[0, 0, 10, 10],
                 segmentation=[[0, 0, 10, 0, 10, 10, 0, 10]], area=100),
            dict(id=3, image_id=1, category_id=62, bbox=[30, 30, 20, 10],
                 segmentation=[[30, 30, 50, 30, 50, 40, 30, 40]], area=200),
            dict(id=4, image_id=1, category_id=1, bbox=[5, 5, 0.5, 10], segmentation=[], area=0),  # too thin
            dict(id=5, image_id=2, category_id=1, bbox=[1, 1, 20, 20], segmentation=encode_mask(m), iscrowd=1),
            dict(id=6, image_id=3, category_id=62, bbox=[1, 1, 20, 20], segmentation=encode_mask(m))],
        categories=[dict(id=1, name="person"), dict(id=4, name="motorcycle"), dict(id=62, name="chair")])
    oi = dict(
        images=[dict(id=10, file_name="x.jpg", height=h, width=w),
                dict(id=11, file_name="y.jpg", height=h, width=w, weak_mask=True)],
        annotations=[
            dict(id=1, image_id=10, category_id=7, bbox=[2, 2, 30, 20]),                              # no mask
            dict(id=2, image_id=10, category_id=8, bbox=[12, 10, 28, 20], segmentation=encode_mask(m),
                 weak_mask=True),                                                                    # coarse
            dict(id=3, image_id=10, category_id=9, bbox=[12, 10, 28, 20], segmentation=encode_mask(m)),
            dict(id=4, image_id=11, category_id=9, bbox=[12, 10, 28, 20], segmentation=encode_mask(m))],
        categories=[dict(id=7, name="Bird"), dict(id=8, name="Fish"), dict(id=9, name="Person")])
    for name, d in (("coco", coco), ("openimages", oi)):
        (tmp_path / name / "images").mkdir(parents=True)
        (tmp_path / name / "annotations.json").write_text(json.dumps(d))
        rng = np.random.default_rng(0)
        for im in d["images"]:
            cv2.imwrite(str(tmp_path / name / "images" / im["file_name"]), rng.integers(0, 255, (h, w, 3), np.uint8))
    return tmp_path


def test_load_coco_style_mapping_aux_and_weak(tmp_path):
    root = _write_sets(tmp_path)
    coco = load_coco_style(str(root / "coco/annotations.json"), str(root / "coco/images"), TARGETS, num_aux=2)
    assert [s["img_id"] for s in coco] == [1, 2, 3]
    inst = coco[0]["instances"]
    assert [i["bbox_label"] for i in inst] == [0, 1, 4]        # person, motorcycle->motorbike, chair->aux C=4
    assert [i["is_aux"] for i in inst] == [False, False, True]
    assert [i["instance_id"] for i in inst] == [0, 1, 2]
    assert inst[0]["bbox"] == [12.0, 10.0, 40.0, 30.0]
    assert not any(i["weak_mask"] for i in inst) and not coco[0]["weak"]
    assert isinstance(inst[1]["mask"]["counts"], str)          # polygons normalised to RLE
    assert coco[1]["instances"][0]["ignore_flag"] == 1
    masks = sample_masks(coco[0])
    assert masks.shape == (3, 48, 64) and masks[0].sum() == 560
    # K = 0: non-target objects are dropped, and so is an image left empty
    coco0 = load_coco_style(str(root / "coco/annotations.json"), str(root / "coco/images"), TARGETS, num_aux=0)
    assert [s["img_id"] for s in coco0] == [1, 2] and len(coco0[0]["instances"]) == 2
    oi = load_coco_style(str(root / "openimages/annotations.json"), str(root / "openimages/images"), TARGETS,
                         num_aux=2, source="openimages")
    inst = oi[0]["instances"]
    assert [i["bbox_label"] for i in inst] == [2, 3, 0]
    assert [i["weak_mask"] for i in inst] == [True, True, False] and oi[0]["weak"]
    assert inst[0]["mask"] is None
    assert oi[1]["instances"][0]["weak_mask"]                   # image-level flag
    m = sample_masks(oi[0])
    assert m[0, 2:22, 2:32].all() and m[0].sum() == 600         # missing mask -> box fill
    allweak = load_coco_style(str(root / "coco/annotations.json"), "", TARGETS, 2, weak=True)
    assert all(i["weak_mask"] for s in allweak for i in s["instances"])


# ---------------------------------------------------------------------------------------------- sampling
def test_mixed_source_counts_and_indices():
    assert source_counts([100, 1000, 500], [1, 1, 1], 300).tolist() == [100, 100, 100]
    assert source_counts([100, 1000, 500], [2, 1, 1], 10).tolist() == [5, 3, 2]
    assert source_counts([100, 0, 500], [1, 1, 2], 9).tolist() == [3, 0, 6]  # empty source renormalised
    idx = mixed_source_indices([10, 1000, 500], [0.5, 0.25, 0.25], 40, rng=0)
    src = np.searchsorted([10, 1010, 1510], idx, side="right")
    assert np.bincount(src, minlength=3).tolist() == [20, 10, 10]
    first = idx[src == 0]
    assert sorted(first.tolist()) == sorted(list(range(10)) * 2)  # every item once before repeats
    assert len(set(idx[src == 1].tolist())) == 10
    np.testing.assert_array_equal(idx, mixed_source_indices([10, 1000, 500], [0.5, 0.25, 0.25], 40, rng=0))
    with pytest.raises(ValueError):
        source_counts([0, 0], [1, 1], 5)


def test_mixed_source_sampler_on_concat_dataset():
    ds = torch.utils.data.ConcatDataset([list(range(10)), list(range(30)), list(range(20))])
    s = MixedSourceSampler(ds, ratios=[1, 1, 2], length=40, seed=1)
    a = list(s)
    assert len(a) == len(s) == 40
    src = np.searchsorted([10, 40, 60], a, side="right")
    assert np.bincount(src, minlength=3).tolist() == [10, 10, 20]
    s.set_epoch(1)
    assert list(s) != a


# ---------------------------------------------------------------------------------------------- pipeline
def test_mmdet_pipeline_still_image_to_track_pair(tmp_path):
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import visrc.registry  # noqa: F401  (registers the dataset and transforms)
    root = _write_sets(tmp_path)
    pipeline = [
        dict(type="UniformRefFrameSample", num_ref_imgs=1, frame_range=2, filter_key_img=True),
        dict(type="TransformBroadcaster", share_random_params=True, transforms=[
            dict(type="LoadImageFromFile"),
            dict(type="LoadMSDAnnotations", with_mask=True),
            dict(type="Resize", scale=(128, 96), keep_ratio=True),
            dict(type="RandomFlip", prob=0.5)]),
        dict(type="PseudoRefFrame", max_shift=0.05, max_rotate_deg=5, flip_prob=0.5, min_visible=0.25),
        dict(type="PackMSDInputs")]
    from mmdet.registry import DATASETS
    ds = DATASETS.build(dict(type="MSDImageDataset", ann_file=str(root / "openimages/annotations.json"),
                             data_prefix=dict(img_path=str(root / "openimages/images")), source="openimages",
                             num_aux=2, metainfo=dict(classes=tuple(TARGETS)), pipeline=pipeline))
    assert len(ds) == 2 and ds.get_data_info(0)["video_length"] == 1
    np.random.seed(0)
    out = ds[0]
    track = out["data_samples"]
    assert out["inputs"].shape[0] == 2 and len(track) == 2
    key, ref = track.get_key_frames()[0], track.get_ref_frames()[0]
    kg, rg = key.gt_instances, ref.gt_instances
    assert kg.weak_flags.tolist() == [True, True, False]
    assert set(rg.instances_ids.tolist()) <= set(kg.instances_ids.tolist())
    for j, tid in enumerate(rg.instances_ids.tolist()):  # same id -> same label and weak flag in both frames
        i = kg.instances_ids.tolist().index(tid)
        assert rg.labels[j] == kg.labels[i] and rg.weak_flags[j] == kg.weak_flags[i]
    assert len(rg.masks) == len(rg.bboxes) == len(rg.labels)
    assert not torch.equal(out["inputs"][0], out["inputs"][1])  # the reference copy was warped
    # reference boxes are the tight boxes of the warped masks
    np.testing.assert_allclose(masks_to_boxes(rg.masks.masks), np.asarray(rg.bboxes), atol=1e-4)


def test_concat_with_sampler_from_registry(tmp_path):
    from mmengine.dataset import ConcatDataset
    from mmdet.registry import DATA_SAMPLERS, DATASETS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import visrc.registry  # noqa: F401
    root = _write_sets(tmp_path)
    common = dict(type="MSDImageDataset", num_aux=2, metainfo=dict(classes=list(TARGETS)), pipeline=[])
    coco = DATASETS.build(dict(common, ann_file=str(root / "coco/annotations.json"),
                               data_prefix=dict(img_path=str(root / "coco/images"))))
    oi = DATASETS.build(dict(common, ann_file=str(root / "openimages/annotations.json"), source="openimages",
                             data_prefix=dict(img_path=str(root / "openimages/images")), id_offset=10**7))
    cat = ConcatDataset([coco, oi])
    sampler = DATA_SAMPLERS.build(dict(type="MixedSourceSampler", ratios=[1, 3], length=8),
                                  default_args=dict(dataset=cat, seed=0))
    idx = list(sampler)
    assert len(idx) == 8 and sum(i >= len(coco) for i in idx) == 6
    vids = {cat.get_data_info(i)["video_id"] for i in range(len(cat))}
    assert len(vids) == len(cat) and all(v < 0 for v in vids)


def test_openimages_csv_conversion(tmp_path):
    from visrc.data.msd import openimages_csv_to_coco
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "abc.jpg"), np.zeros((50, 100, 3), np.uint8))
    (tmp_path / "classes.csv").write_text("/m/015p6,Bird\n/m/0ch_cf,Fish\n/m/01g317,Person\n")
    (tmp_path / "boxes.csv").write_text(
        "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf\n"
        "abc,xclick,/m/015p6,1,0.1,0.5,0.2,0.6,0,0,0\n"
        "abc,xclick,/m/01g317,1,0.0,1.0,0.0,1.0,0,0,1\n"
        "missing,xclick,/m/015p6,1,0.1,0.5,0.2,0.6,0,0,0\n")
    out = tmp_path / "oi.json"
    data = openimages_csv_to_coco(str(tmp_path / "boxes.csv"), str(tmp_path / "classes.csv"), str(tmp_path / "img"),
                                  str(out), keep_classes=["bird", "person"])
    assert len(data["images"]) == 1 and len(data["annotations"]) == 2
    np.testing.assert_allclose(data["annotations"][0]["bbox"], [10, 10, 40, 20])
    samples = load_coco_style(str(out), str(tmp_path / "img"), TARGETS, num_aux=2, source="openimages")
    inst = samples[0]["instances"]
    assert [i["bbox_label"] for i in inst] == [2, 0] and all(i["weak_mask"] for i in inst)
    assert [i["ignore_flag"] for i in inst] == [0, 1]
