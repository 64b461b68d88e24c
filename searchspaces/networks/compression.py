"""Pruning and int8 quantization of the torch networks, and a compact way to store what they leave.

The neural estimators (:mod:`searchspaces.networks.estimators`) call these at the end
of ``fit`` when asked to (``prune_amount``, ``prune_structured``,
``quantize``); this module holds the network-level steps so each stays small
and testable:

- :func:`prune_network` puts pruning masks on the Linear and Conv weights of
  every layer but the output layer: magnitude pruning (the ``amount`` of
  those weights smallest in absolute value, ranked across layers together)
  or structured pruning (``amount`` of each layer's output neurons or
  channels, by L2 norm). The output layer is left whole: it is small, and
  pruning it hard (global ranking does, its weights being small) silences
  classes and collapses the network at 90 %. The masks stay in force while
  the estimator fine-tunes, then :func:`make_permanent` folds them in.
- :func:`quantize_network` swaps the Linear layers for int8 dynamically
  quantized ones (the CNN's dense head; its convolutions stay float). The
  result runs on the CPU only.
- :func:`pack_state` / :func:`unpack_state` store a state dict with its zeros
  as a bitmask plus the non-zero values, so pruning shrinks the pickled model
  (and the engine's ``max_model_mb`` figure) instead of only zeroing numbers.

This module imports torch; import it only where torch is installed.
"""

from __future__ import annotations

import math
import pickle
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

MAX_PRUNE_AMOUNT = 0.95
FINETUNE_LR_SCALE = 0.3  # fine-tuning after pruning runs at this share of the training learning rate
FINETUNE_PATIENCE = 3  # ... and stops after this many epochs without a better validation loss
PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
MIN_SPARSE_SIZE = 64  # smaller tensors are stored dense
_PACKED = "__packed__"  # marks an encoded tensor inside a packed state dict


def check_options(prune_amount: float, prune_structured: bool, finetune_epochs: int, quantize: bool) -> None:
    """Raise ``ValueError`` naming the option that is out of range (called at the start of ``fit``)."""
    if isinstance(prune_amount, bool) or not isinstance(prune_amount, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(prune_amount) <= MAX_PRUNE_AMOUNT:
        raise ValueError(f"prune_amount must be a share of weights in [0, {MAX_PRUNE_AMOUNT}], got {prune_amount!r}")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, (int, np.integer)) or finetune_epochs < 0:
        raise ValueError(f"finetune_epochs must be a non-negative integer, got {finetune_epochs!r}")
    for name, value in (("prune_structured", prune_structured), ("quantize", quantize)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {value!r}")


@dataclass(frozen=True)
class CompressionReport:
    """What compressing a fitted network did (an estimator's ``compression_``).

    ``finetune_epochs`` counts the fine-tuning epochs actually run (early
    stopping may end them before the estimator's maximum). ``zeroed_share``
    is the share of all Linear/Conv weights that are exactly zero after
    pruning (the output layer is not pruned, so it is a little below
    ``prune_amount``); ``n_parameters`` counts every parameter, zeros
    included, and ``n_nonzero`` those that are not zero. The byte counts are
    of the network's weights pickled before compression (dense float) and as
    the estimator pickles them after (:func:`pack_state`).
    """

    prune_amount: float
    prune_structured: bool
    quantized: bool
    finetune_epochs: int
    zeroed_share: float
    n_parameters: int
    n_nonzero: int
    bytes_before: int
    bytes_after: int

    @property
    def size_ratio(self) -> float:
        """How many times smaller the stored weights are."""
        return self.bytes_before / self.bytes_after if self.bytes_after else math.nan


# -- pruning ------------------------------------------------------------------


def prunable_layers(network: nn.Module) -> list[nn.Module]:
    """The Linear and Conv layers whose weights pruning acts on, in module order."""
    return [m for m in network.modules() if isinstance(m, PRUNABLE)]


def prune_network(network: nn.Module, amount: float, structured: bool) -> None:
    """Put pruning masks on the Linear/Conv weights of every layer but the output layer (until :func:`make_permanent`).

    Magnitude: the ``amount`` of those weights smallest in absolute value,
    ranked across the layers together. Structured: in each of those layers,
    the ``amount`` of output neurons (rows) or channels of least L2 norm.
    """
    layers = prunable_layers(network)[:-1]  # the output layer keeps every weight
    if amount <= 0 or not layers:
        return
    if structured:
        for layer in layers:
            prune.ln_structured(layer, "weight", amount=float(amount), n=2, dim=0)
    else:
        prune.global_unstructured([(layer, "weight") for layer in layers], pruning_method=prune.L1Unstructured,
                                  amount=float(amount))


def make_permanent(network: nn.Module) -> None:
    """Fold every pruning mask into its weight and drop the reparametrisation."""
    for layer in prunable_layers(network):
        if prune.is_pruned(layer) and hasattr(layer, "weight_mask"):
            prune.remove(layer, "weight")


def zeroed_share(network: nn.Module) -> float:
    """The share of Linear/Conv weights that are exactly zero (0 for a network without such layers)."""
    weights = [layer.weight.detach() for layer in prunable_layers(network)]
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / total) if total else 0.0


