"""Meta-learning on ``torch.func``: MAML, first-order MAML, Meta-SGD, ANIL and Reptile, and Prototypical Networks.

All five share one inner loop (:func:`adapt`): a few gradient steps on an
episode's support set, taken functionally (``torch.func.functional_call`` on a
dictionary of parameters) so that the outer loop can differentiate through
them. They differ in what the outer loop learns and how:

- ``maml``: the initialization, through the inner steps (second order);
- ``fomaml``: the same, with the inner gradients treated as constants (first order);
- ``metasgd``: the initialization and a learning rate for every parameter;
- ``anil``: the initialization, with the inner loop adapting the last layer only;
- ``reptile``: the initialization, moved towards the weights each task adapts to.

:class:`PrototypicalNetwork` is the metric-based baseline: it learns an embedding and no inner loop.

>>> import numpy as np, torch
>>> from automl.learn2learn.series import sinusoid
>>> net = torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 1))
>>> learner = MetaLearner(net, "maml", "regression")
>>> rng = np.random.default_rng(0)
>>> loss = learner.meta_step([sinusoid().episode(rng, 5, 10) for _ in range(4)])
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from automl.errors import ConfigError
from automl.learn2learn.series import CLASSIFICATION, REGRESSION, Episode, TaskSeries

GRADIENT_ALGORITHMS = ("maml", "fomaml", "metasgd", "anil", "reptile")  # MetaLearner's: one shared inner loop
# ... MAML++ (automl.learn2learn.maml_plus_plus), PrototypicalNetwork (classification) and the model-based
# AttentiveLearner (automl.learn2learn.attentive)
ALGORITHMS = (*GRADIENT_ALGORITHMS, "maml++", "protonet", "attentive")
NO_INNER_LOOP = ("protonet", "attentive")  # no learning rate or steps to adapt with
CLASSIFICATION_ONLY = ("protonet",)
Params = dict[str, torch.Tensor]
MIN_LR_SHARE = 0.05  # a Prototypical Network's learning rate decays to this share of its first by the run's end


def example_tensors(X: np.ndarray, y: np.ndarray, task: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples as tensors on ``device``: float inputs, float (regression) or class labels."""
    label = torch.float32 if task == REGRESSION else torch.int64
    return torch.as_tensor(X, dtype=torch.float32, device=device), torch.as_tensor(y, dtype=label, device=device)


def episode_tensors(episode: Episode, task: str, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(X_support, y_support, X_query, y_query) as tensors on ``device``."""
    return (*example_tensors(episode.X_support, episode.y_support, task, device),
            *example_tensors(episode.X_query, episode.y_query, task, device))


def task_loss(model: nn.Module, params: Params, X: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Mean squared error (regression) or cross-entropy (classification) of ``model`` run with ``params``."""
    output = functional_call(model, params, (X,))
    if task == REGRESSION:
        return torch.mean((output.reshape(y.shape) - y) ** 2)
    return nn.functional.cross_entropy(output, y)


def adapt(model: nn.Module, params: Params, X: torch.Tensor, y: torch.Tensor, task: str, steps: int,
          rates: Params, adapted: Sequence[str], second_order: bool) -> Params:
    """``params`` after ``steps`` gradient steps on ``(X, y)``, each parameter named in ``adapted`` at its rate.

    The gradients come from ``torch.func.grad``, so the loop runs inside
    ``vmap`` too. With ``second_order`` the steps stay on the autograd graph,
    so a loss of the result can be differentiated back to ``params`` (and to
    ``rates``); without, the inner gradients are constants.
    """
    def loss_of(moving: Params, fixed: Params) -> torch.Tensor:
        return task_loss(model, {**fixed, **moving}, X, y, task)

    for _ in range(steps):
        moving = {name: params[name] for name in adapted}
        grads = torch.func.grad(loss_of)(moving, params)
        params = dict(params)
        for name in adapted:
            params[name] = params[name] - rates[name] * (grads[name] if second_order else grads[name].detach())
    return params


def move_optimizer_state(optimizer: torch.optim.Optimizer | None, device: torch.device) -> None:
    """The optimizer's moments moved to ``device`` with the tensors they belong to."""
    if optimizer is None:
        return
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)


