"""Torch networks as scikit-learn estimators: a tabular MLP and a small CNN.

Both follow scikit-learn's estimator contract (``__init__`` stores
parameters, ``fit`` returns ``self``, learned state ends in ``_``), so the
engine treats them like any other learner. What they add:

- the device is chosen automatically (``device="auto"``: a GPU where there is one);
- training is seeded, and stops early on a validation split held out of the
  training rows, keeping the best epoch's weights;
- ``on_epoch(epoch, estimator)`` is called after every epoch, which is how the
  evaluator reports intermediate scores to pruners (successive halving,
  Hyperband, ASHA) and how it stops a poor trial early;
- the MLP embeds the columns named by ``categorical_mask`` (integer codes, NaN
  for missing) and feeds the rest as numbers; the CNN reshapes each row into
  an image (``image_shape``, or inferred from the number of columns);
- with ``prune_amount`` (magnitude, or ``prune_structured`` for whole neurons
  and channels, then up to ``finetune_epochs`` at a third of the learning
  rate with the masks in force, stopping early on the validation loss; the
  output layer is not pruned) and ``quantize`` (int8 dynamic quantization of the Linear
  layers; the model then predicts on the CPU), the network is compressed at the
  end of ``fit`` (:mod:`searchspaces.networks.compression`); ``compression_`` reports
  what that achieved, and the pickled model stores the zeros compactly.

>>> import numpy as np
>>> from searchspaces.networks.estimators import TorchMLPClassifier
>>> X = np.random.default_rng(0).normal(size=(200, 5)); y = (X[:, 0] > 0).astype(int)
>>> TorchMLPClassifier(epochs=30, learning_rate=1e-2, device="cpu").fit(X, y).score(X, y) > 0.9
True
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch._dynamo  # noqa: F401  # an optimiser's first step imports it (a second); here, forked workers inherit it
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from torch import nn

from searchspaces.networks import compression
from searchspaces.networks.layers import (
    ACTIVATIONS,
    NORMS,
    POOLINGS,
    SCHEDULES,
    ImageNet,
    TabularNet,
    infer_image_shape,
    pick_device,
)

PREDICT_BATCH = 4096


class _TorchEstimator(BaseEstimator):
    """Training loop shared by the MLP and the CNN; subclasses build the network and pick the loss."""

    _is_classifier = False

    # -- the network (subclasses) -------------------------------------------

    def _make_network(self, n_features: int, n_out: int) -> nn.Module:
        raise NotImplementedError

    def _split_columns(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Numeric inputs (NaN as 0) and integer codes for embeddings (none by default)."""
        return np.nan_to_num(X, nan=0.0).astype(np.float32), np.zeros((len(X), 0), dtype=np.int64)

    # -- fitting ------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> _TorchEstimator:
        """Train for ``epochs`` (fewer if validation loss stops improving); with ``warm_start``, continue."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-d array of features, got shape {X.shape}")
        y = np.asarray(y)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        compression.check_options(self.prune_amount, self.prune_structured, self.finetune_epochs, self.quantize)
        if self.warm_start and hasattr(self, "network_") and compression.is_quantized(self.network_):
            raise ValueError("a quantized network cannot be trained further; fit again with warm_start=False")
        if self.warm_start and hasattr(self, "network_"):
            self._set_data(X, self._encode_target(y))  # keep the network, train on the data given now
        else:
            self._start(X, y)
        if self.device_.type == "cpu" and self.n_jobs:
            torch.set_num_threads(int(self.n_jobs))
        self._train(self.epochs)
        self._compress()
        return self

    def _start(self, X: np.ndarray, y: np.ndarray) -> None:
        torch.manual_seed(self.random_state)
        self.n_features_in_ = X.shape[1]
        self.device_ = pick_device(self.device)
        self._set_data(X, self._encode_target(y), fit_columns=True)
        n_out = len(self.classes_) if self._is_classifier else 1
        self.network_ = self._make_network(X.shape[1], n_out).to(self.device_)
        self.optimizer_ = torch.optim.AdamW(self.network_.parameters(), lr=self.learning_rate,
                                            weight_decay=self.weight_decay)
        self.n_epochs_ = 0
        self.best_epoch_ = 0
        self.best_loss_ = math.inf
        self.validation_losses_: list[float] = []
        self._best_state: dict[str, torch.Tensor] | None = None
        self.stopped_early_ = False
        self._generator = torch.Generator().manual_seed(self.random_state)

    def _set_data(self, X: np.ndarray, target: np.ndarray, fit_columns: bool = False) -> None:
        """Hold out the validation rows (seeded, stratified where possible) and move both parts to the device."""
        rows = np.arange(len(X))
        valid = np.array([], dtype=int)
        if self.validation_fraction and len(X) >= 20:
            stratify = target if self._is_classifier and np.bincount(target).min() >= 2 else None
            try:
                rows, valid = train_test_split(rows, test_size=self.validation_fraction, random_state=self.random_state,
                                               stratify=stratify)
            except ValueError:  # too few rows of some class for a stratified split
                rows, valid = train_test_split(rows, test_size=self.validation_fraction, random_state=self.random_state)
        if fit_columns:
            self._fit_columns(X[rows])
        self._train_data = self._tensors(X[rows], target[rows])
        self._valid_data = self._tensors(X[valid], target[valid]) if len(valid) else None

    def _fit_columns(self, X: np.ndarray) -> None:
        """Learn what the column split needs from the training rows (cardinalities, for the MLP)."""

    def _tensors(self, X: np.ndarray, target: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        numeric, codes = self._split_columns(X)
        kind = torch.long if self._is_classifier else torch.float32
        return (torch.from_numpy(numeric).to(self.device_), torch.from_numpy(codes).to(self.device_),
                torch.as_tensor(target, dtype=kind).to(self.device_))

    def _learning_rate_at(self, epoch: int) -> float:
        if self.schedule == "cosine":
            return self.learning_rate * 0.5 * (1 + math.cos(math.pi * min(epoch, self.epochs) / max(1, self.epochs)))
        if self.schedule == "step":
            return self.learning_rate * (0.1 ** (epoch // max(1, self.epochs // 3)))
        return self.learning_rate

    def _train_epoch(self, optimizer: torch.optim.Optimizer, loss_fn: Callable) -> None:
        """One pass over the training rows in seeded random batches."""
        numeric, codes, target = self._train_data
        n = len(target)
        batch = max(1, min(int(self.batch_size), n))
        self.network_.train()
        order = torch.randperm(n, generator=self._generator).to(self.device_)
        for start in range(0, n, batch):
            index = order[start:start + batch]
            if len(index) < 2 and n >= 2:  # batch normalisation needs two rows
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(self._output(self.network_(numeric[index], codes[index])), target[index])
            loss.backward()
            optimizer.step()

    def _validation_loss(self, loss_fn: Callable) -> float:
        """The loss on the held-out rows (NaN without them)."""
        if self._valid_data is None:
            return math.nan
        numeric, codes, target = self._valid_data
        self.network_.eval()
        with torch.no_grad():
            return float(loss_fn(self._output(self.network_(numeric, codes)), target))

    def _train(self, until: int) -> None:
        loss_fn = self._loss()
        while self.n_epochs_ < until and not self.stopped_early_:
            for group in self.optimizer_.param_groups:
                group["lr"] = self._learning_rate_at(self.n_epochs_)
            self._train_epoch(self.optimizer_, loss_fn)
            self.n_epochs_ += 1
            self._after_epoch(loss_fn)
            if self.on_epoch is not None:
                self.on_epoch(self.n_epochs_, self)
        if self._best_state is not None:
            self.network_.load_state_dict(self._best_state)

    def _after_epoch(self, loss_fn: Callable) -> None:
        """Track the validation loss; keep the best weights; stop after ``patience`` epochs without progress."""
        if self._valid_data is None:
            self.best_epoch_ = self.n_epochs_
            return
        loss = self._validation_loss(loss_fn)
        self.validation_losses_.append(loss)
        if loss < self.best_loss_ - 1e-7:
            self.best_loss_, self.best_epoch_ = loss, self.n_epochs_
            self._best_state = {k: v.detach().clone() for k, v in self.network_.state_dict().items()}
        elif self.patience and self.n_epochs_ - self.best_epoch_ >= self.patience:
            self.stopped_early_ = True

    # -- compression --------------------------------------------------------

    def _compress(self) -> None:
        """Prune (fine-tune with the masks in force, then make it permanent) and quantize, as the options ask."""
        amount, quantize = float(self.prune_amount), bool(self.quantize)
        if amount <= 0 and not quantize:
            self.compression_ = None
            return
        bytes_before = compression.serialized_bytes(compression.dense_state(self.network_))
        tuned = 0
        if amount > 0:
            compression.prune_network(self.network_, amount, bool(self.prune_structured))
            tuned = self._finetune(int(self.finetune_epochs))
            compression.make_permanent(self.network_)
        n_parameters, n_nonzero = compression.count_parameters(self.network_)
        zeroed = compression.zeroed_share(self.network_)
        if quantize:
            self.network_ = compression.quantize_network(self.network_)
            self.device_ = torch.device("cpu")  # quantized kernels run on the CPU only
            self.optimizer_ = None
        bytes_after = compression.serialized_bytes(compression.pack_state(self.network_.state_dict()))
        self.compression_ = compression.CompressionReport(
            prune_amount=amount, prune_structured=bool(self.prune_structured) and amount > 0, quantized=quantize,
            finetune_epochs=tuned, zeroed_share=zeroed,
            n_parameters=n_parameters, n_nonzero=n_nonzero, bytes_before=bytes_before, bytes_after=bytes_after,
        )

    def _finetune(self, epochs: int) -> int:
        """Train the pruned network (masks in force) up to ``epochs`` more at a lowered rate; keep its best epoch.

        The best epoch is the one of least validation loss, counting the
        pruned network before any fine-tuning; fine-tuning stops after
        ``compression.FINETUNE_PATIENCE`` epochs without a better one. Without
        validation rows it runs every epoch and keeps the last. Returns the
        number of epochs run.
        """
        if epochs <= 0:
            return 0
        loss_fn = self._loss()
        optimizer = torch.optim.AdamW(self.network_.parameters(), lr=self.learning_rate * compression.FINETUNE_LR_SCALE,
                                      weight_decay=self.weight_decay)
        best_loss, best_epoch = self._validation_loss(loss_fn), 0
        best_state = {k: v.detach().clone() for k, v in self.network_.state_dict().items()}
        for epoch in range(1, epochs + 1):
            self._train_epoch(optimizer, loss_fn)
            loss = self._validation_loss(loss_fn)
            if self._valid_data is None or loss < best_loss:
                best_loss, best_epoch = loss, epoch
                best_state = {k: v.detach().clone() for k, v in self.network_.state_dict().items()}
            elif epoch - best_epoch >= compression.FINETUNE_PATIENCE:
                break
        self.network_.load_state_dict(best_state)
        return epoch

    def _rebuild_network(self, packed: dict[str, Any]) -> nn.Module:
        """The compressed network again, from the packed weights a pickle holds (on the CPU)."""
        n_out = len(self.classes_) if self._is_classifier else 1
        with torch.random.fork_rng(devices=[]):  # building draws initial weights: leave the caller's seed alone
            network = self._make_network(self.n_features_in_, n_out)
        if self.compression_.quantized:
            network = compression.quantize_network(network)
        network.load_state_dict(compression.unpack_state(packed))
        return network.eval()

    # -- prediction ---------------------------------------------------------

    def _raw_predict(self, X: Any) -> np.ndarray:
        if not hasattr(self, "network_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got shape {X.shape}")
        numeric, codes = self._split_columns(X)
        self.network_.eval()
        outputs = []
        with torch.no_grad():
            for start in range(0, len(X), PREDICT_BATCH):
                part = slice(start, start + PREDICT_BATCH)
                out = self.network_(torch.from_numpy(numeric[part]).to(self.device_),
                                    torch.from_numpy(codes[part]).to(self.device_))
                outputs.append(self._output(out).float().cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, 1))

    def __getstate__(self) -> dict:
        """Pickle without training-only state (data tensors, callbacks), with weights on the CPU.

        A compressed network is stored as its packed weights (zeros as a
        bitmask, :func:`compression.pack_state`) and rebuilt on unpickling.
        """
        state = dict(self.__dict__)
        for key in ("_train_data", "_valid_data", "_best_state", "_generator", "optimizer_"):
            state.pop(key, None)
        state["on_epoch"] = None
        if "network_" in state:
            network = state.pop("network_")
            if getattr(self, "compression_", None) is not None:
                state["_packed_network"] = compression.pack_state(network.state_dict())
            else:  # a copy when on a GPU: moving the fitted network itself would strand it off its device_
                state["network_"] = (network if next(network.parameters(), torch.empty(0)).device.type == "cpu"
                                     else copy.deepcopy(network).to("cpu"))
            state["device_"] = torch.device("cpu")
        return state

    def __setstate__(self, state: dict) -> None:
        packed = state.pop("_packed_network", None)
        super().__setstate__(state)
        if packed is not None:
            self.network_ = self._rebuild_network(packed)


class _Classifier(ClassifierMixin):
    _is_classifier = True

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"classification needs at least two classes; y has only {self.classes_.tolist()}")
        return encoded

    def _loss(self) -> nn.Module:
        return nn.CrossEntropyLoss()

    def _output(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        logits = torch.from_numpy(self._raw_predict(X))
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        best = np.argmax(self.predict_proba(X), axis=1)
        return self.classes_[best]


class _Regressor(RegressorMixin):
    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        y = y.astype(np.float64)
        self.target_mean_, self.target_scale_ = float(np.mean(y)), float(np.std(y)) or 1.0
        return (y - self.target_mean_) / self.target_scale_

    def _loss(self) -> nn.Module:
        return nn.MSELoss()

    def _output(self, out: torch.Tensor) -> torch.Tensor:
        return out[:, 0]

    def predict(self, X: Any) -> np.ndarray:
        return self._raw_predict(X).astype(np.float64) * self.target_scale_ + self.target_mean_


class _MLP(_TorchEstimator):
    def __init__(self, hidden_layer_sizes: Sequence[int] = (128, 128), activation: str = "relu", norm: str = "none",
                 dropout: float = 0.1, residual: bool = False, categorical_mask: Sequence[bool] | None = None,
                 learning_rate: float = 1e-3, weight_decay: float = 1e-5, batch_size: int = 128,
                 schedule: str = "constant", epochs: int = 100, patience: int = 10, validation_fraction: float = 0.1,
                 warm_start: bool = False, on_epoch: Callable | None = None, device: str = "auto",
                 n_jobs: int | None = None, random_state: int = 0, prune_amount: float = 0.0,
                 prune_structured: bool = False, finetune_epochs: int = 10, quantize: bool = False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.norm = norm
        self.dropout = dropout
        self.residual = residual
        self.categorical_mask = categorical_mask
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.schedule = schedule
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.on_epoch = on_epoch
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.prune_amount = prune_amount
        self.prune_structured = prune_structured
        self.finetune_epochs = finetune_epochs
        self.quantize = quantize

    def _mask(self, n_features: int) -> np.ndarray:
        mask = np.zeros(n_features, dtype=bool)
        if self.categorical_mask is not None:
            given = np.asarray(self.categorical_mask, dtype=bool)
            mask[: min(len(given), n_features)] = given[:n_features]
        return mask

    def _fit_columns(self, X: np.ndarray) -> None:
        codes = X[:, self._mask(X.shape[1])]
        highest = np.nanmax(np.where(np.isnan(codes), -1, codes), axis=0) if codes.size else np.zeros(codes.shape[1])
        self.cardinalities_ = [int(h) + 2 for h in np.atleast_1d(highest)]  # + missing/unseen (0) and a code for 0

    def _split_columns(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = self._mask(X.shape[1])
        numeric = np.nan_to_num(X[:, ~mask], nan=0.0).astype(np.float32)
        raw = X[:, mask]
        codes = np.where(np.isnan(raw), 0, raw + 1).astype(np.int64)
        limits = np.asarray(getattr(self, "cardinalities_", []), dtype=np.int64)
        if codes.shape[1]:
            codes = np.where((codes < 0) | (codes >= limits), 0, codes)  # unseen levels share the missing code
        return numeric, codes

    def prediction_module(self) -> nn.Module:
        """The fitted network as one module from the raw feature matrix to probabilities (classification) or values,
        the input handling of :meth:`_split_columns` included: what ``torch.onnx`` exports
        (:mod:`automl.serving.export`)."""
        return _PredictionGraph(self)

    def _make_network(self, n_features: int, n_out: int) -> nn.Module:
        _require_one_of(self.activation, ACTIVATIONS, "activation")
        _require_one_of(self.norm, NORMS, "norm")
        _require_one_of(self.schedule, SCHEDULES, "schedule")
        n_numeric = int((~self._mask(n_features)).sum())
        return TabularNet(n_numeric, self.cardinalities_, [int(w) for w in self.hidden_layer_sizes], self.activation,
                          self.norm, float(self.dropout), bool(self.residual), n_out)


def _require_one_of(value: str, allowed: Any, name: str) -> None:
    """A clear error for an option outside the values the networks know."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")


