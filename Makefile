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

# Wheels the GPU machine's own Python 3.12 (x86_64, torch preinstalled, no package registry) lacks,
# for `bash benchmarks/device_check.sh` there: pure-Python or cp312 manylinux, no dependencies pulled
# (each one named), into .device/wheels/ (git-ignored; the device call carries .device).
DEVICE_WHEEL_DIR ?= .device/wheels
DEVICE_WHEELS ?= mmcv-lite==2.1.0 mmdet==3.3.0 mmengine==0.10.7 pycocotools==2.0.11 shapely==2.2.0 \
	addict==2.4.0 yapf==0.43.0 platformdirs==4.14.9 termcolor==3.3.0 terminaltables==3.1.10
DEVICE_PIP ?= $(firstword $(wildcard $(PY)) python3) -m pip
DEVICE_WHEELS_MAX_MIB ?= 32
.PHONY: device-wheels
device-wheels:
	rm -rf $(DEVICE_WHEEL_DIR) && mkdir -p $(DEVICE_WHEEL_DIR)
	$(DEVICE_PIP) download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d $(DEVICE_WHEEL_DIR) $(DEVICE_WHEELS)
	@ls -1 $(DEVICE_WHEEL_DIR)
	@kib=$$(du -sk $(DEVICE_WHEEL_DIR) | cut -f1); \
	  echo "device wheels: $$(ls $(DEVICE_WHEEL_DIR)/*.whl | wc -l) files, $$((kib / 1024)).$$((kib % 1024 * 10 / 1024)) MiB in $(DEVICE_WHEEL_DIR)"; \
	  test $$kib -lt $$(($(DEVICE_WHEELS_MAX_MIB) * 1024)) || { echo "over $(DEVICE_WHEELS_MAX_MIB) MiB: the device call carries 64 MiB in all" >&2; exit 1; }
