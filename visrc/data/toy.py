"""The embedded default: a deterministic synthetic VIS benchmark in real YouTube-VIS 2021 format.

Each class is a *shape + texture pattern*; every instance gets random colours, so a CNN has to learn
appearance, not a colour lookup. Backgrounds are textured clutter seen through a (possibly) panning
camera. The knobs give the data the properties the paper exploits:

* slow motion / static camera -> high consecutive-frame box IoU (Fig. 2a, frame redundancy);
* occluders and late entry / early exit, growing in from small -> cases where backward tracking helps;
* look-alike pairs (fish/shark, car/truck: same shape, similar texture) -> label voting;
* distractor classes (kite, frisbee, umbrella) drawn unannotated in videos and annotated in the
  COCO-style set -> auxiliary classes of Multi-Source Data.

Layout written by :func:`make_toy` (the real YouTube-VIS layout for the video splits)::

    out/train/instances.json   out/train/JPEGImages/<video>/<frame>.jpg
    out/valid/instances.json   out/valid/JPEGImages/<video>/<frame>.jpg   (GT included, unlike the real valid)
    out/tune/instances.json    out/tune/JPEGImages/<video>/<frame>.jpg    (thresholds and model choices are
                                                                          made here, never on valid)
    out/coco/annotations.json  out/coco/images/<id>.jpg                   (COCO instances format)
    out/openimages/annotations.json  out/openimages/images/<id>.jpg       (boxes; masks missing or coarse:
                                                                          annotations carry "weak_mask": true)
    out/toy_config.json        the knobs used

Every video and image has its own random stream, ``default_rng([seed, split_id, index])`` with
split ids train 0, valid 1, coco 2, openimages 3, tune 4: a split's bytes do not depend on the
size of any other split. :func:`video_split` names a video split's files and fails clearly when
the split is absent (a real YouTube-VIS root has no ``tune/``; it is made from train).
"""
from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from visrc.data.masks import encode_mask, rle_area, rle_bbox
from visrc.data.ytvis import write_ytvis
from visrc.fileio import atomic_write_bytes, atomic_write_json

# name -> (shape, aspect w/h, texture, texture period in px at scale 1, texture angle in degrees)
CLASS_LIBRARY: dict[str, tuple[str, float, str, float, float]] = {
    "fish": ("ellipse", 2.0, "stripes", 7.0, 90.0),
    "shark": ("ellipse", 2.0, "stripes", 10.0, 70.0),      # look-alike of fish
    "turtle": ("superellipse", 1.2, "checker", 8.0, 0.0),
    "bird": ("triangle", 1.1, "dots", 7.0, 0.0),
    "car": ("superellipse", 1.8, "grid", 8.0, 0.0),
    "truck": ("superellipse", 1.8, "grid", 11.0, 0.0),     # look-alike of car
    # distractors: never annotated in the videos
    "kite": ("diamond", 0.8, "cross", 0.0, 0.0),
    "frisbee": ("ring", 1.0, "solid", 0.0, 0.0),
    "umbrella": ("halfdisc", 1.6, "radial", 12.0, 0.0),
}
VIDEO_CLASSES = ("fish", "shark", "turtle", "bird", "car", "truck")
DISTRACTOR_CLASSES = ("kite", "frisbee", "umbrella")
COCO_CLASSES = ("bird", "car", "truck", "kite", "frisbee", "umbrella")   # 3 shared with the videos, 3 not
OPENIMAGES_CLASSES = ("fish", "shark", "turtle", "bird")
SPLITS = ("train", "valid", "tune")          # the video splits, in the YouTube-VIS layout
# each split's seed stream; a new split takes a new id so the existing splits keep their bytes
_SPLIT_IDS = {"train": 0, "valid": 1, "coco": 2, "openimages": 3, "tune": 4}


