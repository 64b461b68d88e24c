"""Neural learners and their architecture search spaces, registered when torch is installed.

The spaces are data like every other: the MLP's depth decides which per-layer
widths exist (``width_3`` only when ``n_layers`` is 3 or more), the CNN's
number of blocks decides its per-block channels. Epochs are the fidelity:
both learners report a validation score after every epoch, so pruners stop
poor architectures after a few epochs. The learning-rate range is the one the
meta-learned prior (:mod:`metaknowledge.lr_prior`) narrows per task.

Without torch the engine runs as before; :func:`missing_reason` says how to
enable these learners.

Under serving limits (``fit(max_predict_ms=, max_model_mb=)``) the engine
searches compression too: :func:`compressible` returns a learner whose space
adds pruning (share of weights, magnitude or structured) and int8
quantization, and whose factory passes them to the estimator. The learners'
own spaces stay as they are, so histories keyed on them still match.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Mapping
from typing import Any

from searchspaces.learner import BuildContext, Factory, Learner, Preprocessing, Staging
from searchspaces.params import Categorical, Float, Int, when
from searchspaces.space import SearchSpace

MAX_LAYERS = 4
MAX_BLOCKS = 3
EPOCH_STAGING = Staging("epochs", callback="on_epoch")
LEARNING_RATE = Float("learning_rate", 1e-4, 3e-1, log=True, default=1e-3)


def available() -> bool:
    return importlib.util.find_spec("torch") is not None


def missing_reason() -> str:
    return "neural learners (mlp, cnn) need torch: pip install 'automl-engine[torch]' (CPU: pip install torch==2.13.0)"


def _training_params(epochs: int, batch_sizes: tuple[int, ...], batch_default: int) -> tuple:
    return (
        LEARNING_RATE,
        Float("weight_decay", 1e-7, 1e-2, log=True, default=1e-5),
        Categorical("batch_size", batch_sizes, default=batch_default),
        Categorical("schedule", ("constant", "cosine", "step"), default="constant"),
        Int("epochs", 4, epochs, log=True, default=min(100, epochs), low_cost=8),
    )


MLP_SPACE = SearchSpace(
    (
        Int("n_layers", 1, MAX_LAYERS, default=2, low_cost=1),
        *(
            Int(f"width_{i}", 16, 512, log=True, default=128, low_cost=32,
                condition=None if i == 1 else when("n_layers", *range(i, MAX_LAYERS + 1)))
            for i in range(1, MAX_LAYERS + 1)
        ),
        Categorical("activation", ("relu", "gelu", "silu", "tanh"), default="relu"),
        Categorical("norm", ("none", "batch", "layer"), default="none"),
        Float("dropout", 0.0, 0.5, default=0.1),
        Categorical("residual", (False, True), default=False),
        *_training_params(epochs=200, batch_sizes=(32, 64, 128, 256, 512), batch_default=128),
    ),
    name="mlp",
)

CNN_SPACE = SearchSpace(
    (
        Int("n_blocks", 1, MAX_BLOCKS, default=2, low_cost=1),
        *(
            Int(f"channels_{i}", 8, 128, log=True, default=16 * 2 ** (i - 1), low_cost=8,
                condition=None if i == 1 else when("n_blocks", *range(i, MAX_BLOCKS + 1)))
            for i in range(1, MAX_BLOCKS + 1)
        ),
        Categorical("kernel_size", (3, 5), default=3),
        Categorical("pooling", ("max", "avg", "none"), default="max"),
        Int("head_width", 32, 512, log=True, default=64),
        Categorical("activation", ("relu", "gelu", "silu"), default="relu"),
        Categorical("norm", ("none", "batch"), default="batch"),
        Float("dropout", 0.0, 0.5, default=0.1),
        *_training_params(epochs=100, batch_sizes=(32, 64, 128, 256), batch_default=64),
    ),
    name="cnn",
)


def _common(params: dict[str, Any], ctx: BuildContext) -> dict[str, Any]:
    return {
        "learning_rate": params["learning_rate"], "weight_decay": params["weight_decay"],
        "batch_size": params["batch_size"], "schedule": params["schedule"], "epochs": params["epochs"],
        "activation": params["activation"], "norm": params["norm"], "dropout": params["dropout"],
        # "cpu" only where a backend decided so; otherwise a GPU wherever torch sees one
        "device": ctx.device if ctx.device != "cpu" else "auto", "n_jobs": 1, "random_state": ctx.seed,
    }


def build_mlp(params: dict[str, Any], ctx: BuildContext) -> Any:
    from searchspaces.networks.estimators import TorchMLPClassifier, TorchMLPRegressor  # needs torch

    widths = tuple(params[f"width_{i}"] for i in range(1, params["n_layers"] + 1))
    cls = TorchMLPRegressor if ctx.task == "regression" else TorchMLPClassifier
    return cls(hidden_layer_sizes=widths, residual=params["residual"], categorical_mask=ctx.categorical_mask,
               **_common(params, ctx))


def build_cnn(params: dict[str, Any], ctx: BuildContext) -> Any:
    from searchspaces.networks.estimators import TorchCNNClassifier, TorchCNNRegressor  # needs torch

    channels = tuple(params[f"channels_{i}"] for i in range(1, params["n_blocks"] + 1))
    cls = TorchCNNRegressor if ctx.task == "regression" else TorchCNNClassifier
    return cls(channels=channels, kernel_size=params["kernel_size"], pooling=params["pooling"],
               head_width=params["head_width"], **_common(params, ctx))


MLP = Learner(
    name="mlp",
    tasks=frozenset({"classification", "regression"}),
    space=MLP_SPACE,
    build=build_mlp,
    preprocessing=Preprocessing(categorical="native", scale=True, impute=True),
    staging=EPOCH_STAGING,
    gpu=True,
    cost=6.0,
    description="torch multilayer perceptron (embeddings for categorical features), architecture searched",
)

CNN = Learner(
    name="cnn",
    tasks=frozenset({"classification", "regression"}),
    space=CNN_SPACE,
    build=build_cnn,
    preprocessing=Preprocessing(categorical="ordinal", scale=True, impute=True),
    staging=EPOCH_STAGING,
    gpu=True,
    cost=10.0,
    description="torch convolutional network for image-shaped rows (shape inferred from the number of columns)",
)


# -- compression under serving limits ---------------------------------------

PRUNE_AMOUNTS = (0.0, 0.5, 0.8, 0.9)
COMPRESSION_PARAMS = (
    Categorical("prune_amount", PRUNE_AMOUNTS, default=0.0),
    Categorical("prune_structured", (False, True), default=False, condition=when("prune_amount", *PRUNE_AMOUNTS[1:])),
    Categorical("quantize", (False, True), default=False),
)
COMPRESSION_NAMES = frozenset(p.name for p in COMPRESSION_PARAMS)


@dataclasses.dataclass(frozen=True)
class CompressedBuild:
    """A factory that builds with ``base`` and sets the compression parameters on the estimator it returns.

    A class rather than a closure so learners stay picklable (Ray ships them to workers).
    """

    base: Factory

    def __call__(self, params: Mapping[str, Any], ctx: BuildContext) -> Any:
        rest = {k: v for k, v in params.items() if k not in COMPRESSION_NAMES}
        estimator = self.base(rest, ctx)
        if "prune_amount" not in estimator.get_params():
            raise ValueError(f"{type(estimator).__name__} has no compression options (prune_amount, quantize)")
        return estimator.set_params(prune_amount=float(params.get("prune_amount", 0.0)),
                                    prune_structured=bool(params.get("prune_structured", False)),
                                    quantize=bool(params.get("quantize", False)))


def is_compressible(learner: Learner) -> bool:
    """Whether :func:`compressible` applies: the built-in neural learners (``mlp``, ``cnn``) and their variants."""
    build = learner.build.base if isinstance(learner.build, CompressedBuild) else learner.build
    return build in (build_mlp, build_cnn)


def compressible(learner: Learner) -> Learner:
    """``learner`` with pruning and quantization searched too (for fits under a size or latency limit).

    Its space gains ``prune_amount`` (one of 0, 0.5, 0.8, 0.9; default 0),
    ``prune_structured`` (whole neurons and channels; only when pruning) and
    ``quantize`` (int8 Linear layers); its factory passes them to the
    estimator. The name, preprocessing and staging stay; the space's name
    gains ``+compression``, so its fingerprint differs from the plain one's.
    Already compressible learners come back unchanged; learners without these
    options raise ``ValueError``.
    """
    if not is_compressible(learner):
        raise ValueError(f"learner {learner.name!r} has no compression options; only the neural learners (mlp, cnn) do")
    if isinstance(learner.build, CompressedBuild):
        return learner
    space = SearchSpace((*learner.space.params, *COMPRESSION_PARAMS), name=f"{learner.space.name}+compression")
    return dataclasses.replace(learner, space=space, build=CompressedBuild(learner.build),
                               description=f"{learner.description}; pruning and int8 quantization searched")
