"""Issue 7's benchmarks: neural learners in the engine, architecture search, meta-learned learning rates.

    python -m benchmarks.neural peers [--kb DIR]   # ours with and without the MLP, 15 classification datasets, 60 s
    python -m benchmarks.neural nas [--budget 120] # architecture search on mfeat_pixel vs a default MLP and hgb_default
    python -m benchmarks.neural lr --kb KB         # leave-one-dataset-out: predicted learning rate vs 1e-3 vs the
                                                   # sweep's best

Everything is written under ``benchmarks/results/neural/``. The ``lr``
benchmark needs a knowledge base with neural histories
(``automl kb build --neural``); for each held-out task it fits the
learning-rate model on the other tasks and compares, on the recorded sweep,
the normalised score at the predicted rate with that of the fixed default
(1e-3); then, on a sample of tasks, it trains the default architecture afresh
at the predicted rate, at 1e-3 and at the sweep's best rate, recording the
final validation score and the epoch at which it was reached.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import automl
from automl.pipeline.preprocessing import make_preprocessor
from benchmarks import peers
from benchmarks.peers import DEFAULT_DATA
from benchmarks.protocol import align_proba, load_split, score
from benchmarks.systems import hgb_default
from metaknowledge.candidates import NEURAL_ARCHITECTURES, NEURAL_LEARNING_RATES, NEURAL_TRAINING
from metaknowledge.features import EXTRACTOR_VERSION
from metaknowledge.histories import normalise
from metaknowledge.lr_prior import LearningRatePrior, best_learning_rates
from metaknowledge.store import KnowledgeBase
from searchspaces import get_learner
from searchspaces.networks.estimators import TorchMLPClassifier, TorchMLPRegressor
from searchspaces.torch_learners import MLP_SPACE

OUT = Path(__file__).resolve().parent / "results" / "neural"
NAS_DATASET = "mfeat_pixel"
FIXED_RATE = 1e-3
FRESH_TASKS = 30
FRESH_EPOCHS = 100


# -- ours with and without neural learners ------------------------------------


def run_peers(extra: list[str]) -> None:
    peers.main(["--names", "peers_classification", "--systems", "ours", "ours_neural", "const", "--budgets", "60",
                "--jobs", "2", "--out", str(OUT / "peers"),
                "--title", "Neural learners: ours with and without the MLP, 60 s",
                *extra])


# -- architecture search on mfeat_pixel ---------------------------------------


def run_nas(data: Path, budget: float, seed: int = 0) -> pd.DataFrame:
    from sklearn.preprocessing import StandardScaler


    split = load_split(data, NAS_DATASET, seed)
    rows = []
    started = time.monotonic()
    model = automl.fit(split.X_train, split.y_train, learners=["cnn", "mlp"], time_budget=budget, metric=split.metric,
                       seed=seed, verbose=0, remember=False)
    searched = time.monotonic() - started
    board = model.leaderboard()
    best = board[board["rank"] == 1].iloc[0]
    value, accuracy = score(split, model.predict_proba(split.X_test))
    rows.append({"system": f"NAS (cnn + mlp, {budget:g} s)", "log_loss": value, "accuracy": accuracy,
                 "seconds": searched,
                 "trials": len(board), "pruned": int((board["status"] == "pruned").sum()),
                 "architecture": f"{best['learner']} {json.dumps(best['params'], default=str)}"})
    started = time.monotonic()
    scaler = StandardScaler().fit(split.X_train)
    mlp = TorchMLPClassifier(random_state=seed).fit(scaler.transform(split.X_train), split.y_train)
    proba = mlp.predict_proba(scaler.transform(split.X_test))
    value, accuracy = score(split, align_proba(proba, mlp.classes_, split.classes))
    rows.append({"system": "default MLP (128-128, lr 1e-3)", "log_loss": value, "accuracy": accuracy,
                 "seconds": time.monotonic() - started, "trials": 1, "pruned": 0, "architecture": "mlp defaults"})
    started = time.monotonic()
    output = hgb_default(split, budget, seed)
    value, accuracy = score(split, output.prediction)
    rows.append({"system": "hgb_default", "log_loss": value, "accuracy": accuracy,
                 "seconds": time.monotonic() - started,
                 "trials": 1, "pruned": 0, "architecture": "HistGradientBoosting defaults"})
    table = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [f"# Architecture search on {NAS_DATASET} (2,000 images of 15 x 16 pixels, 10 classes)", "",
             f"Test split of ../shared/BENCHMARK.md (seed {seed}); log loss is the task's metric (lower is better).",
             "",
             "| system | test log loss | test accuracy | seconds | trials (pruned) | best architecture |",
             "|---|---|---|---|---|---|"]
    for row in table.itertuples():
        lines.append(f"| {row.system} | {row.log_loss:.4f} | {row.accuracy:.4f} | {row.seconds:.1f} | "
                     f"{row.trials} ({row.pruned}) | "
                     f"`{row.architecture}` |")
    (OUT / "nas.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return table


# -- the meta-learned learning rate, leave one dataset out ---------------------


def run_lr(kb: str, data: Path, fresh_tasks: int = FRESH_TASKS) -> pd.DataFrame:
    knowledge = KnowledgeBase(kb, readonly=True).snapshot()
    meta = knowledge.meta_feature_table(EXTRACTOR_VERSION)
    examples = best_learning_rates(knowledge)
    sweep = _sweep_scores(knowledge)
    medium = {**NEURAL_ARCHITECTURES["medium"], **NEURAL_TRAINING}
    medium_key = json.dumps({k: v for k, v in sorted(medium.items())}, default=str)
    rows = []
    tasks = sorted(set(examples["task"]) & set(meta.index))
    for task in tqdm(tasks, desc="learning rate, leave-one-out"):
        model = LearningRatePrior().fit_examples(examples[examples["task"] != task], meta.drop(index=task))
        if not model.fitted:
            continue
        predicted = model.predict(meta.loc[task].to_dict(), medium)
        grid = sweep.get((task, medium_key))
        if grid is None:
            continue
        nearest = min(NEURAL_LEARNING_RATES, key=lambda r: abs(math.log10(r) - math.log10(predicted)))
        rows.append({"task": task, "predicted_rate": predicted, "best_rate": grid.idxmax(),
                     "predicted": grid.get(nearest, np.nan), "fixed 1e-3": grid.get(FIXED_RATE, np.nan),
                     "best of sweep": 1.0,
                     "log10_error": abs(math.log10(predicted) - math.log10(grid.idxmax()))})
    recorded = pd.DataFrame(rows)
    fresh = _fresh_training(recorded, data, fresh_tasks)
    _write_lr(recorded, fresh)
    return recorded


def _sweep_scores(knowledge) -> dict[tuple[str, str], pd.Series]:
    """Per (task, architecture): normalised score by learning rate (1 = the best rate, 0 = the median)."""

    configs = knowledge.configs[knowledge.configs["learner"] == "mlp"]
    params = {row.config_id: json.loads(row.params) for row in configs.itertuples()}
    runs = knowledge.successful_runs()
    runs = runs[runs["config_id"].isin(params)]
    out = {}
    for (task, metric), group in runs.groupby(["task", "metric"]):
        by_architecture: dict[str, dict[float, float]] = {}
        for run in group.itertuples():
            p = dict(params[run.config_id])
            rate = p.pop("learning_rate")
            by_architecture.setdefault(json.dumps(dict(sorted(p.items())), default=str), {})[rate] = run.score
        for architecture, scores in by_architecture.items():
            out[(task, architecture)] = normalise(pd.Series(scores).sort_index(), metric)
    return out


def _fresh_training(recorded: pd.DataFrame, data: Path, n_tasks: int) -> pd.DataFrame:
    """Train the default MLP at the predicted, the fixed and the sweep's best rate on a sample of held-out tasks."""

    rng = np.random.default_rng(0)
    chosen = recorded.iloc[rng.permutation(len(recorded))[:n_tasks]] if len(recorded) else recorded
    rows = []
    for row in tqdm(list(chosen.itertuples()), desc="fresh training"):
        try:
            dataset = automl.data.dataset.load_dataset(data / f"{row.task}.tsv.gz")
        except Exception:  # a dataset the corpus no longer has
            continue
        X, y = dataset.X.iloc[:3000], dataset.y[:3000]
        learner = get_learner("mlp", dataset.kind)
        transformer, n_native = make_preprocessor(learner.preprocessing, X, dataset.categorical)
        features = transformer.fit_transform(X, y)
        mask = tuple([True] * n_native + [False] * (features.shape[1] - n_native))
        cls = TorchMLPRegressor if dataset.kind == "regression" else TorchMLPClassifier
        for label, rate in (("predicted", row.predicted_rate), ("fixed 1e-3", FIXED_RATE),
                            ("best of sweep", row.best_rate)):
            params = MLP_SPACE.default()
            net = cls(hidden_layer_sizes=(params["width_1"], params["width_2"]), categorical_mask=mask,
                      learning_rate=rate, epochs=FRESH_EPOCHS, patience=15, validation_fraction=0.25, device="cpu",
                      n_jobs=1, random_state=0)
            net.fit(features, y)
            rows.append({"task": row.task, "rate": label, "validation_loss": net.best_loss_,
                         "best_epoch": net.best_epoch_})
    return pd.DataFrame(rows)