@dataclass
class ToyConfig:
    """Knobs of the generator. Sizes are (height, width) in pixels; speeds in pixels per frame."""

    seed: int = 0
    n_train_videos: int = 48
    n_valid_videos: int = 16
    n_tune_videos: int = 32            # the tuning split (no tune/ when 0)
    frames: int = 15
    height: int = 144
    width: int = 256
    classes: tuple[str, ...] = VIDEO_CLASSES
    objects_per_video: tuple[int, int] = (1, 3)
    object_size: tuple[float, float] = (0.16, 0.32)   # object height as a fraction of frame height
    motion_speed: float = 1.5          # mean object speed; a fifth of the objects move 3x faster
    camera_motion: float = 1.0         # max camera pan speed; half the videos have a static camera
    occlusion_prob: float = 0.3        # chance a video has a distractor crossing in front of objects
    late_entry_prob: float = 0.25      # per object: appears after frame 0, growing in from small
    early_exit_prob: float = 0.2       # per object: disappears before the last frame, shrinking out
    distractors_per_video: tuple[int, int] = (0, 2)
    n_coco_images: int = 160
    n_openimages_images: int = 160
    weak_mask_fraction: float = 0.6    # OpenImages-style annotations whose mask is missing or coarse
    jpeg_quality: int = 90

    @classmethod
    def preset(cls, name: str, **overrides) -> "ToyConfig":
        presets = {
            "default": {},
            "small": dict(n_train_videos=6, n_valid_videos=3, n_tune_videos=3, frames=6, height=72,
                          width=128, n_coco_images=8, n_openimages_images=8),
        }
        if name not in presets:
            raise ValueError(f"unknown toy preset {name!r}; choose from {sorted(presets)}")
        return dataclasses.replace(cls(), **{**presets[name], **overrides})


@dataclass
class _Object:
    cls: str
    annotated: bool
    size: float                       # height in px
    angle: float
    colors: np.ndarray                # (2, 3) float in [0, 1]
    track: np.ndarray                 # (T, 2) centre in background-canvas coords
    scale: np.ndarray                 # (T,) multiplies size; 0 = absent
    depth: float
    phase: np.ndarray = field(default_factory=lambda: np.zeros(2))


