"""The shared candidate set: the same configurations evaluated on every task.

Histories are only comparable across tasks when the same configurations were
run on each, so the knowledge base is built from one fixed set per task kind:
every learner's default plus a space-filling (scrambled Sobol) sample of its
space, in proportion to how much each learner's space has to explore.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.stats import qmc

from searchspaces import Config, Learner, resolve_learners

# Share of the candidates per learner (renormalised over the learners present).
SHARES = {
    "lightgbm": 0.24,
    "xgboost": 0.12,
    "catboost": 0.12,
    "hgb": 0.20,
    "random_forest": 0.12,
    "extra_trees": 0.12,
    "svm": 0.12,
    "knn": 0.10,
    "linear": 0.10,
}
DEFAULT_SHARE = 0.10


def space_filling(learner: Learner, n: int, seed: int) -> list[Config]:
    """``n`` distinct configurations of ``learner``: its default, then a Sobol sample."""
    configs = [learner.default_config()]
    dims = len(learner.space)
    if dims == 0 or n <= 1:
        return configs[:n]
    sampler = qmc.Sobol(d=dims, scramble=True, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Sobol prefers powers of two; balance matters little here
        points = sampler.random(4 * n)
    seen = {configs[0].key()}
    for point in points:
        config = Config(learner.name, learner.space.from_unit(point))
        if config.key() not in seen:
            seen.add(config.key())
            configs.append(config)
        if len(configs) == n:
            break
    return configs


def allocate(total: int, learners: Sequence[Learner]) -> dict[str, int]:
    """How many candidates each learner gets: ``total`` in all, but at least one each."""
    weights = np.array([SHARES.get(learner.name, DEFAULT_SHARE) for learner in learners])
    raw = weights / weights.sum() * total
    counts = np.maximum(1, np.floor(raw)).astype(int)
    for index in np.argsort(-(raw - np.floor(raw))):
        if counts.sum() >= total:
            break
        counts[index] += 1
    return {learner.name: int(c) for learner, c in zip(learners, counts)}


def candidate_set(task_kind: str, total: int, seed: int = 0, learners: Sequence[str] | None = None) -> list[Config]:
    """The candidates for one task kind (deterministic for a given seed)."""
    chosen = resolve_learners(task_kind, learners)
    counts = allocate(total, chosen)
    configs: list[Config] = []
    for offset, learner in enumerate(chosen):
        configs.extend(space_filling(learner, counts[learner.name], seed + offset))
    return configs


# The neural candidate grid: a few architectures, each at a sweep of learning rates, trained for a capped
# number of epochs, so that histories say which learning rate suits which (task, architecture).
NEURAL_EPOCH_CAP = 20
NEURAL_LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
NEURAL_ARCHITECTURES = {
    "small": {"n_layers": 1, "width_1": 64, "activation": "relu", "norm": "none", "dropout": 0.0, "residual": False},
    "medium": {"n_layers": 2, "width_1": 128, "width_2": 128, "activation": "relu", "norm": "batch", "dropout": 0.1,
               "residual": False},
    "deep": {"n_layers": 3, "width_1": 256, "width_2": 256, "width_3": 256, "activation": "gelu", "norm": "layer",
             "dropout": 0.2, "residual": True},
}
NEURAL_TRAINING = {"weight_decay": 1e-5, "batch_size": 128, "schedule": "constant", "epochs": NEURAL_EPOCH_CAP}


def neural_candidates() -> list[Config]:
    """Every architecture of the grid at every learning rate (the same for both task kinds)."""
    return [
        Config("mlp", {**architecture, **NEURAL_TRAINING, "learning_rate": rate})
        for architecture in NEURAL_ARCHITECTURES.values()
        for rate in NEURAL_LEARNING_RATES
    ]
