"""visrc.experiments.runs: cached training runs (the training subprocess is faked; the real one runs in
test_ablation_configs / test_train_resume / the notebook tests)."""
import subprocess
import threading
from pathlib import Path

import pytest

from visrc.experiments import runs as run_cache
from visrc.experiments import slots


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    calls = []

    def fake_run(cmd, stdout=None, stderr=None, env=None):
        work = Path(cmd[cmd.index("--work-dir") + 1])
        calls.append({"cmd": cmd, "threads": env.get("OMP_NUM_THREADS"), "thread": threading.get_ident()})
        if cmd[cmd.index("--seed") + 1] == "99":
            stdout.write("Traceback: boom\n")
            return subprocess.CompletedProcess(cmd, 1)
        (work / "epoch_1.pth").write_bytes(b"x")
        (work / "last_checkpoint").write_text(str(work / "epoch_1.pth"))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(run_cache.subprocess, "run", fake_run)
    return calls


def test_train_cached_runs_once_and_caches(runs, tmp_path):
    ck = run_cache.train_cached("toy_baseline", tmp_path, seed=3, max_epochs=2, cfg_options={"a.b": 1}, threads=1)
    assert ck.name == "epoch_1.pth" and ck.parent == run_cache.run_dir("toy_baseline", tmp_path, 3, 2, {"a.b": 1})
    cmd = runs[0]["cmd"]
    assert cmd[cmd.index("--seed") + 1] == "3" and cmd[cmd.index("--max-epochs") + 1] == "2"
    assert "a.b=1" in cmd and "--resume" in cmd and runs[0]["threads"] == "1"
    assert run_cache.train_cached("toy_baseline", tmp_path, seed=3, max_epochs=2, cfg_options={"a.b": 1}) == ck
    assert len(runs) == 1                                    # second call: cached
    run_cache.train_cached("toy_baseline", tmp_path, seed=4, max_epochs=2, cfg_options={"a.b": 1})
    assert len(runs) == 2                                    # another seed is another run


def test_train_cached_failure_names_the_log(runs, tmp_path):
    with pytest.raises(RuntimeError, match="train.log"):
        run_cache.train_cached("toy_baseline", tmp_path, seed=99)


