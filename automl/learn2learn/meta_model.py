"""The ``MetaModel`` that :func:`automl.learn2learn.meta_fit.meta_fit` returns: a meta-learner with its network, how it
adapts to a new task, and one meta-training run of it (:class:`Training`). Examples: :mod:`automl.learn2learn.meta_fit`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from automl.errors import ConfigError, DataError
from automl.learn2learn.algorithms import Evaluation, MetaLearner, PrototypicalNetwork, evaluate
from automl.learn2learn.series import CLASSIFICATION, REGRESSION, Episode, TaskSeries
from automl.model_file import SavedModel

META_BATCH = 8  # episodes per outer step, by default
VALIDATION_EPISODES = 50  # episodes scored at each checkpoint, at most ...
PROBE_EPISODES = 5  # ... and at least: these are timed first to size the set
VALIDATION_SHARE = 0.2  # ... so that five checkpoints take at most this share of a run
CHECKPOINTS = 20  # checkpoints over the budget ...
VALIDATION_COST_RATIO = 5  # ... or fewer: at least this many times a checkpoint's cost passes between two
EMBEDDING = 64  # the size of a Prototypical Network's embedding (its network's last layer)
DEFAULT_INNER_LR = {  # by task: the papers' sinusoid rates, and their Omniglot rates (a step of 0.01 barely moves a
    # classifier's head, so its adapted predictions stay those of the shared initialization: chance on new classes)
    REGRESSION: {"maml": 0.01, "fomaml": 0.01, "metasgd": 0.01, "anil": 0.1, "reptile": 0.02, "protonet": 0.0},
    CLASSIFICATION: {"maml": 0.4, "fomaml": 0.1, "metasgd": 0.1, "anil": 0.4, "reptile": 0.1, "protonet": 0.0},
}
DEFAULT_OUTER_LR = {"reptile": 0.5}
DEFAULT_INNER_STEPS = {"reptile": 5, "protonet": 0}
# First-order MAML with one inner step follows the gradient at a point one step from the initialization: on
# classification episodes whose labels are shuffled it learns nearly nothing (chance on Omniglot after 300 meta-steps,
# where MAML reached 0.72); with three steps of 0.1 it keeps pace with MAML (0.64 against 0.68 after 200; three of
# 0.4 overshoot: 0.52).
FIRST_ORDER_CLASSIFICATION_STEPS = 3
DEFAULT_SHAPE = {"mlp": (40, 2), "cnn": (64, 4)}  # (width, depth): the MAML papers' 40-40 MLP and 4-block CNN


@dataclass(frozen=True)
class MetaSettings:
    """The meta-hyperparameters of one meta-training run: what ``search=True`` tunes.

    ``width`` and ``depth`` are the hidden units and layers of the MLP, or the
    channels and convolution blocks of the CNN (a network of yours keeps its own).
    """

    algorithm: str
    inner_lr: float
    outer_lr: float
    inner_steps: int
    width: int
    depth: int

    @classmethod
    def defaults(cls, algorithm: str, model: str | nn.Module, inner_steps: int | None = None,
                 task: str = REGRESSION) -> MetaSettings:
        """The papers' settings for ``algorithm`` on ``model``, for a regression or classification series."""
        width, depth = DEFAULT_SHAPE.get(model, (0, 0)) if isinstance(model, str) else (0, 0)
        default = FIRST_ORDER_CLASSIFICATION_STEPS if (algorithm, task) == ("fomaml", CLASSIFICATION) else 1
        steps = inner_steps if inner_steps is not None else DEFAULT_INNER_STEPS.get(algorithm, default)
        return cls(algorithm, DEFAULT_INNER_LR[task][algorithm], DEFAULT_OUTER_LR.get(algorithm, 0.001), steps, width,
                   depth)


def build_network(name: str | nn.Module, input_shape: tuple[int, ...], outputs: int, width: int = 40,
                  depth: int = 2) -> nn.Module:
    """The network to meta-train: ``"mlp"`` (``depth`` ReLU layers of ``width``), ``"cnn"`` (conv blocks), or yours."""
    if isinstance(name, nn.Module):
        return copy.deepcopy(name)
    if name == "mlp":
        layers: list[nn.Module] = [nn.Flatten()]
        inputs = int(np.prod(input_shape))
        for _ in range(depth):
            layers += [nn.Linear(inputs, width), nn.ReLU()]
            inputs = width
        return nn.Sequential(*layers, nn.Linear(inputs, outputs))
    if name == "cnn":
        if len(input_shape) != 3:
            raise ConfigError("model='cnn' needs images (channels, height, width), "
                              f"got examples of shape {input_shape}")
        blocks, channels = [], input_shape[0]
        for _ in range(depth):
            blocks += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width, track_running_stats=False),
                       nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        with torch.no_grad():
            features = nn.Sequential(*blocks)(torch.zeros(1, *input_shape)).numel()
        return nn.Sequential(*blocks, nn.Flatten(), nn.Linear(features, outputs))
    raise ConfigError(f"model must be 'mlp', 'cnn' or a torch nn.Module, got {name!r}")


