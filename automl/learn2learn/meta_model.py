"""The ``MetaModel`` that :func:`automl.learn2learn.meta_fit.meta_fit` returns: a meta-learner with its network, how it
adapts to a new task, and the networks it meta-trains (one run: :mod:`automl.learn2learn.training`). Examples:
:mod:`automl.learn2learn.meta_fit`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from automl.errors import ConfigError, DataError
from automl.learn2learn.algorithms import Evaluation, MetaLearner, OutputPredictions, PrototypicalNetwork, evaluate
from automl.learn2learn.attentive import EMBED, AttentiveLearner, AttentiveNetwork, SupportReader
from automl.learn2learn.maml_plus_plus import MAMLPlusPlus
from automl.learn2learn.meta_report import write_meta_report
from automl.learn2learn.omniglot import OneShotRun, official_error
from automl.learn2learn.series import CLASSIFICATION, REGRESSION, TaskSeries
from automl.model_file import SavedModel

EMBEDDING = 64  # the size of a Prototypical Network's embedding (its network's last layer)
DEFAULT_INNER_LR = {  # by task: the papers' sinusoid rates, and their Omniglot rates (a step of 0.01 barely moves a
    # classifier's head, so its adapted predictions stay those of the shared initialization: chance on new classes)
    # (MAML++ learns its rates per layer and step from these)
    REGRESSION: {"maml": 0.01, "fomaml": 0.01, "metasgd": 0.01, "anil": 0.1, "reptile": 0.02, "maml++": 0.01,
                 "protonet": 0.0, "attentive": 0.0},
    CLASSIFICATION: {"maml": 0.4, "fomaml": 0.1, "metasgd": 0.1, "anil": 0.1, "reptile": 0.1, "maml++": 0.1,
                     "protonet": 0.0, "attentive": 0.0},
}
DEFAULT_OUTER_LR = {"reptile": 0.5}
DEFAULT_INNER_STEPS = {"reptile": 5, "maml++": 3, "protonet": 0, "attentive": 0}
# Inner steps on classification series, where they are not one. First-order MAML with one inner step follows the
# gradient at a point one step from the initialization: on classification episodes whose labels are shuffled it learns
# nearly nothing (chance on Omniglot after 300 meta-steps, where MAML reached 0.72); with three steps of 0.1 it keeps
# pace with MAML (0.64 against 0.68 after 200; three of 0.4 overshoot: 0.52). ANIL adapts the head alone, whose steps
# are cheap: five of 0.1, MAML's 20-way Omniglot setting (Finn et al. 2017); one of 0.4 fell 12 points behind MAML on
# 5-way 1-shot after 300 s (0.683 against 0.808), five of 0.1 end level with it (0.802).
CLASSIFICATION_STEPS = {"fomaml": 3, "anil": 5}
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
        default = CLASSIFICATION_STEPS.get(algorithm, 1) if task == CLASSIFICATION else 1
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
class AdaptedNetwork(OutputPredictions):
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



@dataclass
class MetaModel(SavedModel):
    """A meta-trained network: adapt it to a new task's few examples, evaluate it on a series, save it."""

    kind: ClassVar[str] = "meta-model"

    learner: MetaLearner | PrototypicalNetwork | AttentiveLearner
    shots: int
    ways: int | None
    settings: MetaSettings | None = None
    # (meta-step, seconds of meta-training, validation metric) at each checkpoint: the training curve
    history: list[tuple[int, float, float]] = field(default_factory=list)
    validation_score: float | None = None  # of the weights kept (the best checkpoint)
    trials: list[dict[str, Any]] = field(default_factory=list)  # search=True: each trial's settings and score
    seconds: float = 0.0  # meta-training time (meta_fit's whole call, resumed runs included)
    progress: Any = None  # where the run stands, to resume it (automl.learn2learn.training.Progress)
    evaluations: dict[str, Evaluation] = field(default_factory=dict)  # what evaluate() measured, for the report

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Read files of engines before runs resumed: no progress, no evaluations, checkpoints without seconds."""
        state.setdefault("progress", None)
        state.setdefault("evaluations", {})
        state["history"] = [entry if len(entry) == 3 else (entry[0], float("nan"), entry[1])
                            for entry in state.get("history", [])]
        self.__dict__.update(state)

    @property
    def task(self) -> str:
        return self.learner.task

    @property
    def algorithm(self) -> str:
        return self.learner.algorithm

    def adapt(self, X_support: np.ndarray, y_support: np.ndarray,
              steps: int | None = None) -> AdaptedNetwork | SupportReader:
        """The network adapted on ``(X_support, y_support)`` with the learned initialization (and rates); for the
        model-based learner, the network holding the support set (it reads it at each prediction, no steps).

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
            outputs = None if isinstance(self.learner, (PrototypicalNetwork, AttentiveLearner)) else self._outputs()
            if outputs is not None and len(classes) > outputs:
                raise DataError(f"the support set has {len(classes)} classes but this network was meta-trained for "
                                f"{outputs}-way tasks; meta-train with ways={len(classes)} "
                                "(or use algorithm='protonet')")
        if isinstance(self.learner, AttentiveLearner):
            return self.learner.read(X, y, classes)
        if isinstance(self.learner, PrototypicalNetwork):
            params = {name: p.detach() for name, p in self.learner.model.named_parameters()}
            return AdaptedNetwork(self.learner.model, params, self.task, classes, self.learner.prototypes(X, y))
        params = self.learner.adapted_params(X, y, steps)
        return AdaptedNetwork(self.learner.model, params, self.task, classes)

    def _outputs(self) -> int:
        return int(list(self.learner.params.values())[-1].shape[0])

    def evaluate(self, series: TaskSeries, *, shots: int | None = None, ways: int | None = None, query: int = 15,
                 episodes: int = 600, steps: int | None = None, seed: int = 0) -> Evaluation:
        """Mean MSE (regression) or accuracy (classification) on new episodes, with its 95 % confidence interval.

        The result is kept (``evaluations``, by episode shape) for :meth:`report`.
        """
        shots, ways = shots or self.shots, ways or self.ways
        result = evaluate(self.learner, series, shots, query, ways, episodes, steps, seed)
        shape = f"{ways}-way {shots}-shot" if self.task == CLASSIFICATION else f"{shots}-shot"
        self.evaluations[f"{shape}, {steps or 'default'} steps" if steps else shape] = result
        return result

    def evaluate_official_runs(self, runs: list[OneShotRun]) -> tuple[int, int]:
        """(wrong, total) on Omniglot's official one-shot runs (:func:`automl.learn2learn.omniglot.official_error`),
        kept for :meth:`report` as the error rate."""
        wrong, total = official_error(self, runs)
        self.evaluations["official 20-way one-shot runs"] = Evaluation("error", wrong / total, float("nan"), len(runs))
        return wrong, total

    def report(self, path: str | Path) -> Path:
        """Write one self-contained HTML page: the settings, the training curve (validation metric over meta-training
        time) and the evaluations measured so far. ``path``'s folder must exist.

        >>> meta.report("meta.html")  # doctest: +SKIP
        """
        return write_meta_report(self, path)

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
        if device.type == "cpu":
            return super().save(path)
        self.learner.to("cpu")
        try:
            return super().save(path)
        finally:
            self.learner.to(device)


