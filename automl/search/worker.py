"""Running trials in child processes, under hard time and memory limits.

Trials are untrusted: a learner can hang, exhaust memory or crash the
interpreter. Each worker is a child process that holds the evaluator (on Linux
it is forked, so the data is shared, not copied) and evaluates the
configurations it is sent, one at a time. The parent kills a worker whose
trial passes its deadline and starts a fresh one for the next trial; a worker
that dies is reported as a crashed trial. Workers run their learners
single-threaded (parallelism comes from running several workers), which also
keeps forking safe after the parent has used OpenMP.

Messages, parent to child: ``("evaluate", ticket, config, wants_reports, keep_models_below)``,
``("refit", ticket, config, max_rows)``, ``("prune", bool)``, ``("stop",)``.
Child to parent: ``("report", ticket, step, value)``, ``("result", ticket,
TrialResult)``, ``("model", ticket, model, error)``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from automl.search.evaluation import CRASHED, TIMEOUT, Evaluator, Reporter, TrialResult
from searchspaces import Config

log = logging.getLogger(__name__)

MAX_WAIT = 60.0  # seconds; waits are re-armed, so trials without a deadline wait in slices


def start_method() -> str:
    """``fork`` on Linux (fast, shares the data); ``spawn`` elsewhere; ``AUTOML_START_METHOD`` overrides."""
    return os.environ.get("AUTOML_START_METHOD") or ("fork" if sys.platform.startswith("linux") else "spawn")


def _limit_memory(megabytes: float | None) -> None:
    """Cap this process's address space at its current size plus ``megabytes``."""
    if not megabytes or not sys.platform.startswith("linux"):
        return
    import resource

    with open("/proc/self/statm") as handle:
        current = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = current + int(megabytes * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (even by SIGKILL), so no trial is orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _serve(conn: Connection, evaluator: Evaluator, memory_limit_mb: float | None,
           inherited: Connection | None = None) -> None:
    """The child's loop: evaluate or refit what the parent sends until told to stop."""
    if inherited is not None:
        inherited.close()  # a forked child holds the parent's end too; closed, a dead parent reads as EOF
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    _limit_memory(memory_limit_mb)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        if message[0] == "evaluate":
            _, ticket, config, wants_reports, keep_below = message

            def report(step: int, value: float, ticket: int = ticket) -> bool:
                conn.send(("report", ticket, step, value))
                return bool(conn.recv()[1])

            result = evaluator.evaluate(config, report if wants_reports else None, keep_models=keep_below is not None)
            if result.fold_models is not None and not (result.ok and evaluator.metric.loss(result.value) < keep_below):
                result.fold_models = None  # only a leader's fold models are worth sending
            conn.send(("result", ticket, result))
        elif message[0] == "refit":
            _, ticket, config, max_rows = message
            try:
                conn.send(("model", ticket, evaluator.fit_final(config, max_rows), ""))
            except MemoryError:
                conn.send(("model", ticket, None, "MemoryError: memory limit exceeded"))
            except Exception as error:  # the learner is untrusted
                conn.send(("model", ticket, None, f"{type(error).__name__}: {error}"))


@dataclass
class _Job:
    ticket: int
    config: Config
    deadline: float
    started: float
    on_report: Reporter | None = None


class _Worker:
    """One child process and the job it is running, if any."""

    def __init__(self, evaluator: Evaluator, memory_limit_mb: float | None):
        self.evaluator = evaluator
        self.memory_limit_mb = memory_limit_mb
        self.process: Any = None
        self.conn: Connection | None = None
        self.job: _Job | None = None

    def start(self) -> None:
        context = multiprocessing.get_context(start_method())
        parent, child = context.Pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: see the module docstring
            inherited = parent if context.get_start_method() == "fork" else None
            self.process = context.Process(
                target=_serve, args=(child, self.evaluator, self.memory_limit_mb, inherited), daemon=True,
                name="automl-trial"
            )
            self.process.start()
        child.close()
        self.conn = parent

    def send(self, message: tuple) -> None:
        if self.process is None or not self.process.is_alive():
            self.start()
        assert self.conn is not None
        self.conn.send(message)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join(timeout=5)
        if self.conn is not None:
            self.conn.close()
        self.process, self.conn, self.job = None, None, None

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive() and self.conn is not None:
            try:
                self.conn.send(("stop",))
                self.process.join(timeout=2)
            except (OSError, BrokenPipeError):
                pass
        self.kill()

    def death_note(self) -> str:
        code = None if self.process is None else self.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            hint = " (likely out of memory)" if -code == signal.SIGKILL else ""
            return f"the trial's process was killed by {name}{hint}"
        return f"the trial's process exited unexpectedly (exit code {code})"


class WorkerPool:
    """A fixed number of workers that evaluate configurations under deadlines.

    Use as a context manager so that every child is stopped, even on Ctrl-C.
    """

    def __init__(self, evaluator: Evaluator, n_workers: int = 1, memory_limit_mb: float | None = None):
        if n_workers < 1:
            raise ValueError(f"n_workers must be at least 1, got {n_workers}")
        self.workers = [_Worker(evaluator, memory_limit_mb) for _ in range(n_workers)]
        self._tickets = 0

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def idle(self) -> int:
        return sum(w.job is None for w in self.workers)

    @property
    def busy(self) -> int:
        return len(self.workers) - self.idle

    def running(self) -> list[Config]:
        return [w.job.config for w in self.workers if w.job is not None]

    def submit(self, config: Config, deadline: float, on_report: Reporter | None = None,
               ticket: int | None = None, keep_models_below: float | None = None) -> int:
        """Start evaluating ``config`` on an idle worker; returns the job's ticket.

        ``keep_models_below``: send back the trial's fold pipelines when its loss
        (``Metric.loss`` of its score) is below this (None: never).
        """
        worker = next((w for w in self.workers if w.job is None), None)
        if worker is None:
            raise RuntimeError("no idle worker: wait for a result before submitting more")
        if ticket is None:
            self._tickets += 1
            ticket = self._tickets
        worker.job = _Job(ticket, config, deadline, time.monotonic(), on_report)
        try:
            worker.send(("evaluate", ticket, config, on_report is not None, keep_models_below))
        except (OSError, BrokenPipeError):
            worker.kill()
            worker.job = _Job(ticket, config, deadline, time.monotonic(), on_report)
            worker.send(("evaluate", ticket, config, on_report is not None, keep_models_below))
        return ticket

    def wait(self, timeout: float) -> list[tuple[int, TrialResult]]:
        """Results finished within ``timeout`` seconds, including killed and crashed jobs."""
        finished: list[tuple[int, TrialResult]] = []
        end = time.monotonic() + max(0.0, timeout)
        while not finished:
            busy = [w for w in self.workers if w.job is not None]
            if not busy:
                return finished
            now = time.monotonic()
            horizon = min([end] + [w.job.deadline for w in busy])  # type: ignore[union-attr]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                         min(MAX_WAIT, max(0.0, horizon - now)))
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    finished.extend(self._drain(worker))
            finished.extend(self._expire())
            if time.monotonic() >= end:
                break
        return finished

    def _drain(self, worker: _Worker) -> list[tuple[int, TrialResult]]:
        job = worker.job
        assert job is not None and worker.conn is not None
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message[0] == "report":
                    _, _, step, value = message
                    stop = bool(job.on_report(step, value)) if job.on_report is not None else False
                    worker.conn.send(("prune", stop))
                elif message[0] == "result":
                    result: TrialResult = message[2]
                    result.wall_seconds = time.monotonic() - job.started
                    worker.job = None
                    return [(job.ticket, result)]
        except (EOFError, OSError):
            pass
        if worker.process is not None and not worker.process.is_alive():
            note = worker.death_note()
            worker.kill()
            return [(job.ticket, TrialResult(job.config, CRASHED, error=note,
                                             wall_seconds=time.monotonic() - job.started))]
        return []

    def _expire(self) -> list[tuple[int, TrialResult]]:
        expired = []
        now = time.monotonic()
        for worker in self.workers:
            job = worker.job
            if job is not None and now >= job.deadline:
                worker.kill()
                limit = job.deadline - job.started
                error = f"stopped after {limit:.1f} s: the trial's time limit"
                expired.append((job.ticket, TrialResult(job.config, TIMEOUT, error=error,
                                                        wall_seconds=now - job.started)))
        return expired

    def cancel_all(self) -> list[tuple[int, TrialResult]]:
        """Kill every running job (the search is over); their results are timeouts."""
        now = time.monotonic()
        for worker in self.workers:
            if worker.job is not None:
                worker.job.deadline = now
        return self._expire()

    def refit(self, config: Config, deadline: float, max_rows: int | None = None) -> tuple[Any, str]:
        """Fit ``config`` on the training data in a worker; ``(model, "")`` or ``(None, error)``."""
        worker = next((w for w in self.workers if w.job is None), self.workers[0])
        if worker.job is not None:
            worker.kill()
        started = time.monotonic()
        try:
            worker.send(("refit", 0, config, max_rows))
            assert worker.conn is not None
            if not worker.conn.poll(None if deadline == float("inf") else max(0.0, deadline - started)):
                worker.kill()
                return None, f"the final fit did not finish within {deadline - started:.1f} s"
            _, _, model, error = worker.conn.recv()
            return model, error
        except (EOFError, OSError):
            note = worker.death_note()
            worker.kill()
            return None, note

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
