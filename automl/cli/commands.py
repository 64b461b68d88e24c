"""The ``automl`` command line: fit, predict, inspect; manage knowledge bases; meta-train (``automl meta``).

Errors the engine raises on purpose are printed as one line (exit code 2);
Ctrl-C exits with 130 after the search has stored what it finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from automl.cli.meta import add_parser as add_meta_parser
from automl.cli.meta import run as run_meta
from automl.cli.wording import in_cli_words
from automl.data.dataset import load_dataset
from automl.data.sources import read_table
from automl.engine import fit_with_options, work
from automl.errors import AutoMLError, ConfigError, DataError, ModelFileError
from automl.knowledge.build import build_knowledge_base
from automl.knowledge.portfolio import explicit_table, shipped_table
from automl.knowledge.portfolio_refit import read_refitted
from automl.knowledge.prepared import knowledge_family, prepared_knowledge
from automl.knowledge.repository import POOL_SIZE, REPOSITORY_ROWS, build_prediction_repository
from automl.knowledge.repository import TRIAL_TIME_LIMIT as REPOSITORY_TRIAL_TIME
from automl.model import AutoModel, load
from automl.options import FitOptions
from automl.serving.distill import DistilledModel
from automl.serving.export import require_format
from metaknowledge.location import mask_secrets
from metaknowledge.openml_import import import_openml
from metaknowledge.shipped import holds_anything, shipped_directory, shipped_knowledge, user_kb
from metaknowledge.store import KnowledgeBase, KnowledgeBaseError
from searchspaces.space import describe_params

EXAMPLES = """examples:
  automl fit sklearn:breast_cancer --time 30 --test-size 0.25
  automl fit train.csv --target label --time 60 --out model.pkl
  automl fit ../shared/datasets/pmlb/adult.tsv.gz --time 30 --storage runs.db   # rerun to resume
  automl fit site7.csv --target y --learners mlp --meta-init meta.pkl --time 20   # start from meta-learned weights
  automl worker train.csv --target label --storage runs.db --study s1 --time 600 &   # more processes, one study
  automl fit train.csv --target label --storage runs.db --study s1 --time 600 --backend ray --address auto
  automl predict model.pkl new_rows.csv --out predictions.csv --proba
  automl info model.pkl
  automl report model.pkl --out report.html --data test.csv   # an HTML report of the search
  automl export model.pkl --format onnx --out model.onnx --data train.csv   # one ONNX graph, checked in onnxruntime
  automl kb info
  automl kb build --datasets ../shared/datasets/pmlb --configs 150 --kb corpus.sqlite
  automl meta fit sinusoid --algorithm metasgd --time 60 --out sine.pkl   # learning to learn (automl meta --help)
  automl bench --names peers --systems ours flaml hgb_default const --budgets 10 30 --out results/
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with the password of any URL on the command line kept out of its usage errors."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {mask_secrets(message)}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="automl",
        description="An AutoML engine that learns to learn: search learners and hyperparameters within a time budget.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    fit = commands.add_parser("fit", help="search and fit a model", epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("data", help="a CSV/TSV/Parquet file, openml:<id>, openml-task:<id> or sklearn:<name>")
    fit.add_argument("--target", help="the label column (PMLB files default to 'target')")
    fit.add_argument("--task", choices=["classification", "regression"], help="override the inferred task")
    fit.add_argument("--time", type=float, default=60.0, help="time budget in seconds, final fit included (default 60)")
    fit.add_argument("--trials", type=int, help="stop after this many trials")
    fit.add_argument("--metric", help="metric to optimise (default: roc_auc, log_loss or rmse by task)")
    fit.add_argument("--learners", nargs="+",
                     help="learners to search (default: the 'default' space, joined by XGBoost and CatBoost from "
                          "--time 10 on where they are installed)")
    fit.add_argument("--space", help="a registered space name: default, trees, fast")
    fit.add_argument("--test-size", type=float, default=0.0,
                     help="hold out this share of rows and report the test score")
    fit.add_argument("--out", default="model.pkl", help="where to write the model (default model.pkl)")
    fit.add_argument("--storage", help="an SQLite file or database URL to keep trials in (rerun to resume)")
    fit.add_argument("--study", help="study name inside the storage")
    fit.add_argument("--kb", metavar="FILE_OR_URL",
                     help="the knowledge base to learn from and write this search to: a file, or a team's "
                          "postgresql://USER@HOST:PORT/DB (default: AUTOML_KB, else one in your cache folder)")
    fit.add_argument("--jobs", type=int, default=1, help="trials run in parallel worker processes (default 1)")
    fit.add_argument("--backend", default="optuna", choices=["optuna", "ray", "ray-tune"],
                     help="where trials run (default optuna)")
    fit.add_argument("--address", help="Ray cluster: auto, host:port or ray://host:port (default: a local one)")
    fit.add_argument("--max-concurrent", type=int, help="Ray: trials at once, at most")
    fit.add_argument("--ensemble", type=int, default=5,
                     help="the final model weights up to N configurations chosen by ensemble selection "
                          "(default 5; 1: the best alone)")
    fit.add_argument("--final-fit", choices=["auto", "refit", "bag"], default="auto",
                     help="refit the members on the training rows, or bag: average their fold models from the search "
                          "(no refit; a stacking layer where it measures better); auto bags data of at most 5,000 "
                          "rows (default)")
    fit.add_argument("--meta-init", metavar="FILE",
                     help="a meta-model saved by automl.meta_fit(...).save(FILE): the learner meta_mlp (in the place "
                          "of mlp when that is searched) starts from its meta-learned weights and rates and adapts to "
                          "the data; it must be meta-trained on tables with these feature columns (needs torch)")
    fit.add_argument("--max-predict-ms", type=float, metavar="MS",
                     help="the final model predicts one row within MS milliseconds (median), or the fit says it cannot")
    fit.add_argument("--max-model-mb", type=float, metavar="MB",
                     help="the final model's pickle is at most MB megabytes")
    fit.add_argument("--distill", type=float, nargs="?", const=-1.0, metavar="SECONDS",
                     help="also distill the model into one compact student, a small LightGBM or a linear model, "
                          "whichever agrees best with it (default: half the --time, "
                          "at least 10 s), written beside --out as NAME.student.pkl")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--report", metavar="FILE",
                     help="write the HTML report of the search there at the end, with out-of-fold feature importance")
    fit.add_argument("-v", "--verbose", action="count", default=1, help="-v: log every trial")
    fit.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    worker = commands.add_parser("worker",
                                 help="add trials to a shared study (several processes or machines; no model)")
    worker.add_argument("data", help="the same data the final 'automl fit' gets")
    worker.add_argument("--storage", required=True, help="database URL (postgresql://...), SQLite file or journal file")
    worker.add_argument("--study", required=True, help="the shared study's name")
    worker.add_argument("--kb", metavar="FILE_OR_URL", help="the knowledge base to write the trials to (as for fit)")
    worker.add_argument("--target", help="the label column")
    worker.add_argument("--task", choices=["classification", "regression"])
    worker.add_argument("--time", type=float, default=60.0, help="seconds to search (default 60)")
    worker.add_argument("--trials", type=int, help="stop after this many trials")
    worker.add_argument("--metric")
    worker.add_argument("--learners", nargs="+")
    worker.add_argument("--seed", type=int, help="sampler seed (default: random, so workers explore differently)")
    worker.add_argument("-q", "--quiet", action="store_true")

    predict = commands.add_parser("predict", help="predict with a saved model")
    predict.add_argument("model", help="a model file written by 'automl fit'")
    predict.add_argument("data", help="a CSV/TSV/Parquet file with the model's feature columns")
    predict.add_argument("--out", default="predictions.csv",
                         help="where to write predictions (default predictions.csv)")
    predict.add_argument("--proba", action="store_true", help="also write class probabilities")
    predict.add_argument("--keep", nargs="+", metavar="COLUMN",
                         help="columns of the data copied into the output beside each prediction, to match rows by "
                              "(default: the ID-like columns the model ignores, such as customer_id)")

    info = commands.add_parser("info", help="describe a saved model")
    info.add_argument("model")

    report = commands.add_parser("report", help="write the HTML report of a saved model's search")
    report.add_argument("model", help="a model file written by 'automl fit'")
    report.add_argument("--out", default="report.html", help="where to write the report (default report.html)")
    report.add_argument("--data", metavar="FILE",
                        help="held-out rows with the target column (CSV/TSV/Parquet): "
                             "the report shows feature importance on them")

    export = commands.add_parser("export",
                                 help="write a saved model (or student) as one ONNX graph, checked in onnxruntime")
    export.add_argument("model", help="a model file written by 'automl fit' (or its .student.pkl)")
    export.add_argument("--format", default="onnx", help="the format to write (onnx)")
    export.add_argument("--out", default="model.onnx",
                        help="where to write it (default model.onnx; FILE.json beside it)")
    export.add_argument("--data", metavar="FILE", required=True,
                        help="training rows (CSV/TSV/Parquet) to check the export on: the graph is run on them in "
                             "onnxruntime and compared with the model")
    export.add_argument("--target", metavar="COL", help="the target column of --data, left out (default: the model's)")

    kb = commands.add_parser("kb", help="knowledge bases: info, build, import-openml, export, merge")
    kb_commands = kb.add_subparsers(dest="kb_command", metavar="KB_COMMAND")
    kb_info = kb_commands.add_parser("info", help="what a knowledge base holds")
    kb_info.add_argument("--kb", help="a knowledge base, file or postgresql://... (default: the shipped one, yours)")
    build = kb_commands.add_parser("build", help="evaluate the shared candidates on a corpus of datasets")
    build.add_argument("--datasets", required=True, help="a directory in the PMLB layout")
    build.add_argument("--names", nargs="+", help="only these datasets")
    build.add_argument("--configs", type=int,
                       help="candidate configurations per task (default 150; per task kind's pool with --predictions, "
                            "default 48)")
    build.add_argument("--folds", type=int, default=3)
    build.add_argument("--max-rows", type=int, help="rows sampled per dataset (default 5000; 1000 with --predictions)")
    build.add_argument("--jobs", type=int, default=1)
    build.add_argument("--trial-time", type=float, help="per-run time limit in seconds (default 60; 30 with "
                                                         "--predictions)")
    build.add_argument("--neural", action="store_true",
                       help="evaluate the neural grid (MLP architectures x learning rates, capped epochs; needs torch)")
    build.add_argument("--learners", nargs="+",
                       help="only these learners' candidates (--configs shared among them), "
                            "to add new learners to a base")
    build.add_argument("--predictions", action="store_true",
                       help="build the repository of out-of-fold predictions that portfolios are learned from "
                            "(each kind's candidate pool on every dataset; rows capped by --max-rows, default 1000) "
                            "in the directory --out")
    build.add_argument("--out", help="the prediction repository's directory (with --predictions)")
    build.add_argument("--kb", help="the knowledge base (file or URL) to create or extend (not with --predictions)")
    openml = kb_commands.add_parser("import-openml", help="import tasks, qualities and run histories from OpenML")
    openml.add_argument("--tasks", nargs="+", type=int, required=True, help="OpenML task ids")
    openml.add_argument("--flows", nargs="+", type=int, help="only runs of these flows")
    openml.add_argument("--metric", default="area_under_roc_curve",
                        help="OpenML evaluation measure (default area_under_roc_curve)")
    openml.add_argument("--datasets", nargs="+", type=int,
                        help="also download these datasets and compute our meta-features")
    openml.add_argument("--max-runs", type=int, default=10_000, help="runs per task, at most")
    openml.add_argument("--kb", help="the base to add to (default: yours)")
    export = kb_commands.add_parser("export", help="write a knowledge base as Parquet files")
    export.add_argument("--kb", required=True)
    export.add_argument("--out", required=True, help="a directory")
    add_meta_parser(commands)
    commands.add_parser("bench", help="the peer benchmark (python -m benchmarks.peers), with all its options",
                        add_help=False)
    merge = kb_commands.add_parser("merge", help="add another base (SQLite file or export directory) to a base")
    merge.add_argument("source")
    merge.add_argument("--kb", required=True, help="the base to add to")
    refresh = kb_commands.add_parser("refresh", help="prepare what the warm start learns from the shipped and your "
                                     "knowledge now (fits under 30 s use it as of before their latest searches)")
    refresh.add_argument("--kb", default=None, help="your base (default: AUTOML_KB or the cache directory)")
    return parser


