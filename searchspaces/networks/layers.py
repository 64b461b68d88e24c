"""The networks the neural learners train, as torch modules: a tabular MLP (numeric columns and embedded
categorical codes through dense layers) and a small CNN (rows read as images), and the device they run on."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
NORMS = ("none", "batch", "layer")
SCHEDULES = ("constant", "cosine", "step")
POOLINGS = ("max", "avg", "none")


def pick_device(device: str) -> torch.device:
    """``"auto"``: the first GPU if torch sees one, else the CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def infer_image_shape(n_features: int, image_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """(channels, height, width) for rows of ``n_features`` values.

    Without ``image_shape``, one channel and the factor pair of ``n_features``
    closest to a square (15 x 16 for 240 pixels), if no side is more than
    twice the other.
    """
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        shape = (1, *shape) if len(shape) == 2 else shape
        if len(shape) != 3 or math.prod(shape) != n_features:
            raise ValueError(f"image_shape {tuple(image_shape)} does not hold {n_features} values per row")
        return shape  # type: ignore[return-value]
    height = int(math.isqrt(n_features))
    while height > 1 and n_features % height:
        height -= 1
    width = n_features // height
    if height < 2 or width > 2 * height:
        raise ValueError(
            f"cannot read rows of {n_features} values as images; pass image_shape=(height, width) "
            "or (channels, height, width) to the CNN"
        )
    return 1, height, width


def _norm(kind: str, width: int, conv: bool = False) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(width) if conv else nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.GroupNorm(1, width) if conv else nn.LayerNorm(width)
    return nn.Identity()


class _Dense(nn.Module):
    """Linear, normalisation, activation, dropout; a skip connection when asked and the widths agree."""

    def __init__(self, n_in: int, n_out: int, activation: str, norm: str, dropout: float, residual: bool):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, n_out), _norm(norm, n_out), ACTIVATIONS[activation](),
                                  nn.Dropout(dropout))
        self.residual = residual and n_in == n_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class TabularNet(nn.Module):
    """Numeric columns and embedded categorical codes, through dense layers, to ``n_out`` outputs."""

    def __init__(self, n_numeric: int, cardinalities: Sequence[int], widths: Sequence[int], activation: str,
                 norm: str, dropout: float, residual: bool, n_out: int):
        super().__init__()
        dims = [min(16, (c + 1) // 2 + 1) for c in cardinalities]
        self.embeddings = nn.ModuleList(nn.Embedding(c, d) for c, d in zip(cardinalities, dims))
        layers, n_in = [], n_numeric + sum(dims)
        for width in widths:
            layers.append(_Dense(n_in, width, activation, norm, dropout, residual))
            n_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(n_in, n_out)

    def forward(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        parts = [numeric] + [embed(codes[:, i]) for i, embed in enumerate(self.embeddings)]
        return self.head(self.body(torch.cat(parts, dim=1)))


class ImageNet(nn.Module):
    """Convolution blocks (conv, normalisation, activation, pooling), then a dense head."""

    def __init__(self, shape: tuple[int, int, int], channels: Sequence[int], kernel_size: int, pooling: str,
                 activation: str, norm: str, dropout: float, head_width: int, n_out: int):
        super().__init__()
        self.shape = shape
        blocks, n_in, (height, width) = [], shape[0], shape[1:]
        for n_channels in channels:
            blocks += [nn.Conv2d(n_in, n_channels, kernel_size, padding=kernel_size // 2),
                       _norm(norm, n_channels, conv=True), ACTIVATIONS[activation]()]
            if pooling != "none" and min(height, width) >= 4:
                blocks.append(nn.MaxPool2d(2) if pooling == "max" else nn.AvgPool2d(2))
                height, width = height // 2, width // 2
            n_in = n_channels
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(n_in * height * width, head_width), ACTIVATIONS[activation](),
            nn.Dropout(dropout), nn.Linear(head_width, n_out),
        )

    def forward(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(numeric.reshape(-1, *self.shape)))