def test_train_many_order_threads_and_errors(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(slots.os, "cpu_count", lambda: 2)
    monkeypatch.delenv("VISRC_TRAIN_SLOTS", raising=False)
    jobs = [dict(config="toy_baseline", data_root=tmp_path, seed=s) for s in (0, 1, 2)]
    cks = run_cache.train_many(jobs)
    assert [c.parent for c in cks] == [run_cache.run_dir("toy_baseline", tmp_path, s) for s in (0, 1, 2)]
    assert {c["threads"] for c in runs} == {"1"}             # 2 slots x 1 thread on 2 cores
    assert run_cache.train_many(jobs[:1]) == cks[:1] and len(runs) == 3
    with pytest.raises(RuntimeError, match="1 of 2 trainings failed"):
        run_cache.train_many([dict(config="toy_baseline", data_root=tmp_path, seed=99),
                                dict(config="toy_tcis", data_root=tmp_path)])
    assert (run_cache.run_dir("toy_tcis", tmp_path) / "final_checkpoint.json").is_file()   # the other one is kept


def test_training_slots_bound_concurrency_across_callers(tmp_path, monkeypatch):
    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("VISRC_TRAIN_SLOTS", "2")
    active, peak, lock = [0], [0], threading.Lock()

    def fake_run(cmd, stdout=None, stderr=None, env=None):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        threading.Event().wait(0.3)
        work = Path(cmd[cmd.index("--work-dir") + 1])
        (work / "epoch_1.pth").write_bytes(b"x")
        with lock:
            active[0] -= 1
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(run_cache.subprocess, "run", fake_run)
    monkeypatch.setattr(slots, "POLL_SECONDS", 0.01)
    run_cache.train_many([dict(config="toy_baseline", data_root=tmp_path, seed=s) for s in range(5)])
    assert peak[0] == 2


def test_same_run_trains_once_when_asked_twice_at_once(runs, tmp_path):
    cks = run_cache.train_many([dict(config="toy_baseline", data_root=tmp_path)] * 3)
    assert len(set(cks)) == 1 and len(runs) == 1


def test_run_dir_follows_the_config_content(tmp_path, monkeypatch):
    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    base = tmp_path / "base.py"
    base.write_text("lr = 0.1\nepochs = 2\n")
    child = tmp_path / "child.py"
    child.write_text("_base_ = ['./base.py']\nepochs = 3\n")
    d0 = run_cache.run_dir(str(child), tmp_path)
    assert run_cache.run_dir(str(child), tmp_path) == d0 and d0.name.startswith("child-")
    base.write_text("lr = 0.2\nepochs = 2\n")                   # an edit in the _base_ file
    assert run_cache.run_dir(str(child), tmp_path) != d0


@pytest.mark.parametrize("numerics, cores", [("native", "all"), ("pinned", 1)])
def test_compute_slot_shares_the_slots_with_trainings_and_is_reentrant(numerics, cores, tmp_path, monkeypatch):
    import os

    import torch

    monkeypatch.setenv("VISRC_NUMERICS", numerics)
    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("VISRC_TRAIN_SLOTS", "1")
    monkeypatch.setattr(slots, "POLL_SECONDS", 0.01)
    threads = torch.get_num_threads()
    events = []

    def fake_run(cmd, stdout=None, stderr=None, env=None):
        events.append("train")
        (Path(cmd[cmd.index("--work-dir") + 1]) / "epoch_1.pth").write_bytes(b"x")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(run_cache.subprocess, "run", fake_run)
    with slots.compute_slot():
        with slots.compute_slot():                   # nested in one thread: no self-deadlock
            # one slot: all the cores (native numerics) or the pinned thread count
            assert torch.get_num_threads() == (os.cpu_count() if cores == "all" else cores)
        trainer = threading.Thread(target=run_cache.train_cached, args=("toy_baseline", tmp_path))
        trainer.start()
        threading.Event().wait(0.5)
        events.append("compute done")                      # the only slot is still ours: no training yet
    trainer.join(10)
    assert events == ["compute done", "train"]
    assert torch.get_num_threads() == threads


def test_computed_once_computes_once_when_asked_at_once(tmp_path):
    calls, out = [], []

    def compute():
        calls.append(1)
        threading.Event().wait(0.2)                        # the others arrive meanwhile
        return {"made": len(calls)}

    summary = tmp_path / "ens" / "summary.json"
    askers = [threading.Thread(target=lambda: out.append(run_cache.computed_once(summary, compute)))
              for _ in range(3)]
    for t in askers:
        t.start()
    for t in askers:
        t.join(10)
    assert calls == [1] and out == [{"made": 1}] * 3
    assert run_cache.computed_once(summary, compute, force=True) == {"made": 2}


def test_trainings_since_lists_this_jobs_trainings_longest_first(tmp_path, monkeypatch):
    import json
    import os
    import time

    from visrc.reproduce import describe_trainings

    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("VISRC_TRAIN_SLOTS", "2")
    now = time.time()

    def run(name, config, started, seconds, age=0.0):
        done = tmp_path / "experiments" / name / "final_checkpoint.json"
        done.parent.mkdir(parents=True)
        info = {"command": ["python", "-m", "visrc", "train", config, "--seed", "0"], "train_seconds": seconds}
        if started is not None:
            info["started"] = started
        done.write_text(json.dumps(info))
        os.utime(done, (now - age, now - age))

    run("toy_baseline-aaa", "toy_baseline", now - 500, 300.0)
    run("toy_swin-bbb", "visrc/configs/toy_swin_tcis_multitask_msd.py", None, 400.0)   # older record: no "started"
    run("toy_tcis-old", "toy_tcis", now - 9000, 100.0, age=8000)                          # an earlier job's
    got = run_cache.trainings_since(now - 1000)
    assert [t["config"] for t in got] == ["toy_swin_tcis_multitask_msd", "toy_baseline"]
    assert got[1]["started"] == pytest.approx(500, abs=0.2) and got[0]["started"] == pytest.approx(600, abs=0.2)
    text = describe_trainings(got, wall=1000)
    assert text.splitlines()[0].startswith("trainings: 2, 700 s of training in 1000 s of wall time (0.70 of 2 slots")
    assert "toy_swin_tcis_multitask_msd" in text.splitlines()[1]
    assert describe_trainings([], 5) == "trainings: none (every run was cached)"


def _tiny_prediction_setup(tmp_path, toy_small):
    """A tiny toy_baseline config file (every box kept) and one random-weight checkpoint copied into two run
    folders, so the same prediction can be made twice in folders of its own."""
    import shutil

    import torch
    from helpers import tiny_cfg

    from mmdet.registry import MODELS

    cfg = tiny_cfg("toy_baseline", toy_small)
    cfg.model.detector.test_cfg.rcnn.score_thr = 0.0
    cfg.tracking = dict(tracker=dict(init_score_thr=0.0, obj_score_thr=0.0))
    config = tmp_path / "tiny_baseline.py"
    cfg.dump(str(config))
    torch.manual_seed(0)
    (tmp_path / "a").mkdir()
    torch.save({"state_dict": MODELS.build(cfg.model).state_dict(), "meta": {"epoch": 0}}, tmp_path / "a" / "w.pth")
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "w.pth", tmp_path / "b" / "w.pth")
    return str(config), tmp_path / "a" / "w.pth", tmp_path / "b" / "w.pth"


