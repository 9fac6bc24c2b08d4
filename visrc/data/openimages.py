"""OpenImages in its released layout -> the COCO-like JSON that :mod:`visrc.data.msd` reads.

Released files (V5-V7), all read as downloaded:

* class descriptions: ``oidv7-class-descriptions-boxable.csv`` (header ``LabelName,DisplayName``) or
  ``class-descriptions-boxable.csv`` (no header): one ``MID,Display name`` row per class;
* boxes: ``oidv6-train-annotations-bbox.csv`` / ``<split>-annotations-bbox.csv``: ``ImageID, Source,
  LabelName, Confidence, XMin, XMax, YMin, YMax`` (normalised to [0, 1]), ``IsOccluded,
  IsTruncated, IsGroupOf, ...``;
* instance masks (optional): ``<split>-annotations-object-segmentation.csv`` (``MaskPath, ImageID,
  LabelName, BoxID, BoxXMin, BoxXMax, BoxYMin, BoxYMax, PredictedIoU, Clicks``) and the PNGs of
  ``<split>-masks-[0-9a-f].zip``, unzipped into one folder, one folder per zip
  (``train-masks-0/``...) or one folder per first character of the image id (``0/``...);
* images: ``<ImageID>.jpg`` in one folder.

:func:`openimages_csv_to_coco` converts them (``visrc openimages-to-coco --help``, or
``python -m visrc.data.openimages``):

* **Subset.** With ``version`` ('2021' / '2019') only boxes of the classes that the reviewed table
  (:mod:`visrc.data.category_tables`) maps to a YouTube-VIS class of that version are kept, and
  images left without any such box are **dropped**: the paper (3.2) uses "a subset from OpenImage
  that has common object categories with YoutubeVOS-VIS2021", and its auxiliary classes are
  COCO's. Other objects on a kept image are left out (not auxiliary objects).
* **Masks.** A mask PNG covers the whole image at its own resolution; it is resized (nearest) to
  the image size and thresholded at 128. It attaches to the box of the same image and class
  with the highest IoU (>= ``mask_match_iou``; greedy); a mask that matches no box becomes an
  instance of its own, with the segmentation row's box.
* **Weak masks** (paper 3.2: "no or noisy segmentation mask"): an annotation without a mask, or
  whose ``PredictedIoU`` (the annotation tool's estimate of the mask's quality) is below
  ``min_predicted_iou``, gets ``"weak_mask": true``: it trains detection and tracking only.
* ``IsGroupOf == 1`` becomes ``iscrowd: 1`` (an ignored instance). Images missing on disk are
  skipped and counted.

Output::

    {"images": [{"id", "file_name": "<ImageID>.jpg", "height", "width"}],
     "annotations": [{"id", "image_id", "category_id", "bbox": [x, y, w, h] (pixels), "area",
                      "iscrowd", "segmentation": RLE (when a mask is attached), "weak_mask",
                      "predicted_iou" (when a mask is attached)}],
     "categories": [{"id", "name": display name, "mid": MID}],
     "info": {"source", "version", "skipped_missing_images", ...}}
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import os.path as osp
import sys
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from visrc.data.boxes import box_iou

BOX_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
SEGMENTATION_COLUMNS = ("MaskPath", "ImageID", "LabelName", "BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax")


def read_class_descriptions(path: str) -> dict[str, str]:
    """``MID -> display name`` from a class-descriptions CSV, with or without its header row."""
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f, _csv_errors(path):
        for line, row in enumerate(csv.reader(f), start=1):
            if not row or (line == 1 and not row[0].startswith("/")):
                continue                                   # header (LabelName,DisplayName / label,class)
            if len(row) < 2 or not row[0].startswith("/"):
                raise ValueError(f"{path}:{line}: expected 'MID,DisplayName' (e.g. /m/0bt9lr,Dog), got {row!r}")
            out[row[0]] = row[1]
    if not out:
        raise ValueError(f"{path}: no class rows")
    return out


@contextlib.contextmanager
def _csv_errors(path: str) -> Iterator[None]:
    """A file that is not a UTF-8 CSV (binary, NUL bytes) as a ValueError naming it."""
    try:
        yield
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: not a readable UTF-8 CSV ({e})") from None


def _open_image(path: str):
    """``PIL.Image.open``, a file that is not a decodable image a ValueError naming it."""
    from PIL import Image

    try:
        return Image.open(path)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ValueError(f"{path}: not a decodable image ({e})") from None


def _rows(path: str, required: Sequence[str]) -> Iterator[tuple[int, dict]]:
    """(line number, row dict) of a CSV with a header that has every ``required`` column."""
    with open(path, newline="", encoding="utf-8") as f, _csv_errors(path):
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (header: {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            yield line, row


def _float(row: dict, key: str, path: str, line: int) -> float:
    try:
        return float(row[key])
    except (TypeError, ValueError):
        raise ValueError(f"{path}:{line}: field {key} is not a number: {row.get(key)!r}") from None


def _norm_box(row: dict, keys: Sequence[str], path: str, line: int) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) normalised, from the columns named ``keys`` = (XMin, XMax, YMin, YMax)."""
    x1, x2, y1, y2 = (_float(row, k, path, line) for k in keys)
    if not (0.0 <= x1 <= x2 <= 1.0 + 1e-6 and 0.0 <= y1 <= y2 <= 1.0 + 1e-6):
        raise ValueError(f"{path}:{line}: box {keys} = {(x1, x2, y1, y2)} is not normalised min <= max in [0, 1]")
    return x1, y1, x2, y2


