"""The pinned stack works on this machine: mmcv's compiled CPU ops and mmdet's video dataset."""
import torch


def test_versions():
    import mmcv
    import mmdet
    import mmengine

    assert torch.__version__.startswith("2.13.0")
    assert (mmcv.__version__, mmdet.__version__, mmengine.__version__) == ("2.1.0", "3.3.0", "0.10.7")


def test_roi_align_and_nms():
    from mmcv.ops import RoIAlign, nms

    feat = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16).requires_grad_()
    rois = torch.tensor([[0, 1.0, 1.0, 9.0, 9.0], [1, 0.0, 0.0, 15.0, 15.0]])
    out = RoIAlign((4, 4), spatial_scale=1.0, sampling_ratio=2, aligned=True)(feat, rois)
    assert out.shape == (2, 3, 4, 4)
    out.sum().backward()
    assert feat.grad.abs().sum() > 0
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    dets, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_deform_conv_forward_backward():
    from mmcv.ops import DeformConv2d

    conv = DeformConv2d(4, 6, kernel_size=3, padding=1)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    offset = torch.zeros(2, 18, 8, 8, requires_grad=True)
    y = conv(x, offset)
    assert y.shape == (2, 6, 8, 8)
    y.square().mean().backward()
    assert x.grad.abs().sum() > 0 and offset.grad is not None and conv.weight.grad.abs().sum() > 0
    # zero offsets make deformable conv an ordinary conv
    ref = torch.nn.functional.conv2d(x, conv.weight, padding=1)
    torch.testing.assert_close(y, ref, atol=1e-4, rtol=1e-4)


def test_mmdet_loads_toy_videos(toy_small):
    from mmdet.datasets import BaseVideoDataset

    from visrc.data.video_dataset import YTVISRawDataset, to_cocovid
    from visrc.data.ytvis import load_ytvis

    raw = load_ytvis(toy_small / "train" / "instances.json")
    classes = tuple(c["name"] for c in raw["categories"])
    ds = YTVISRawDataset(ann_file=str(toy_small / "train" / "instances.json"),
                         data_prefix=dict(img_path=str(toy_small / "train" / "JPEGImages")),
                         metainfo=dict(classes=classes), pipeline=[], test_mode=True, lazy_init=False)
    assert isinstance(ds, BaseVideoDataset)
    assert len(ds) == len(raw["videos"])
    video = ds.get_data_info(0)
    assert video["video_length"] == raw["videos"][0]["length"]
    assert video["images"][0]["img_path"].endswith(raw["videos"][0]["file_names"][0])
    n_inst = sum(len(img["instances"]) for v in range(len(ds)) for img in ds.get_data_info(v)["images"])
    n_raw = sum(b is not None for a in raw["annotations"] for b in a["bboxes"])
    assert n_inst == n_raw == len(to_cocovid(raw)["annotations"])
    ids = {inst["instance_id"] for img in video["images"] for inst in img["instances"]}
    assert ids == {a["id"] for a in raw["annotations"] if a["video_id"] == raw["videos"][0]["id"]}


def test_weak_mask_flag_reaches_instances(toy_small, tmp_path):
    import json

    from visrc.data.video_dataset import YTVISRawDataset

    raw = json.loads((toy_small / "train" / "instances.json").read_text())
    weak_id = raw["annotations"][0]["id"]
    raw["annotations"][0]["weak_mask"] = True
    path = tmp_path / "weak.json"
    path.write_text(json.dumps(raw))
    ds = YTVISRawDataset(ann_file=str(path), metainfo=dict(classes=tuple(c["name"] for c in raw["categories"])),
                         pipeline=[], test_mode=True)
    flags = {(inst["instance_id"], inst["weak_mask"]) for v in range(len(ds))
             for img in ds.get_data_info(v)["images"] for inst in img["instances"]}
    assert (weak_id, True) in flags and all(w is False for i, w in flags if i != weak_id)
