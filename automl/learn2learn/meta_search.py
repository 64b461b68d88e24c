"""``meta_fit(..., search=True)``: the meta-hyperparameters tuned on meta-validation tasks.

The inner and outer learning rates, the inner steps and the network's width
and depth form a search space declared as data (:mod:`searchspaces`), like a
learner's. Trials are short meta-training runs scored on the validation
series; the papers' settings are the first trial. Optuna's TPE sampler
proposes the rest, in this process (``backend="optuna"``) or run side by side
on a Ray cluster's workers and GPUs (``backend="ray"``: ``ray.init()`` joins
the cluster ``RAY_ADDRESS`` names, else starts one on this machine). The
best trial's model is returned, to be trained further for the rest of the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import optuna
from torch import nn

from automl.errors import ConfigError
from automl.learn2learn.algorithms import NO_INNER_LOOP
from automl.learn2learn.meta_model import MetaModel, MetaSettings, choose_device
from automl.learn2learn.series import REGRESSION
from automl.learn2learn.training import Training
from automl.search.optuna_setup import make_sampler, quiet_optuna
from searchspaces import Float, Int, SearchSpace
from searchspaces.to_optuna import suggest

SEARCH_SHARE = 0.6  # of the budget spent on trials; the best trial trains on for the rest
TRIALS = 8
BACKENDS = ("optuna", "ray")


def meta_space(defaults: MetaSettings, model: str | nn.Module) -> SearchSpace:
    """What is tuned for ``defaults.algorithm`` on ``model``, each parameter starting at its default."""
    params: list[Any] = []
    if defaults.algorithm not in NO_INNER_LOOP:
        params += [Float("inner_lr", 1e-3, 1.0, log=True, default=defaults.inner_lr),
                   Int("inner_steps", 1, 5, default=defaults.inner_steps)]
    outer = (0.05, 1.0) if defaults.algorithm == "reptile" else (1e-4, 1e-2)
    params.append(Float("outer_lr", *outer, log=True, default=defaults.outer_lr))
    if model == "mlp":
        params += [Int("width", 16, 256, log=True, default=defaults.width), Int("depth", 1, 4, default=defaults.depth)]
    elif model == "cnn":
        params += [Int("width", 16, 64, log=True, default=defaults.width), Int("depth", 2, 4, default=defaults.depth)]
    return SearchSpace(tuple(params), name=f"meta:{defaults.algorithm}")


def search_settings(model: str | nn.Module, build: Callable[[MetaSettings], MetaModel], training: Training,
                    time_budget: float, backend: str, bar: Any, seed: int,
                    defaults: MetaSettings) -> tuple[MetaModel, bool]:
    """Run the trials; the best trial's model and whether Ctrl-C stopped the search.

    The model's ``trials`` lists every trial: its settings, validation score and where it ran.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {list(BACKENDS)} for a meta-hyperparameter search, got {backend!r}")
    space = meta_space(defaults, model)
    direction = "minimize" if training.series.task == REGRESSION else "maximize"
    seconds = time_budget * SEARCH_SHARE / TRIALS
    trials: list[dict[str, Any]] = []
    best: MetaModel | None = None
    best_score = math.nan
    with quiet_optuna():
        study = optuna.create_study(direction=direction, sampler=make_sampler("tpe", seed, 1))
        study.enqueue_trial(space.default())
        run = _run_on_ray if backend == "ray" else _run_here
        try:
            for trial, meta, score, where in run(study, space, defaults, build, training, seconds, bar):
                study.tell(trial, score if score is not None and math.isfinite(score) else None,
                           state=None if score is not None and math.isfinite(score) else optuna.trial.TrialState.FAIL)
                trials.append({**asdict(meta.settings), "score": score, "node": where})
                if score is not None and (best is None or _better(score, best_score, direction)):
                    best, best_score = meta, score
        except KeyboardInterrupt:
            if best is None:
                raise
            best.trials = trials
            return best, True
    if best is None:
        raise ConfigError("no meta-hyperparameter trial could be scored; give a larger time_budget")
    best.trials = trials
    return best, False


def _better(score: float, incumbent: float, direction: str) -> bool:
    return score < incumbent if direction == "minimize" else score > incumbent


def _run_here(study: optuna.Study, space: SearchSpace, defaults: MetaSettings,
              build: Callable[[MetaSettings], MetaModel], training: Training, seconds: float, bar: Any):
    """Trials one after another in this process."""
    for _ in range(TRIALS):
        trial = study.ask()
        meta = build(replace(defaults, **suggest(trial, space)))
        yield trial, meta, training.run(meta, seconds, bar), "local"


def _run_on_ray(study: optuna.Study, space: SearchSpace, defaults: MetaSettings,
                build: Callable[[MetaSettings], MetaModel], training: Training, seconds: float, bar: Any):
    """Trials in rounds run side by side on a Ray cluster, one GPU each where the cluster has them."""
    try:
        import ray
    except ImportError:
        raise ConfigError("backend='ray' needs Ray: pip install -e '.[ray]'") from None
    if not ray.is_initialized():
        ray.init(logging_level="ERROR")
    gpus = ray.cluster_resources().get("GPU", 0)
    slots = max(1, int(gpus or ray.cluster_resources().get("CPU", 1)))
    remote = ray.remote(num_gpus=1 if gpus else 0, num_cpus=1)(_train_on_worker)
    done = 0
    while done < TRIALS:
        batch = [study.ask() for _ in range(min(slots, TRIALS - done))]
        settings = [replace(defaults, **suggest(trial, space)) for trial in batch]
        results = ray.get([remote.remote(build, s, training, seconds) for s in settings])
        if bar is not None:
            bar.update(seconds)
        for trial, (meta, score, where) in zip(batch, results):
            yield trial, meta, score, where
        done += len(batch)


def _train_on_worker(build: Callable[[MetaSettings], MetaModel], settings: MetaSettings, training: Training,
                     seconds: float) -> tuple[MetaModel, float, str]:
    """One trial on a Ray worker: built on the worker's device, returned on the CPU with the node's address."""
    import ray


    meta = build(settings)
    meta.learner.to(choose_device("auto"))
    score = training.run(meta, seconds)
    meta.learner.to("cpu")
    return meta, score, ray.util.get_node_ip_address()