def find_mask_png(masks_dir: str, mask_path: str, image_id: str) -> Optional[str]:
    """Where ``MaskPath`` lies under ``masks_dir``: directly, in ``*-masks-<c>/`` (one folder per
    released zip) or in ``<c>/`` / ``<C>/``, ``c`` the image id's first character; None if absent."""
    c = image_id[:1]
    candidates = [osp.join(masks_dir, mask_path), osp.join(masks_dir, c, mask_path),
                  osp.join(masks_dir, c.upper(), mask_path)]
    for split in ("train", "validation", "test"):
        candidates.append(osp.join(masks_dir, f"{split}-masks-{c}", mask_path))
    return next((p for p in candidates if osp.isfile(p)), None)


def _load_mask(path: str, height: int, width: int) -> np.ndarray:
    from PIL import Image

    with _open_image(path) as im:
        try:
            im = im.convert("L")
        except OSError as e:                 # a truncated PNG fails on decoding, not on opening
            raise ValueError(f"{path}: not a decodable image ({e})") from None
        if im.size != (width, height):
            im = im.resize((width, height), Image.NEAREST)
        return (np.asarray(im) >= 128).astype(np.uint8)


def _target_mids(version: str) -> set[str]:
    from visrc.data.category_tables import load_category_map

    return {mid for mid, t in load_category_map("openimages", version, unmatched="ignore").items()
            if isinstance(t, int)}


