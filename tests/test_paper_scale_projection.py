"""benchmarks/bench_paper_scale.py's 12-epoch projection: epoch length from the config's MSD sampler,
key frames from a YouTube-VIS JSON or the published sizes, and the arithmetic from one iteration."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / 'benchmarks' / 'bench_paper_scale.py'


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('bench_paper_scale', BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_project_counts_the_msd_epoch_and_spreads_time_over_gpus(bench):
    q = bench.project(key_frames=1000, ratios=[2, 1, 1], anchor=0, images_per_gpu=4, gpus=4, epochs=12,
                      s_per_image=3.6, memory_per_gpu_mib=1234.4)
    assert q['samples_per_epoch'] == 2000                       # every key frame + half as many per still source
    assert q['iters_per_epoch'] == 125 and q['iters_total'] == 1500
    assert q['images_total'] == 24000
    assert q['device_hours'] == 24.0 and q['wall_hours_on_gpus'] == 6.0
    assert q['memory_per_gpu_mib'] == 1234
    odd = bench.project(1001, [2, 1, 1], 0, 4, 4, 12, 1.0, 0)
    assert odd['samples_per_epoch'] == 2002 and odd['iters_per_epoch'] == 126      # a last partial batch counts


def test_key_frames_of_a_ytvis_json_and_its_errors(bench, tmp_path):
    def video(i, names, length):
        return {'id': i, 'file_names': names, 'length': length, 'height': 8, 'width': 8}

    good = tmp_path / 'train.json'
    good.write_text(json.dumps({'videos': [video(1, ['a', 'b', 'c'], 3), video(2, ['d', 'e'], 2)],
                                'annotations': [], 'categories': [{'id': 1, 'name': 'cat'}]}))
    assert bench.key_frames_of(good) == 5
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'videos': [video(1, ['a'], 2)], 'annotations': [],
                               'categories': [{'id': 1, 'name': 'cat'}]}))
    with pytest.raises(ValueError, match=r"bad.json: video id=1: 'file_names' has 1 entries but 'length' is 2 \(videos\[0\]\)"):
        bench.key_frames_of(bad)


def test_published_sizes_give_a_range_and_the_paper_config_projects(bench):
    sizes = json.loads(bench.SIZES.read_text())
    assert all('source' in v for k, v in sizes.items() if not k.startswith('_'))
    lo, hi = bench.published_key_frames(sizes)
    assert 0 < lo < hi
    measured = dict(device='cpu', cpu_s_per_iter=20.0, wall_s_per_iter=21.0, batch=1,
                    rss_built_mib=1000.0, growth_per_image_mib=500.0)
    proj = bench.projections('paper_s50_full', measured, gpus=4, ytvis_json=None)
    assert proj['images_per_gpu'] == 4 and proj['epochs'] == 12 and proj['time_unit'] == 'CPU core'
    assert proj['fewest']['key_frames'] == lo and proj['most']['key_frames'] == hi
    assert proj['fewest']['memory_per_gpu_mib'] == 3000
    assert proj['fewest']['iters_total'] < proj['most']['iters_total']
