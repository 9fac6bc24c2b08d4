"""visrc: a runnable reproduction of the 1st place YouTube-VOS 2021 VIS solution.

Layers, each importing only itself and those before it: ``fileio`` / ``paths`` < ``data``
(YouTube-VIS JSON, masks, boxes, categories, toy generator, frame sampling, MSD, per-frame
predictions) and ``analysis`` (frame-overlap statistics) < ``models`` (Mask R-CNN + P7 + track
head, TCIS, multi-task heads, configs, predictor) < ``tracking`` (association, BiTrack, label
voting) < ``ensemble`` / ``evaluation`` (GAE, multi-scale, pseudo labels / video AP, export) <
``pipeline`` (predict -> track -> results -> evaluate), ``experiments`` (cached runs, the paper's
tables and figures), ``viz``, the CLIs and the notebooks. See ``docs/architecture.md``.
"""
__version__ = "0.1.0"
