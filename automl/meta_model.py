"""``meta_fit``: meta-train a network across a task series within a time budget; the ``MetaModel`` it returns.

>>> import automl
>>> from automl.series import sinusoid
>>> meta = automl.meta_fit(sinusoid(), algorithm="metasgd", shots=5, time_budget=20, verbose=0)  # doctest: +SKIP
>>> adapted = meta.adapt(X_support, y_support)          # doctest: +SKIP
>>> adapted.predict(X_new)                              # doctest: +SKIP
>>> print(meta.evaluate(sinusoid(), shots=5))           # doctest: +SKIP
>>> meta.save("meta.pkl"); automl.load("meta.pkl")      # doctest: +SKIP
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from automl.errors import ConfigError
from automl.meta_algorithms import ALGORITHMS, Evaluation, MetaLearner, evaluate
from automl.model import META_FILE_FORMAT
from automl.series import REGRESSION, TaskSeries

META_BATCH = 8  # episodes per outer step
VALIDATION_EPISODES = 50  # episodes scored at each checkpoint
CHECKPOINTS = 20  # checkpoints over the budget (at least one every VALIDATE_EVERY_MAX steps)
DEFAULT_INNER_LR = {"maml": 0.01, "fomaml": 0.01, "metasgd": 0.01, "anil": 0.1, "reptile": 0.02}
DEFAULT_OUTER_LR = {"reptile": 0.5}
DEFAULT_INNER_STEPS = {"reptile": 5}


def build_network(name: str | nn.Module, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    """The network to meta-train: ``"mlp"`` (40-40 ReLU, as in the MAML papers), ``"cnn"`` (4 conv blocks), or yours."""
    if isinstance(name, nn.Module):
        return name
    if name == "mlp":
        inputs = int(np.prod(input_shape))
        return nn.Sequential(nn.Flatten(), nn.Linear(inputs, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, outputs))
    if name == "cnn":
        if len(input_shape) != 3:
            raise ConfigError(f"model='cnn' needs images (channels, height, width), got examples of shape {input_shape}")
        blocks, channels = [], input_shape[0]
        for _ in range(4):
            blocks += [nn.Conv2d(channels, 64, 3, padding=1), nn.BatchNorm2d(64, track_running_stats=False), nn.ReLU(), nn.MaxPool2d(2)]
            channels = 64
        with torch.no_grad():
            features = nn.Sequential(*blocks)(torch.zeros(1, *input_shape)).numel()
        return nn.Sequential(*blocks, nn.Flatten(), nn.Linear(features, outputs))
    raise ConfigError(f"model must be 'mlp', 'cnn' or a torch nn.Module, got {name!r}")


@dataclass
class AdaptedNetwork:
    """A meta-learned network adapted to one task's examples: ``predict`` (and ``predict_proba`` for classes)."""

    model: nn.Module
    params: dict[str, torch.Tensor]
    task: str

    def _outputs(self, X: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return functional_call(self.model, self.params, (torch.as_tensor(np.asarray(X), dtype=torch.float32),))

    def predict(self, X: np.ndarray) -> np.ndarray:
        outputs = self._outputs(X)
        return outputs.reshape(len(outputs)).numpy() if self.task == REGRESSION else outputs.argmax(dim=1).numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.task == REGRESSION:
            raise ConfigError("predict_proba is for classification; this network was meta-trained for regression")
        return torch.softmax(self._outputs(X), dim=1).numpy()


@dataclass
class MetaModel:
    """A meta-trained network: adapt it to a new task's few examples, evaluate it on a series, save it."""

    learner: MetaLearner
    shots: int
    ways: int | None
    history: list[tuple[int, float]] = field(default_factory=list)  # (meta-step, validation metric)

    @property
    def task(self) -> str:
        return self.learner.task

    def adapt(self, X_support: np.ndarray, y_support: np.ndarray, steps: int | None = None) -> AdaptedNetwork:
        """The network adapted on ``(X_support, y_support)`` with the learned initialization (and rates)."""
        params = self.learner.adapted_params(np.asarray(X_support, dtype=np.float32), np.asarray(y_support), steps)
        return AdaptedNetwork(self.learner.model, params, self.task)

    def evaluate(self, series: TaskSeries, *, shots: int | None = None, ways: int | None = None, query: int = 15,
                 episodes: int = 600, steps: int | None = None, seed: int = 0) -> Evaluation:
        """Mean MSE (regression) or accuracy (classification) on new episodes, with its 95 % confidence interval."""
        return evaluate(self.learner, series, shots or self.shots, query, ways or self.ways, episodes, steps, seed)

    def save(self, path: str | Path) -> None:
        """Write the model; ``automl.load(path)`` reads it back."""
        joblib.dump({"format": META_FILE_FORMAT, "version": 1, "model": self}, Path(path).expanduser())


def meta_fit(series: TaskSeries, *, algorithm: str = "maml", model: str | nn.Module = "mlp", ways: int | None = None,
             shots: int = 5, query: int = 15, inner_steps: int | None = None, time_budget: float = 60.0,
             validation: TaskSeries | None = None, seed: int = 0, verbose: int = 1) -> MetaModel:
    """Meta-train ``model`` on episodes of ``series`` for ``time_budget`` seconds; the best checkpoint on ``validation``.

    Checkpoints score ``VALIDATION_EPISODES`` episodes of ``validation`` (by
    default new episodes of ``series``); Ctrl-C stops early and keeps the best so far.
    """
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"unknown meta-learning algorithm {algorithm!r}: choose one of {list(ALGORITHMS)}")
    if not time_budget > 0:
        raise ConfigError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    first = series.episode(rng, shots, query, ways)
    outputs = 1 if series.task == REGRESSION else int(first.y_support.max()) + 1
    network = build_network(model, first.X_support.shape[1:], outputs)
    learner = MetaLearner(network, algorithm, series.task, inner_lr=DEFAULT_INNER_LR[algorithm],
                          outer_lr=DEFAULT_OUTER_LR.get(algorithm, 0.001),
                          inner_steps=inner_steps or DEFAULT_INNER_STEPS.get(algorithm, 1))
    meta = MetaModel(learner, shots, ways)
    checker = validation or series
    better = (lambda a, b: a < b) if series.task == REGRESSION else (lambda a, b: a > b)
    best_score, best_state = None, None
    started, step, next_check = time.monotonic(), 0, 0.0
    bar = tqdm(total=round(time_budget), disable=verbose < 1, unit="s", desc=f"meta-training ({algorithm})")
    try:
        while (elapsed := time.monotonic() - started) < time_budget:
            loss = learner.meta_step([series.episode(rng, shots, query, ways) for _ in range(META_BATCH)])
            step += 1
            if elapsed >= next_check:
                score = evaluate(learner, checker, shots, query, ways, VALIDATION_EPISODES, seed=seed + 1).mean
                meta.history.append((step, score))
                if best_score is None or better(score, best_score):
                    best_score, best_state = score, (copy.deepcopy(learner.params), copy.deepcopy(learner.rates))
                next_check = elapsed + time_budget / CHECKPOINTS
                bar.set_postfix(meta_loss=f"{loss:.4f}", validation=f"{score:.4f}")
            bar.update(round(min(time.monotonic() - started, time_budget)) - bar.n)
    except KeyboardInterrupt:
        pass  # keep the best checkpoint so far
    finally:
        bar.close()
    if best_state is not None:
        learner.params, learner.rates = best_state
    return meta


__all__ = ["AdaptedNetwork", "MetaModel", "build_network", "meta_fit"]
