"""Draw tracked instances on frames and write them as a GIF or MP4.

``draw_frame(img, boxes, masks, track_ids, labels, scores, class_names)`` blends each instance's
mask in a colour fixed by its track id (so an object keeps its colour through the video), draws
its box and a ``#id class score`` tag. ``tracks_to_frames`` turns visrc tracks
(:class:`visrc.tracking.bitrack.Track`) into per-frame lists for it. ``write_video`` picks the
writer from the suffix: ``.gif`` (Pillow) or ``.mp4`` / ``.avi`` (OpenCV, installed with mmcv).
"""
from __future__ import annotations

import colorsys
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def track_color(track_id: int) -> tuple[int, int, int]:
    """A saturated RGB colour per id (golden-ratio hue steps: neighbours differ)."""
    h = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_frame(img: np.ndarray, boxes: np.ndarray, masks: Sequence[np.ndarray | None] | None,
               track_ids: Sequence[int], labels: Sequence[int], scores: Sequence[float],
               class_names: Sequence[str] | None = None, alpha: float = 0.45) -> np.ndarray:
    """img (H, W, 3) uint8 RGB; boxes (N, 4) xyxy; masks N of (H, W) bool/uint8 or None ->
    a new (H, W, 3) uint8 RGB image."""
    out = img.astype(np.float32).copy()
    n = len(boxes)
    if masks is not None:
        for i in range(n):
            m = masks[i]
            if m is None:
                continue
            m = np.asarray(m).astype(bool)
            c = np.array(track_color(track_ids[i]), np.float32)
            out[m] = out[m] * (1 - alpha) + c * alpha
    pil = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(pil)
    font = ImageFont.load_default()
    for i in range(n):
        x0, y0, x1, y1 = [float(v) for v in boxes[i]]
        if not np.isfinite([x0, y0, x1, y1]).all():
            continue
        c = track_color(track_ids[i])
        d.rectangle([x0, y0, x1, y1], outline=c, width=2)
        name = (class_names[labels[i]] if class_names is not None and 0 <= labels[i] < len(class_names)
                else str(int(labels[i])))
        text = f'#{int(track_ids[i])} {name} {float(scores[i]):.2f}'
        tx0, ty0, tx1, ty1 = d.textbbox((x0, y0), text, font=font)
        ty = y0 - (ty1 - ty0) - 2 if y0 - (ty1 - ty0) - 2 >= 0 else y0
        d.rectangle([x0, ty, x0 + (tx1 - tx0) + 4, ty + (ty1 - ty0) + 2], fill=c)
        d.text((x0 + 2, ty), text, fill=(0, 0, 0), font=font)
    return np.asarray(pil)


def tracks_to_frames(tracks, num_frames: int, decode: bool = True) -> list[dict]:
    """visrc ``Track`` list -> per frame ``dict(boxes, masks, track_ids, labels, scores)``.
    The tag shows each track's voted label (``track.label``) and its detection's score."""
    from visrc.data.masks import decode_rle

    frames = [dict(boxes=[], masks=[], track_ids=[], labels=[], scores=[]) for _ in range(num_frames)]
    for k, tr in enumerate(tracks):
        for t in tr.frames:
            f = frames[t]
            f['boxes'].append(tr.boxes[t])
            rle = tr.masks[t] if tr.masks is not None else None
            f['masks'].append(decode_rle(rle) if (decode and rle is not None) else None)
            f['track_ids'].append(k)
            f['labels'].append(int(tr.label))
            f['scores'].append(float(tr.scores[t]))
    for f in frames:
        f['boxes'] = np.asarray(f['boxes'], np.float32).reshape(-1, 4)
    return frames


def write_video(frames: Sequence[np.ndarray], out: str | os.PathLike, fps: float = 6.0) -> Path:
    """RGB uint8 frames -> ``out`` (.gif via Pillow, .mp4/.avi via OpenCV), written atomically."""
    from visrc.fileio import atomic_write

    out = Path(out)
    suffix = out.suffix.lower()
    if not frames:
        raise ValueError('write_video: no frames')
    if suffix == '.gif':
        imgs = [Image.fromarray(f) for f in frames]

        def _write(fh):
            imgs[0].save(fh, format='GIF', save_all=True, append_images=imgs[1:],
                         duration=int(1000 / fps), loop=0)
        return atomic_write(out, _write)
    if suffix in ('.mp4', '.avi'):
        import cv2
        h, w = frames[0].shape[:2]
        tmp = out.with_name(f'.{out.stem}.{os.getpid()}.tmp{suffix}')
        out.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*('mp4v' if suffix == '.mp4' else 'MJPG')),
                                 float(fps), (w, h))
        if not writer.isOpened():
            raise RuntimeError(f'{out}: OpenCV cannot open a {suffix} writer here; use .gif')
        try:
            for f in frames:
                writer.write(np.ascontiguousarray(f[:, :, ::-1]))
        finally:
            writer.release()
        os.replace(tmp, out)
        return out
    raise ValueError(f'{out}: unsupported video suffix {suffix!r} (use .gif or .mp4)')


def plot_gt_vs_pseudo(gt: dict, pseudo: dict, img_root, frame: int | None = None):
    """A valid frame with its GT boxes beside the pseudo-label boxes (notebook 05) -> matplotlib Figure.

    ``gt`` / ``pseudo``: YouTube-VIS dicts of the same split (pseudo from
    :func:`visrc.ensemble.pseudo_label.make_pseudo_labels`); the video with the most pseudo tracks
    is shown, at ``frame`` (default: its middle frame).
    """
    from pathlib import Path

    from matplotlib.figure import Figure
    from PIL import Image

    if not gt.get("videos"):
        raise ValueError("plot_gt_vs_pseudo: the GT split has no videos")
    cat_names = [c["name"] for c in gt["categories"]]
    cat_index = {c["id"]: i for i, c in enumerate(gt["categories"])}
    counts = {}
    for a in pseudo.get("annotations", []):
        counts[a["video_id"]] = counts.get(a["video_id"], 0) + 1
    video = max(gt["videos"], key=lambda v: counts.get(v["id"], 0))
    t = len(video["file_names"]) // 2 if frame is None else int(frame)
    with Image.open(Path(img_root) / video["file_names"][t]) as im:
        img = np.asarray(im.convert("RGB"))
    fig = Figure(figsize=(9, 2.9))
    for ax, (title, data) in zip(fig.subplots(1, 2), [("valid GT", gt), ("pseudo labels (ensemble + tracking)", pseudo)]):
        anns = [a for a in data.get("annotations", []) if a["video_id"] == video["id"] and a["bboxes"][t] is not None]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bboxes"][t] for a in anns)],
                         np.float64).reshape(-1, 4)
        ax.imshow(draw_frame(img, boxes, None, [a["id"] for a in anns], [cat_index[a["category_id"]] for a in anns],
                             [a.get("score", 1.0) for a in anns], cat_names))
        ax.set_title(f"{title}: video {video['id']}, frame {t}", fontsize=8)
        ax.axis("off")
    return fig
