"""Machine-wide compute slots with priorities: which waiting training or prediction runs next.

At most :func:`training_slots` computations (trainings, in-process predictions and ensembles) run on
the machine at a time, all processes together: a slot is a lock file ``runs/locks/train_slot<i>.lock``.
Notebooks executed side by side queue many trainings at once, and some are waited on by later stages:
the pretrainings by every video model, Table 2's models by the ensemble, the ensemble by the
pseudo-label networks. When slots go to waiters in arbitrary order, that chain can start last and
leave one core idle at the end. So every waiter has a priority (:func:`slot_priority`, higher first),
and a waiter does not take a free slot while a waiter of higher priority is queued; waiters of equal
priority race as before. A slot freed by a run above the default priority is left to waiters of at
least its priority for :data:`HANDOFF_SECONDS`, so the run that follows in the same chain, asked for a
moment later, gets it. Priorities change the order of work, never its results.

The queue is a folder of files, ``runs/locks/queue/<id>.p<level>``, one per waiting thread, each
held under ``flock`` by its waiter: a waiter killed while waiting leaves an unlocked file, which the
next reader removes. A run that two callers want at different priorities is trained by whichever
holds its lock; the other leaves its wish in the run's folder (:func:`want`) and the trainer waits at
the higher of the two (:func:`training_slot` ``run=``).
"""
from __future__ import annotations

import contextvars
import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from visrc import numerics
from visrc.fileio import file_lock
from visrc.paths import runs_dir

DEFAULT = 0
"""The priority of a computation nobody waits on but its own notebook's short last step."""
SERIAL_STAGE = 1
"""Runs that a long stage on one core follows: Table 1's rows, after all of which its notebook predicts
every row's ``tune`` and ``valid`` splits, one after another, and then chooses its thresholds. Ahead of
the :data:`DEFAULT` runs, so that stage overlaps the remaining trainings instead of ending the job alone."""
CHAIN = 2
"""Work a later stage waits on: Table 2's models, their ensemble and the pseudo-label networks after it."""
PRETRAINING = 3
"""The COCO-style pretrainings: every video model starts from one."""

POLL_SECONDS = 2.0
"""How often a waiter looks at the slots and the queue."""
HANDOFF_SECONDS = 5.0
"""How long a slot freed by a run above :data:`DEFAULT` stays reserved for waiters of at least that run's
priority: the time the caller of a finished run needs to ask for the one that follows (pretraining ->
video model, model -> its ensemble's predictions), which would otherwise find the slot taken by a
lower waiter already polling (e.g. a Table 1 row when model B ends)."""

_PRIORITY = contextvars.ContextVar("visrc_slot_priority", default=DEFAULT)
_WISH_PREFIX = ".wanted-p"


def training_slots() -> int:
    """How many trainings may run at once on this machine, all processes together (``VISRC_TRAIN_SLOTS``,
    default the CPU count): notebooks executed side by side share the cores instead of oversubscribing them."""
    return max(1, int(os.environ.get("VISRC_TRAIN_SLOTS") or os.cpu_count() or 1))


