"""``visrc demo CONFIG CHECKPOINT VIDEO_DIR --out out.mp4|out.gif``

Runs the model over the frames of one video (the images in VIDEO_DIR, in name order), associates
the detections into tracks and draws every tracked instance: its mask in the track's colour, its
box, and ``#track-id class score``. ``--mode bitrack`` uses BiTrack (paper 3.4) instead of the
online forward association.
"""
from __future__ import annotations

import argparse
from pathlib import Path

IMG_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('video_dir', help='folder with the frames of one video')
    p.add_argument('--out', required=True, help='output .gif or .mp4')
    p.add_argument('--mode', choices=['forward', 'bitrack'], default=None)
    p.add_argument('--score-thr', type=float, default=0.3, help='hide tracks scoring below this')
    p.add_argument('--fps', type=float, default=6.0)
    p.add_argument('--max-frames', type=int)
    p.add_argument('--device', default='cpu')


def list_frames(video_dir: str | Path) -> list[Path]:
    frames = sorted(p for p in Path(video_dir).iterdir() if p.suffix.lower() in IMG_SUFFIXES)
    if not frames:
        raise SystemExit(f'{video_dir}: no image frames ({", ".join(IMG_SUFFIXES)})')
    return frames


def render_demo(config, checkpoint, video_dir, out, mode=None, score_thr=0.3, fps=6.0,
                max_frames=None, device='cpu'):
    """Predict, track and draw one video; returns ``(out path, number of tracks drawn)``."""
    import numpy as np
    from PIL import Image

    from visrc.models.config import config_classes, load_config
    from visrc.models.predictor import VideoPredictor
    from visrc.tracking import build_bitrack_config, track_split
    from visrc.viz.draw import draw_frame, tracks_to_frames, write_video

    cfg = load_config(config)
    paths = list_frames(video_dir)[:max_frames]
    predictor = VideoPredictor.from_files(cfg, checkpoint, device)
    video = predictor.predict_video([str(p) for p in paths], video_id=0)
    mode = mode or cfg.get('tracking_mode', 'forward')
    tracks = track_split([video], build_bitrack_config(cfg.get('tracking')), mode=mode)[0]
    tracks = [t for t in tracks if t.score >= score_thr]
    per_frame = tracks_to_frames(tracks, len(paths))
    classes = config_classes(cfg)
    frames = []
    for p, f in zip(paths, per_frame):
        img = np.asarray(Image.open(p).convert('RGB'))
        frames.append(draw_frame(img, f['boxes'], f['masks'], f['track_ids'], f['labels'], f['scores'],
                                 classes))
    return write_video(frames, out, fps=fps), len(tracks)


def run(args: argparse.Namespace) -> int:
    out, n = render_demo(args.config, args.checkpoint, args.video_dir, args.out, args.mode,
                         args.score_thr, args.fps, args.max_frames, args.device)
    print(f'wrote {out} ({n} tracks)')
    return 0