def openimages_csv_to_coco(boxes_csv: str, classes_csv: str, image_dir: str, out_json: Optional[str] = None,
                           keep_classes: Optional[Iterable[str]] = None, ext: str = ".jpg", *,
                           segmentation_csv: Optional[str] = None, masks_dir: Optional[str] = None,
                           version: Optional[str] = None, min_predicted_iou: float = 0.5,
                           mask_match_iou: float = 0.5, max_images: Optional[int] = None) -> dict:
    """Convert OpenImages' released CSVs (+ mask PNGs) to a COCO-like JSON dict (module docstring).

    Long (about 135 lines) for a reason: 20 of them are this docstring for its 12 options; the
    body is the input checks, the class table, then two passes over the CSVs (boxes, segmentation
    rows) and one over the images that attaches masks, all sharing the same tables.

    Args:
        boxes_csv, classes_csv: the boxes CSV and the class-descriptions CSV.
        image_dir: where ``<ImageID><ext>`` live; sizes come from the image headers.
        out_json: also write the dict there (atomically).
        keep_classes: display names or MIDs to keep (case-insensitive); default all.
        segmentation_csv, masks_dir: the segmentation CSV and the folder of its PNGs (both or none).
        version: '2021' / '2019': keep only classes mapped to that YouTube-VIS version's targets and
            drop images without one (default: no such filter).
        min_predicted_iou: masks whose ``PredictedIoU`` is below it are weak.
        mask_match_iou: least box IoU between a segmentation row's box and the box it attaches to.
        max_images: keep the first N kept images (in the boxes CSV's order).

    Raises:
        ValueError naming the file (and line, field) for a CSV that breaks the layout;
        FileNotFoundError for a missing CSV, image folder or mask folder.
    """
    for p in (boxes_csv, classes_csv) + ((segmentation_csv,) if segmentation_csv else ()):
        if not osp.isfile(p):
            raise FileNotFoundError(f"{p}: no such file")
    if not osp.isdir(image_dir):
        raise FileNotFoundError(f"{image_dir}: no such image folder")
    if (segmentation_csv is None) != (masks_dir is None):
        raise ValueError("segmentation_csv and masks_dir go together (the CSV names PNGs in the folder)")
    if masks_dir is not None and not osp.isdir(masks_dir):
        raise FileNotFoundError(f"{masks_dir}: no such mask folder")
    mid2name = read_class_descriptions(classes_csv)
    keep = {k.lower() for k in keep_classes} if keep_classes else None
    mids = [m for m, n in mid2name.items() if keep is None or n.lower() in keep or m.lower() in keep]
    if version is not None:
        targets = _target_mids(str(version))
        mids = [m for m in mids if m in targets]
    names = sorted(mids, key=lambda m: (mid2name[m].lower(), m))
    cat_id = {m: i + 1 for i, m in enumerate(names)}

    # pass 1: boxes of the kept classes, grouped by image (first-appearance order)
    boxes: dict[str, list] = {}
    for line, row in _rows(boxes_csv, BOX_COLUMNS):
        mid = row["LabelName"]
        if mid not in cat_id:
            continue
        iid = row["ImageID"]
        if iid not in boxes:
            if max_images is not None and len(boxes) >= max_images:
                continue
            boxes[iid] = []
        group = row.get("IsGroupOf", "0") == "1"
        boxes[iid].append((mid, _norm_box(row, ("XMin", "XMax", "YMin", "YMax"), boxes_csv, line), group))

    # pass 2: segmentation rows of those images and classes
    segs: dict[str, list] = {}
    if segmentation_csv:
        for line, row in _rows(segmentation_csv, SEGMENTATION_COLUMNS):
            iid, mid = row["ImageID"], row["LabelName"]
            if iid not in boxes or mid not in cat_id:
                continue
            piou = _float(row, "PredictedIoU", segmentation_csv, line) if row.get("PredictedIoU") not in (None, "") \
                else None
            segs.setdefault(iid, []).append(
                (mid, _norm_box(row, ("BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax"), segmentation_csv, line),
                 row["MaskPath"], piou))

    from visrc.data.masks import encode_mask

    images, annotations = [], []
    missing_images = missing_masks = 0
    for iid, rows in boxes.items():
        path = osp.join(image_dir, iid + ext)
        if not osp.isfile(path):
            missing_images += 1
            continue
        with _open_image(path) as im:
            w, h = im.size
        img_id = len(images) + 1
        images.append(dict(id=img_id, file_name=iid + ext, height=h, width=w))
        scale = np.array([w, h, w, h], np.float64)
        inst = [dict(mid=m, box=np.array(b) * scale, group=g, mask=None, piou=None) for m, b, g in rows]
        extra = []
        # greedy mask -> box matching within each class, best IoU first
        seg_rows = segs.get(iid, [])
        for mid in sorted({s[0] for s in seg_rows}):
            s_idx = [k for k, s in enumerate(seg_rows) if s[0] == mid]
            b_idx = [k for k, i in enumerate(inst) if i["mid"] == mid]
            s_boxes = np.array([seg_rows[k][1] for k in s_idx]).reshape(-1, 4) * scale
            iou = box_iou(s_boxes, np.array([inst[k]["box"] for k in b_idx]).reshape(-1, 4))
            taken_s, taken_b = set(), set()
            for flat in np.argsort(-iou, axis=None, kind="stable"):
                si, bi = np.unravel_index(flat, iou.shape)
                if iou[si, bi] < mask_match_iou:
                    break
                if si in taken_s or bi in taken_b:
                    continue
                taken_s.add(si)
                taken_b.add(bi)
                inst[b_idx[bi]]["seg"] = seg_rows[s_idx[si]]
            for si, k in enumerate(s_idx):
                if si not in taken_s:
                    extra.append(dict(mid=mid, box=s_boxes[si], group=False, mask=None, piou=None, seg=seg_rows[k]))
        for i in inst + extra:
            seg = i.get("seg")
            if seg is not None:
                png = find_mask_png(masks_dir, seg[2], iid)
                if png is None:
                    missing_masks += 1
                else:
                    i["mask"], i["piou"] = _load_mask(png, h, w), seg[3]
            x1, y1, x2, y2 = (float(v) for v in i["box"])
            ann = dict(id=len(annotations) + 1, image_id=img_id, category_id=cat_id[i["mid"]],
                       bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1), iscrowd=int(i["group"]))
            if i["mask"] is not None:
                ann["segmentation"] = encode_mask(i["mask"])
                ann["area"] = float(i["mask"].sum())
                ann["predicted_iou"] = i["piou"]
                ann["weak_mask"] = bool(i["piou"] is not None and i["piou"] < min_predicted_iou)
            else:
                ann["weak_mask"] = True
            annotations.append(ann)
    data = dict(images=images, annotations=annotations,
                categories=[dict(id=cat_id[m], name=mid2name[m], mid=m) for m in names],
                info=dict(source="openimages", version=version, boxes_csv=osp.basename(boxes_csv),
                          segmentation_csv=osp.basename(segmentation_csv) if segmentation_csv else None,
                          skipped_missing_images=missing_images, missing_mask_pngs=missing_masks,
                          min_predicted_iou=min_predicted_iou))
    if out_json:
        from visrc.fileio import atomic_write_json

        atomic_write_json(out_json, data)
    return data