class MetaLearner:
    """Meta-trains ``model``'s initialization (and, for Meta-SGD, its learning rates) across episodes."""

    def __init__(self, model: nn.Module, algorithm: str, task: str, inner_lr: float = 0.01, outer_lr: float = 0.001,
                 inner_steps: int = 1, device: str | torch.device = "cpu"):
        if algorithm not in GRADIENT_ALGORITHMS:
            raise ConfigError(f"unknown meta-learning algorithm {algorithm!r}: "
                              f"choose one of {list(GRADIENT_ALGORITHMS)}")
        if inner_steps < 1 or not inner_lr > 0 or not outer_lr > 0:
            raise ConfigError(f"inner_steps must be at least 1 and both learning rates positive, "
                              f"got {inner_steps}, {inner_lr}, {outer_lr}")
        self.model, self.algorithm, self.task = model.to(device), algorithm, task
        self.inner_steps, self.device = inner_steps, torch.device(device)
        self.params: Params = {name: p.detach().clone().requires_grad_(True) for name, p in model.named_parameters()}
        names = list(self.params)
        self.adapted = names[-2:] if algorithm == "anil" else names  # ANIL: the last layer's weight and bias
        self.rates: Params = {name: torch.full_like(self.params[name], inner_lr, requires_grad=algorithm == "metasgd")
                              for name in self.adapted}
        groups = [{"params": list(self.params.values())}]
        if algorithm == "metasgd":  # Adam's steps are about lr in size: scaled to the rates' own size
            groups.append({"params": list(self.rates.values()), "lr": outer_lr * inner_lr})
        self.optimizer = torch.optim.Adam(groups, lr=outer_lr) if algorithm != "reptile" else None
        self.outer_lr = outer_lr

    def tensors(self, episode: Episode) -> tuple[torch.Tensor, ...]:
        """An episode's arrays as tensors on the learner's device."""
        return episode_tensors(episode, self.task, self.device)

    def meta_loss(self, episodes: Sequence[Episode]) -> torch.Tensor:
        """The mean query loss over ``episodes`` after adapting on each support set (on the graph for the outer step).

        Episodes of one shape (the usual batch) are adapted at once, vectorised with ``torch.func.vmap``.
        """
        second_order = self.algorithm in ("maml", "metasgd", "anil")

        def episode_loss(Xs: torch.Tensor, ys: torch.Tensor, Xq: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
            adapted = adapt(self.model, self.params, Xs, ys, self.task, self.inner_steps, self.rates, self.adapted,
                            second_order)
            return task_loss(self.model, adapted, Xq, yq, self.task)

        batches = [self.tensors(episode) for episode in episodes]
        if len({tuple(tuple(t.shape) for t in batch) for batch in batches}) == 1:
            return torch.func.vmap(episode_loss)(*(torch.stack(parts) for parts in zip(*batches))).mean()
        return torch.stack([episode_loss(*batch) for batch in batches]).mean()

    def meta_step(self, episodes: Sequence[Episode]) -> float:
        """One outer update from a batch of episodes; the batch's mean query loss after adaptation."""
        if self.algorithm == "reptile":
            return self._reptile_step(episodes)
        self.optimizer.zero_grad()
        loss = self.meta_loss(episodes)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def _reptile_step(self, episodes: Sequence[Episode]) -> float:
        """Move the initialization towards the mean of the weights each task adapts to (on all its examples)."""
        moves = {name: torch.zeros_like(p) for name, p in self.params.items()}
        losses = []
        for episode in episodes:
            Xs, ys, Xq, yq = self.tensors(episode)
            X, y = torch.cat([Xs, Xq]), torch.cat([ys, yq])
            adapted = adapt(self.model, self.params, X, y, self.task, self.inner_steps, self.rates, self.adapted, False)
            losses.append(float(task_loss(self.model, adapted, Xq, yq, self.task).detach()))
            for name in moves:
                moves[name] += (adapted[name] - self.params[name]).detach() / len(episodes)
        with torch.no_grad():
            for name, move in moves.items():
                self.params[name] += self.outer_lr * move
        return float(np.mean(losses))

    def schedule(self, fraction: float) -> None:
        """Where training stands (the share of its planned time spent): these algorithms keep no schedule."""

    def learned(self) -> dict[str, Params]:
        """What meta-training learns, by group: the initialization and the inner learning rates."""
        return {"params": self.params, "rates": self.rates}

    def state(self) -> dict[str, Params]:
        """A copy of what meta-training learns, to restore a checkpoint."""
        return copy.deepcopy(self.learned())

    def restore(self, state: dict[str, Params]) -> None:
        """Copy a checkpoint back in place (the optimizer keeps training the same tensors)."""
        learned = self.learned()
        with torch.no_grad():
            for group, saved in state.items():
                for name, value in saved.items():
                    learned[group][name].copy_(value)

    def to(self, device: str | torch.device) -> MetaLearner:
        """Move the network, what it learns and the optimizer's state to ``device``, in place (the optimizer goes on
        training the same tensors; a CPU copy travels to any machine)."""
        self.device = torch.device(device)
        self.model.to(self.device)
        for group in self.learned().values():
            for tensor in group.values():
                tensor.data = tensor.data.to(self.device)
        move_optimizer_state(self.optimizer, self.device)
        return self

    def _example_tensors(self, X: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return example_tensors(X, y, self.task, self.device)

    def adapted_params(self, X: np.ndarray, y: np.ndarray, steps: int | None = None) -> Params:
        """The parameters after adapting the learned initialization on ``(X, y)`` (detached: ready to predict)."""
        Xs, ys = self._example_tensors(X, y)
        adapted = adapt(self.model, self.params, Xs, ys, self.task, steps or self.inner_steps, self.rates, self.adapted,
                        False)
        return {name: value.detach() for name, value in adapted.items()}

    def _episode_metric(self, Xs: torch.Tensor, ys: torch.Tensor, Xq: torch.Tensor, yq: torch.Tensor,
                        steps: int | None) -> torch.Tensor:
        """One episode's query MSE or accuracy after adapting on its support set."""
        adapted = adapt(self.model, self.params, Xs, ys, self.task, steps or self.inner_steps, self.rates,
                        self.adapted, False)
        output = functional_call(self.model, adapted, (Xq,))
        if self.task == REGRESSION:
            return torch.mean((output.reshape(yq.shape) - yq) ** 2)
        return (output.argmax(dim=1) == yq).float().mean()

    def episode_metrics(self, episodes: Sequence[Episode], steps: int | None = None) -> np.ndarray:
        """Each episode's query MSE (regression) or accuracy (classification) after adapting on its support set.

        Episodes of one shape are adapted at once (``vmap``), in chunks that bound the memory used.
        """
        def metric(Xs: torch.Tensor, ys: torch.Tensor, Xq: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
            return self._episode_metric(Xs, ys, Xq, yq, steps)

        values = []
        with torch.no_grad():  # torch.func.grad still takes the inner steps' gradients
            for chunk in _chunks(episodes):
                batches = [self.tensors(episode) for episode in chunk]
                if len({tuple(tuple(t.shape) for t in batch) for batch in batches}) == 1:
                    values += torch.func.vmap(metric)(*(torch.stack(parts) for parts in zip(*batches))).tolist()
                else:
                    values += [float(metric(*batch)) for batch in batches]
        return np.asarray(values)


def _chunks(episodes: Sequence[Episode], examples: int = 4000) -> list[Sequence[Episode]]:
    """``episodes`` in runs of about ``examples`` examples at most (at least one episode each)."""
    size = len(episodes[0].X_support) + len(episodes[0].X_query) if len(episodes) else 1
    step = max(1, examples // size)
    return [episodes[i:i + step] for i in range(0, len(episodes), step)]


class OutputPredictions:
    """``predict`` and ``predict_proba`` of a network adapted to one task, from its raw outputs (``_outputs``): the
    value for regression, else the best of the task's classes (``classes_``, in the order of the outputs)."""

    task: str
    classes_: np.ndarray | None

    def _outputs(self, X: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

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


def anneal(optimizer: torch.optim.Optimizer, rate: float, fraction: float, floor_share: float = MIN_LR_SHARE) -> None:
    """Set ``optimizer``'s learning rate by cosine annealing from ``rate`` to ``floor_share`` of it, ``fraction`` of
    the way through the planned run."""
    low = floor_share * rate
    for group in optimizer.param_groups:
        group["lr"] = low + 0.5 * (rate - low) * (1 + math.cos(math.pi * fraction))


class NetworkLearner:
    """A learner whose whole state is one network trained by Adam (Prototypical Networks, the attentive learner):
    its checkpoints, device moves and cosine-annealed learning rate."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    outer_lr: float
    device: torch.device

    def schedule(self, fraction: float) -> None:
        """Cosine annealing of the learning rate over the planned run (to ``MIN_LR_SHARE`` of it)."""
        anneal(self.optimizer, self.outer_lr, fraction)

    def state(self) -> dict[str, torch.Tensor]:
        """A copy of the network's weights, to restore a checkpoint."""
        return copy.deepcopy(self.model.state_dict())

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

    def to(self, device: str | torch.device) -> NetworkLearner:
        """Move the network and the optimizer's state to ``device``, in place."""
        self.device = torch.device(device)
        self.model.to(self.device)
        move_optimizer_state(self.optimizer, self.device)
        return self


class PrototypicalNetwork(NetworkLearner):
    """Prototypical Networks (Snell et al. 2017), the metric-based baseline: no inner loop at all.

    ``model`` embeds examples; a class's prototype is the mean embedding of its
    support examples, and a query is classified by its (negative squared)
    distances to the prototypes. Meta-training learns the embedding so that
    this works on new classes.
    """

    algorithm = "protonet"
    task = CLASSIFICATION

    def __init__(self, model: nn.Module, outer_lr: float = 0.001, device: str | torch.device = "cpu"):
        self.model, self.device = model.to(device), torch.device(device)
        self.outer_lr = outer_lr
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=outer_lr)

    def logits(self, X_support: torch.Tensor, y_support: torch.Tensor, X_query: torch.Tensor) -> torch.Tensor:
        """Negative squared distances of each query embedding to each class prototype."""
        support, query = self.model(X_support), self.model(X_query)
        ways = int(y_support.max()) + 1
        prototypes = torch.stack([support[y_support == label].mean(dim=0) for label in range(ways)])
        return -torch.cdist(query, prototypes) ** 2

    def meta_step(self, episodes: Sequence[Episode]) -> float:
        """One update of the embedding from a batch of classification episodes; their mean query loss."""
        self.optimizer.zero_grad()
        losses = []
        for episode in episodes:
            Xs, ys, Xq, yq = episode_tensors(episode, episode.task, self.device)
            losses.append(nn.functional.cross_entropy(self.logits(Xs, ys, Xq), yq))
        loss = torch.stack(losses).mean()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def episode_metrics(self, episodes: Sequence[Episode], steps: int | None = None) -> np.ndarray:
        """Each episode's query accuracy, classified from its support set (``steps`` is unused: no inner loop)."""
        values = []
        with torch.no_grad():
            for episode in episodes:
                Xs, ys, Xq, yq = episode_tensors(episode, episode.task, self.device)
                values.append(float((self.logits(Xs, ys, Xq).argmax(dim=1) == yq).float().mean()))
        return np.asarray(values)

    def prototypes(self, X: np.ndarray, y: np.ndarray) -> torch.Tensor:
        """The mean embedding of each class of ``(X, y)``, labels 0..ways-1: what ProtoNets "adapt" to a task."""
        Xs, ys = example_tensors(X, y, CLASSIFICATION, self.device)
        with torch.no_grad():
            support = self.model(Xs)
            return torch.stack([support[ys == label].mean(dim=0) for label in range(int(ys.max()) + 1)])


@dataclass(frozen=True)
class Evaluation:
    """A meta-learner's mean metric over new episodes, with the half-width of its 95 % confidence interval."""

    metric: str  # "mse" (regression) or "accuracy" (classification)
    mean: float
    ci95: float
    episodes: int

    def __str__(self) -> str:
        return f"{self.metric} {self.mean:.4f} ± {self.ci95:.4f} (95 % CI, {self.episodes} episodes)"


def evaluate(learner: MetaLearner | PrototypicalNetwork, series: TaskSeries, shots: int, query: int = 15,
             ways: int | None = None, episodes: int = 600, steps: int | None = None, seed: int = 0) -> Evaluation:
    """Mean query MSE or accuracy over ``episodes`` new episodes of ``series``, each adapted from its support set."""
    rng = np.random.default_rng(seed)
    values = learner.episode_metrics([series.episode(rng, shots, query, ways) for _ in range(episodes)], steps)
    metric = "mse" if series.task == REGRESSION else "accuracy"
    spread = 1.96 * float(np.std(values, ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return Evaluation(metric, float(np.mean(values)), spread, len(values))
