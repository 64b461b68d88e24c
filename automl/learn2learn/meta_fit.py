"""``meta_fit``: meta-train a network across a task series within a time budget; the ``MetaModel`` it returns.

>>> import automl
>>> from automl.learn2learn.series import sinusoid
>>> meta = automl.meta_fit(sinusoid(), algorithm="metasgd", shots=5, time_budget=20, verbose=0)  # doctest: +SKIP
>>> adapted = meta.adapt(X_support, y_support)          # doctest: +SKIP
>>> adapted.predict(X_new)                              # doctest: +SKIP
>>> print(meta.evaluate(sinusoid(), shots=5))           # doctest: +SKIP
>>> meta.save("meta.pkl"); automl.load("meta.pkl")      # doctest: +SKIP
>>> meta = automl.meta_fit(sinusoid(), time_budget=3600, resume="meta.pkl")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from automl.errors import ConfigError, DataError
from automl.learn2learn.algorithms import ALGORITHMS, CLASSIFICATION_ONLY
from automl.learn2learn.meta_model import MetaModel, MetaSettings, choose_device, make_learner
from automl.learn2learn.meta_search import search_settings
from automl.learn2learn.series import REGRESSION, TaskSeries
from automl.learn2learn.training import META_BATCH, Training
from automl.model_file import read_model

DEFAULT_ALGORITHM = "maml"
# Prototypical Networks meta-train on more classes per episode than they are tested on (Snell et al. 2017 train on
# 60 for 5- and 20-way tests; 30 keeps a step affordable on a CPU), one episode per step
PROTONET_TRAIN_WAYS = 30
DEFAULT_META_BATCH = {"protonet": 1}
# Query examples per class in an episode; Prototypical Networks train on 5, as Snell et al. do: cheaper episodes and
# more of them (20-way 1-shot Omniglot after 300 s on a CPU: validation accuracy 0.73 against 0.70 with 15)
DEFAULT_QUERY = {"protonet": 5}
QUERY = 15


def meta_fit(series: TaskSeries, *, algorithm: str | None = None, model: str | nn.Module = "mlp",
             ways: int | None = None, shots: int = 5, query: int | None = None, inner_steps: int | None = None,
             time_budget: float = 60.0, validation: TaskSeries | None = None, search: bool = False,
             backend: str = "optuna", device: str | torch.device = "auto", meta_batch: int | None = None,
             train_ways: int | None = None, seed: int = 0, checkpoint: str | Path | None = None,
             resume: str | Path | None = None, verbose: int = 1) -> MetaModel:
    """Meta-train ``model`` on episodes of ``series`` for ``time_budget`` seconds; the best checkpoint on
    ``validation``.

    ``algorithm`` (default ``"maml"``): ``"maml"``, ``"fomaml"``, ``"metasgd"``,
    ``"anil"``, ``"reptile"``, ``"maml++"`` (:mod:`automl.learn2learn.maml_plus_plus`),
    ``"protonet"`` (classification) or ``"attentive"`` (model-based:
    :mod:`automl.learn2learn.attentive`). Checkpoints score up to
    ``VALIDATION_EPISODES`` episodes of ``validation`` (by default new episodes
    of ``series``); Ctrl-C stops early and keeps the best so far. With
    ``search=True`` part of the budget tunes the meta-hyperparameters
    (:mod:`automl.learn2learn.meta_search`, on ``backend``) and the rest trains the best
    trial further. ``device="auto"`` uses the GPU when torch sees one;
    ``meta_batch`` episodes make one outer step (default 8; a Prototypical
    Network's, 1), each with ``query`` examples per class to score the
    adaptation on (default 15; a Prototypical Network's, 5). ``ways`` is the
    episode shape the model is for (and checkpoints are scored on);
    ``train_ways`` the meta-training episodes' (by default the same, but
    ``PROTONET_TRAIN_WAYS`` for a Prototypical Network where the series has
    that many classes: training on more ways than the test makes the embedding
    sharper).

    ``checkpoint``: a file the run's whole state is written to at every
    checkpoint (weights, optimizer, schedule, random state; a meta-model
    ``automl.load`` reads). ``resume``: such a file, or a model saved by an
    earlier ``meta_fit``: training goes on from it for what is left of
    ``time_budget`` (the whole run's, the earlier part included: give more to
    train a finished run longer), on the same series and episode shape, and it
    is checkpointed to the same file unless ``checkpoint`` names another
    (:mod:`automl.learn2learn.training`).
    """
    started = time.monotonic()
    resumed = _resumed(resume, algorithm, series) if resume is not None else None
    algorithm = resumed.algorithm if resumed is not None else (algorithm or DEFAULT_ALGORITHM)
    earlier = 0.0
    if resumed is not None:  # the run's own episode shape and seed
        shots, ways, earlier = resumed.shots, resumed.ways, resumed.seconds
        progress = resumed.progress
        query, seed, meta_batch, train_ways = progress.query, progress.seed, progress.meta_batch, progress.train_ways
    meta_batch = meta_batch if meta_batch is not None else DEFAULT_META_BATCH.get(algorithm, META_BATCH)
    query = query if query is not None else DEFAULT_QUERY.get(algorithm, QUERY)
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"unknown meta-learning algorithm {algorithm!r}: choose one of {list(ALGORITHMS)}")
    if algorithm in CLASSIFICATION_ONLY and series.task == REGRESSION:
        raise ConfigError(f"algorithm={algorithm!r} classifies by distance to class prototypes; for regression "
                          f"series choose one of {[a for a in ALGORITHMS if a not in CLASSIFICATION_ONLY]}")
    if not time_budget > 0:
        raise ConfigError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
    if inner_steps is not None and (isinstance(inner_steps, bool) or not isinstance(inner_steps, int)
                                    or inner_steps < 1):
        raise ConfigError(f"inner_steps must be a whole number of at least 1, got {inner_steps!r}")
    torch.manual_seed(seed)
    first = series.episode(np.random.default_rng(seed), shots, query, ways)
    input_shape = first.X_support.shape[1:]
    outputs = 1 if series.task == REGRESSION else int(first.y_support.max()) + 1
    if isinstance(meta_batch, bool) or not isinstance(meta_batch, int) or meta_batch < 1:
        raise ConfigError(f"meta_batch must be a whole number of at least 1, got {meta_batch!r}")
    if train_ways is None and algorithm == "protonet" and resumed is None:
        train_ways = _affordable_ways(series, shots, query, max(ways or 0, PROTONET_TRAIN_WAYS), ways)
    training = Training(series, validation or series, shots, query, ways, seed, meta_batch, train_ways=train_ways,
                        call_started=started, earlier_seconds=earlier)
    chosen_device = choose_device(device)
    bar = tqdm(total=time_budget, initial=min(earlier, time_budget), disable=verbose < 1,
               desc=f"meta-training ({algorithm})", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}")

    def build(settings: MetaSettings) -> MetaModel:
        return MetaModel(make_learner(settings, model, series, input_shape, outputs, chosen_device), shots, ways,
                         settings)

    try:
        if resumed is not None:
            meta = resumed
            meta.learner.to(chosen_device)
        elif search:
            meta, interrupted = search_settings(model, build, training, time_budget, backend, bar, seed,
                                                MetaSettings.defaults(algorithm, model, inner_steps, series.task))
            meta.learner.to(chosen_device)  # trials on Ray workers come back on the CPU
            if interrupted:
                meta.seconds = time.monotonic() - started
                return meta
        else:
            meta = build(MetaSettings.defaults(algorithm, model, inner_steps, series.task))
        bar.update(max(0.0, min(earlier + time.monotonic() - started, time_budget) - bar.n))  # setup, search too
        training.checkpoint = Path(checkpoint or resume) if (checkpoint or resume) else None
        left = time_budget - earlier - (time.monotonic() - started)
        if left > 0:
            training.run(meta, left, bar)
    except KeyboardInterrupt:
        if "meta" not in locals():
            raise
    finally:
        bar.close()
    meta.seconds = earlier + time.monotonic() - started
    return meta


def _affordable_ways(series: TaskSeries, shots: int, query: int, wanted: int, ways: int | None) -> int | None:
    """``wanted`` ways for training episodes where the series' tasks hold that many classes, else ``ways``."""
    try:
        series.episode(np.random.default_rng(0), shots, query, wanted)
    except DataError:
        return ways
    return wanted


def _resumed(path: str | Path, algorithm: str | None, series: TaskSeries) -> MetaModel:
    """The meta-model saved in ``path``, checked to be one that can go on training on ``series``."""
    meta = read_model(path)
    if not isinstance(meta, MetaModel) or meta.progress is None:
        raise ConfigError(f"{path} is not a meta-training run to resume: resume= takes a file that meta_fit wrote "
                          "(its checkpoint= file, or the model it returned, saved)")
    if algorithm is not None and algorithm != meta.algorithm:
        raise ConfigError(f"{path} holds a {meta.algorithm} run; resuming it as {algorithm!r} cannot work: "
                          f"leave algorithm out (or give {meta.algorithm!r})")
    if meta.task != series.task:
        raise ConfigError(f"{path} was meta-trained on a {meta.task} series; this series is {series.task}")
    return meta