def summary(data: dict) -> str:
    """One line: images, boxes, boxes with a usable (strong) mask, skipped images."""
    anns = data["annotations"]
    strong = sum(1 for a in anns if not a.get("weak_mask", True))
    info = data.get("info", {})
    return (f"{len(data['images'])} images, {len(anns)} boxes ({strong} with a strong mask), "
            f"{len(data['categories'])} classes; skipped {info.get('skipped_missing_images', 0)} images missing "
            f"on disk, {info.get('missing_mask_pngs', 0)} mask PNGs missing")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``visrc openimages-to-coco`` (and of ``python -m visrc.data.openimages``)."""
    p.add_argument("--boxes", required=True, help="boxes CSV, e.g. oidv6-train-annotations-bbox.csv")
    p.add_argument("--classes", required=True, help="class descriptions, e.g. oidv7-class-descriptions-boxable.csv")
    p.add_argument("--images", required=True, help="folder of <ImageID>.jpg")
    p.add_argument("--segmentation", help="train-annotations-object-segmentation.csv (needs --masks)")
    p.add_argument("--masks", help="folder of the unzipped train-masks-*.zip PNGs")
    p.add_argument("--version", choices=("2021", "2019"),
                   help="keep only classes mapped to this YouTube-VIS version (and images with one)")
    p.add_argument("--keep-classes", nargs="+", metavar="NAME|MID", help="restrict to these classes")
    p.add_argument("--min-predicted-iou", type=float, default=0.5, help="weaker masks are weak (default 0.5)")
    p.add_argument("--max-images", type=int, help="keep the first N images")
    p.add_argument("--out", required=True, help="the JSON to write")


def run(args: argparse.Namespace) -> int:
    """Convert (see :func:`openimages_csv_to_coco`) and print a one-line :func:`summary`. A missing
    file or a CSV, image or mask that breaks the layout raises an exception whose message names the
    file (``visrc`` prints it as one line)."""
    if osp.isdir(args.out):      # checked before the CSVs are read: they may take minutes
        raise IsADirectoryError(f"{args.out}: is a directory; give the JSON file to write (--out)")
    if (args.segmentation is None) != (args.masks is None):
        raise ValueError("--segmentation and --masks go together (the CSV names PNGs in the folder)")
    data = openimages_csv_to_coco(args.boxes, args.classes, args.images, args.out, args.keep_classes,
                                  segmentation_csv=args.segmentation, masks_dir=args.masks, version=args.version,
                                  min_predicted_iou=args.min_predicted_iou, max_images=args.max_images)
    print(f"{args.out}: {summary(data)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m visrc.data.openimages``: :func:`run` with its errors as one ``error:`` line."""
    p = argparse.ArgumentParser(
        prog="python -m visrc.data.openimages",
        description="Convert OpenImages' released CSVs (+ mask PNGs) to the COCO-like JSON of visrc's MSD loader.")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
