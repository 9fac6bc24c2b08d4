"""Small synthetic datasets in the *released* formats of YouTube-VIS 2021, COCO 2017 and OpenImages
(made on the fly, nothing downloaded), laid out as ``visrc/configs/paper_s50_full.py`` expects::

    root/train/instances.json, train/JPEGImages/<video>/<00000>.jpg   YouTube-VIS 2021 (40 real classes,
                                                                      uncompressed RLE, 640x360 frames;
                                                                      2019: root/train.json)
    root/valid/instances.json, valid/JPEGImages/...                   no annotations, as released
    root/coco/annotations/instances_train2017.json, coco/train2017/   COCO's real 80 ids and names
    root/openimages/oidv7-class-descriptions-boxable.csv              real MIDs (a few classes)
    root/openimages/oidv6-train-annotations-bbox.csv
    root/openimages/train-annotations-object-segmentation.csv
    root/openimages/masks/train-masks-<c>/<MaskPath>                  PNGs at half the image size
    root/openimages/train/<ImageID>.jpg

``from realformat import make_real_format`` (tests/ is on ``sys.path``, see helpers.py).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

# COCO 2017's 80 categories: (id, name, supercategory), as in instances_train2017.json
COCO_CATEGORIES = [
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"), (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"), (6, "bus", "vehicle"), (7, "train", "vehicle"), (8, "truck", "vehicle"),
    (9, "boat", "vehicle"), (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"), (14, "parking meter", "outdoor"), (15, "bench", "outdoor"),
    (16, "bird", "animal"), (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"),
    (20, "sheep", "animal"), (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"),
    (24, "zebra", "animal"), (25, "giraffe", "animal"), (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"), (31, "handbag", "accessory"), (32, "tie", "accessory"),
    (33, "suitcase", "accessory"), (34, "frisbee", "sports"), (35, "skis", "sports"),
    (36, "snowboard", "sports"), (37, "sports ball", "sports"), (38, "kite", "sports"),
    (39, "baseball bat", "sports"), (40, "baseball glove", "sports"), (41, "skateboard", "sports"),
    (42, "surfboard", "sports"), (43, "tennis racket", "sports"), (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"), (47, "cup", "kitchen"), (48, "fork", "kitchen"), (49, "knife", "kitchen"),
    (50, "spoon", "kitchen"), (51, "bowl", "kitchen"), (52, "banana", "food"), (53, "apple", "food"),
    (54, "sandwich", "food"), (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"),
    (58, "hot dog", "food"), (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"),
    (62, "chair", "furniture"), (63, "couch", "furniture"), (64, "potted plant", "furniture"),
    (65, "bed", "furniture"), (67, "dining table", "furniture"), (70, "toilet", "furniture"),
    (72, "tv", "electronic"), (73, "laptop", "electronic"), (74, "mouse", "electronic"),
    (75, "remote", "electronic"), (76, "keyboard", "electronic"), (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"), (79, "oven", "appliance"), (80, "toaster", "appliance"),
    (81, "sink", "appliance"), (82, "refrigerator", "appliance"), (84, "book", "indoor"),
    (85, "clock", "indoor"), (86, "vase", "indoor"), (87, "scissors", "indoor"), (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"), (90, "toothbrush", "indoor"),
]

# a few OpenImages boxable classes with their real MIDs
OPENIMAGES_CLASSES = {
    "/m/0bt9lr": "Dog", "/m/01yrx": "Cat", "/m/04rmv": "Mouse", "/m/020lf": "Computer mouse",
    "/m/02wmf": "Flying disc", "/m/04_sv": "Motorcycle", "/m/0dzct": "Human face", "/m/07j7r": "Tree",
    "/m/01g317": "Person", "/m/0ch_cf": "Fish", "/m/09dzg": "Turtle", "/m/015p6": "Bird",
}

FRAME_W, FRAME_H = 640, 360


def _image(h: int, w: int, seed: int) -> np.ndarray:
    """A textured BGR image: a smooth gradient plus noise (JPEG-friendly, not constant)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) % 256)], -1)
    return np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def _draw(img: np.ndarray, box, color) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    img[y1:y2, x1:x2] = color


