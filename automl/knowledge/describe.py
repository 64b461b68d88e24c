"""A dataset's meta-features: how the knowledge base describes a task, for the warm start and the write-back."""

from __future__ import annotations

from automl.data.dataset import Dataset
from metaknowledge.features import extract


def describe(dataset: Dataset, seed: int = 0) -> dict[str, float]:
    """The dataset's meta-features (see :mod:`metaknowledge.features`)."""
    return extract(dataset.X, dataset.encoded_target(), dataset.task, dataset.categorical, seed=seed)