# --------------------------------------------------------------------------- rendering primitives
def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test in unit local coords (u right, v down; the shape spans [-1, 1]^2)."""
    if shape == "ellipse":
        return u * u + v * v <= 1.0
    if shape == "superellipse":
        return u ** 4 + v ** 4 <= 1.0
    if shape == "triangle":  # apex at the top
        return (v <= 1.0) & (v >= -1.0) & (np.abs(u) <= (v + 1.0) / 2.0)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if shape == "ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.3)
    if shape == "halfdisc":
        return (u * u + v * v <= 1.0) & (v <= 0.2)
    raise ValueError(f"unknown shape {shape!r}")


def _texture(kind: str, period: float, angle_deg: float, x: np.ndarray, y: np.ndarray,
             u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pattern in [0, 1]; x, y in object pixels (moves with the object), u, v unit local coords."""
    if kind == "solid":
        return np.full_like(x, 0.85)
    if kind == "cross":
        return ((np.abs(u) < 0.12) | (np.abs(v) < 0.12)).astype(np.float32)
    if kind == "radial":
        return (np.sin(np.arctan2(v, u) * 2 * np.pi * 6 / (2 * np.pi)) > 0).astype(np.float32)
    a = np.deg2rad(angle_deg)
    xr, yr = x * np.cos(a) + y * np.sin(a), -x * np.sin(a) + y * np.cos(a)
    w = 2 * np.pi / period
    if kind == "stripes":
        return (np.sin(xr * w) > 0).astype(np.float32)
    if kind == "checker":
        return ((np.sin(xr * w) > 0) ^ (np.sin(yr * w) > 0)).astype(np.float32)
    if kind == "grid":
        return ((np.abs(np.sin(xr * w / 2)) < 0.3) | (np.abs(np.sin(yr * w / 2)) < 0.3)).astype(np.float32)
    if kind == "dots":
        return ((np.sin(xr * w) * np.sin(yr * w)) > 0.45).astype(np.float32)
    raise ValueError(f"unknown texture {kind!r}")


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Textured clutter (h, w, 3) float: smooth colour field + random stripes/blobs."""
    low = rng.random((4, 6, 3))
    img = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC), np.float32) / 255
    img = 0.25 + 0.5 * img
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(6):
        a, period = rng.uniform(0, np.pi), rng.uniform(6, 30)
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.1, 0.35) * min(h, w)
        region = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        pattern = np.sin((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / period) > 0
        img[region & pattern] = 0.7 * img[region & pattern] + 0.3 * rng.random(3)
    return img


def _render(canvas: np.ndarray, objs: list[_Object], t: int, cam: np.ndarray, h: int, w: int):
    """Compose frame t. Returns the image (h, w, 3) float and each object's *visible* mask (h, w) bool."""
    x0, y0 = int(round(cam[0])), int(round(cam[1]))
    img = canvas[y0:y0 + h, x0:x0 + w].copy()
    full = []
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for o in objs:
        s = o.scale[t] * o.size / 2
        if s < 1.0:
            full.append(None)
            continue
        _, aspect, tex, period, tex_angle = CLASS_LIBRARY[o.cls]
        cx, cy = o.track[t, 0] - x0, o.track[t, 1] - y0
        c, si = np.cos(o.angle), np.sin(o.angle)
        dx, dy = xx - cx, yy - cy
        xl, yl = dx * c + dy * si, -dx * si + dy * c            # object pixels, rotated frame
        u, v = xl / (s * aspect), yl / s
        inside = _shape_mask(CLASS_LIBRARY[o.cls][0], u, v)
        pattern = _texture(tex, period * o.scale[t], tex_angle, xl + o.phase[0], yl + o.phase[1], u, v)
        colour = o.colors[0] * pattern[..., None] + o.colors[1] * (1 - pattern[..., None])
        full.append((inside, colour))
    visible = [np.zeros((h, w), bool) for _ in objs]
    covered = np.zeros((h, w), bool)
    for i in sorted(range(len(objs)), key=lambda i: -objs[i].depth):   # nearest first
        if full[i] is None:
            continue
        inside, colour = full[i]
        visible[i] = inside & ~covered
        img[visible[i]] = colour[visible[i]]
        covered |= inside
    return img, visible