def choose_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the GPU when torch sees one, else the CPU; or the device named."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from error


@dataclass
class AdaptedNetwork:
    """A meta-learned network adapted to one task's examples: ``predict`` (and ``predict_proba`` for classes).

    For ProtoNets ``prototypes`` holds each class's mean embedding and the
    network only embeds; otherwise ``params`` are the adapted weights.
    """

    model: nn.Module
    params: dict[str, torch.Tensor]
    task: str
    classes_: np.ndarray | None = None  # the support set's labels, in the order of the outputs
    prototypes: torch.Tensor | None = None

    def _outputs(self, X: np.ndarray) -> torch.Tensor:
        device = next(iter(self.params.values())).device
        with torch.no_grad():
            inputs = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
            outputs = functional_call(self.model, self.params, (inputs,))
            if self.prototypes is not None:
                outputs = -torch.cdist(outputs, self.prototypes) ** 2
            return outputs.cpu()

    def predict(self, X: np.ndarray) -> np.ndarray:
        outputs = self._outputs(X)
        if self.task == REGRESSION:
            return outputs.reshape(len(outputs)).numpy()
        return self.classes_[outputs[:, : len(self.classes_)].argmax(dim=1).numpy()]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        if self.task == REGRESSION:
            raise ConfigError("predict_proba is for classification; this network was meta-trained for regression")
        return torch.softmax(self._outputs(X)[:, : len(self.classes_)], dim=1).numpy()


@dataclass
class MetaModel(SavedModel):
    """A meta-trained network: adapt it to a new task's few examples, evaluate it on a series, save it."""

    kind: ClassVar[str] = "meta-model"

    learner: MetaLearner | PrototypicalNetwork
    shots: int
    ways: int | None
    settings: MetaSettings | None = None
    history: list[tuple[int, float]] = field(default_factory=list)  # (meta-step, validation metric)
    validation_score: float | None = None  # of the weights kept (the best checkpoint)
    trials: list[dict[str, Any]] = field(default_factory=list)  # search=True: each trial's settings and score
    seconds: float = 0.0  # meta-training time (meta_fit's whole call)

    @property
    def task(self) -> str:
        return self.learner.task

    @property
    def algorithm(self) -> str:
        return self.learner.algorithm

    def adapt(self, X_support: np.ndarray, y_support: np.ndarray, steps: int | None = None) -> AdaptedNetwork:
        """The network adapted on ``(X_support, y_support)`` with the learned initialization (and rates).

        Class labels may be any values; there may be at most as many classes
        as the network has outputs (the ``ways`` it was meta-trained for;
        ProtoNets take any number).
        """
        X = np.asarray(X_support, dtype=np.float32)
        y = np.asarray(y_support)
        if len(X) != len(y) or len(X) == 0:
            raise DataError("the support set needs as many labels as examples, and at least one: "
                            f"got {len(X)} and {len(y)}")
        classes = None
        if self.task == CLASSIFICATION:
            classes, y = np.unique(y, return_inverse=True)
            outputs = None if isinstance(self.learner, PrototypicalNetwork) else self._outputs()
            if outputs is not None and len(classes) > outputs:
                raise DataError(f"the support set has {len(classes)} classes but this network was meta-trained for "
                                f"{outputs}-way tasks; meta-train with ways={len(classes)} "
                                "(or use algorithm='protonet')")
        if isinstance(self.learner, PrototypicalNetwork):
            params = {name: p.detach() for name, p in self.learner.model.named_parameters()}
            return AdaptedNetwork(self.learner.model, params, self.task, classes, self.learner.prototypes(X, y))
        params = self.learner.adapted_params(X, y, steps)
        return AdaptedNetwork(self.learner.model, params, self.task, classes)

    def _outputs(self) -> int:
        return int(list(self.learner.params.values())[-1].shape[0])

    def evaluate(self, series: TaskSeries, *, shots: int | None = None, ways: int | None = None, query: int = 15,
                 episodes: int = 600, steps: int | None = None, seed: int = 0) -> Evaluation:
        """Mean MSE (regression) or accuracy (classification) on new episodes, with its 95 % confidence interval."""
        return evaluate(self.learner, series, shots or self.shots, query, ways or self.ways, episodes, steps, seed)

    def predict(self, X: np.ndarray, support: tuple[np.ndarray, np.ndarray] | None = None,
                steps: int | None = None) -> np.ndarray:
        """Predictions for the points ``X`` of a new task, from its few examples ``support = (X_support, y_support)``:
        the network adapted on them (:meth:`adapt`), then asked."""
        if support is None:
            raise DataError("a meta-model predicts a new task from a few of its examples: pass them, "
                            "meta.predict(X, support=(X_support, y_support))")
        return self.adapt(*support, steps=steps).predict(X)

    def save(self, path: str | Path) -> Path:
        """Write the model (its tensors on the CPU, so any machine reads it); ``automl.load(path)`` reads it back."""
        device = self.learner.device
        self.learner.to("cpu")
        try:
            return super().save(path)
        finally:
            self.learner.to(device)


