"""``visrc demo CONFIG CHECKPOINT VIDEO_DIR --out out.mp4|out.gif``

Runs the model over the frames of one video (the images in VIDEO_DIR, in natural name order:
``2.jpg`` before ``10.jpg``; :func:`visrc.data.frames.list_frames`), associates
the detections into tracks and draws every tracked instance: its mask in the track's colour, its
box, and ``#track-id class score``. ``--mode bitrack`` uses BiTrack (paper 3.4) instead of the
online forward association.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from visrc.data.frames import list_frames

VIDEO_SUFFIXES = ('.gif', '.mp4', '.avi')


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('video_dir', help='folder with the frames of one video')
    p.add_argument('--out', required=True, help='output .gif, .mp4 or .avi')
    p.add_argument('--mode', choices=['forward', 'bitrack'], default=None)
    p.add_argument('--score-thr', type=float, default=0.3, help='hide tracks scoring below this')
    p.add_argument('--fps', type=float, default=6.0)
    p.add_argument('--max-frames', type=int)
    p.add_argument('--device', default='cpu')


def check_out(out: str | Path) -> Path:
    """``--out`` before any work: a .gif/.mp4/.avi file path, not an existing directory."""
    out = Path(out)
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f'{out}: --out must end in {", ".join(VIDEO_SUFFIXES)} (got {out.suffix or "no suffix"!r})')
    if out.is_dir():
        raise IsADirectoryError(f'{out}: --out is a directory; give a video file path')
    return out


def render_demo(config, checkpoint, video_dir, out, mode=None, score_thr=0.3, fps=6.0,
                max_frames=None, device='cpu'):
    """Predict, track and draw one video; returns ``(out path, number of tracks drawn)``."""
    import numpy as np
    from PIL import Image

    from visrc.models.config import config_classes, load_config
    from visrc.models.predictor import VideoPredictor
    from visrc.tracking import build_bitrack_config, track_split
    from visrc.viz.draw import draw_frame, tracks_to_frames, write_video

    check_out(out)
    paths = list_frames(video_dir)[:max_frames]
    cfg = load_config(config)
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
