"""``automl meta``: meta-train a network across a task series, and evaluate it, from a shell.

SERIES is ``sinusoid``, ``omniglot:PATH`` (a folder of the Omniglot background
zips, or one zip; meta-training uses its training alphabets, each character
turned by 90, 180 and 270 degrees as more classes, and checkpoints on its
validation alphabets; evaluation uses its test alphabets) or tabular files,
each a task with the same feature columns (a folder of them, or a list).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from automl.errors import ConfigError, DataError
from automl.learn2learn.omniglot import official_runs, omniglot
from automl.learn2learn.series import from_datasets, sinusoid
from automl.model import load

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".gz")
EXAMPLES = """examples:
  automl meta fit sinusoid --algorithm metasgd --shots 5 --time 60 --out sine.pkl
  automl meta evaluate sine.pkl sinusoid --shots 5 --steps 10
  automl meta fit omniglot:../shared/datasets/omniglot --algorithm protonet --ways 20 --shots 1 --time 600 \\
      --out omni.pkl
  automl meta evaluate omni.pkl omniglot:../shared/datasets/omniglot --ways 5 --shots 1
  automl meta evaluate omni.pkl --omniglot-runs ../shared/datasets/omniglot/all_runs.zip
  automl meta fit tasks/ --target y --algorithm maml --shots 10 --time 120 --out tables.pkl
  automl meta fit sinusoid --algorithm maml++ --shots 10 --time 3600 --out long.pkl   # stopped? then:
  automl meta fit sinusoid --time 3600 --resume long.pkl --report long.html            # ... goes on from long.pkl
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``meta`` command and its ``fit`` and ``evaluate`` subcommands."""
    meta = commands.add_parser("meta", help="learning to learn: meta-train a network across a task series",
                               description=__doc__, epilog=EXAMPLES,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    meta_commands = meta.add_subparsers(dest="meta_command", metavar="META_COMMAND")
    fit = meta_commands.add_parser("fit", help="meta-train on a task series", epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("series", nargs="+", help="sinusoid, omniglot:PATH, or a folder or list of tabular files")
    fit.add_argument("--algorithm",
                     help="maml, fomaml, metasgd, anil, reptile, maml++, protonet or attentive (default maml; "
                          "with --resume, the run's own)")
    fit.add_argument("--model", help="mlp or cnn (default: cnn for Omniglot, mlp otherwise)")
    fit.add_argument("--time", type=float, default=60.0, help="meta-training time budget in seconds (default 60)")
    fit.add_argument("--search", action="store_true", help="tune the meta-hyperparameters on validation tasks first")
    fit.add_argument("--backend", default="optuna", choices=["optuna", "ray"], help="where --search runs its trials")
    fit.add_argument("--out", help="where to write the meta-model, at every checkpoint and at the end (default "
                                   "meta.pkl; with --resume, the file resumed)")
    fit.add_argument("--resume", metavar="FILE",
                     help="go on training the run saved in FILE (optimizer, schedule and random state included) "
                          "for what is left of --time, the time it already trained counted")
    fit.add_argument("--report", metavar="HTML", help="also write the run's report (training curve, settings)")
    _episode_options(fit)
    fit.add_argument("--inner-steps", type=int, help="adaptation steps during meta-training")
    fit.add_argument("--device", default="auto", help="auto (a GPU when torch sees one), cpu or cuda")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    evaluate = meta_commands.add_parser("evaluate", help="score a meta-model on new tasks of a series", epilog=EXAMPLES,
                                        formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("model", help="a file written by 'automl meta fit'")
    evaluate.add_argument("series", nargs="*", help="the series to draw new tasks from (as for fit)")
    evaluate.add_argument("--omniglot-runs", help="all_runs.zip: the 20 official 20-way one-shot runs (error rate)")
    _episode_options(evaluate, defaults=False)
    evaluate.add_argument("--episodes", type=int, default=600, help="new tasks scored (default 600)")
    evaluate.add_argument("--steps", type=int, help="adaptation steps (default: the meta-training's)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--report", metavar="HTML", help="write the model's report with these evaluations")


def _episode_options(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    parser.add_argument("--shots", type=int, default=5 if defaults else None,
                        help="support examples per task (per class)")
    parser.add_argument("--ways", type=int, help="classes per task (classification)")
    parser.add_argument("--query", type=int, default=None if defaults else 15,
                        help="query examples per task (per class; default 15, Prototypical Networks' training 5)")
    parser.add_argument("--target", default="target", help="the label column of tabular files (default target)")


def series_from(spec: list[str], target: str, split: str):
    """The task series SERIES names; ``split`` picks Omniglot's alphabets (train, validation or test)."""

    if spec == ["sinusoid"]:
        return sinusoid()
    if len(spec) == 1 and spec[0].startswith("omniglot:"):

        return omniglot(spec[0].removeprefix("omniglot:"), split=split, rotations=split == "train")
    files: list[Path] = []
    for item in map(Path, spec):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.name.endswith(TABLE_SUFFIXES))
        elif item.exists():
            files.append(item)
        else:
            raise DataError(f"{str(item)!r} is neither a file nor a folder; SERIES is sinusoid, omniglot:PATH, "
                            "or a folder or list of tabular files")
    return from_datasets(files, target=target)