def test_predict_many_writes_what_a_notebook_kernel_writes(tmp_path, toy_small, monkeypatch):
    """The side-by-side predictions (a process each) write the same files as predict_cached in a process
    started as notebook kernels are (visrc.numerics.pinned_env); cached ones start no process; a failed one
    names its log."""
    import json
    import sys

    import numpy as np

    from visrc import numerics
    from visrc.fileio import read_json

    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    config, ckpt_a, ckpt_b = _tiny_prediction_setup(tmp_path, toy_small)
    job = dict(config=config, checkpoint=str(ckpt_a), data_root=str(toy_small), split="valid")
    summary, again = run_cache.predict_many([job, dict(job)])        # the same job twice: predicted once
    assert again == summary
    assert Path(summary["predictions"]).parent == run_cache.prediction_dir(ckpt_a, toy_small, split="valid")
    assert (Path(summary["predictions"]).parent / "predict.log").is_file()
    assert "results" not in summary and "tracks" not in summary          # predict_cached never tracks

    kernel = ("import sys, json; from visrc.experiments.runs import predict_cached; "
              "predict_cached(**json.loads(sys.argv[1]))")
    subprocess.run([sys.executable, "-c", kernel, json.dumps(dict(job, checkpoint=str(ckpt_b)))], check=True,
                   env=numerics.pinned_env(), cwd=tmp_path)
    reference = read_json(run_cache.prediction_dir(ckpt_b, toy_small, split="valid") / "summary.json")
    assert summary["frames"] == reference["frames"] > 0 and summary["videos"] == reference["videos"]
    with np.load(summary["predictions"]) as mine, np.load(reference["predictions"]) as theirs:
        assert sorted(mine.files) == sorted(theirs.files)
        for name in mine.files:
            np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)

    def no_process(*a, **k):
        raise AssertionError("a cached prediction started a process")

    monkeypatch.setattr(run_cache.subprocess, "run", no_process)
    assert run_cache.predict_many([job]) == [summary]
    monkeypatch.undo()
    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    broken = tmp_path / "c" / "w.pth"
    broken.parent.mkdir()
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"1 of 1 predictions failed.*predict\.log"):
        run_cache.predict_many([dict(job, checkpoint=str(broken))])