def native_threads() -> int:
    """A slot's share of the cores: the threads of one computation in native numerics."""
    return max(1, (os.cpu_count() or 1) // training_slots())


@contextmanager
def slot_priority(level: int):
    """Every slot this context asks for (also from threads started with a copy of it, as
    :func:`visrc.experiments.runs.train_many` does) waits at ``level`` (at least the enclosing one's)."""
    token = _PRIORITY.set(max(int(level), _PRIORITY.get()))
    try:
        yield
    finally:
        _PRIORITY.reset(token)


def current_priority() -> int:
    """The priority this context's slots wait at (:func:`slot_priority`; :data:`DEFAULT` outside one)."""
    return _PRIORITY.get()


def want(run: Path, level: int) -> None:
    """Leave the wish that ``run`` (a run folder) be trained at ``level`` or higher, for whichever
    process trains it (:func:`training_slot` ``run=``)."""
    if level > DEFAULT:
        run.mkdir(parents=True, exist_ok=True)
        (run / f"{_WISH_PREFIX}{int(level)}").touch()


def wanted(run: Path) -> int:
    """The highest priority any caller asked for ``run`` with :func:`want` (:data:`DEFAULT` if none)."""
    return max((_level(p.name, _WISH_PREFIX) for p in run.glob(_WISH_PREFIX + "*")), default=DEFAULT)


def clear_wishes(run: Path) -> None:
    """Forget the wishes of a run once it is trained."""
    for p in run.glob(_WISH_PREFIX + "*"):
        p.unlink(missing_ok=True)


def _level(name: str, prefix: str) -> int:
    try:
        return int(name.rpartition(prefix)[2])
    except ValueError:                   # not an entry of ours
        return DEFAULT


class _Waiter:
    """This thread's entry in the queue: ``<id>.p<level>`` under ``runs/locks/queue``, flocked while it
    exists (made under a dot-name and renamed into place, so no reader sees it unlocked)."""

    def __init__(self, level: int):
        self.queue = runs_dir() / "locks" / "queue"
        self.queue.mkdir(parents=True, exist_ok=True)
        self.id = f"{os.getpid()}-{threading.get_ident()}-{time.time_ns()}"
        draft = self.queue / f".{self.id}"
        self.file = open(draft, "w")
        fcntl.flock(self.file, fcntl.LOCK_EX)
        self.level, self.path = level, self.queue / f"{self.id}.p{level}"
        os.replace(draft, self.path)

    def raise_to(self, level: int) -> None:
        if level > self.level:
            path = self.queue / f"{self.id}.p{level}"
            os.replace(self.path, path)
            self.level, self.path = level, path

    def outranked(self) -> bool:
        """Whether a live waiter of higher priority is queued (stale entries are removed on the way)."""
        for entry in self.queue.iterdir():
            if entry.name.startswith(".") or entry == self.path or _level(entry.name, ".p") <= self.level:
                continue
            if _alive(entry):
                return True
        return False

    def leave(self) -> None:
        if self.file is not None:
            self.path.unlink(missing_ok=True)        # before the lock goes: never an unlocked live entry
            self.file.close()
            self.file = None


def _alive(entry: Path) -> bool:
    try:
        f = open(entry, "a")
    except FileNotFoundError:                       # it left (or was renamed) meanwhile
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        entry.unlink(missing_ok=True)               # its waiter died without leaving
        return False


@contextmanager
def training_slot(run: Path | None = None):
    """Wait for one of :func:`training_slots` machine-wide slots at :func:`current_priority` (raised to
    :func:`wanted` ``(run)`` for a training), taking a free one only while no live waiter of higher
    priority is queued, and none that a run of higher priority freed within :data:`HANDOFF_SECONDS`;
    hold it for the body."""
    slots = [runs_dir() / "locks" / f"train_slot{i}.lock" for i in range(training_slots())]
    waiter = _Waiter(current_priority())
    try:
        while True:
            if run is not None:
                waiter.raise_to(wanted(run))
            if not waiter.outranked():
                for slot in slots:
                    with file_lock(slot, blocking=False) as got:
                        # read the reservation while holding the lock: its holder marks it before letting go
                        if got and not _reserved(slot, waiter.level):
                            waiter.leave()
                            try:
                                yield
                            finally:
                                if waiter.level > DEFAULT:      # its successor may be a moment away
                                    _handoff(slot).write_text(str(waiter.level))
                            return
            time.sleep(POLL_SECONDS)
    finally:
        waiter.leave()


def _handoff(slot: Path) -> Path:
    return slot.with_suffix(".handoff")


def _reserved(slot: Path, level: int) -> bool:
    """Whether ``slot`` was freed by a run of priority above ``level`` less than :data:`HANDOFF_SECONDS`
    ago (read under the slot's lock: its holder writes the file before letting go)."""
    mark = _handoff(slot)
    try:
        if time.time() - mark.stat().st_mtime >= HANDOFF_SECONDS:
            return False
        freed_by = int(mark.read_text())
    except FileNotFoundError:
        return False
    except ValueError:                   # not ours, or an older version's empty mark: "above the default"
        freed_by = DEFAULT + 1
    return freed_by > level


_slot_depth = threading.local()


@contextmanager
def compute_slot():
    """Hold one of the machine-wide slots while this thread computes in process (inference,
    ensembles), with torch limited to :data:`visrc.numerics.THREADS` threads (pinned numerics) or
    to a slot's share of the cores (native). Without it a notebook predicting
    beside two 1-thread trainings on 2 cores oversubscribes them and slows the trainings down.
    Re-entrant within a thread; take it after any cache lock, never before one."""
    if getattr(_slot_depth, "n", 0):
        _slot_depth.n += 1
        try:
            yield
        finally:
            _slot_depth.n -= 1
        return
    import torch

    with training_slot():
        threads = torch.get_num_threads()
        torch.set_num_threads(numerics.threads(native_threads()))
        _slot_depth.n = 1
        try:
            yield
        finally:
            _slot_depth.n = 0
            torch.set_num_threads(threads)
