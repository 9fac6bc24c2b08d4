# Set-up, tests and the main job. `make test` and `make reproduce` do their own set-up.
PYTHON    ?= python3.11
VENV      ?= .venv
PY        := $(VENV)/bin/python
PIP       := $(PY) -m pip
QUICK     ?= 0
PYTEST_ARGS ?=

.PHONY: setup test test-browser reproduce reproduce-seeds bench clean-venv

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first, from its pin: the local CPU wheel; no dependency may then move it
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	$(PY) -c "import visrc, torch, mmdet.models; from mmcv.ops import RoIAlign, nms, DeformConv2d; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The BiTrack explorer in JupyterLab + headless Chromium (the system's chromium; skips, saying why, without it).
test-browser: setup
	$(PIP) install -q -c constraints.txt -e ".[browser]"
	$(PY) -m pytest -q -m browser tests/test_browser_explorer.py

reproduce: setup
	$(PY) -m visrc reproduce $(if $(filter 1,$(QUICK)),--quick,)

# The tables over seeds 0, 1, 2 (about three times the main job's training; cached runs are reused).
# Their figures, tables and metrics go to figures/seeds/, beside the main job's seed-0 files; with
# several seeds, notebooks 02, 03 and 04 also score Fig. 2b's, Table 1's and Table 2 rows 1-3's runs on
# a 256-video valid split (inference only).
SEED_NOTEBOOKS ?= 02_frame_sampling 03_ablation 04_ensemble 05_pseudo_label
reproduce-seeds: setup
	VISRC_FIGURES_DIR=$(CURDIR)/figures/seeds $(PY) -m visrc reproduce --only $(SEED_NOTEBOOKS) --param 'seeds=[0,1,2]'

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
