"""Issue 19's compression benchmark: pruning and int8 quantization of the neural learners, before and after.

    python -m benchmarks.compression [--data DIR] [--names twonorm ...] [--no-cnn] [--report-only]

On corpus datasets outside the peer and validation lists, an MLP of fixed,
reasonable parameters is fitted as it is, then again with magnitude and
structured pruning of 50, 80 and 90 % of the weights (each followed by its
short fine-tune), with int8 dynamic quantization, and with both; on
``mfeat_pixel`` (15 x 16 images) a CNN too. Every variant is the same seeded
training with the compression applied at the end of ``fit``. Recorded per
variant: the test score under the task's metric, the share of Linear/Conv
weights that are zero, the pickled model's size, the single-row latency
(median of 200 ``predict_proba`` calls on one preprocessed row) and the batch
throughput (rows per second predicting the test rows in one call), both the
best of five rounds that interleave a dataset's variants. One torch thread
throughout. Written to ``benchmarks/results/compression/``.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.data.dataset import load_dataset
from automl.pipeline.preprocessing import make_preprocessor
from automl.search.metrics import get_metric
from searchspaces.networks import estimators as torch_nets
from searchspaces.networks.compression import zeroed_share
from searchspaces.torch_learners import MLP

OUT = Path(__file__).resolve().parent / "results" / "compression"
DEFAULT_DATA = Path(os.environ.get("AUTOML_PMLB", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "pmlb"))
DATASETS = ["twonorm", "waveform_40", "mfeat_pixel"]  # none in benchmarks.datasets.PEERS or VALIDATION
CNN_DATASET = "mfeat_pixel"
LATENCY_CALLS = 200
LATENCY_ROUNDS = 5
SEED = 0
MLP_PARAMS = {"hidden_layer_sizes": (256, 256), "learning_rate": 1e-3, "batch_size": 128, "epochs": 40, "patience": 8,
              "dropout": 0.1}
CNN_PARAMS = {"channels": (16, 32), "head_width": 128, "learning_rate": 1e-3, "batch_size": 64, "epochs": 15,
              "patience": 5}


@dataclass(frozen=True)
class Variant:
    label: str
    options: dict[str, Any]


VARIANTS = [
    Variant("dense (float32)", {}),
    *(Variant(f"magnitude {a:.0%}", {"prune_amount": a}) for a in (0.5, 0.8, 0.9)),
    *(Variant(f"structured {a:.0%}", {"prune_amount": a, "prune_structured": True}) for a in (0.5, 0.8, 0.9)),
    Variant("int8", {"quantize": True}),
    Variant("magnitude 90% + int8", {"prune_amount": 0.9, "quantize": True}),
    Variant("structured 50% + int8", {"prune_amount": 0.5, "prune_structured": True, "quantize": True}),
]
CNN_VARIANTS = [v for v in VARIANTS if v.label in
                ("dense (float32)", "magnitude 80%", "structured 50%", "int8", "magnitude 90% + int8")]


@dataclass
class Prepared:
    """A dataset split and preprocessed as the neural learners see it."""

    name: str
    task: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    categorical_mask: tuple[bool, ...]


def prepare(data: Path, name: str) -> Prepared:
    """Load ``name``, split off a stratified test quarter, preprocess as the MLP learner does (scaled, imputed)."""
    from sklearn.model_selection import train_test_split


    dataset = load_dataset(data / f"{name}.tsv.gz")
    y = dataset.encoded_target()
    stratify = y if dataset.task != "regression" else None
    X_train, X_test, y_train, y_test = train_test_split(dataset.X, y, test_size=0.25, random_state=SEED,
                                                        stratify=stratify)
    transformer, n_native = make_preprocessor(MLP.preprocessing, X_train, dataset.categorical)
    train = np.asarray(transformer.fit_transform(X_train, y_train), dtype=np.float64)
    test = np.asarray(transformer.transform(X_test), dtype=np.float64)
    mask = tuple([True] * n_native + [False] * (train.shape[1] - n_native))
    return Prepared(name, dataset.task, train, test, np.asarray(y_train), np.asarray(y_test), mask)


def _estimator(kind: str, task: str, prepared: Prepared, options: dict[str, Any]) -> Any:
    common = {"device": "cpu", "n_jobs": 1, "random_state": SEED, **options}
    if kind == "cnn":
        cls = torch_nets.TorchCNNRegressor if task == "regression" else torch_nets.TorchCNNClassifier
        return cls(**CNN_PARAMS, **common)
    cls = torch_nets.TorchMLPRegressor if task == "regression" else torch_nets.TorchMLPClassifier
    return cls(**MLP_PARAMS, categorical_mask=prepared.categorical_mask, **common)


def _predict(model: Any, task: str, X: np.ndarray) -> np.ndarray:
    return model.predict(X) if task == "regression" else model.predict_proba(X)


def measure(kind: str, prepared: Prepared, variant: Variant) -> tuple[dict[str, Any], Any]:
    """Fit one variant; its score, zeroed share and size, and the fitted model (timed later, with the others)."""

    metric = get_metric(None, prepared.task)
    started = time.perf_counter()
    model = _estimator(kind, prepared.task, prepared, variant.options).fit(prepared.X_train, prepared.y_train)
    fit_s = time.perf_counter() - started
    prediction = _predict(model, prepared.task, prepared.X_test)
    report = model.compression_
    zeroed = report.zeroed_share if report is not None else _zeroed(model)
    row = {"dataset": prepared.name, "model": kind, "variant": variant.label, "metric": metric.name,
           "score": metric(prepared.y_test, prediction), "zeroed": zeroed, "size_kb": len(pickle.dumps(model)) / 1024,
           "fit_s": fit_s}
    return row, model


def time_models(models: list[Any], prepared: Prepared) -> list[tuple[float, float]]:
    """(single-row latency in ms, batch rows per second) of each model.

    The machine is shared, so the models are timed in interleaved rounds (each
    round: the median of 200 single-row calls, and one call on every test
    row), and each keeps its best round: load from other processes then slows
    every model alike instead of whichever was timed at the wrong moment.
    """
    row, rows = prepared.X_test[:1], prepared.X_test
    for model in models:  # warm-up
        for _ in range(20):
            _predict(model, prepared.task, row)
        _predict(model, prepared.task, rows)
    latency = [math.inf] * len(models)
    batch = [math.inf] * len(models)
    for _ in range(LATENCY_ROUNDS):
        for i, model in enumerate(models):
            times = [_timed(lambda m=model: _predict(m, prepared.task, row)) for _ in range(LATENCY_CALLS)]
            latency[i] = min(latency[i], statistics.median(times))
            batch[i] = min(batch[i], _timed(lambda m=model: _predict(m, prepared.task, rows)))
    return [(1000 * lat, len(rows) / b) for lat, b in zip(latency, batch)]


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _zeroed(model: Any) -> float:
    return zeroed_share(model.network_)


def run(data: Path, names: list[str], cnn: bool) -> pd.DataFrame:
    import torch

    torch.set_num_threads(1)
    rows = []
    for name in names:
        prepared = prepare(data, name)
        jobs = [("mlp", v) for v in VARIANTS] + (
            [("cnn", v) for v in CNN_VARIANTS] if cnn and name == CNN_DATASET else [])
        fitted = [measure(kind, prepared, variant) for kind, variant in jobs]
        for (r, _), (latency, throughput) in zip(fitted, time_models([m for _, m in fitted], prepared)):
            r.update(latency_ms=latency, rows_per_s=throughput)
            rows.append(r)
            print(f"{name:12s} {r['model']} {r['variant']:24s} {r['metric']} {r['score']:.4f}  "
                  f"zeroed {r['zeroed']:.2f}  "
                  f"{r['size_kb']:7.1f} KB  {r['latency_ms']:.3f} ms  {r['rows_per_s']:9.0f} rows/s  "
                  f"fit {r['fit_s']:.1f} s",
                  flush=True)
    return pd.DataFrame(rows)


def write(table: pd.DataFrame, out: Path = OUT) -> str:
    """The markdown report (relative figures against each model's dense variant), also written to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "compression.csv", index=False)
    lines = ["# Pruning and int8 quantization of the neural learners", "",
             "`python -m benchmarks.compression`: fixed architectures (MLP 256-256; on mfeat_pixel also a CNN 16-32 "
             "channels, head 128), one torch thread, the test quarter of each dataset (seed 0). Score: the task's "
             "metric (roc_auc: higher is better; log_loss: lower is better). Zeroed: share of Linear/Conv weights "
             "that are zero. Size: the pickled estimator. Latency: median of 200 single-row `predict_proba` calls. "
             "Throughput: test rows predicted in one call. Both are the best of 5 rounds interleaving a dataset's "
             "variants (the machine is shared: differences under ~20 % are noise).", "",
             "| dataset | model | variant | metric | score | zeroed | size KB | size vs dense | latency ms | rows/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (_, _), group in table.groupby(["dataset", "model"], sort=False):
        dense = group.iloc[0]
        for r in group.itertuples():
            lines.append(f"| {r.dataset} | {r.model} | {r.variant} | {r.metric} | {r.score:.4f} | {r.zeroed:.2f} | "
                         f"{r.size_kb:.1f} | {r.size_kb / dense.size_kb:.2f} | {r.latency_ms:.3f} | "
                         f"{r.rows_per_s:,.0f} |")
    lines += ["", _summary(table)]
    text = "\n".join(lines) + "\n"
    (out / "README.md").write_text(text)
    return text


def _summary(table: pd.DataFrame) -> str:
    """One sentence on what the table shows, from its figures."""
    mlp = table[table["model"] == "mlp"]
    dense = mlp[mlp["variant"] == "dense (float32)"].set_index("dataset")

    def relative(label: str, column: str) -> float:
        part = mlp[mlp["variant"] == label].set_index("dataset")
        return float((part[column] / dense[column]).mean())

    return (f"Across the MLP rows, int8 quantization leaves the pickled model at {relative('int8', 'size_kb'):.2f} "
            f"of its dense size and magnitude pruning at 90 % at {relative('magnitude 90%', 'size_kb'):.2f} (zeros "
            f"stored as a bitmask); both together at {relative('magnitude 90% + int8', 'size_kb'):.2f}. Speed: "
            f"single-row latency is {relative('int8', 'latency_ms'):.2f}x the dense one with int8 and "
            f"{relative('magnitude 90%', 'latency_ms'):.2f}x with 90 % pruning; batch throughput "
            f"{relative('int8', 'rows_per_s'):.2f}x and {relative('magnitude 90%', 'rows_per_s'):.2f}x. Pruned "
            "weights are still multiplied densely, so pruning buys size, not speed; dynamic int8 quantizes "
            f"activations on every call, which pays on batches rather than single rows. Score: {_kept(mlp)}")


def _kept(mlp: pd.DataFrame, tolerance: float = 0.02) -> str:
    """On how many datasets each variant keeps the score within ``tolerance`` (relative) of the dense one."""

    def loss(r: pd.Series) -> float:
        return float(get_metric(r["metric"], "binary" if r["metric"] == "roc_auc" else "multiclass").loss(r["score"]))

    dense = {r["dataset"]: loss(r) for _, r in mlp[mlp["variant"] == "dense (float32)"].iterrows()}
    parts = []
    for label in ("magnitude 80%", "magnitude 90%", "structured 50%", "structured 80%", "int8", "magnitude 90% + int8"):
        rows = mlp[mlp["variant"] == label]
        kept = sum(loss(r) - dense[r["dataset"]] <= tolerance * abs(dense[r["dataset"]]) for _, r in rows.iterrows())
        parts.append(f"{label} {kept} of {len(rows)}")
    return f"datasets where the MLP stays within {tolerance:.0%} of its dense score: " + ", ".join(parts) + "."


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compression", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a directory in the PMLB layout")
    p.add_argument("--names", nargs="+", default=DATASETS)
    p.add_argument("--no-cnn", action="store_true", help=f"skip the CNN on {CNN_DATASET}")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--report-only", action="store_true", help="rewrite README.md from the saved compression.csv")
    args = p.parse_args(argv)
    if args.report_only:
        print(write(pd.read_csv(args.out / "compression.csv"), args.out))
        return
    started = time.monotonic()
    table = run(args.data, args.names, cnn=not args.no_cnn)
    print(write(table, args.out))
    print(f"{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
