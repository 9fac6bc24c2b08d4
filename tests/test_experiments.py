"""visrc.experiments.runs: cached training runs (the training subprocess is faked; the real one runs in
test_ablation_configs / test_train_resume / the notebook tests)."""
import subprocess
import threading
from pathlib import Path

import pytest

from visrc.experiments import runs as run_cache


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
    monkeypatch.setattr(run_cache.os, "cpu_count", lambda: 2)
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
    monkeypatch.setattr(run_cache, "_training_slot", _fast_slot(run_cache._training_slot))
    run_cache.train_many([dict(config="toy_baseline", data_root=tmp_path, seed=s) for s in range(5)])
    assert peak[0] == 2


def test_same_run_trains_once_when_asked_twice_at_once(runs, tmp_path):
    cks = run_cache.train_many([dict(config="toy_baseline", data_root=tmp_path)] * 3)
    assert len(set(cks)) == 1 and len(runs) == 1


def _fast_slot(slot):
    return lambda poll_seconds=2.0: slot(poll_seconds=0.01)


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
    monkeypatch.setattr(run_cache, "_training_slot", _fast_slot(run_cache._training_slot))
    threads = torch.get_num_threads()
    events = []

    def fake_run(cmd, stdout=None, stderr=None, env=None):
        events.append("train")
        (Path(cmd[cmd.index("--work-dir") + 1]) / "epoch_1.pth").write_bytes(b"x")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(run_cache.subprocess, "run", fake_run)
    with run_cache.compute_slot():
        with run_cache.compute_slot():                   # nested in one thread: no self-deadlock
            # one slot: all the cores (native numerics) or the pinned thread count
            assert torch.get_num_threads() == (os.cpu_count() if cores == "all" else cores)
        trainer = threading.Thread(target=run_cache.train_cached, args=("toy_baseline", tmp_path))
        trainer.start()
        threading.Event().wait(0.5)
        events.append("compute done")                      # the only slot is still ours: no training yet
    trainer.join(10)
    assert events == ["compute done", "train"]
    assert torch.get_num_threads() == threads
