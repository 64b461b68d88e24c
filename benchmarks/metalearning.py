"""Learning to learn, measured against the papers' tables: sinusoid regression, Omniglot, a tabular series.

    python -m benchmarks.metalearning sinusoid --time 120 --jobs 2
    python -m benchmarks.metalearning omniglot --data ../shared/datasets/omniglot --time 300 --jobs 2
    python -m benchmarks.metalearning friedman --data ../shared/datasets/pmlb --time 60 --jobs 2
    python -m benchmarks.metalearning friedman-attentive --data ../shared/datasets/pmlb --time 30

Each part meta-trains every algorithm for ``--time`` seconds (one core each,
``--jobs`` at once), evaluates on new tasks, and writes ``PART.csv`` (one row
per algorithm and setting; a rerun skips rows already there), ``PART.md`` (the
table, beside the published figures) and a plot under ``--out``
(default ``benchmarks/results/metalearning``).

- sinusoid: K = 5, 10, 20 support points, the papers' 40-40 ReLU MLP; MSE on
  100 query points of 600 new tasks after 1 and 10 adaptation steps, beside a
  network pretrained on all tasks (joint regression) and one from random
  initialization, both fine-tuned at the MAML papers' step size 0.01.
- omniglot: meta-trained on the background zips' training alphabets (20-way
  1-shot episodes, four a step; Prototypical Networks with their defaults,
  30-way episodes one a step; rotations as extra classes), checkpointed on the validation alphabets; the error on the 20
  official 20-way one-shot runs, and 5-/20-way 1-/5-shot accuracy on 100
  episodes of the test alphabets.
- friedman: the 16 corpus datasets ``*_fri_c*_*_5``; meta-trained on 10, two
  more choose the algorithm and the adaptation steps, and on the 4 largest
  (one per correlation level) K = 10, 20, 50 training rows are drawn 5 times
  each: MSE on the task's other rows for the meta-learned MLP, the same MLP
  from random initialization, ``hgb_default``, ``rf_default`` and
  ``automl.fit`` with 10 s (their histories held out of its knowledge).
- friedman-attentive: the model-based learner on the same series, meta-trained
  per K, scored on the same draws of the test tasks.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import automl
from automl.data.sources import read_table
from automl.knowledge.prepared import EXCLUDE_ENV
from automl.learn2learn.algorithms import MetaLearner
from automl.learn2learn.meta_model import build_network
from automl.learn2learn.omniglot import official_runs, omniglot
from automl.learn2learn.series import TableSeries, sinusoid

OUT = Path("benchmarks/results/metalearning")
GRADIENT = ("maml", "fomaml", "metasgd", "anil", "reptile", "maml++")
META_TRAINED = (*GRADIENT, "attentive")  # ... and the model-based learner: every method meta_fit trains on sinusoids
SHOTS = (5, 10, 20)
FINE_TUNE_LR = 0.01  # the MAML papers' step size for fine-tuning the baselines
PUBLISHED_SINUSOID = {  # Meta-SGD paper (Li et al. 2017), Table 1: MSE after one step, 600 tasks
    "maml": {5: 0.686, 10: 0.435, 20: 0.228},
    "metasgd": {5: 0.482, 10: 0.258, 20: 0.127},
}
PUBLISHED_OMNIGLOT = {  # Lake et al. 2015: error on the 20 official runs, with the full 30-alphabet background set
    "humans": 4.5, "Bayesian program learning": 3.3, "Siamese network (Koch et al.)": 8.0,
    "convolutional network": 13.5,
}
FRIEDMAN_TEST = ("609_fri_c0_1000_5", "612_fri_c1_1000_5", "599_fri_c2_1000_5", "628_fri_c3_1000_5")
FRIEDMAN_VALIDATION = ("631_fri_c1_500_5", "597_fri_c2_500_5")
FRIEDMAN_ROWS = (10, 20, 50)
FRIEDMAN_REPEATS = 5
STEP_CHOICES = (1, 3, 10, 30)
OMNIGLOT_EPISODES = 100  # test-alphabet episodes per setting (a CNN adapting on 20-way 5-shot tasks is slow on a CPU)


@dataclass(frozen=True)
class Job:
    """One meta-training run (or baseline) and its evaluation: a row of a part's table."""

    part: str
    method: str
    shots: int
    ways: int
    seconds: float
    data: str
    seed: int = 0
    store: str = ""  # a folder for models the part reuses (friedman)

    @property
    def key(self) -> tuple[str, int, int]:
        return self.method, self.shots, self.ways


