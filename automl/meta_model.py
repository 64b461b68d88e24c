"""The meta-model's old import path, kept for code written before the package moved: see
:mod:`automl.learn2learn.meta_model` and :mod:`automl.learn2learn.meta_fit` (needs torch)."""

from automl.learn2learn.meta_fit import meta_fit
from automl.learn2learn.meta_model import AdaptedNetwork, MetaModel, MetaSettings, build_network, choose_device

__all__ = ["AdaptedNetwork", "MetaModel", "MetaSettings", "build_network", "choose_device", "meta_fit"]
