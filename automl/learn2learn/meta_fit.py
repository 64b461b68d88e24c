"""``meta_fit``: meta-train a network across a task series within a time budget; the ``MetaModel`` it returns.

>>> import automl
>>> from automl.learn2learn.series import sinusoid
>>> meta = automl.meta_fit(sinusoid(), algorithm="metasgd", shots=5, time_budget=20, verbose=0)  # doctest: +SKIP
>>> adapted = meta.adapt(X_support, y_support)          # doctest: +SKIP
>>> adapted.predict(X_new)                              # doctest: +SKIP
>>> print(meta.evaluate(sinusoid(), shots=5))           # doctest: +SKIP
>>> meta.save("meta.pkl"); automl.load("meta.pkl")      # doctest: +SKIP
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from automl.errors import ConfigError
from automl.learn2learn.algorithms import ALGORITHMS
from automl.learn2learn.meta_model import META_BATCH, MetaModel, MetaSettings, Training, choose_device, make_learner
from automl.learn2learn.meta_search import search_settings
from automl.learn2learn.series import REGRESSION, TaskSeries


def meta_fit(series: TaskSeries, *, algorithm: str = "maml", model: str | nn.Module = "mlp", ways: int | None = None,
             shots: int = 5, query: int = 15, inner_steps: int | None = None, time_budget: float = 60.0,
             validation: TaskSeries | None = None, search: bool = False, backend: str = "optuna",
             device: str | torch.device = "auto", meta_batch: int = META_BATCH, seed: int = 0,
             verbose: int = 1) -> MetaModel:
    """Meta-train ``model`` on episodes of ``series`` for ``time_budget`` seconds; the best checkpoint on
    ``validation``.

    ``algorithm``: ``"maml"``, ``"fomaml"``, ``"metasgd"``, ``"anil"``,
    ``"reptile"`` or ``"protonet"`` (classification). Checkpoints score
    up to ``VALIDATION_EPISODES`` episodes of ``validation`` (by default new episodes
    of ``series``); Ctrl-C stops early and keeps the best so far. With
    ``search=True`` part of the budget tunes the meta-hyperparameters
    (:mod:`automl.learn2learn.meta_search`, on ``backend``) and the rest trains the best
    trial further. ``device="auto"`` uses the GPU when torch sees one;
    ``meta_batch`` episodes make one outer step.
    """
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"unknown meta-learning algorithm {algorithm!r}: choose one of {list(ALGORITHMS)}")
    if algorithm == "protonet" and series.task == REGRESSION:
        raise ConfigError("algorithm='protonet' classifies by distance to class prototypes; for regression series "
                          "choose maml, fomaml, metasgd, anil or reptile")
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
    training = Training(series, validation or series, shots, query, ways, seed, meta_batch)
    chosen_device = choose_device(device)
    bar = tqdm(total=time_budget, disable=verbose < 1, desc=f"meta-training ({algorithm})",
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}")
    started = time.monotonic()

    def build(settings: MetaSettings) -> MetaModel:
        return MetaModel(make_learner(settings, model, series, input_shape, outputs, chosen_device), shots, ways,
                         settings)

    try:
        if search:
            meta, interrupted = search_settings(model, build, training, time_budget, backend, bar, seed,
                                                MetaSettings.defaults(algorithm, model, inner_steps, series.task))
            meta.learner.to(chosen_device)  # trials on Ray workers come back on the CPU
            if interrupted:
                meta.seconds = time.monotonic() - started
                return meta
        else:
            meta = build(MetaSettings.defaults(algorithm, model, inner_steps, series.task))
        bar.update(max(0.0, min(time.monotonic() - started, time_budget) - bar.n))  # setup and search count too
        left = time_budget - (time.monotonic() - started)
        if left > 0:
            training.run(meta, left, bar)
    except KeyboardInterrupt:
        if "meta" not in locals():
            raise
    finally:
        bar.close()
    meta.seconds = time.monotonic() - started
    return meta