def _single_threaded() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


# -- sinusoid ----------------------------------------------------------------


def sinusoid_job(job: Job) -> dict:
    """Meta-train (or pretrain) on sinusoids with K = ``job.shots``; MSE after 1 and 10 steps on 600 new tasks."""
    _single_threaded()
    import torch


    started = time.monotonic()
    if job.method in META_TRAINED:
        meta = automl.meta_fit(sinusoid(), algorithm=job.method, shots=job.shots, query=10, time_budget=job.seconds,
                               meta_batch=25, device="cpu", seed=job.seed, verbose=0)
        learner = meta.learner
    else:
        torch.manual_seed(job.seed)
        network = build_network("mlp", (1,), 1)
        if job.method == "pretrained":
            _pretrain(network, job.seconds, job.seed)
        learner = MetaLearner(network, "fomaml", "regression", inner_lr=FINE_TUNE_LR)
    trained = time.monotonic() - started
    rng = np.random.default_rng(10_000 + job.shots)
    episodes = [sinusoid().episode(rng, job.shots, 100) for _ in range(600)]
    row = {**asdict(job), "train_seconds": round(trained, 1)}
    for steps in (1, 10):
        values = learner.episode_metrics(episodes, steps)
        row[f"mse_{steps}"] = float(np.mean(values))
        row[f"ci_{steps}"] = 1.96 * float(np.std(values, ddof=1)) / np.sqrt(len(values))
    return row


def _pretrain(network, seconds: float, seed: int) -> None:
    """Plain regression on points of many random sinusoids (the papers' "pretrained" baseline)."""
    import torch


    optimizer, rng, series = torch.optim.Adam(network.parameters(), lr=0.001), np.random.default_rng(seed), sinusoid()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = [series.episode(rng, 10, 10) for _ in range(25)]
        X = torch.as_tensor(np.concatenate([np.concatenate([e.X_support, e.X_query]) for e in batch]),
                            dtype=torch.float32)
        y = torch.as_tensor(np.concatenate([np.concatenate([e.y_support, e.y_query]) for e in batch]),
                            dtype=torch.float32)
        optimizer.zero_grad()
        loss = torch.mean((network(X).reshape(-1) - y) ** 2)
        loss.backward()
        optimizer.step()


def sinusoid_jobs(seconds: float, methods: Sequence[str] | None = None, shots: Sequence[int] = SHOTS) -> list[Job]:
    methods = methods or [*META_TRAINED, "pretrained", "random"]
    return [Job("sinusoid", m, k, 0, seconds if m != "random" else 0.0, "") for k in shots for m in methods]


def sinusoid_report(table: pd.DataFrame) -> str:
    lines = ["| method | K | MSE, 1 step | MSE, 10 steps | published, 1 step | meta-training s |",
             "|---|---|---|---|---|---|"]
    order = {m: i for i, m in enumerate([*META_TRAINED, "pretrained", "random"])}
    table = table.sort_values(["shots", "method", "seconds"], key=lambda c: c.map(order) if c.name == "method" else c)
    for _, row in table.iterrows():
        published = PUBLISHED_SINUSOID.get(row.method, {}).get(row.shots)
        lines.append(f"| {row.method} | {row.shots} | {row.mse_1:.3f} ± {row.ci_1:.3f} | "
                     f"{row.mse_10:.3f} ± {row.ci_10:.3f} | "
                     f"{published if published is not None else ''} | {row.train_seconds:.0f} |")
    targets = []
    longest = table.sort_values("seconds").groupby(["shots", "method"]).tail(1)  # each method's longest training
    for shots in SHOTS:
        by = longest[longest["shots"] == shots].set_index("method")
        if "metasgd" in by.index:
            goal = 0.8 * PUBLISHED_SINUSOID["metasgd"][shots]
            targets.append(f"- K = {shots}: Meta-SGD {by.loc['metasgd', 'mse_1']:.3f} after one step against the "
                           f"target {goal:.3f} (20 % below the published {PUBLISHED_SINUSOID['metasgd'][shots]}): "
                           f"{'MET' if by.loc['metasgd', 'mse_1'] <= goal else 'MISSED'}")
        if "maml" in by.index:
            goal = PUBLISHED_SINUSOID["maml"][shots]
            targets.append(f"- K = {shots}: MAML {by.loc['maml', 'mse_1']:.3f} after one step against the published "
                           f"{goal}: {'MET' if by.loc['maml', 'mse_1'] <= goal else 'MISSED'}")
    for seconds, part in table[table["shots"] == 10].groupby("seconds"):
        by = part.set_index("method")
        if {"attentive", "maml"} <= set(by.index):
            attentive, maml = by.loc["attentive", "mse_1"], by.loc["maml", "mse_1"]
            targets.append(f"- K = 10, {seconds:g} s each: the model-based learner {attentive:.3f} against MAML's "
                           f"{maml:.3f}: {'MET' if attentive < maml else 'MISSED'}")
    return "\n".join(lines + ["", "Targets:", *targets])


