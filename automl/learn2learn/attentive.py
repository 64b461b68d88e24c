"""The model-based meta-learner: a network that reads a task's support set and predicts its queries, no gradient steps.

Optimization-based learners (MAML and its family) adapt weights to a new
task; metric-based ones (Prototypical Networks) compare embeddings. A
model-based learner (Santoro et al.'s memory-augmented networks, Garnelo et
al.'s neural processes, Kim et al.'s attentive neural processes) makes
learning itself a forward pass: the support pairs go in as a set, and the
network learns, across tasks, to read from them what a query's answer is.

:class:`AttentiveNetwork` is a small transformer of that kind. Each support
pair ``(x, y)`` becomes a token (the encoder's embedding of ``x`` joined with
an embedding of ``y``: the value for regression, the one-hot class for
classification); the tokens attend to each other (self-attention over the
set, so each knows the rest of the task); each query's embedding then attends
to the support embeddings (cross-attention keyed on inputs, reading the
tokens) and a decoder turns what it read into the prediction. For
classification the attention also votes directly: each support example's
weight, from how close its embedding is to the query's (scaled cosine
similarity, as in Vinyals et al.'s matching networks), goes to its class, and
the log of each class's share is added to the decoder's logits. Without it,
attention over a 20-way support set starts almost uniform and the network
stays at chance for minutes of a CPU; with it, it learns from the first step
and the transformer refines. The encoder is
the series' usual network: an MLP for vectors, the 4-block CNN for images.
Predictions of one query never depend on the other queries.

>>> import numpy as np, torch
>>> from automl.learn2learn.series import sinusoid
>>> encoder = torch.nn.Sequential(torch.nn.Linear(1, EMBED), torch.nn.ReLU())
>>> learner = AttentiveLearner(AttentiveNetwork(encoder, label_size=1, outputs=1), "regression")
>>> loss = learner.meta_step([sinusoid().episode(np.random.default_rng(0), 5, 10) for _ in range(4)])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from automl.errors import ConfigError
from automl.learn2learn.algorithms import NetworkLearner, OutputPredictions, episode_tensors, example_tensors
from automl.learn2learn.series import CLASSIFICATION, REGRESSION, Episode

EMBED = 64  # the tokens' size
HEADS = 4
LAYERS = 2  # self-attention layers over the support set
VOTE_SHARPNESS = 10.0  # the similarity votes' starting sharpness (a softmax temperature of 0.1 on cosines)
VOTE_FLOOR = 1e-6  # keeps the log of a class no support example votes for finite


class AttentiveNetwork(nn.Module):
    """Support pairs and query inputs in, query predictions out (see the module docstring).

    ``label_size``: 1 for regression, the most classes a task may have for classification (one-hot labels).
    """

    def __init__(self, encoder: nn.Module, label_size: int, outputs: int, embed: int = EMBED):
        super().__init__()
        self.encoder, self.label_size = encoder, label_size
        self.per_episode = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in encoder.modules())
        self.label = nn.Linear(label_size, embed)
        self.pair = nn.Sequential(nn.Linear(2 * embed, embed), nn.ReLU(), nn.Linear(embed, embed))
        layer = nn.TransformerEncoderLayer(embed, HEADS, 2 * embed, dropout=0.0, batch_first=True)
        self.support = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.cross = nn.MultiheadAttention(embed, HEADS, batch_first=True)
        self.decoder = nn.Sequential(nn.Linear(2 * embed, embed), nn.ReLU(), nn.Linear(embed, embed), nn.ReLU(),
                                     nn.Linear(embed, outputs))
        # classification: how sharply the similarity votes pick the nearest support examples (learned)
        self.sharpness = nn.Parameter(torch.tensor(VOTE_SHARPNESS)) if label_size > 1 else None

    def labels(self, y: torch.Tensor) -> torch.Tensor:
        """Labels as the label layer reads them: values in a column, or one-hot classes."""
        if y.dtype.is_floating_point:
            return y.reshape(*y.shape, 1)
        return nn.functional.one_hot(y, self.label_size).float()

    def forward(self, X_support: torch.Tensor, y_support: torch.Tensor, X_query: torch.Tensor) -> torch.Tensor:
        """Predictions for the queries of a batch of episodes: ``X_*`` shaped (episodes, examples, ...)."""
        n_support = X_support.shape[1]
        examples = torch.cat([X_support, X_query], dim=1)
        if self.per_episode:  # batch norm's statistics are each episode's own
            embedded = torch.stack([self.encoder(episode) for episode in examples])
        else:
            embedded = self.encoder(examples.flatten(0, 1)).unflatten(0, examples.shape[:2])
        keys, queries = embedded[:, :n_support], embedded[:, n_support:]
        tokens = self.support(self.pair(torch.cat([keys, self.label(self.labels(y_support))], dim=-1)))
        read, _ = self.cross(queries, keys, tokens, need_weights=False)
        decoded = self.decoder(torch.cat([queries, read], dim=-1))
        if getattr(self, "sharpness", None) is None:  # regression (or a file saved before the votes)
            return decoded
        similarity = nn.functional.normalize(queries, dim=-1) @ nn.functional.normalize(keys, dim=-1).transpose(1, 2)
        votes = torch.softmax(self.sharpness * similarity, dim=-1) @ self.labels(y_support)
        return decoded + torch.log(votes + VOTE_FLOOR)


class AttentiveLearner(NetworkLearner):
    """Meta-trains an :class:`AttentiveNetwork` across episodes: the query loss of one forward pass per episode."""

    algorithm = "attentive"

    def __init__(self, model: AttentiveNetwork, task: str, outer_lr: float = 0.001,
                 device: str | torch.device = "cpu"):
        self.model, self.task, self.device = model.to(device), task, torch.device(device)
        self.outer_lr = outer_lr
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=outer_lr)

    def _loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == REGRESSION:
            return torch.mean((output.reshape(y.shape) - y) ** 2)
        return nn.functional.cross_entropy(output.reshape(-1, output.shape[-1]), y.reshape(-1))

    def _batches(self, episodes: Sequence[Episode]) -> list[tuple[torch.Tensor, ...]]:
        """Episodes of one shape stacked into one batch each."""
        groups: dict[tuple, list[tuple[torch.Tensor, ...]]] = {}
        for episode in episodes:
            tensors = episode_tensors(episode, self.task, self.device)
            groups.setdefault(tuple(tuple(t.shape) for t in tensors), []).append(tensors)
        return [tuple(torch.stack(parts) for parts in zip(*group)) for group in groups.values()]

    def meta_step(self, episodes: Sequence[Episode]) -> float:
        """One update from a batch of episodes; their mean query loss."""
        self.model.train()
        self.optimizer.zero_grad()
        losses = [self._loss(self.model(Xs, ys, Xq), yq) * len(Xs) for Xs, ys, Xq, yq in self._batches(episodes)]
        loss = torch.stack(losses).sum() / len(episodes)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def episode_metrics(self, episodes: Sequence[Episode], steps: int | None = None) -> np.ndarray:
        """Each episode's query MSE or accuracy, read from its support set (``steps`` is unused: no inner loop)."""
        values = []
        with torch.no_grad():
            for episode in episodes:
                Xs, ys, Xq, yq = (t.unsqueeze(0) for t in episode_tensors(episode, self.task, self.device))
                output = self.model(Xs, ys, Xq)[0]
                if self.task == REGRESSION:
                    values.append(float(torch.mean((output.reshape(yq[0].shape) - yq[0]) ** 2)))
                else:  # an episode of fewer ways than trained for: its classes' outputs only
                    ways = int(ys.max()) + 1
                    values.append(float((output[:, :ways].argmax(dim=1) == yq[0]).float().mean()))
        return np.asarray(values)

    def read(self, X: np.ndarray, y: np.ndarray, classes: np.ndarray | None) -> SupportReader:
        """The network holding one task's support set, ready to predict its queries."""
        outputs = self.model.decoder[-1].out_features
        if self.task == CLASSIFICATION and len(classes) > outputs:
            raise ConfigError(f"the support set has {len(classes)} classes but this network was meta-trained for "
                              f"{outputs}-way tasks; meta-train with ways={len(classes)}")
        Xs, ys = example_tensors(X, y, self.task, self.device)
        return SupportReader(self.model, Xs, ys, self.task, classes)


@dataclass
class SupportReader(OutputPredictions):
    """A meta-trained attentive network with one task's support set: ``predict`` (and ``predict_proba``)."""

    model: AttentiveNetwork
    X_support: torch.Tensor
    y_support: torch.Tensor
    task: str
    classes_: np.ndarray | None = None

    def _outputs(self, X: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            query = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.X_support.device)
            return self.model(self.X_support[None], self.y_support[None], query[None])[0].cpu()

