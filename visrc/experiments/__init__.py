"""Experiments on cached runs, one module per paper artifact.

* :mod:`~visrc.experiments.runs` — the run cache: ``train_cached`` / ``train_many`` / ``predict_cached`` /
  ``computed_once``;
* :mod:`~visrc.experiments.slots` — the machine-wide compute slots and their priorities (``slot_priority``);
* :mod:`~visrc.experiments.tables` — the paper's tables, ``metrics_row``, ``summary_table``;
* :mod:`~visrc.experiments.frame_sampling` — Fig. 2b (``run_frame_sampling``, its runs and checkpoints);
* :mod:`~visrc.experiments.pretrain` — the toy COCO pretraining, once per backbone, and every video run's init
  (``resolve_init``, ``init_of``);
* :mod:`~visrc.experiments.table1` — Table 1 (``run_table1``: thresholds chosen on the ``tune`` split);
* :mod:`~visrc.experiments.valid_size` — the tables' trained runs scored on the first n videos of a longer
  valid split: each row's bootstrap interval over videos against its seed spread (``valid_size_study`` for
  Table 1, ``frame_sampling_valid_size`` for Fig. 2b, ``ensemble_valid_size`` for Table 2 rows 1-3);
* :mod:`~visrc.experiments.table2` — Table 2 rows 1-3 (``ensemble_table``: Greedy Auto Ensemble selected on
  ``tune``, ``multiscale_rows``);
* :mod:`~visrc.experiments.pseudo_labels` — Table 2 rows 4-6 (``pseudo_label_table``: pseudo labels, new
  networks, the final ensemble);
* :mod:`~visrc.experiments.bitrack_study` — notebook 06's predictions and Fig. 4's example video.
"""