# -- Omniglot ----------------------------------------------------------------


def omniglot_job(job: Job) -> dict:
    """Meta-train on the training alphabets (20-way 1-shot); official runs and test-alphabet episodes."""
    _single_threaded()

    train = omniglot(job.data, split="train", rotations=True)
    validation = omniglot(job.data, split="validation")
    test = omniglot(job.data, split="test")
    meta = automl.meta_fit(train, algorithm=job.method, model="cnn", ways=job.ways, shots=job.shots, query=5,
                           validation=validation, time_budget=job.seconds,
                           meta_batch=None if job.method == "protonet" else 4, device="cpu", seed=job.seed,
                           verbose=0)
    row = {**asdict(job), "train_seconds": round(meta.seconds, 1), "settings": str(meta.settings)}
    wrong, total = meta.evaluate_official_runs(official_runs(Path(job.data) / "all_runs.zip"))
    row["official_error"] = 100.0 * wrong / total
    for ways in (5, 20):
        for shots in (1, 5):
            result = meta.evaluate(test, ways=ways, shots=shots, query=5, episodes=OMNIGLOT_EPISODES, seed=job.seed)
            row[f"acc_{ways}w{shots}s"], row[f"ci_{ways}w{shots}s"] = result.mean, result.ci95
    return row


def omniglot_jobs(seconds: float, data: str, methods: Sequence[str] | None = None) -> list[Job]:
    # 20-way 1-shot models; a Prototypical Network's defaults train it on 30-way episodes, one a step
    jobs = [Job("omniglot", m, 1, 20, seconds, data) for m in ("protonet", *GRADIENT, "attentive")]
    return [job for job in jobs if methods is None or job.method in methods]


def omniglot_report(table: pd.DataFrame) -> str:
    settings = [(w, s) for w in (5, 20) for s in (1, 5)]
    lines = ["| algorithm | official runs, error % | " + " | ".join(f"{w}-way {s}-shot acc." for w, s in settings)
             + " | meta-training s |", "|---" * (3 + len(settings)) + "|"]
    for _, row in table.sort_values("official_error").iterrows():
        cells = " | ".join(f"{row[f'acc_{w}w{s}s']:.3f} ± {row[f'ci_{w}w{s}s']:.3f}" for w, s in settings)
        lines.append(f"| {row.method} | {row.official_error:.1f} | {cells} | {row.train_seconds:.0f} |")
    lines += ["", "Published on the official runs (Lake et al. 2015, with the 30-alphabet background set):", ""]
    lines += [f"- {name}: {error} %" for name, error in PUBLISHED_OMNIGLOT.items()]
    best = table["official_error"].min()
    lines += ["", f"Target: below 8.0 % with the best algorithm: {best:.1f} %, {'MET' if best < 8.0 else 'MISSED'}."]
    for seconds, part in table.groupby("seconds"):  # the gradient-based family against MAML at the same budget
        by = part.set_index("method")["acc_5w1s"]
        if "maml" not in by.index:
            continue
        for method in ("fomaml", "anil"):
            if method in by.index:
                gap = by["maml"] - by[method]
                lines.append(f"- {seconds:g} s: {method} 5-way 1-shot {by[method]:.3f} against MAML's {by['maml']:.3f}"
                             f" (within 3 points: {'MET' if gap <= 0.03 else 'MISSED'})")
        if "maml++" in by.index:
            met = by["maml++"] >= by["maml"] + 0.05 and by["maml++"] >= 0.95
            lines.append(f"- {seconds:g} s: MAML++ 5-way 1-shot {by['maml++']:.3f} against MAML's {by['maml']:.3f} "
                         f"(5 points above, and at least 0.95: {'MET' if met else 'MISSED'})")
    return "\n".join(lines)