def run(args: argparse.Namespace) -> None:
    """``automl meta fit`` or ``automl meta evaluate``."""
    if args.meta_command == "fit":
        _fit(args)
    elif args.meta_command == "evaluate":
        _evaluate(args)
    else:
        raise ConfigError("automl meta: choose fit or evaluate (see automl meta --help)")


def _fit(args: argparse.Namespace) -> None:
    from automl.learn2learn.meta_fit import meta_fit  # needs torch

    images = args.series[0].startswith("omniglot:")
    series = series_from(args.series, args.target, "train")
    validation = series_from(args.series, args.target, "validation") if images else None
    out = args.out or args.resume or "meta.pkl"
    meta = meta_fit(
        series, algorithm=args.algorithm, model=args.model or ("cnn" if images else "mlp"), ways=args.ways,
        shots=args.shots, query=args.query, inner_steps=args.inner_steps, time_budget=args.time, validation=validation,
        search=args.search, backend=args.backend, device=args.device, seed=args.seed, checkpoint=out,
        resume=args.resume, verbose=0 if args.quiet else 1,
    )
    meta.save(out)
    metric = "mse" if meta.task == "regression" else "accuracy"
    score = f"{meta.validation_score:.4f}" if meta.validation_score is not None else "not scored"
    print(f"meta-trained {meta.algorithm} for {meta.seconds:.0f} s: validation {metric} {score}; "
          f"settings {meta.settings}")
    for trial in meta.trials:
        print(f"  trial: {trial}")
    print(f"written: {out}")
    if args.report:
        print(f"report: {meta.report(args.report)}")


def _evaluate(args: argparse.Namespace) -> None:
    meta = load(args.model)
    if not hasattr(meta, "adapt"):
        raise ConfigError(f"{args.model} is a model of 'automl fit', not a meta-model of 'automl meta fit'")
    if args.omniglot_runs:
        wrong, total = meta.evaluate_official_runs(official_runs(args.omniglot_runs))
        print(f"official 20-way one-shot runs: error {100 * wrong / total:.1f} % "
              f"({wrong} of {total} test drawings wrong)")
    if args.series:
        series = series_from(args.series, args.target, "test")
        print(meta.evaluate(series, shots=args.shots, ways=args.ways, query=args.query, episodes=args.episodes,
                            steps=args.steps, seed=args.seed))
    elif not args.omniglot_runs:
        raise ConfigError("automl meta evaluate: give a SERIES to draw tasks from, or --omniglot-runs all_runs.zip")
    if args.report:
        print(f"report: {meta.report(args.report)}")