def _jpeg(img: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# --------------------------------------------------------------------------- scenes
def _random_object(rng, cfg: ToyConfig, cls: str, annotated: bool, T: int, canvas_hw, cam) -> _Object:
    h, w = cfg.height, cfg.width
    size = rng.uniform(*cfg.object_size) * h
    speed = cfg.motion_speed * (3.0 if rng.random() < 0.2 else 1.0) * rng.uniform(0.3, 1.3)
    heading = rng.uniform(0, 2 * np.pi)
    start = np.array([rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h]) + cam[0]
    steps = np.arange(T)[:, None] * speed * np.array([np.cos(heading), np.sin(heading)])
    wobble = np.cumsum(rng.normal(0, 0.3 * cfg.motion_speed, (T, 2)), axis=0)
    track = start + steps + wobble
    # keep centres inside the visible window so objects stay mostly in view
    track[:, 0] = np.clip(track[:, 0], cam[:, 0] + 0.08 * w, cam[:, 0] + 0.92 * w)
    track[:, 1] = np.clip(track[:, 1], cam[:, 1] + 0.08 * h, cam[:, 1] + 0.92 * h)
    scale = np.ones(T) * rng.uniform(0.85, 1.15) * np.exp(np.linspace(0, rng.normal(0, 0.15), T))
    if annotated and T > 3 and rng.random() < cfg.late_entry_prob:
        t0 = int(rng.integers(1, T // 2 + 1))
        scale[:t0] = 0
        ramp = min(3, T - t0)
        scale[t0:t0 + ramp] *= np.linspace(0.35, 1.0, ramp + 1)[:-1]   # grows in from small
    if annotated and T > 3 and rng.random() < cfg.early_exit_prob:
        t1 = int(rng.integers(T // 2, T - 1))
        scale[t1 + 1:] = 0
        ramp = min(3, t1 + 1)
        scale[t1 + 1 - ramp:t1 + 1] *= np.linspace(1.0, 0.35, ramp + 1)[1:]
    colors = rng.random((2, 3))
    colors[1] = 1 - colors[0] * rng.uniform(0.3, 0.9)                     # contrast within the object
    return _Object(cls, annotated, size, rng.uniform(-0.4, 0.4), colors, track, scale,
                   depth=rng.uniform(1, 10), phase=rng.uniform(0, 20, 2))


def _scene(rng, cfg: ToyConfig, T: int, still: bool, classes, distractor_classes):
    """Background canvas, per-frame camera offsets (T, 2) and the objects of one video/image."""
    h, w = cfg.height, cfg.width
    pan = 0.0 if still or rng.random() < 0.5 else cfg.camera_motion
    heading = rng.uniform(0, 2 * np.pi)
    cam = np.arange(T)[:, None] * pan * np.array([np.cos(heading), np.sin(heading)])
    cam -= cam.min(axis=0)
    canvas = _background(rng, h + int(np.ceil(cam[:, 1].max())) + 1, w + int(np.ceil(cam[:, 0].max())) + 1)
    n = int(rng.integers(cfg.objects_per_video[0], cfg.objects_per_video[1] + 1))
    objs = [_random_object(rng, cfg, str(rng.choice(classes)), True, T, canvas.shape, cam) for _ in range(n)]
    n_d = int(rng.integers(cfg.distractors_per_video[0], cfg.distractors_per_video[1] + 1))
    for _ in range(n_d):
        objs.append(_random_object(rng, cfg, str(rng.choice(distractor_classes)), False, T, canvas.shape, cam))
    if not still and rng.random() < cfg.occlusion_prob and n:
        # an occluder sweeps across the first object: nearest of all, fast, crossing its path
        occ = _random_object(rng, cfg, str(rng.choice(distractor_classes)), False, T, canvas.shape, cam)
        target = objs[0].track
        occ.track = target + np.linspace(-1, 1, T)[:, None] * np.array([0.6 * w, 0.1 * h])
        occ.depth = 0.0
        objs.append(occ)
    return canvas, cam, objs


def _video(rng, cfg: ToyConfig, vid: int, name: str, cat_ids: dict[str, int]):
    """Render one video. Returns (frames as JPEG bytes, video record, annotation records)."""
    T, h, w = cfg.frames, cfg.height, cfg.width
    canvas, cam, objs = _scene(rng, cfg, T, False, cfg.classes, DISTRACTOR_CLASSES)
    frames, per_obj = [], [[None] * T for _ in objs]
    for t in range(T):
        img, visible = _render(canvas, objs, t, cam[t], h, w)
        frames.append(_jpeg(img, cfg.jpeg_quality))
        for i, m in enumerate(visible):
            if objs[i].annotated and m.sum() >= 4:       # fewer pixels than that: annotated absent
                per_obj[i][t] = encode_mask(m)
    file_names = [f"{name}/{t:05d}.jpg" for t in range(T)]
    video = {"id": vid, "width": w, "height": h, "length": T, "file_names": file_names}
    anns = []
    for o, rles in zip(objs, per_obj):
        if not o.annotated or all(r is None for r in rles):
            continue
        anns.append({"video_id": vid, "category_id": cat_ids[o.cls], "iscrowd": 0,
                     "segmentations": rles,
                     "bboxes": [None if r is None else rle_bbox(r) for r in rles],
                     "areas": [None if r is None else rle_area(r) for r in rles]})
    return frames, video, anns


def _categories(names) -> list[dict]:
    return [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(names)]


def _write_video_split(out: Path, split: str, n: int, cfg: ToyConfig, split_id: int, progress) -> dict:
    cats = _categories(cfg.classes)
    cat_ids = {c["name"]: c["id"] for c in cats}
    videos, anns = [], []
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_id, i])
        name = f"{split}_{i:04d}"
        frames, video, video_anns = _video(rng, cfg, i + 1, name, cat_ids)
        for fname, data in zip(video["file_names"], frames):
            atomic_write_bytes(out / split / "JPEGImages" / fname, data)
        videos.append(video)
        anns.extend(video_anns)
        progress.update(1)
    for k, a in enumerate(anns):
        a["id"] = k + 1
    data = {"info": {"description": f"visrc toy benchmark ({split})", "version": "2021"},
            "licenses": [], "videos": videos, "annotations": anns, "categories": cats}
    write_ytvis(data, out / split / "instances.json")
    return data


def _write_image_set(out: Path, name: str, n: int, classes, cfg: ToyConfig, split_id: int, weak: bool, progress) -> dict:
    """COCO-format still images; with ``weak`` OpenImages-style (masks missing or box-shaped, flagged)."""
    cats = _categories(classes)
    cat_ids = {c["name"]: c["id"] for c in cats}
    targets = [c for c in classes if c not in DISTRACTOR_CLASSES]
    distractors = [c for c in DISTRACTOR_CLASSES if c not in classes] or list(DISTRACTOR_CLASSES)
    images, anns = [], []
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_id, i])
        canvas, cam, objs = _scene(rng, cfg, 1, True, classes if not weak else targets, distractors)
        img, visible = _render(canvas, objs, 0, cam[0], cfg.height, cfg.width)
        fname = f"{i + 1:06d}.jpg"
        atomic_write_bytes(out / name / "images" / fname, _jpeg(img, cfg.jpeg_quality))
        images.append({"id": i + 1, "file_name": fname, "height": cfg.height, "width": cfg.width})
        for o, m in zip(objs, visible):
            if not o.annotated or m.sum() < 4:
                continue
            rle = encode_mask(m)
            ann = {"id": len(anns) + 1, "image_id": i + 1, "category_id": cat_ids[o.cls], "iscrowd": 0,
                   "bbox": rle_bbox(rle), "area": rle_area(rle), "segmentation": rle}
            if weak and rng.random() < cfg.weak_mask_fraction:
                x, y, bw, bh = ann["bbox"]
                if rng.random() < 0.5:
                    del ann["segmentation"]                                   # missing mask
                else:
                    ann["segmentation"] = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]  # coarse: the box
                ann["weak_mask"] = True
            anns.append(ann)
        progress.update(1)
    data = {"images": images, "annotations": anns, "categories": cats}
    atomic_write_json(out / name / "annotations.json", data)
    return data


