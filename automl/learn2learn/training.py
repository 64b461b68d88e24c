"""One meta-training run (:class:`Training`), checkpointed so that it can stop and resume (:class:`Progress`).

A run draws episodes, takes outer steps and, every so often, scores its
learner on the same validation episodes, keeping the best weights. With a
``checkpoint`` file the whole state is written there at each of those
moments: the weights it trains and the best ones, the optimizer's moments,
the schedule's position (the share of the planned meta-training time spent)
and the random state of the episode draws. ``meta_fit(..., resume=FILE)``
(``automl meta fit ... --resume FILE``) reads it back and trains on for the
rest of the time, as if the run had never stopped: a crash, a Ctrl-C or a
machine with more time (a GPU) continues where the file left off.

>>> meta = automl.meta_fit(series, time_budget=600, checkpoint="run.pkl")  # doctest: +SKIP
>>> meta = automl.meta_fit(series, time_budget=600, resume="run.pkl")     # after a crash: the rest of the 600 s
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from automl.learn2learn.meta_model import MetaModel
from automl.learn2learn.series import REGRESSION, Episode, TaskSeries
from automl.search.interrupts import CtrlC

log = logging.getLogger(__name__)

META_BATCH = 8  # episodes per outer step, by default
VALIDATION_EPISODES = 50  # episodes scored at each checkpoint, at most ...
PROBE_EPISODES = 5  # ... and at least: these are timed first to size the set
VALIDATION_SHARE = 0.2  # ... so that five checkpoints take at most this share of a run
CHECKPOINTS = 20  # checkpoints over the budget ...
VALIDATION_COST_RATIO = 5  # ... or fewer: at least this many times a checkpoint's cost passes between two


@dataclass
class Progress:
    """Where a meta-training run stands: what a resumed run needs besides the learner's weights and optimizer.

    The learner holds the weights of the best checkpoint once a run ends;
    ``latest`` keeps the weights it had reached (with the optimizer's moments,
    which belong to them), so that training goes on from there.
    """

    query: int = 15  # the episode shape and seed of the run (shots and ways are the model's)
    seed: int = 0
    meta_batch: int = META_BATCH
    train_ways: int | None = None  # the meta-training episodes' ways, where they differ from the model's
    steps: int = 0  # outer steps taken
    trained_seconds: float = 0.0  # meta-training time spent (the search before it not counted)
    planned_seconds: float = 0.0  # the meta-training time the schedule spreads over
    episode_rng: dict[str, Any] | None = None  # the episode draws' random state (numpy bit generator)
    torch_rng: torch.Tensor | None = None
    validation_episodes: int = 0  # how many validation episodes each checkpoint scores
    best: Any = None  # the best checkpoint's weights (the learner's state())
    latest: Any = None  # the weights training reached, where the learner holds the best ones
    finished: bool = False  # the run spent its planned time (a resumed run with more time continues)


@dataclass
class Training:
    """What one meta-training run needs besides its learner: the series, the episode shape and the seed."""

    series: TaskSeries
    validation: TaskSeries
    shots: int
    query: int
    ways: int | None
    seed: int
    meta_batch: int = META_BATCH
    train_ways: int | None = None  # ways of the meta-training episodes (None: ``ways``, as the checkpoints score)
    checkpoint: Path | None = None  # where the run's state is written at each checkpoint (None: nowhere)
    call_started: float | None = None  # when meta_fit's call began (monotonic), to keep the model's seconds current
    earlier_seconds: float = 0.0  # ... and the seconds of the calls before it (a resumed run)
    _episodes: list[Episode] | None = field(default=None, repr=False)

    def run(self, meta: MetaModel, seconds: float, bar: Any = None) -> float | None:
        """Meta-train ``meta`` for ``seconds`` more, keeping its best checkpoint on validation episodes; that score.

        A model with ``progress`` (a resumed run) goes on from the weights,
        optimizer, schedule and random state it stopped at. Ctrl-C stops early
        (the best checkpoint so far is kept and written) and propagates once
        the checkpoint is restored, so a caller can stop too.
        """
        learner = meta.learner
        if meta.progress is None:
            meta.progress = Progress(self.query, self.seed, self.meta_batch, self.train_ways)
        progress = meta.progress
        rng = np.random.default_rng(self.seed)
        if progress.episode_rng is not None:
            rng.bit_generator.state = progress.episode_rng
        if progress.torch_rng is not None:
            torch.set_rng_state(progress.torch_rng)
        if progress.latest is not None:  # the learner holds the best weights: train on from where training was
            learner.restore(progress.latest)
            progress.latest = None
        best_state = progress.best if progress.best is not None else (
            learner.state() if meta.validation_score is not None else None)
        best_score = meta.validation_score
        better = (lambda a, b: a < b) if self.series.task == REGRESSION else (lambda a, b: a > b)
        before = progress.trained_seconds
        progress.planned_seconds = before + seconds
        progress.finished = False
        started, next_check, shown = time.monotonic(), 0.0, 0.0
        checked, loss = progress.steps, float("nan")

        def checkpoint() -> None:
            nonlocal best_score, best_state
            score = self.score(meta, progress, seconds)
            meta.history.append((progress.steps, progress.trained_seconds, score))
            if best_score is None or better(score, best_score):
                best_score, best_state = score, learner.state()
            meta.validation_score = best_score
            progress.best = best_state
            if bar is not None:
                bar.set_postfix(meta_loss=f"{loss:.4f}", validation=f"{score:.4f}", best=f"{best_score:.4f}")
            self._save(meta, rng, best_state)

        with CtrlC() as ctrl_c:
            try:
                while (elapsed := time.monotonic() - started) < seconds:
                    ctrl_c.check()  # a Ctrl-C is answered here, between two meta-steps
                    learner.schedule(min(1.0, (before + elapsed) / progress.planned_seconds))
                    ways = self.train_ways or self.ways
                    loss = learner.meta_step([self.series.episode(rng, self.shots, self.query, ways)
                                              for _ in range(self.meta_batch)])
                    progress.steps += 1
                    progress.trained_seconds = before + time.monotonic() - started
                    if elapsed >= next_check:
                        scoring = time.monotonic()
                        checkpoint()
                        checked = progress.steps
                        next_check = elapsed + max(seconds / CHECKPOINTS,
                                                   VALIDATION_COST_RATIO * (time.monotonic() - scoring))
                    if bar is not None:
                        now = min(time.monotonic() - started, seconds)
                        bar.update(now - shown)
                        shown = now
                progress.finished = True
                if progress.steps > checked:  # the weights trained since the last checkpoint are a candidate too
                    checkpoint()
            finally:
                progress.trained_seconds = before + min(time.monotonic() - started, seconds)
                if best_state is not None:
                    progress.latest = learner.state()
                    learner.restore(best_state)
                    meta.validation_score = best_score
                self._save(meta, rng, None)
        return best_score

    def _save(self, meta: MetaModel, rng: np.random.Generator, best_state: Any) -> None:
        """Write the run's state to the checkpoint file (whole or not at all: a file beside it, then renamed).

        The file's model holds the best weights, as a finished run's does (so
        that it serves as it is), and ``progress.latest`` the ones training
        goes on from: with ``best_state`` the learner is swapped to it while the file is written.
        """
        if self.checkpoint is None:
            return
        progress, learner, current = meta.progress, meta.learner, None
        if best_state is not None:
            current = learner.state()
            learner.restore(best_state)
            progress.latest = current
        try:
            self._write(meta, rng)
        finally:
            if current is not None:
                learner.restore(current)
                progress.latest = None

    def _write(self, meta: MetaModel, rng: np.random.Generator) -> None:
        progress = meta.progress
        if self.call_started is not None:
            meta.seconds = self.earlier_seconds + time.monotonic() - self.call_started
        progress.episode_rng = rng.bit_generator.state
        progress.torch_rng = torch.get_rng_state()
        partial = self.checkpoint.with_name(f".{self.checkpoint.name}.partial")
        try:
            meta.save(partial)
            os.replace(partial, self.checkpoint)
        except OSError as error:  # a checkpoint that cannot be written costs only the ability to resume
            log.warning("the meta-training checkpoint could not be written to %s: %s", self.checkpoint, error)

    def score(self, meta: MetaModel, progress: Progress, seconds: float) -> float:
        """The validation metric: mean MSE or accuracy over the same validation episodes every time.

        The first call of a run times ``PROBE_EPISODES`` and keeps as many more
        (up to ``VALIDATION_EPISODES``) as a run of ``seconds`` affords: on costly
        tasks (20-way images) a fixed 50 would outlast a short budget. A
        resumed run draws the same episodes again.
        """
        if self._episodes is None:
            rng = np.random.default_rng(self.seed + 1)
            self._episodes = [self.validation.episode(rng, self.shots, self.query, self.ways)
                              for _ in range(progress.validation_episodes or PROBE_EPISODES)]
            if not progress.validation_episodes:
                started = time.monotonic()
                probe = meta.learner.episode_metrics(self._episodes)
                per_episode = (time.monotonic() - started) / PROBE_EPISODES
                wanted = (int(VALIDATION_SHARE * seconds / (5 * per_episode)) if per_episode > 0
                          else VALIDATION_EPISODES)
                extra = min(VALIDATION_EPISODES, max(PROBE_EPISODES, wanted)) - PROBE_EPISODES
                more = [self.validation.episode(rng, self.shots, self.query, self.ways) for _ in range(extra)]
                self._episodes += more
                progress.validation_episodes = len(self._episodes)
                return float(np.mean(np.concatenate([probe, meta.learner.episode_metrics(more)]) if more else probe))
        return float(np.mean(meta.learner.episode_metrics(self._episodes)))