def count_parameters(network: nn.Module) -> tuple[int, int]:
    """(all parameters, non-zero parameters) of a float network."""
    params = [p.detach() for p in network.parameters()]
    return sum(p.numel() for p in params), sum(int((p != 0).sum()) for p in params)


# -- quantization -------------------------------------------------------------


def quantize_network(network: nn.Module) -> nn.Module:
    """``network`` on the CPU with its Linear layers int8 dynamically quantized (weights int8, activations on the
    fly)."""
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as error:  # a torch that dropped eager-mode quantization
        raise ValueError("quantize=True needs torch.ao.quantization.quantize_dynamic, which this torch lacks: "
                         f"{error}") from error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.10+ flags eager-mode quantization as deprecated; it still works
        return quantize_dynamic(network.to("cpu").eval(), {nn.Linear}, dtype=torch.qint8)


def is_quantized(network: nn.Module) -> bool:
    """Whether ``network`` holds dynamically quantized layers."""
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in network.modules())


# -- compact storage ----------------------------------------------------------


def _encode_values(values: np.ndarray) -> dict[str, Any]:
    """Dense values, or a bitmask of the non-zeros plus the non-zeros when that is smaller."""
    flat = values.reshape(-1)
    nonzero = flat != 0
    sparse_bytes = math.ceil(flat.size / 8) + int(nonzero.sum()) * flat.itemsize
    if flat.size >= MIN_SPARSE_SIZE and sparse_bytes < 0.9 * flat.nbytes:
        return {"shape": values.shape, "dtype": values.dtype.str, "mask": np.packbits(nonzero), "values": flat[nonzero]}
    return {"dense": values}


def _decode_values(entry: Mapping[str, Any]) -> np.ndarray:
    if "dense" in entry:
        return entry["dense"]
    size = int(np.prod(entry["shape"]))
    mask = np.unpackbits(entry["mask"], count=size).astype(bool)
    out = np.zeros(size, dtype=np.dtype(entry["dtype"]))
    out[mask] = entry["values"]
    return out.reshape(entry["shape"])


def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_encode(v) for v in value)
    if not isinstance(value, torch.Tensor):
        return value
    value = value.detach().cpu()
    if value.is_quantized:
        if value.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            return value  # per-channel schemes are not used here; stored as torch pickles them
        return {_PACKED: "qint", "scale": float(value.q_scale()),
                "zero_point": int(value.q_zero_point()), "int": _encode_values(value.int_repr().numpy())}
    try:
        array = value.numpy()
    except (TypeError, RuntimeError):  # a dtype numpy lacks (bfloat16): keep the tensor
        return value
    return {_PACKED: "tensor", "requires_grad": bool(value.requires_grad), **_encode_values(array)}


def _decode(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_decode(v) for v in value)
    if not isinstance(value, dict) or _PACKED not in value:
        return value
    array = torch.from_numpy(np.array(_decode_values(value["int"] if value[_PACKED] == "qint" else value)))
    if value[_PACKED] == "qint":
        with warnings.catch_warnings():  # int8 codes give a qint8 tensor, uint8 ones a quint8 tensor
            warnings.simplefilter("ignore")
            return torch._make_per_tensor_quantized_tensor(array, value["scale"], value["zero_point"])
    return array.requires_grad_(value["requires_grad"]) if array.is_floating_point() else array


def pack_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A picklable copy of a (float or quantized) state dict with sparse tensors stored as bitmask plus values.

    The state dict's ``_metadata`` (per-module format versions, which
    quantized layers read when loading) travels with it.
    """
    return {"tensors": {key: _encode(value) for key, value in state.items()},
            "metadata": dict(getattr(state, "_metadata", None) or {})}


def unpack_state(packed: Mapping[str, Any]) -> OrderedDict[str, Any]:
    """The state dict :func:`pack_state` stored (CPU tensors), ready for ``load_state_dict``."""
    state = OrderedDict((key, _decode(value)) for key, value in packed["tensors"].items())
    state._metadata = packed["metadata"]  # type: ignore[attr-defined]
    return state


def serialized_bytes(obj: Any) -> int:
    """The size of ``obj`` pickled (highest protocol)."""
    return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def dense_state(network: nn.Module) -> dict[str, torch.Tensor]:
    """The network's state dict on the CPU, as it is pickled without compression."""
    return {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in network.state_dict().items()}
