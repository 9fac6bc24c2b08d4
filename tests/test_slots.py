"""Slot priorities (visrc.experiments.slots): the order in which waiting computations get the machine."""
import subprocess
import threading
import time
from pathlib import Path

import pytest

from visrc.experiments import pretrain, slots
from visrc.experiments import runs as run_cache


@pytest.fixture
def one_slot(tmp_path, monkeypatch):
    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("VISRC_TRAIN_SLOTS", "1")
    monkeypatch.setattr(slots, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(slots, "HANDOFF_SECONDS", 0.2)
    return tmp_path


def _queued(n: int, timeout: float = 10.0) -> None:
    """Wait until ``n`` waiters are in the queue."""
    queue = slots.runs_dir() / "locks" / "queue"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if queue.is_dir() and len([p for p in queue.iterdir() if not p.name.startswith(".")]) == n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{n} waiters never queued")


def _waiter(order: list, name: str, level: int, run: Path | None = None) -> threading.Thread:
    def body():
        with slots.slot_priority(level):
            with slots.training_slot(run=run):
                order.append(name)
                time.sleep(0.05)

    t = threading.Thread(target=body)
    t.start()
    return t


def test_a_free_slot_goes_to_the_highest_priority_waiter(one_slot):
    order = []
    with slots.training_slot():                              # the only slot is taken
        low = _waiter(order, "default", slots.DEFAULT)
        _queued(1)
        mid = _waiter(order, "chain", slots.CHAIN)
        _queued(2)
        high = _waiter(order, "pretraining", slots.PRETRAINING)
        _queued(3)
        serial = _waiter(order, "serial stage", slots.SERIAL_STAGE)
        _queued(4)
    for t in (low, mid, high, serial):
        t.join(10)
    assert order == ["pretraining", "chain", "serial stage", "default"]
    assert not [p for p in (slots.runs_dir() / "locks" / "queue").iterdir()], "waiters left entries behind"


def test_a_slot_freed_by_a_chain_run_is_kept_for_the_chains_next_request(one_slot, monkeypatch):
    monkeypatch.setattr(slots, "HANDOFF_SECONDS", 2.0)
    order = []
    with slots.slot_priority(slots.CHAIN):
        with slots.training_slot():                          # e.g. model B trains; other runs queue
            low = _waiter(order, "default", slots.DEFAULT)
            _queued(1)
            serial = _waiter(order, "serial stage", slots.SERIAL_STAGE)    # e.g. a Table 1 row
            _queued(2)
    time.sleep(0.3)                                          # B's notebook asks for its predictions a moment later
    chain_next = _waiter(order, "chain's next", slots.CHAIN)
    for t in (low, serial, chain_next):
        t.join(10)
    assert order == ["chain's next", "serial stage", "default"]


def test_a_reservation_holds_only_against_lower_waiters(one_slot, monkeypatch):
    monkeypatch.setattr(slots, "HANDOFF_SECONDS", 30.0)
    slot = slots.runs_dir() / "locks" / "train_slot0.lock"
    with slots.slot_priority(slots.SERIAL_STAGE):
        with slots.training_slot():
            pass
    assert slots._reserved(slot, slots.DEFAULT) and not slots._reserved(slot, slots.SERIAL_STAGE)
    with slots.slot_priority(slots.CHAIN):
        with slots.training_slot():                          # a chain waiter is not held back by it
            pass
    assert slots._reserved(slot, slots.SERIAL_STAGE) and not slots._reserved(slot, slots.CHAIN)


def test_a_dead_waiters_entry_does_not_block_and_is_removed(one_slot):
    queue = slots.runs_dir() / "locks" / "queue"
    queue.mkdir(parents=True)
    stale = queue / "12345-1-1.p9"                            # nobody holds its lock: its waiter was killed
    stale.touch()
    with slots.training_slot():
        pass
    assert not stale.exists()


def test_a_run_wanted_at_a_higher_priority_is_trained_at_it(one_slot):
    run = one_slot / "runs" / "experiments" / "shared-run"
    order = []
    with slots.training_slot():
        trainer = _waiter(order, "shared run", slots.DEFAULT, run=run)    # e.g. Table 1's row, asked first
        _queued(1)
        other = _waiter(order, "chain", slots.CHAIN)
        _queued(2)
        slots.want(run, slots.PRETRAINING)                   # a second caller needs it before anything else
        assert slots.wanted(run) == slots.PRETRAINING
        time.sleep(0.1)                                      # the trainer sees the wish at its next poll
    trainer.join(10)
    other.join(10)
    assert order == ["shared run", "chain"]
    slots.clear_wishes(run)
    assert slots.wanted(run) == slots.DEFAULT


def test_priority_reaches_the_trainings_of_train_many_and_is_kept_by_nested_contexts(one_slot, monkeypatch):
    seen = []

    def fake_run(cmd, stdout=None, stderr=None, env=None):
        seen.append(slots.current_priority())
        (Path(cmd[cmd.index("--work-dir") + 1]) / "epoch_1.pth").write_bytes(b"x")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(run_cache.subprocess, "run", fake_run)
    with slots.slot_priority(slots.CHAIN):
        with slots.slot_priority(slots.DEFAULT):             # an inner, lower request does not lower it
            run_cache.train_many([dict(config="toy_baseline", data_root=one_slot, seed=s) for s in range(2)])
    assert seen == [slots.CHAIN, slots.CHAIN]
    assert slots.current_priority() == slots.DEFAULT


def test_each_job_of_train_many_starts_when_its_own_init_is_ready(tmp_path, monkeypatch):
    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("VISRC_TRAIN_SLOTS", "2")
    monkeypatch.setattr(slots, "POLL_SECONDS", 0.01)
    slow_init_ready, order = threading.Event(), []
    init = tmp_path / "init.pth"
    init.write_bytes(b"w")

    def fake_run(cmd, stdout=None, stderr=None, env=None):
        order.append(cmd[cmd.index("train") + 1])
        (Path(cmd[cmd.index("--work-dir") + 1]) / "epoch_1.pth").write_bytes(b"x")
        return subprocess.CompletedProcess(cmd, 0)

    def slow_init():                                       # e.g. a second backbone's pretraining
        assert slow_init_ready.wait(10)
        return init

    def fast_init():
        return init

    monkeypatch.setattr(run_cache.subprocess, "run", fake_run)
    worker = threading.Thread(target=run_cache.train_many, args=(
        [dict(config="toy_swin_tcis_multitask_msd", data_root=tmp_path, init=slow_init),
         dict(config="toy_tcis_multitask_msd", data_root=tmp_path, init=fast_init)],))
    worker.start()
    deadline = time.time() + 10
    while not order and time.time() < deadline:
        time.sleep(0.01)
    assert order == ["toy_tcis_multitask_msd"]             # trained while the other init was not ready
    slow_init_ready.set()
    worker.join(10)
    assert order == ["toy_tcis_multitask_msd", "toy_swin_tcis_multitask_msd"]


def test_init_of_defers_the_pretraining_to_the_caller_at_pretraining_priority(tmp_path, monkeypatch):
    calls = []

    def fake_train_cached(config, data_root, seed=0, max_epochs=None):
        calls.append((config, slots.current_priority()))
        return tmp_path / f"{config}.pth"

    monkeypatch.setattr(pretrain, "train_cached", fake_train_cached)
    deferred = pretrain.init_of("toy_swin_tcis_multitask_msd", tmp_path, "pretrained", None)
    assert calls == []                                       # nothing trains until the job calls it
    assert deferred() == tmp_path / "toy_pretrain_coco_swin.pth"
    assert calls == [("toy_pretrain_coco_swin", slots.PRETRAINING)]
    assert pretrain.init_of("toy_baseline", tmp_path, None)() is None


def test_table1_rows_wait_above_default_and_below_the_chain(monkeypatch, tmp_path):
    """Table 1's trainings (and the predictions after them) ask for slots at SERIAL_STAGE."""
    from visrc.experiments import table1

    seen = []

    def fake_train_many(jobs):
        seen.append(slots.current_priority())
        raise RuntimeError("stop here")

    monkeypatch.setattr(table1, "train_many", fake_train_many)
    monkeypatch.setattr(table1, "table1_settings", lambda root, rows, eq: [("baseline", "toy_baseline", None)])
    monkeypatch.setattr(table1, "init_of", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="stop here"):
        table1.run_table1(tmp_path)
    assert seen == [slots.SERIAL_STAGE] and slots.DEFAULT < slots.SERIAL_STAGE < slots.CHAIN
    assert slots.current_priority() == slots.DEFAULT                  # restored after the call