def _write_lr(recorded: pd.DataFrame, fresh: pd.DataFrame) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    recorded.to_csv(OUT / "lr_recorded.csv", index=False)
    fresh.to_csv(OUT / "lr_fresh.csv", index=False)
    lines = ["# Meta-learned learning rate: leave one dataset out", "",
             f"{len(recorded)} corpus tasks with a recorded learning-rate sweep of the default MLP architecture. "
             "For each, the learning-rate model is fitted on the other tasks and predicts this task's rate.", "",
             "On the recorded sweep (normalised per task: 1 = the sweep's best rate, 0 = its median; the predicted "
             "rate is scored at the nearest swept rate):", "",
             "| learning rate | mean normalised score | share of tasks at the best rate |", "|---|---|---|"]
    for column in ("predicted", "fixed 1e-3", "best of sweep"):
        values = recorded[column] if len(recorded) else pd.Series(dtype=float)
        lines.append(f"| {column} | {values.mean():.3f} | {(values >= 0.999).mean():.2f} |")
    if len(recorded):
        lines += ["", f"Median |log10(predicted / best)|: {recorded['log10_error'].median():.2f} decades."]
    if len(fresh):
        summary = fresh.groupby("rate").agg(validation_loss=("validation_loss", "mean"),
                                            median_loss=("validation_loss", "median"),
                                            best_epoch=("best_epoch", "median"))
        wins = fresh.pivot_table(index="task", columns="rate", values="validation_loss")
        lines += ["", f"Trained afresh on {fresh['task'].nunique()} of these tasks (default architecture, up to "
                      f"{FRESH_EPOCHS} epochs, early stopping on a 25 % validation split):", "",
                  "| learning rate | mean validation loss | median validation loss | median epochs to the best | "
                  "tasks where it beats 1e-3 |", "|---|---|---|---|---|"]
        for rate, values in summary.iterrows():
            beats = (wins[rate] < wins["fixed 1e-3"]).mean() if rate != "fixed 1e-3" else float("nan")
            lines.append(f"| {rate} | {values.validation_loss:.4f} | {values.median_loss:.4f} | "
                         f"{values.best_epoch:.0f} | {beats:.2f} |")
    (OUT / "learning_rate.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["peers", "nas", "lr"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--budget", type=float, default=120.0, help="the NAS search's budget in seconds")
    parser.add_argument("--kb",
                        help="peers: an export directory to use as knowledge (held out); lr: a knowledge base file")
    parser.add_argument("--fresh-tasks", type=int, default=FRESH_TASKS)
    args = parser.parse_args(argv)
    if args.what == "peers":
        run_peers(["--kb", args.kb, "--hold-out"] if args.kb else [])
    elif args.what == "nas":
        run_nas(args.data, args.budget)
    else:
        if not args.kb:
            parser.error("lr needs --kb: a knowledge base built with `automl kb build --neural`")
        run_lr(args.kb, args.data, args.fresh_tasks)


if __name__ == "__main__":
    main()