def _print_leaderboard(board: pd.DataFrame, rows: int = 10) -> None:
    shown = board.head(rows).copy()
    shown["params"] = shown["params"].map(describe_params)
    columns = ["rank", "learner", "score", "std", "fit_seconds", "status", "origin", "weight", "params"]
    with pd.option_context("display.max_colwidth", 70, "display.width", 200):
        print(shown[columns].to_string(index=False))
    if len(board) > rows:
        print(f"... {len(board) - rows} more trials")


def _fit(args: argparse.Namespace) -> None:
    from sklearn.model_selection import train_test_split


    if args.test_size and not 0 < args.test_size < 1:
        raise ConfigError(f"--test-size must be between 0 and 1, got {args.test_size}")
    options = FitOptions.build(  # checked before the data is read: a wrong flag fails at once
        task=args.task, metric=args.metric, time_budget=args.time, n_trials=args.trials,
        learners=args.learners, space=args.space, storage=args.storage, study_name=args.study,
        n_jobs=args.jobs, backend=args.backend, address=args.address, max_concurrent=args.max_concurrent,
        ensemble_size=args.ensemble, final_fit=args.final_fit, meta_init=args.meta_init, seed=args.seed,
        report=args.report, kb=args.kb,
        max_predict_ms=args.max_predict_ms, max_model_mb=args.max_model_mb, verbose=0 if args.quiet else args.verbose,
    )
    dataset = load_dataset(args.data, target=args.target, task=args.task)
    options = options.replace(task=dataset.kind)
    X, y = dataset.X, dataset.y
    test = None
    if args.test_size:
        stratify = y if dataset.kind == "classification" and y.value_counts().min() >= 2 else None
        X, X_test, y, y_test = train_test_split(X, y, test_size=args.test_size, random_state=args.seed,
                                                stratify=stratify)
        test = (X_test, y_test)
    model = fit_with_options(X, y, options)
    print(f"\n{model}\n")
    _print_leaderboard(model.leaderboard())
    if test is not None:
        X_test, y_test = test
        extra = "accuracy" if dataset.kind == "classification" else "r2"
        value, readable = model.score(X_test, y_test), model.score(X_test, y_test, metric=extra)
        print(f"\nheld-out test ({len(y_test)} rows): {model.metric} = {value:.4f}, {extra} = {readable:.4f}")
    path = model.save(args.out)
    print(f"\nmodel written to {path}")
    if args.distill is not None:
        seconds = args.distill if args.distill > 0 else max(10.0, (args.time or 20.0) / 2)
        student = model.distill(time_budget=seconds, seed=args.seed)
        report = student.report
        print(f"\n{student}: {report.trials} students tried in {report.seconds:.1f} s on {report.rows} rows "
              f"and {report.augmented_rows} perturbed copies")
        print(f"on training rows it never saw: {report.fidelity_name} with the model {report.fidelity:.4f}, "
              f"{report.metric} {report.score:.4f} (the model, in-sample: {report.teacher_score:.4f})")
        if test is not None:
            print(f"held-out test ({len(test[1])} rows): student {model.metric} = {student.score(*test):.4f}")
        print(f"student written to {student.save(Path(args.out).with_suffix('.student.pkl'))}")


