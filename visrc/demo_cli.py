"""``visrc demo CONFIG CHECKPOINT VIDEO --out out.mp4|out.gif``

Runs the model over one video, associates the detections into tracks, draws every tracked
instance (its mask in the track's colour, its box, and ``#track-id class score``) and writes the
annotated video plus its YouTube-VIS results (``--results``, default ``<out>.results.json``:
video id 1, category ids 1..C in the config's class order, every track whatever its score).

VIDEO is a video file (mp4, avi, mov, mkv, webm; decoded with PyAV) or a folder of frames, read
in natural name order (``2.jpg`` before ``10.jpg``; :func:`visrc.data.frames.list_frames`). The
output is a GIF (Pillow) or a video file by its suffix (PyAV, written as it is drawn); its frame
rate is ``--fps``, by default the input video's (6 for a frame folder). ``--mode bitrack`` uses
BiTrack (paper 3.4) instead of the online forward association. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visrc.data.frames import list_frames  # noqa: F401  (re-exported: natural frame order)
from visrc.data.video_files import VIDEO_SUFFIXES as INPUT_SUFFIXES

VIDEO_SUFFIXES = ('.gif',) + INPUT_SUFFIXES
DEFAULT_FOLDER_FPS = 6.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('config', help='config file (or the name of one in visrc/configs: `visrc configs` lists them)')
    p.add_argument('checkpoint', help='a checkpoint written by `visrc train` (loaded with weights_only=True)')
    p.add_argument('video', metavar='VIDEO', help=f'a video file ({", ".join(INPUT_SUFFIXES)}) or a folder of its frames')
    p.add_argument('--out', required=True, help=f'annotated video to write ({", ".join(VIDEO_SUFFIXES)})')
    p.add_argument('--results', help='YouTube-VIS results JSON to write (default: <out without suffix>.results.json)')
    p.add_argument('--mode', choices=['forward', 'bitrack'], default=None,
                   help='association mode (default: the config\'s tracking_mode, else forward)')
    p.add_argument('--score-thr', type=float, default=0.3, help='draw only tracks scoring at least this (default 0.3)')
    p.add_argument('--fps', type=float, help=f'frame rate of --out (default: the input video\'s, '
                                             f'{DEFAULT_FOLDER_FPS:g} for a frame folder)')
    p.add_argument('--max-frames', type=int, help='only the first N frames')
    p.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0 (default cpu)')
    p.add_argument('--skip-bad-frames', action='store_true',
                   help='a frame that does not decode gets no detections and a warning (default: an error)')


def check_out(out: str | Path) -> Path:
    """``--out`` before any work: a path with a video suffix (:data:`VIDEO_SUFFIXES`), not a directory."""
    out = Path(out)
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f'{out}: --out must end in {", ".join(VIDEO_SUFFIXES)} (got {out.suffix or "no suffix"!r})')
    if out.is_dir():
        raise IsADirectoryError(f'{out}: --out is a directory; give a video file path')
    return out


def default_results_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + '.results.json')


def _video_entry(video, max_frames):
    """The one-video YouTube-VIS dict of VIDEO (id 1), shortened to ``max_frames``
    (:func:`visrc.api.video_entry`)."""
    from visrc.api import video_entry

    if max_frames is not None and max_frames < 1:
        raise ValueError(f'--max-frames must be >= 1, got {max_frames}')
    return video_entry(video, 1, max_frames)


def _frames(entry):
    """(H, W, 3) uint8 RGB frames of the entry, read again for drawing (nothing kept in memory)."""
    import itertools

    import numpy as np
    from PIL import Image

    from visrc.data.video_files import VideoFile

    if entry.get('video_file'):
        yield from itertools.islice(VideoFile(entry['video_file']), entry['length'])
        return
    for path in entry['file_names']:
        try:
            with Image.open(path) as im:
                yield np.asarray(im.convert('RGB'))
        except OSError:          # a bad frame skipped by --skip-bad-frames: drawn as black
            yield np.zeros((entry['height'], entry['width'], 3), np.uint8)


def render_demo(config, checkpoint, video, out, mode=None, score_thr=0.3, fps=None,
                max_frames=None, device='cpu', results_out=None, skip_bad_frames=False, log=None):
    """Predict, track and draw one video (a video file or a frame folder) with
    :func:`visrc.init_model` and :func:`visrc.track_video`; also writes its YouTube-VIS results
    (:func:`visrc.write_results`) to ``results_out`` (default :func:`default_results_path`). Returns
    ``(out path, number of tracks drawn)``."""
    from visrc.api import init_model, track_video, write_results
    from visrc.data.video_files import VideoWriter
    from visrc.viz.draw import draw_frame, tracks_to_frames, write_video

    out = check_out(out)
    results_out = Path(results_out) if results_out else default_results_path(out)
    if results_out.is_dir():
        raise IsADirectoryError(f'{results_out}: --results is a directory; give the JSON file to write')
    entry = _video_entry(video, max_frames)   # a bad VIDEO or --max-frames fails before the model is built
    model = init_model(config, checkpoint, device)
    tracks = track_video(model, entry, mode or model.mode, skip_bad_frames=skip_bad_frames, log=log)
    entry, classes = tracks.video, model.classes
    write_results({1: tracks}, results_out)

    shown = [t.track for t in tracks if t.score >= score_thr]
    per_frame = tracks_to_frames(shown, entry['length'])
    if fps is None:
        fps = entry.get('fps') or DEFAULT_FOLDER_FPS
    drawn = (draw_frame(img, f['boxes'], f['masks'], f['track_ids'], f['labels'], f['scores'], classes)
             for img, f in zip(_frames(entry), per_frame))
    if out.suffix.lower() == '.gif':
        write_video(list(drawn), out, fps=fps)
    else:
        with VideoWriter(out, fps=fps) as writer:
            for frame in drawn:
                writer.write(frame)
    if log:
        log(f'[demo] wrote {out} and {results_out} ({len(per_frame)} frames, {len(tracks)} tracks)')
    return out, len(shown)


def run(args: argparse.Namespace) -> int:
    out, n = render_demo(args.config, args.checkpoint, args.video, args.out, args.mode, args.score_thr,
                         args.fps, args.max_frames, args.device, args.results, args.skip_bad_frames,
                         log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f'wrote {out} ({n} tracks drawn)')
    return 0