# -- Friedman tabular series -------------------------------------------------


def friedman_tables(data: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    tables = {}
    for path in sorted(Path(data).glob("*_fri_c*_*_5.tsv.gz")):
        frame = read_table(path)
        tables[path.name.removesuffix(".tsv.gz")] = (frame.drop(columns="target").to_numpy(np.float32),
                                                     frame["target"].to_numpy(np.float32))
    if len(tables) != 16:
        raise SystemExit(f"expected the 16 Friedman datasets with 5 features in {data}, found {len(tables)}")
    return tables


def friedman_series(tables: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[TableSeries, TableSeries]:
    """The Friedman series to meta-train on (every table but the test and validation ones) and the validation one."""
    train = [name for name in tables if name not in FRIEDMAN_TEST + FRIEDMAN_VALIDATION]
    return (TableSeries([tables[n] for n in train], "regression", train),
            TableSeries([tables[n] for n in FRIEDMAN_VALIDATION], "regression", list(FRIEDMAN_VALIDATION)))


def friedman_meta_job(job: Job) -> dict:
    """Meta-train one algorithm with K = ``job.shots`` on the 10 training tasks; its validation MSE per step count."""
    _single_threaded()

    series, validation = friedman_series(friedman_tables(job.data))
    meta = automl.meta_fit(series, algorithm=job.method, shots=job.shots, query=15, validation=validation,
                           time_budget=job.seconds, meta_batch=16, device="cpu", seed=job.seed, verbose=0)
    path = Path(job.store) / f"{job.method}_{job.shots}.meta.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {**asdict(job), "train_seconds": round(meta.seconds, 1)}
    for steps in STEP_CHOICES:
        row[f"val_mse_{steps}"] = meta.evaluate(validation, shots=job.shots, episodes=200, steps=steps, seed=1).mean
    row["model"] = str(path)
    meta.save(path)
    return row


def friedman_compare_job(job: Job) -> dict:
    """One (test dataset, K, repeat): every method's MSE on the task's other rows. ``job.method`` is the meta file."""
    _single_threaded()
    import warnings

    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.neural_network import MLPRegressor


    name, steps, meta_path = job.data.split("|")
    X, y = friedman_tables(os.environ["FRIEDMAN_DATA"])[name]
    rng = np.random.default_rng(job.seed)
    chosen = rng.choice(len(X), job.shots, replace=False)
    rest = np.setdiff1d(np.arange(len(X)), chosen)
    fits: dict[str, Callable[[], np.ndarray]] = {
        "meta_mlp": lambda: automl.load(meta_path).adapt(X[chosen], y[chosen], int(steps)).predict(X[rest]),
        "mlp_random_init": lambda: MLPRegressor(hidden_layer_sizes=(40, 40), max_iter=2000,
                                                random_state=job.seed).fit(X[chosen], y[chosen]).predict(X[rest]),
        "hgb_default": lambda: HistGradientBoostingRegressor(random_state=job.seed).fit(
            X[chosen], y[chosen]).predict(X[rest]),
        "rf_default": lambda: RandomForestRegressor(random_state=job.seed, n_jobs=1).fit(
            X[chosen], y[chosen]).predict(X[rest]),
        "automl_10s": lambda: automl.fit(pd.DataFrame(X[chosen]), y[chosen], task="regression", time_budget=10,
                                         seed=job.seed, verbose=0, remember=False).predict(pd.DataFrame(X[rest])),
    }
    row = {"dataset": name, "rows": job.shots, "repeat": job.seed}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method, fit in fits.items():
            row[method] = float(np.mean((fit() - y[rest]) ** 2))
    return row


def friedman_report(meta_rows: pd.DataFrame, table: pd.DataFrame) -> str:
    methods = ["meta_mlp", "mlp_random_init", "hgb_default", "rf_default", "automl_10s"]
    lines = ["Meta-training (validation MSE on the two validation tasks, by adaptation steps):", "",
             "| algorithm | K | " + " | ".join(f"{s} steps" for s in STEP_CHOICES) + " | meta-training s |",
             "|---" * (3 + len(STEP_CHOICES)) + "|"]
    for _, row in meta_rows.sort_values(["shots", "method"]).iterrows():
        lines.append(f"| {row.method} | {row.shots} | " + " | ".join(f"{row[f'val_mse_{s}']:.3f}" for s in STEP_CHOICES)
                     + f" | {row.train_seconds:.0f} |")
    lines += ["", "Test tasks (MSE on each task's other rows; mean over 4 datasets x 5 draws; wins = draws where the "
              "method is best):", "", "| K | " + " | ".join(methods) + " |", "|---" * (1 + len(methods)) + "|"]
    targets = []
    for rows, part in table.groupby("rows"):
        best = part[methods].idxmin(axis=1).value_counts()
        lines.append(f"| {rows} | " + " | ".join(f"{part[m].mean():.3f} ({best.get(m, 0)} wins)" for m in methods)
                     + " |")
        if rows in (10, 20):
            leader = part[methods].mean().idxmin()
            targets.append(f"- K = {rows}: the best mean MSE is {leader}'s: "
                           f"{'MET' if leader == 'meta_mlp' else 'MISSED'}")
    return "\n".join(lines + ["", "Target: the meta-learned MLP is best at K = 10 and K = 20.", *targets])


# -- running -----------------------------------------------------------------


def run_jobs(jobs: Sequence[Job], work: Callable[[Job], dict], csv: Path, parallel: int) -> pd.DataFrame:
    """Run the jobs not yet in ``csv`` (appending each row as it finishes); all rows."""
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
    seen = ({tuple(r) for r in done[["method", "shots", "ways", "seed", "seconds"]].itertuples(index=False)}
            if len(done) else set())
    todo = [j for j in jobs if (j.method, j.shots, j.ways, j.seed, j.seconds) not in seen]
    print(f"{len(todo)} of {len(jobs)} runs to do ({csv.name})", flush=True)
    with ProcessPoolExecutor(max_workers=parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        for row in pool.map(work, todo):
            print(row, flush=True)
            done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
            csv.parent.mkdir(parents=True, exist_ok=True)
            done.to_csv(csv, index=False)
    return done


def plot_sinusoid(table: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, steps in zip(axes, (1, 10)):
        for method, part in table.sort_values("shots").groupby("method"):
            ax.errorbar(part["shots"], part[f"mse_{steps}"], yerr=part[f"ci_{steps}"], marker="o", label=method,
                        capsize=3)
        for published in PUBLISHED_SINUSOID.values():
            if steps == 1:
                ax.plot(list(published), list(published.values()), "k:", marker="x", alpha=0.6)
        ax.set(title=f"after {steps} step{'s' if steps > 1 else ''} (dotted: published)", xlabel="K support points",
               xscale="log", yscale="log", xticks=list(SHOTS))
        ax.set_xticklabels([str(k) for k in SHOTS])
    axes[0].set_ylabel("MSE on 600 new sinusoids")
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "sinusoid.png", dpi=120)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metalearning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["sinusoid", "omniglot", "friedman", "friedman-attentive"])
    parser.add_argument("--time", type=float, default=60.0, help="meta-training seconds per algorithm")
    parser.add_argument("--data", default="../shared/datasets/omniglot", help="the Omniglot folder, or the PMLB folder")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--methods", nargs="+",
                        help="sinusoid, omniglot: only these methods (rows of another --time are kept)")
    parser.add_argument("--shots", nargs="+", type=int, default=list(SHOTS), help="sinusoid: only these K")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part == "sinusoid":
        run_jobs(sinusoid_jobs(args.time, args.methods, args.shots), sinusoid_job, args.out / "sinusoid.csv", args.jobs)
        table = pd.read_csv(args.out / "sinusoid.csv")
        (args.out / "sinusoid.md").write_text(sinusoid_report(table) + "\n")
        plot_sinusoid(table, args.out)
    elif args.part == "omniglot":
        table = run_jobs(omniglot_jobs(args.time, args.data, args.methods), omniglot_job, args.out / "omniglot.csv",
                         args.jobs)
        (args.out / "omniglot.md").write_text(omniglot_report(table) + "\n")
    elif args.part == "friedman-attentive":
        run_friedman_attentive(args)
    else:
        run_friedman(args)
    print(f"written under {args.out}")


def run_friedman_attentive(args: argparse.Namespace) -> None:
    """The model-based learner on the Friedman series: meta-trained per K on the same 10 tasks, scored on the same
    draws of the 4 test tasks as the ``friedman`` part (``friedman_attentive.csv``, ``.md``)."""
    _single_threaded()
    tables = friedman_tables(str(Path(args.data).resolve()))
    series, validation = friedman_series(tables)
    rows = []
    for k in FRIEDMAN_ROWS:
        meta = automl.meta_fit(series, algorithm="attentive", shots=k, query=15, validation=validation,
                               time_budget=args.time, meta_batch=16, device="cpu", seed=0, verbose=0)
        for name in FRIEDMAN_TEST:
            X, y = tables[name]
            for seed in range(FRIEDMAN_REPEATS):  # the draws of friedman_compare_job
                chosen = np.random.default_rng(seed).choice(len(X), k, replace=False)
                rest = np.setdiff1d(np.arange(len(X)), chosen)
                mse = float(np.mean((meta.adapt(X[chosen], y[chosen]).predict(X[rest]) - y[rest]) ** 2))
                rows.append({"dataset": name, "rows": k, "repeat": seed, "attentive": mse,
                             "train_seconds": round(meta.seconds, 1)})
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "friedman_attentive.csv", index=False)
    means = table.groupby("rows")["attentive"].mean()
    (args.out / "friedman_attentive.md").write_text(
        f"The attentive learner, {args.time:g} s of meta-training per K, mean MSE over the friedman part's "
        "20 draws:\n\n"
        + "\n".join(f"- K = {k}: {value:.3f}" for k, value in means.items()) + "\n")
    print(means.to_string())


