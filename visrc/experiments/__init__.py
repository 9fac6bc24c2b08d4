"""Experiments on cached runs, one module per paper artifact.

* :mod:`~visrc.experiments.runs` — the run cache: ``train_cached`` / ``train_many`` / ``predict_cached``
  and the machine-wide compute slots;
* :mod:`~visrc.experiments.tables` — the paper's tables, ``metrics_row``, ``summary_table``;
* :mod:`~visrc.experiments.frame_sampling` — Fig. 2b (``run_frame_sampling``);
* :mod:`~visrc.experiments.table1` — Table 1 (``run_table1``: association chosen on the baseline row);
* :mod:`~visrc.experiments.table2` — Table 2 (``ensemble_table``, ``multiscale_rows``, ``pseudo_label_table``);
* :mod:`~visrc.experiments.bitrack_study` — notebook 06's predictions and Fig. 4's example video.
"""