class _CNN(_TorchEstimator):
    def __init__(self, channels: Sequence[int] = (16, 32), kernel_size: int = 3, pooling: str = "max",
                 head_width: int = 64, activation: str = "relu", norm: str = "batch", dropout: float = 0.1,
                 image_shape: Sequence[int] | None = None, learning_rate: float = 1e-3, weight_decay: float = 1e-5,
                 batch_size: int = 64, schedule: str = "constant", epochs: int = 50, patience: int = 10,
                 validation_fraction: float = 0.1, warm_start: bool = False, on_epoch: Callable | None = None,
                 device: str = "auto", n_jobs: int | None = None, random_state: int = 0, prune_amount: float = 0.0,
                 prune_structured: bool = False, finetune_epochs: int = 10, quantize: bool = False):
        self.channels = channels
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.head_width = head_width
        self.activation = activation
        self.norm = norm
        self.dropout = dropout
        self.image_shape = image_shape
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.schedule = schedule
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.on_epoch = on_epoch
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.prune_amount = prune_amount
        self.prune_structured = prune_structured
        self.finetune_epochs = finetune_epochs
        self.quantize = quantize

    def _make_network(self, n_features: int, n_out: int) -> nn.Module:
        _require_one_of(self.activation, ACTIVATIONS, "activation")
        _require_one_of(self.norm, NORMS, "norm")
        _require_one_of(self.pooling, POOLINGS, "pooling")
        _require_one_of(self.schedule, SCHEDULES, "schedule")
        self.image_shape_ = infer_image_shape(n_features, self.image_shape)
        return ImageNet(self.image_shape_, [int(c) for c in self.channels], int(self.kernel_size), self.pooling,
                        self.activation, self.norm, float(self.dropout), int(self.head_width), n_out)