def _write_jpg(path: Path, img: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """YouTube-VIS's uncompressed RLE: column-major run lengths, the first run counting zeros."""
    flat = mask.astype(np.uint8).flatten(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        runs = [0] + runs
    return {"counts": [int(c) for c in runs], "size": [int(mask.shape[0]), int(mask.shape[1])]}


def _box_mask(h: int, w: int, box) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    m[y1:y2, x1:x2] = 1
    return m


# two moving objects per video, by YouTube-VIS class name (every name exists in its version)
VIDEO_OBJECTS = {"2021": [("person", "mouse"), ("flying_disc", "dog"), ("motorbike", "car"), ("turtle", "fish")],
                 "2019": [("person", "mouse"), ("sedan", "dog"), ("motorbike", "hand"), ("turtle", "fish")]}


def write_ytvis(root: Path, n_videos: int = 2, n_frames: int = 3, split: str = "train", annotate: bool = True,
                seed: int = 0, version: str = "2021") -> Path:
    """A YouTube-VIS split as released: ``n_videos`` videos of ``n_frames`` 640x360 frames, two
    moving objects each, the version's real class list, frame names ``<video>/00000.jpg`` (step 5),
    uncompressed RLE masks. 2021: ``<split>/instances.json``; 2019: ``<split>.json``. ``annotate``
    False writes no ``annotations`` (the released valid/test files)."""
    from visrc.data.category_tables import ytvis_classes

    classes = ytvis_classes(version)
    cats = [{"supercategory": "object", "id": i + 1, "name": n} for i, n in enumerate(classes)]
    rng = np.random.default_rng(seed)
    videos, anns = [], []
    picks = VIDEO_OBJECTS[version]
    for v in range(n_videos):
        name = f"{rng.integers(0, 16 ** 10):010x}"
        vid = v + 1
        files = [f"{name}/{5 * t:05d}.jpg" for t in range(n_frames)]
        videos.append({"license": 1, "coco_url": "", "height": FRAME_H, "width": FRAME_W, "length": n_frames,
                       "date_captured": "2019-04-11 00:00:00", "file_names": files, "flickr_url": "", "id": vid})
        objs = []
        for k, cname in enumerate(picks[v % len(picks)]):
            x0 = 60 + 280 * k + 10 * v
            objs.append((classes.index(cname) + 1, [x0, 80 + 40 * k, x0 + 180, 220 + 40 * k]))
        segs = [[] for _ in objs]
        for t, f in enumerate(files):
            img = _image(FRAME_H, FRAME_W, seed * 1000 + vid * 10 + t)
            for k, (_, box) in enumerate(objs):
                b = [box[0] + 12 * t, box[1] + 4 * t, box[2] + 12 * t, box[3] + 4 * t]
                _draw(img, b, (40 + 90 * k, 200 - 60 * k, 90))
                segs[k].append(b)
            _write_jpg(root / split / "JPEGImages" / f, img)
        if annotate:
            for k, (cid, _) in enumerate(objs):
                masks = [_box_mask(FRAME_H, FRAME_W, b) for b in segs[k]]
                anns.append({"video_id": vid, "iscrowd": 0, "height": FRAME_H, "width": FRAME_W, "length": 1,
                             "segmentations": [_uncompressed_rle(m) for m in masks],
                             "bboxes": [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in segs[k]],
                             "category_id": cid, "id": len(anns) + 1,
                             "areas": [float(m.sum()) for m in masks]})
    data = {"info": {"description": "YouTube-VOS", "version": "1.0"}, "licenses": [], "videos": videos,
            "categories": cats}
    if annotate:
        data["annotations"] = anns
    path = root / split / "instances.json" if version == "2021" else root / f"{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _polygon(box) -> list:
    x1, y1, x2, y2 = box
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


# COCO images: (file id, (w, h), [(category_id, box xyxy, iscrowd)])
COCO_IMAGES = [
    (139, (640, 480), [(1, (100, 60, 260, 400), 0), (34, (320, 100, 380, 150), 0), (4, (400, 250, 600, 450), 0)]),
    (285, (480, 640), [(23, (60, 100, 420, 600), 0), (74, (10, 10, 60, 40), 0)]),       # portrait
    (632, (640, 480), [(62, (50, 200, 250, 470), 0), (74, (300, 300, 340, 330), 0),     # only non-target
                       (73, (350, 100, 600, 300), 0)]),
    (724, (640, 427), []),                                                              # no annotation
    (776, (640, 480), [(18, (200, 150, 500, 450), 0), (1, (0, 0, 300, 200), 1),         # a crowd
                       (3, (500, 20, 630, 120), 0)]),
]


def write_coco2017(root: Path, seed: int = 0) -> Path:
    """``coco/annotations/instances_train2017.json`` + ``coco/train2017/<12-digit id>.jpg``."""
    images, anns = [], []
    for k, (iid, (w, h), objs) in enumerate(COCO_IMAGES):
        fname = f"{iid:012d}.jpg"
        img = _image(h, w, seed + 100 + k)
        for j, (cid, box, crowd) in enumerate(objs):
            _draw(img, box, (30 * j, 180, 220 - 40 * j))
            x1, y1, x2, y2 = box
            ann = {"area": float((x2 - x1) * (y2 - y1)), "iscrowd": crowd, "image_id": iid,
                   "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "category_id": cid,
                   "id": 1000 * iid + j}
            ann["segmentation"] = _uncompressed_rle(_box_mask(h, w, box)) if crowd else _polygon(box)
            anns.append(ann)
        _write_jpg(root / "coco" / "train2017" / fname, img)
        images.append({"license": 1, "file_name": fname, "coco_url": "", "height": h, "width": w,
                       "date_captured": "2013-11-14 11:18:45", "flickr_url": "", "id": iid})
    data = {"info": {"description": "COCO 2017 Dataset"}, "licenses": [], "images": images, "annotations": anns,
            "categories": [{"supercategory": s, "id": i, "name": n} for i, n, s in COCO_CATEGORIES]}
    path = root / "coco" / "annotations" / "instances_train2017.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


# OpenImages images: (ImageID, (w, h), [(MID, normalised box (xmin, xmax, ymin, ymax), IsGroupOf,
# mask: None or PredictedIoU)])
OPENIMAGES_IMAGES = [
    ("0a1b2c3d4e5f6071", (1024, 768), [("/m/0bt9lr", (0.10, 0.50, 0.20, 0.90), 0, 0.92),    # Dog, good mask
                                       ("/m/020lf", (0.60, 0.70, 0.70, 0.80), 0, None),     # Computer mouse
                                       ("/m/07j7r", (0.70, 0.99, 0.00, 0.60), 0, None)]),   # Tree
    ("1b2c3d4e5f607182", (1024, 683), [("/m/04rmv", (0.30, 0.45, 0.50, 0.70), 0, 0.31),    # Mouse, noisy mask
                                       ("/m/0dzct", (0.05, 0.15, 0.05, 0.20), 0, None)]),   # Human face
    ("2c3d4e5f60718293", (768, 1024), [("/m/020lf", (0.20, 0.40, 0.20, 0.40), 0, None)]),  # no target: dropped
    ("3d4e5f6071829304", (1024, 768), [("/m/02wmf", (0.40, 0.55, 0.10, 0.25), 0, 0.85),    # Flying disc
                                       ("/m/04_sv", (0.05, 0.35, 0.40, 0.95), 0, None),     # Motorcycle, no mask
                                       ("/m/01g317", (0.50, 0.99, 0.30, 0.99), 1, None)]),  # Person, group
]
BOX_HEADER = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", "IsOccluded",
              "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside", "XClick1X", "XClick2X", "XClick3X",
              "XClick4X", "XClick1Y", "XClick2Y", "XClick3Y", "XClick4Y"]
SEG_HEADER = ["MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax",
              "PredictedIoU", "Clicks"]


def write_openimages(root: Path, seed: int = 0) -> dict:
    """OpenImages' released CSVs, mask PNGs (per-zip folders, half resolution) and images."""
    import cv2

    oi = root / "openimages"
    oi.mkdir(parents=True, exist_ok=True)
    with open(oi / "oidv7-class-descriptions-boxable.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["LabelName", "DisplayName"])
        for mid, name in OPENIMAGES_CLASSES.items():
            w.writerow([mid, name])
    box_rows, seg_rows = [], []
    for k, (iid, (w_, h_), objs) in enumerate(OPENIMAGES_IMAGES):
        img = _image(h_, w_, seed + 200 + k)
        for j, (mid, (x1, x2, y1, y2), group, piou) in enumerate(objs):
            px = (x1 * w_, y1 * h_, x2 * w_, y2 * h_)
            _draw(img, px, (200, 40 * j, 60))
            box_rows.append([iid, "xclick", mid, 1, x1, x2, y1, y2, 0, 0, group, 0, 0] + [-1] * 8)
            if piou is not None:
                box_id = f"{k:04x}{j:04x}"
                mask_path = f"{iid}_{mid.replace('/m/', 'm')}_{box_id}.png"
                mh, mw = h_ // 2, w_ // 2          # masks come at their own resolution
                m = np.zeros((mh, mw), np.uint8)
                m[int(y1 * mh):int(y2 * mh), int(x1 * mw):int(x2 * mw)] = 255
                d = oi / "masks" / f"train-masks-{iid[0]}"
                d.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(d / mask_path), m)
                # the segmentation row's box is close to, not equal to, the box of the boxes CSV
                seg_rows.append([mask_path, iid, mid, box_id, x1 + 0.005, x2 - 0.005, y1 + 0.005, y2, piou,
                                 "0.5 0.5 1"])
        _write_jpg(oi / "train" / f"{iid}.jpg", img)
    for name, header, rows in (("oidv6-train-annotations-bbox.csv", BOX_HEADER, box_rows),
                               ("train-annotations-object-segmentation.csv", SEG_HEADER, seg_rows)):
        with open(oi / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
    return dict(boxes=oi / "oidv6-train-annotations-bbox.csv", classes=oi / "oidv7-class-descriptions-boxable.csv",
                segmentation=oi / "train-annotations-object-segmentation.csv", masks=oi / "masks",
                images=oi / "train")


def convert_openimages(root: Path, version: str = "2021") -> Path:
    """The documented conversion step: ``openimages/annotations/openimages_ytvis<version>.json``."""
    from visrc.data.openimages import main

    oi = root / "openimages"
    out = oi / "annotations" / f"openimages_ytvis{version}.json"
    rc = main(["--boxes", str(oi / "oidv6-train-annotations-bbox.csv"),
               "--classes", str(oi / "oidv7-class-descriptions-boxable.csv"), "--images", str(oi / "train"),
               "--segmentation", str(oi / "train-annotations-object-segmentation.csv"), "--masks", str(oi / "masks"),
               "--version", version, "--out", str(out)])
    if rc != 0:
        raise RuntimeError(f"openimages conversion failed ({rc})")
    return out


def make_real_format(root, n_videos: int = 2, n_frames: int = 3, seed: int = 0, version: str = "2021") -> Path:
    """All of the above under ``root`` (the config's data_root), the OpenImages JSON converted for
    YouTube-VIS ``version``; the valid split has one 2-frame video."""
    root = Path(root)
    write_ytvis(root, n_videos, n_frames, "train", annotate=True, seed=seed, version=version)
    write_ytvis(root, 1, 2, "valid", annotate=False, seed=seed + 1, version=version)
    write_coco2017(root, seed)
    write_openimages(root, seed)
    convert_openimages(root, version)
    return root