def _worker(args: argparse.Namespace) -> None:
    import random


    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    results = work(
        args.data, target=args.target, task=args.task, storage=args.storage, study_name=args.study,
        time_budget=args.time, n_trials=args.trials, metric=args.metric, learners=args.learners, seed=seed,
        kb=args.kb, verbose=0 if args.quiet else 1,
    )
    ok = [r for r in results if r.ok]
    print(f"worker added {len(results)} trials ({len(ok)} succeeded) to study {args.study!r}")


def _predict(args: argparse.Namespace) -> None:
    model = load(args.model)
    if args.proba and model.task.task == "regression":
        raise ConfigError("--proba needs a classification model, and this one is a regression: drop --proba")
    frame = read_table(args.data)
    out = frame[_kept_columns(frame, model, args.keep, args.data)].reset_index(drop=True)
    out["prediction"] = model.predict(frame)
    if args.proba:
        proba = model.predict_proba(frame)
        for index, label in enumerate(model.classes_):
            out[f"proba_{label}"] = proba[:, index]
    if model.task.target in frame.columns:
        print(f"{model.metric} on {args.data}: {model.score(frame, frame[model.task.target]):.4f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    print(f"{len(out)} predictions written to {args.out}")


def _kept_columns(frame: pd.DataFrame, model: Any, keep: list[str] | None, source: str) -> list[str]:
    """The columns of ``frame`` that the predictions carry: ``--keep``'s, else the ID-like ones the model ignores."""
    if keep:
        missing = [name for name in keep if name not in frame.columns]
        if missing:
            raise DataError(f"--keep {' '.join(missing)}: {source} has no such column; its columns are "
                            f"{list(frame.columns)[:20]}")
        return list(dict.fromkeys(keep))
    schema = model.encoder.schema if isinstance(model, DistilledModel) else model.schema
    ignored = getattr(schema, "dropped", ())  # models saved before it existed have none
    return [name for name in ignored if name in frame.columns]


def _info(args: argparse.Namespace) -> None:
    model = load(args.model)
    if isinstance(model, DistilledModel):
        _student_info(model)
        return
    if not isinstance(model, AutoModel):
        raise ModelFileError(f"{args.model!r} holds a {model.kind}; 'automl info' describes models written by "
                             "'automl fit' and their students (a meta-model: automl meta evaluate)")
    task, summary = model.task, model.summary
    print(model)
    print(f"task:      {task.task}, target {task.target!r}, metric {task.metric}")
    print(f"data:      {task.n_rows} rows, {task.n_features} features ({len(task.categorical)} categorical)")
    if task.classes:
        # plain values, older files too
        print(f"classes:   {[c.item() if hasattr(c, 'item') else c for c in task.classes]}")
    print(f"search:    {summary.n_trials} trials, {summary.seconds:.1f} s, backend {summary.backend}"
          + (" (interrupted)" if summary.interrupted else ""))
    best = "n/a (no trial finished within the budget)" if model.best_score_ is None else f"{model.best_score_:.5f}"
    print(f"best:      {model.best_config_} -> cv {task.metric} {best}")
    if len(model.members_) > 1:
        shares = ", ".join(f"{m.config.learner} {m.weight:.2f}" for m in model.members_)
        how = "stacked by a linear layer over" if model.members_[0].stacked else "weighted"
        print(f"ensemble:  {len(model.members_)} configurations {how} {shares} (weight on the leaderboard)")
    fits = {m.fit for m in model.members_}
    if "bagged" in fits:
        print(f"bagged:    {sum(m.fit == 'bagged' for m in model.members_)} of the members average their fold models "
              "from the search (no refit)")
    print(f"refit:     {summary.refit_rows} rows" + (f"; {summary.refit_note}" if summary.refit_note else ""))
    notes = getattr(model, "column_notes", [])
    if notes:
        print("columns:")
        for note in notes:
            print(f"  {note}")
    print()
    _print_leaderboard(model.leaderboard())


def _student_info(student: DistilledModel) -> None:
    """``automl info`` of a distilled student: what it is, how closely it follows its model, what it leaves out."""
    report, task = student.report, student.task
    print(student)
    print(f"task:      {task.task}, target {task.target!r}, metric {task.metric}")
    print(f"student:   {report.student} {report.params}, distilled in {report.seconds:.1f} s from {report.rows} rows "
          f"and {report.augmented_rows} perturbed copies")
    print(f"fidelity:  {report.fidelity_name} {report.fidelity:.4f} with its model on rows it never saw; "
          f"{report.metric} {report.score:.4f} (the model, in-sample: {report.teacher_score:.4f})")
    if report.ignored:
        print(f"ignores:   {report.describe_ignored()}")


def _report(args: argparse.Namespace) -> None:
    model = load(args.model)
    if not isinstance(model, AutoModel):
        raise ModelFileError(f"{args.model!r} holds a {model.kind}; "
                             "'automl report' describes models written by 'automl fit'")
    data = None
    if args.data:
        frame = read_table(args.data)
        target = model.task.target
        if target not in frame.columns:
            raise DataError(f"{args.data!r} has no column {target!r} (the model's target): the report needs it "
                                   "to measure feature importance; add it, or leave out --data")
        data = (frame.drop(columns=[target]), frame[target])
    print(f"report written to {model.report(args.out, *(data or ()))}")


def _export(args: argparse.Namespace) -> None:
    require_format(args.format)
    model = load(args.model)
    if not isinstance(model, (AutoModel, DistilledModel)):
        raise ModelFileError(f"{args.model!r} holds a {model.kind}; 'automl export' writes models of 'automl fit'")
    frame = read_table(args.data)
    target = args.target or model.task.target
    if args.target and args.target not in frame.columns:
        raise DataError(f"--target {args.target!r} is not a column of {args.data}")
    rows = frame.drop(columns=[target]) if target in frame.columns else frame
    print(model.export(args.out, args.format, X=rows).describe())


def _kb(args: argparse.Namespace) -> None:
    if args.kb_command == "info":

        if args.kb:
            print(json.dumps(KnowledgeBase(args.kb, readonly=True).info(), indent=2))
            return
        print(json.dumps({"shipped": str(shipped_directory()), **shipped_knowledge().info()}, indent=2))
        user = user_kb()
        if holds_anything(user):
            print(json.dumps(KnowledgeBase(user, readonly=isinstance(user, Path)).info(), indent=2))
        else:
            print(f"your knowledge base ({user}) is empty: every fit() adds to it")
        print(_portfolio_status(None))
    elif args.kb_command == "build" and args.predictions:
        _build_predictions(args)
    elif args.kb_command == "build":
        if not args.kb:
            raise SystemExit("automl kb build: give --kb FILE, the knowledge base to create or extend "
                             "(or --predictions --out DIR for the prediction repository)")
        report = build_knowledge_base(
            args.kb, args.datasets, names=args.names, n_configs=args.configs or 150, folds=args.folds,
            max_rows=args.max_rows or 5000, jobs=args.jobs, trial_time_limit=args.trial_time or 60.0,
            neural=args.neural, learners=args.learners,
        )
        print(f"{report.datasets} datasets, {report.runs_added} runs added, {report.skipped_pairs} already done, "
              f"{len(report.failed_datasets)} failed to load, {report.seconds:.0f} s")
        for name, error in report.failed_datasets.items():
            print(f"  {name}: {error}")
    elif args.kb_command == "import-openml":

        report = import_openml(
            KnowledgeBase(user_kb(args.kb)), args.tasks, flows=args.flows, metric=args.metric,
            datasets=args.datasets, max_runs=args.max_runs,
        )
        print(f"imported {len(report.tasks)} tasks: {report.mapped_runs} runs mapped onto our learners, "
              f"{report.foreign_runs} kept as foreign runs; our meta-features for datasets {report.described_datasets}")
    elif args.kb_command == "export":
        print(f"exported to {KnowledgeBase(args.kb, readonly=True).export(args.out)}")
    elif args.kb_command == "merge":
        target = KnowledgeBase(args.kb)
        source = Path(args.source)
        added = target.import_export(source) if source.is_dir() else target.merge(KnowledgeBase(source, readonly=True))
        print(f"added {added}")
    elif args.kb_command == "refresh":
        state = prepared_knowledge(args.kb)
        print(f"the warm start now knows {sum(state.tasks_per_kind.values())} tasks and {state.n_runs} runs")
        print(_portfolio_status(args.kb))
    else:
        raise SystemExit("automl kb: choose one of info, build, import-openml, export, merge, refresh "
                         "(see automl kb --help)")


def _portfolio_status(kb: str | None) -> str:
    """What the portfolios a fit starts with are: as shipped, or refitted from the user's searches and when."""
    shipped = shipped_table()
    if not shipped.portfolios:
        return "portfolios: none (the shipped knowledge is switched off or missing)"
    refitted = None if explicit_table() else read_refitted(knowledge_family(kb))
    source = refitted.describe() if refitted is not None else "as shipped (automl kb refresh refits them from yours)"
    return (f"portfolios: {len(shipped.portfolios)} (one per task kind, budget and size of data), learned from "
            f"{shipped.built_from}; {source}")


def _build_predictions(args: argparse.Namespace) -> None:
    """``automl kb build --predictions``: the prediction repository, resumable, its size printed at the end."""
    if not args.out:
        raise SystemExit("automl kb build --predictions: give --out DIR, the directory of the prediction repository "
                         "(kept outside the package; a build into the same directory resumes)")
    report = build_prediction_repository(args.out, args.datasets, names=args.names,
                                         max_rows=args.max_rows or REPOSITORY_ROWS, jobs=args.jobs,
                                         trial_time_limit=args.trial_time or REPOSITORY_TRIAL_TIME,
                                         pool_size=args.configs or POOL_SIZE)
    print(f"{report.tasks_added} tasks added, {report.tasks_skipped} already done, {len(report.failed)} failed to "
          f"load, {report.seconds:.0f} s; the repository in {args.out} holds {report.size_bytes / 2**20:.1f} MB")
    for name, error in report.failed.items():
        print(f"  {name}: {error}")


def _bench(argv: list[str]) -> int:
    """``automl bench``: the peer benchmark of a checkout of this project (it is not installed with the package)."""
    import importlib
    import importlib.util

    checkout = Path(__file__).resolve().parents[2]  # automl/cli/commands.py -> the checkout
    if not (checkout / "benchmarks" / "peers.py").exists():
        print("automl bench: error: the benchmarks ship with the source, not the package: clone the repository "
              "and run 'automl bench' (or python -m benchmarks.peers) from its root", file=sys.stderr)
        return 2
    spec = importlib.util.find_spec("benchmarks")
    if spec is None or Path(spec.origin or "").resolve().parent != checkout / "benchmarks":
        sys.path.insert(0, str(checkout))  # this checkout's benchmarks, not another project's package of that name
        sys.modules.pop("benchmarks", None)
    importlib.import_module("benchmarks.peers").main(argv)
    return 0


def _plain_warning(command: str):
    """How the CLI shows a warning: one line in its own words, not Python's source line under it."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"automl {command}: warning: {in_cli_words(mask_secrets(str(message)))}", file=file or sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``automl`` console script."""

    def offline(error: Exception) -> bool:
        return "ConnectionError" in type(error).__name__ or "OpenMLServer" in type(error).__name__

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    handlers = {"fit": _fit, "worker": _worker, "predict": _predict, "info": _info, "report": _report,
                "export": _export, "kb": _kb, "meta": run_meta}
    if args.command not in handlers:
        parser.print_help()
        return 1
    try:
        with warnings.catch_warnings():  # restores how warnings show once the command ends
            warnings.showwarning = _plain_warning(args.command)
            handlers[args.command](args)
    except (AutoMLError, KnowledgeBaseError, FileNotFoundError, ImportError) as error:
        print(f"automl {args.command}: error: {in_cli_words(mask_secrets(str(error)))}", file=sys.stderr)
        return 2
    except Exception as error:
        if offline(error):
            print(f"automl {args.command}: error: could not reach OpenML ({type(error).__name__}: {error}); "
                  "this needs internet access", file=sys.stderr)
            return 2
        # A defect of automl or of a library under it: the whole story for a bug report, passwords masked.
        print(mask_secrets(traceback.format_exc()), file=sys.stderr, end="")
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