def make_toy(out: str | Path, preset: str = "default", seed: int = 0, progress: bool = True, **overrides) -> Path:
    """Generate the toy benchmark into ``out`` (see the module docstring for the layout).

    Deterministic: the same preset, seed and overrides give the same bytes.
    """
    from tqdm.auto import tqdm

    cfg = ToyConfig.preset(preset, seed=seed, **overrides)
    unknown = set(cfg.classes) - set(CLASS_LIBRARY)
    if unknown:
        raise ValueError(f"unknown toy classes {sorted(unknown)}; known: {sorted(CLASS_LIBRARY)}")
    out = Path(out)
    total = (cfg.n_train_videos + cfg.n_valid_videos + cfg.n_tune_videos + cfg.n_coco_images
             + cfg.n_openimages_images)
    ids = _SPLIT_IDS
    with tqdm(total=total, desc=f"toy[{preset}] -> {out}", unit="item", disable=not progress) as bar:
        _write_video_split(out, "train", cfg.n_train_videos, cfg, ids["train"], bar)
        _write_video_split(out, "valid", cfg.n_valid_videos, cfg, ids["valid"], bar)
        if cfg.n_tune_videos:
            _write_video_split(out, "tune", cfg.n_tune_videos, cfg, ids["tune"], bar)
        _write_image_set(out, "coco", cfg.n_coco_images, COCO_CLASSES, cfg, ids["coco"], False, bar)
        _write_image_set(out, "openimages", cfg.n_openimages_images, OPENIMAGES_CLASSES, cfg, ids["openimages"],
                         True, bar)
    atomic_write_json(out / "toy_config.json", dataclasses.asdict(cfg), indent=2)
    return out