def make_learner(settings: MetaSettings, model: str | nn.Module, series: TaskSeries, input_shape: tuple[int, ...],
                 outputs: int, device: torch.device) -> MetaLearner | PrototypicalNetwork:
    """A fresh meta-learner for ``settings``: its network built, on ``device``."""
    if settings.algorithm == "protonet":
        return PrototypicalNetwork(build_network(model, input_shape, EMBEDDING, settings.width, settings.depth),
                                   outer_lr=settings.outer_lr, device=device)
    network = build_network(model, input_shape, outputs, settings.width, settings.depth)
    return MetaLearner(network, settings.algorithm, series.task, inner_lr=settings.inner_lr, outer_lr=settings.outer_lr,
                       inner_steps=settings.inner_steps, device=device)


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
    _episodes: list[Episode] | None = field(default=None, repr=False)

    def run(self, meta: MetaModel, seconds: float, bar: Any = None) -> float:
        """Meta-train ``meta`` for ``seconds``, keeping its best checkpoint on validation episodes; that score.

        Ctrl-C stops early (the best checkpoint so far is kept) and propagates
        once the checkpoint is restored, so a caller can stop too.
        """
        learner, rng = meta.learner, np.random.default_rng(self.seed + len(meta.history))
        better = (lambda a, b: a < b) if self.series.task == REGRESSION else (lambda a, b: a > b)
        best_score = meta.validation_score
        best_state = learner.state() if best_score is not None else None
        started, step, next_check, shown = time.monotonic(), len(meta.history), 0.0, 0.0
        def checkpoint(loss: float) -> float:
            nonlocal best_score, best_state
            score = self.score(meta, seconds)
            meta.history.append((step, score))
            if best_score is None or better(score, best_score):
                best_score, best_state = score, learner.state()
            if bar is not None:
                bar.set_postfix(meta_loss=f"{loss:.4f}", validation=f"{score:.4f}")
            return score

        checked = step
        try:
            while (elapsed := time.monotonic() - started) < seconds:
                loss = learner.meta_step([self.series.episode(rng, self.shots, self.query, self.ways)
                                          for _ in range(self.meta_batch)])
                step += 1
                if elapsed >= next_check:
                    scoring = time.monotonic()
                    checkpoint(loss)
                    checked = step
                    next_check = elapsed + max(seconds / CHECKPOINTS,
                                               VALIDATION_COST_RATIO * (time.monotonic() - scoring))
                if bar is not None:
                    now = min(time.monotonic() - started, seconds)
                    bar.update(now - shown)
                    shown = now
            if step > checked:  # the weights trained since the last checkpoint are a candidate too
                checkpoint(loss)
        finally:
            if best_state is not None:
                learner.restore(best_state)
                meta.validation_score = best_score
        return best_score

    def score(self, meta: MetaModel, seconds: float) -> float:
        """The validation metric: mean MSE or accuracy over the same validation episodes every time.

        The first call times ``PROBE_EPISODES`` and keeps as many more (up to
        ``VALIDATION_EPISODES``) as a run of ``seconds`` affords: on costly
        tasks (20-way images) a fixed 50 would outlast a short budget.
        """
        if self._episodes is None:
            rng = np.random.default_rng(self.seed + 1)
            self._episodes = [self.validation.episode(rng, self.shots, self.query, self.ways)
                              for _ in range(PROBE_EPISODES)]
            started = time.monotonic()
            probe = meta.learner.episode_metrics(self._episodes)
            per_episode = (time.monotonic() - started) / PROBE_EPISODES
            wanted = int(VALIDATION_SHARE * seconds / (5 * per_episode)) if per_episode > 0 else VALIDATION_EPISODES
            extra = min(VALIDATION_EPISODES, max(PROBE_EPISODES, wanted)) - PROBE_EPISODES
            more = [self.validation.episode(rng, self.shots, self.query, self.ways) for _ in range(extra)]
            self._episodes += more
            return float(np.mean(np.concatenate([probe, meta.learner.episode_metrics(more)]) if more else probe))
        return float(np.mean(meta.learner.episode_metrics(self._episodes)))


__all__ = ["AdaptedNetwork", "MetaModel", "MetaSettings", "Training", "build_network", "choose_device", "make_learner"]