class _PredictionGraph(nn.Module):
    """An MLP's prediction from its raw float input, written in torch operations only (see ``prediction_module``)."""

    def __init__(self, estimator: _MLP):
        super().__init__()
        self.network = estimator.network_.cpu()
        mask = estimator._mask(estimator.n_features_in_)
        self.register_buffer("numeric", torch.as_tensor(np.flatnonzero(~mask), dtype=torch.long))
        self.register_buffer("categorical", torch.as_tensor(np.flatnonzero(mask), dtype=torch.long))
        self.register_buffer("limits",
                             torch.as_tensor(np.asarray(getattr(estimator, "cardinalities_", []), dtype=np.int64)))
        self.classification = hasattr(estimator, "classes_")
        self.mean = float(getattr(estimator, "target_mean_", 0.0))
        self.scale = float(getattr(estimator, "target_scale_", 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        numeric = torch.nan_to_num(x.index_select(1, self.numeric), nan=0.0)
        raw = x.index_select(1, self.categorical)
        codes = torch.where(torch.isnan(raw), torch.zeros_like(raw), raw + 1).long()
        codes = torch.where((codes < 0) | (codes >= self.limits), torch.zeros_like(codes), codes)  # unseen: missing
        out = self.network(numeric, codes)
        return torch.softmax(out, dim=1) if self.classification else out[:, 0] * self.scale + self.mean


class TorchMLPClassifier(_Classifier, _MLP):
    """A multilayer perceptron for tabular classification (embeddings for categorical codes)."""


class TorchMLPRegressor(_Regressor, _MLP):
    """A multilayer perceptron for tabular regression (the target is standardised while training)."""


class TorchCNNClassifier(_Classifier, _CNN):
    """A small convolutional network for classifying image-shaped rows."""


class TorchCNNRegressor(_Regressor, _CNN):
    """A small convolutional network for regression on image-shaped rows."""