def video_split(root: str | Path, name: str) -> tuple[Path, Path]:
    """``(instances.json, JPEGImages/)`` of the video split ``name`` under ``root``; a one-line
    ``FileNotFoundError`` naming the missing path when the split is absent."""
    ann, img = Path(root) / name / "instances.json", Path(root) / name / "JPEGImages"
    for path in (ann, img):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no {name!r} split under {root} (missing)")
    return ann, img


def _config_matches(root: Path, cfg: ToyConfig) -> bool:
    """Whether ``root/toy_config.json`` (written last by :func:`make_toy`) holds exactly ``cfg``."""
    try:
        written = json.loads((root / "toy_config.json").read_text())
    except (OSError, ValueError):
        return False
    return written == json.loads(json.dumps(dataclasses.asdict(cfg)))


def _prune(root: Path) -> None:
    """Remove frames and images that no annotation file of ``root`` lists (left by an older,
    larger configuration), and video splits the configuration no longer has."""
    import shutil

    for split in SPLITS:
        ann, img = root / split / "instances.json", root / split / "JPEGImages"
        if not ann.is_file() and (root / split).exists():
            shutil.rmtree(root / split)
        elif ann.is_file() and img.is_dir():
            keep = {f.split("/")[0] for v in json.loads(ann.read_text())["videos"] for f in v["file_names"]}
            for d in img.iterdir():
                if d.name not in keep:
                    shutil.rmtree(d)
    for name in ("coco", "openimages"):
        ann, img = root / name / "annotations.json", root / name / "images"
        if ann.is_file() and img.is_dir():
            keep = {i["file_name"] for i in json.loads(ann.read_text())["images"]}
            for f in img.iterdir():
                if f.name not in keep:
                    f.unlink()


def toy_root(preset: str = "default", seed: int = 0, n_valid_videos: int | None = None) -> Path:
    """The generated toy benchmark for (preset, seed) under ``runs/data/``; generated on first use,
    once even when several notebooks ask at the same time. ``n_valid_videos``: a longer (or shorter)
    ``valid`` split in its own root (``toy_<preset>_seed<seed>_valid<n>``); every video has its own
    random stream, so its train and tune splits and its first valid videos are the preset's bytes.

    A cached root whose ``toy_config.json`` differs from what :meth:`ToyConfig.preset` gives now
    (made by an older generator, e.g. before the tune split) is regenerated in place: unchanged
    splits are rewritten with the same bytes, files no longer listed are removed."""
    from visrc.fileio import file_lock
    from visrc.paths import runs_dir

    sized = {} if n_valid_videos is None else {"n_valid_videos": int(n_valid_videos)}
    cfg = ToyConfig.preset(preset, seed=seed, **sized)
    root = runs_dir() / "data" / (f"toy_{preset}_seed{seed}" + (f"_valid{n_valid_videos}" if sized else ""))
    if not _config_matches(root, cfg):
        with file_lock(root.parent / f".{root.name}.lock"):
            if not _config_matches(root, cfg):
                stale = (root / "toy_config.json").is_file()
                if stale:   # marks the root incomplete until make_toy writes the new one last
                    (root / "toy_config.json").unlink()
                make_toy(root, preset=preset, seed=seed, **sized)
                if stale:
                    _prune(root)
    return root


def dataset_root(data_root: str | Path | None = None, toy_preset: str = "default") -> Path:
    """The notebooks' data: ``data_root`` when given (e.g. a YouTube-VIS root), else the toy benchmark."""
    return Path(data_root) if data_root else toy_root(toy_preset)
