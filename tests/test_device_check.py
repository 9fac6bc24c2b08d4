"""The GPU device check's dry run (``DRY_RUN=1 bash benchmarks/device_check.sh``): every stage at tiny
sizes on CPU, the CUDA-only ones skipped with a recorded reason; none may error. The real run (on a
GPU machine, with the wheels of ``make device-wheels``) is the same script without ``DRY_RUN``."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / 'benchmarks' / 'device_check.sh'
STAGES = ('environment', 'op_tests', 'data', 'train_fp32', 'train_amp', 'predict_track', 'projection')


def _numbers(obj) -> list:
    """Every finite number in a JSON value (booleans are not numbers)."""
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [obj] if math.isfinite(obj) else []
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _numbers(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _numbers(v)]
    return []


def test_dry_run_records_every_stage(tmp_path):
    out = tmp_path / 'out'
    env = dict(os.environ, DRY_RUN='1', OUT=str(out), PYTHON=sys.executable)
    proc = subprocess.run(['bash', str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / 'device_check.json').read_text())
    assert doc['dry_run'] is True and doc['device'] == 'cpu' and doc['config'] == 'paper_s50_full'
    stages = doc['stages']
    assert set(STAGES) <= set(stages), sorted(stages)
    for name in STAGES:
        st = stages[name]
        assert st['status'] in ('ok', 'skipped'), (name, st.get('error'), st.get('traceback'))
        assert isinstance(st['seconds'], (int, float))
        if st['status'] == 'skipped':
            assert st['reason'].strip(), name
        else:
            assert _numbers(st['result']), (name, st['result'])
    # what a CPU cannot do is skipped, saying why; the rest ran for real
    assert stages['train_amp']['status'] == 'skipped' and 'CUDA' in stages['train_amp']['reason']
    env_ = stages['environment']['result']
    assert env_['ops_backend'] in ('visrc.ops', 'mmcv') and env_['torch'] and env_['device_name'] == 'cpu'
    ops = stages['op_tests']['result']
    assert ops['mode'].startswith('collect-only') and ops['collected'] > 0
    tr = stages['train_fp32']['result']
    assert tr['config'] == 'paper_s50_full' and tr['warmup_iters'] + tr['measured_iters'] == 2
    assert tr['it_per_s'] > 0 and tr['images_per_s'] > 0 and tr['peak_memory_mib'] > 0 and tr['losses_finite']
    pr = stages['predict_track']['result']
    assert pr['mode'] == 'bitrack' and pr['frames'] > 0 and pr['frames_per_s'] > 0
    assert pr['weights'].startswith('trained (train_fp32')
    proj = stages['projection']['result']['train_fp32']
    assert proj['epochs'] == 12 and proj['gpus'] == 4 and proj['images_per_gpu'] == 4
    assert 0 < proj['fewest']['iters_total'] < proj['most']['iters_total'] and proj['fewest']['device_hours'] > 0
    # the summary the lead reads, and the JSON the script printed is the one it wrote
    assert doc['summary']['train_fp32'] == 'ok' and doc['summary']['train_fp32.it_per_s'] == tr['it_per_s']
    assert '"predict_track"' in proc.stdout and str(out / 'device_check.json') in proc.stdout