def make_learner(settings: MetaSettings, model: str | nn.Module, series: TaskSeries, input_shape: tuple[int, ...],
                 outputs: int, device: torch.device) -> MetaLearner | PrototypicalNetwork | AttentiveLearner:
    """A fresh meta-learner for ``settings``: its network built, on ``device``."""
    if settings.algorithm == "protonet":
        return PrototypicalNetwork(build_network(model, input_shape, EMBEDDING, settings.width, settings.depth),
                                   outer_lr=settings.outer_lr, device=device)
    if settings.algorithm == "attentive":  # the network encodes inputs; attention over the support set does the rest
        encoder = build_network(model, input_shape, EMBED, settings.width, settings.depth)
        network = AttentiveNetwork(encoder, 1 if series.task == REGRESSION else outputs, outputs)
        return AttentiveLearner(network, series.task, outer_lr=settings.outer_lr, device=device)
    network = build_network(model, input_shape, outputs, settings.width, settings.depth)
    kind = MAMLPlusPlus if settings.algorithm == "maml++" else MetaLearner
    arguments = {} if settings.algorithm == "maml++" else {"algorithm": settings.algorithm}
    return kind(network, task=series.task, inner_lr=settings.inner_lr, outer_lr=settings.outer_lr,
                inner_steps=settings.inner_steps, device=device, **arguments)


__all__ = ["AdaptedNetwork", "MetaModel", "MetaSettings", "build_network", "choose_device", "make_learner"]