def run_friedman(args: argparse.Namespace) -> None:
    """Meta-train per K, pick the algorithm and steps on validation tasks, then compare on the test tasks."""

    data = str(Path(args.data).resolve())
    store = str((args.out / "friedman_models").resolve())  # small meta-models, kept out of git
    jobs = [Job("friedman", m, k, 0, args.time, data, store=store)
            for k in FRIEDMAN_ROWS for m in ("maml", "metasgd", "reptile")]
    meta_rows = run_jobs(jobs, friedman_meta_job, args.out / "friedman_meta.csv", args.jobs)
    steps_columns = [f"val_mse_{s}" for s in STEP_CHOICES]
    compare = []
    for k, part in meta_rows.groupby("shots"):
        best = part.loc[part[steps_columns].min(axis=1).idxmin()]
        steps = STEP_CHOICES[int(np.nanargmin(best[steps_columns].to_numpy(float)))]  # a diverged count is NaN
        compare += [Job("friedman", str(best["method"]), int(k), 0, 0.0, f"{name}|{steps}|{best['model']}", seed)
                    for name in FRIEDMAN_TEST for seed in range(FRIEDMAN_REPEATS)]
    os.environ["FRIEDMAN_DATA"] = data
    os.environ[EXCLUDE_ENV] = ",".join(FRIEDMAN_TEST)  # automl.fit must not know the test tasks' histories
    csv = args.out / "friedman.csv"
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
    seen = {tuple(r) for r in done[["dataset", "rows", "repeat"]].itertuples(index=False)} if len(done) else set()
    todo = [j for j in compare if (j.data.split("|")[0], j.shots, j.seed) not in seen]
    print(f"{len(todo)} of {len(compare)} comparisons to do", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for row in pool.map(friedman_compare_job, todo):
            print(row, flush=True)
            done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
            done.to_csv(csv, index=False)
    (args.out / "friedman.md").write_text(friedman_report(meta_rows, done) + "\n")


if __name__ == "__main__":
    main()
