"""The HTML report of a search: what it tried, when, what won, where its time went, what the model uses.

``write_report(model, path)`` writes one self-contained HTML file (images
embedded, no script, opens offline) with the sections of :data:`SECTIONS`:
the best score over time with each trial marked by origin (warm start,
defaults, search), the leaderboard, the scores per learner, each learner's
hyperparameter importance (:mod:`automl.reporting.param_importance`), the warm start's
provenance, the final model's members, the budget's use and the permutation
feature importance (:mod:`automl.reporting.importance`).

Feature importance comes from held-out rows when given (``data=(X, y)``);
at the end of a fit (``fit(report=...)``, which passes its ``evaluator``) it
is measured out of fold and kept on ``model.summary.feature_importance``, so
later reports of the saved model show it; otherwise the report says how to
get it. It is never measured on the rows the final model was fitted on.

>>> model.report("report.html", X_test, y_test)   # doctest: +SKIP
>>> automl report model.pkl --out report.html --data test.csv   # doctest: +SKIP (a shell command)
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from automl._version import __version__
from automl.reporting.html import esc, facts, image, number, page, score, short_params, table
from automl.reporting.importance import feature_groups, out_of_fold_importance
from automl.reporting.param_importance import MIN_TRIALS, param_importances
from automl.search.evaluation import Evaluator
from automl.search.metrics import get_metric
from searchspaces import get_learner

log = logging.getLogger(__name__)

SECTIONS = ("Search progress", "Leaderboard", "Scores per learner", "Hyperparameter importance", "Warm start",
            "Final model", "Time budget", "Feature importance")
LEADERBOARD_ROWS = 25
HELD_OUT_ROWS = 5_000  # held-out rows feature importance is measured on, at most (a stratified sample)
# out-of-fold importance may take this share of the fit's budget after it (at least MIN_IMPORTANCE_SECONDS)
IMPORTANCE_SHARE = 0.1
MIN_IMPORTANCE_SECONDS = 5.0
NO_MATPLOTLIB = ('<p class="note">(A figure belongs here: it needs matplotlib, '
                 "<code>pip install 'automl-engine[report]'</code>.)</p>")


def write_report(model: Any, path: str | Path, evaluator: Evaluator | None = None,
                 data: tuple[Any, Any] | None = None) -> Path:
    """Write the HTML report of ``model``'s search to ``path``; returns the path.

    ``data``: held-out rows ``(X, y)`` to measure feature importance on.
    ``evaluator``: the search's (at the end of a fit): its learners' spaces
    inform the hyperparameter importance, and without ``data`` the feature
    importance is measured out of fold on its splits and stored on the model.
    """
    path = Path(path).expanduser()
    started = time.monotonic()
    if importlib.util.find_spec("matplotlib") is None:
        log.warning("the report's figures need matplotlib: pip install 'automl-engine[report]'; "
                    "writing its tables only")
    metric = get_metric(model.metric, model.task.task)
    context = {"model": model, "metric": metric, "evaluator": evaluator, "data": data}
    builders: dict[str, Callable[[dict], str]] = {
        "Search progress": _progress, "Leaderboard": _leaderboard, "Scores per learner": _distribution,
        "Hyperparameter importance": _param_importance, "Warm start": _warm_start, "Final model": _final_model,
        "Time budget": _budget, "Feature importance": _feature_importance,
    }
    parts = [_header(model, metric)]
    for title in SECTIONS:
        try:
            content = builders[title](context)
        except Exception as error:  # one figure that cannot be drawn does not cost the user the report
            log.warning("report section %r not drawn: %s: %s", title, type(error).__name__, error,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            content = (f'<p class="note">This section could not be drawn ({esc(type(error).__name__)}: '
                       f'{esc(error)}).</p>')
        anchor = title.lower().replace(" ", "-")
        parts.append(f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{content}</section>')
    parts.append(f'<p class="note">Written by automl {esc(__version__)} on {datetime.now():%Y-%m-%d %H:%M} '
                 f"in {time.monotonic() - started:.1f} s.</p>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(f"automl report: {model.task.target}", "\n".join(parts)), encoding="utf-8")
    log.info("report written to %s", path)
    return path


def _header(model: Any, metric: Any) -> str:
    task, summary = model.task, model.summary
    statuses = pd.Series([r.status for r in model.results]).value_counts()
    members = model.members_
    shape = "one configuration" if len(members) == 1 else f"an ensemble of {len(members)}"
    return (
        f"<h1>AutoML report: {esc(task.target)}</h1>"
        f'<p>{esc(task.task)} task, {task.n_rows:,} rows × {task.n_features} features, metric {esc(metric.name)} '
        f"({'higher' if metric.greater_is_better else 'lower'} is better). The final model is {shape}, "
        f"led by <b>{esc(members[0].config.learner)}</b>.</p>"
        + facts([
            (score(model.best_score_), f"best cross-validation {metric.name}"),
            (str(len(model.results)), "trials: " + ", ".join(f"{n} {s}" for s, n in statuses.items())),
            (f"{summary.seconds:.1f} s", "the whole fit" + (f", of a {summary.time_budget:g} s budget"
                                                           if getattr(summary, "time_budget", None) else "")),
            (str(len({r.config.learner for r in model.results})), "learners tried"),
        ])
    )


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless one.

    >>> counted(1, "weaker trial"), counted(3, "weaker trial")
    ('1 weaker trial', '3 weaker trials')
    """
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _progress(context: dict) -> str:
    model, metric = context["model"], context["metric"]
    if not any(r.ok for r in model.results):
        return '<p class="note">No trial finished with a score.</p>'
    figure, hidden = embedded_figure("best score over time", "anytime_curve", model.results, metric)
    failed = sum(not r.ok for r in model.results)
    notes = [f"{counted(hidden, 'weaker trial')} {'lies' if hidden == 1 else 'lie'} below the axis." if hidden else "",
             f"{counted(failed, 'trial')} that failed, timed out or {'was' if failed == 1 else 'were'} pruned "
             f"{'has' if failed == 1 else 'have'} no point." if failed else ""]
    return ("<p>The cross-validation score of every trial when it finished, coloured by where its configuration came "
            "from: the <b>warm start</b> (meta-knowledge's suggestions), the learners' <b>defaults</b>, draws from "
            "the warm start's <b>prior</b> region, and the sampler's <b>search</b>. "
            "The line is the best score so far.</p>"
            + figure + f'<p class="note">{esc(" ".join(n for n in notes if n))}</p>')


def _leaderboard(context: dict) -> str:
    board = context["model"].leaderboard()
    shown = board.head(LEADERBOARD_ROWS)
    rows = [[esc("" if pd.isna(r["rank"]) else r["rank"]), esc(r["learner"]), score(r["score"]), number(r["std"], 2),
             number(r["fit_seconds"], 3), esc(r["status"]), esc(r["origin"]), number(r["weight"], 3),
             f'<span title="{esc(short_params(r["params"], 10_000))}">{esc(short_params(r["params"]))}</span>']
            for _, r in shown.iterrows()]
    more = (f'<p class="note">… and {len(board) - len(shown)} more trials (model.leaderboard() has them all).</p>'
            if len(board) > len(shown) else "")
    return ("<p>Trials best first; tinted rows are in the final model, with their weight.</p>"
            + table(["rank", "learner", "score", "std", "fit s", "status", "origin", "weight", "parameters"], rows,
                    numeric=(0, 2, 3, 4, 7), highlight=list(shown["in_model"])) + more)


def _distribution(context: dict) -> str:
    model, metric = context["model"], context["metric"]
    if not any(r.ok for r in model.results):
        return '<p class="note">No trial finished with a score.</p>'
    figure, hidden = embedded_figure("scores per learner", "score_distribution", model.results, metric)
    note = (f'<p class="note">{counted(hidden, "weaker trial")} {"lies" if hidden == 1 else "lie"} outside the '
            'axis.</p>' if hidden else "")
    return ("<p>Each learner's trials (how many in brackets), best learner on top: how good it got, and how much its "
            "score depended on its hyperparameters.</p>" + figure + note)


def _param_importance(context: dict) -> str:
    model, evaluator = context["model"], context["evaluator"]
    found = param_importances(model.results, context["metric"], _learners(model, evaluator))
    if not found:
        return '<p class="note">No trial finished with a score.</p>'
    charts, notes = [], []
    for item in found:
        if item.importances:
            figure, _ = embedded_figure(item.learner, "horizontal_bars", list(item.importances),
                                list(item.importances.values()), "importance (sums to 1)", width=4.6)
            charts.append(f"<div><h3>{esc(item.learner)} ({item.trials} trials)</h3>{figure}</div>")
        else:
            notes.append(f"<li><b>{esc(item.learner)}</b>: {esc(item.reason)}</li>")
    return (f"<p>Which hyperparameters each learner's score depended on in this search (Optuna's fANOVA over its "
            f"successful trials; learners with at least {MIN_TRIALS}).</p>"
            + (f'<div class="grid">{"".join(charts)}</div>' if charts else "")
            + (f"<ul>{''.join(notes)}</ul>" if notes else ""))


def _warm_start(context: dict) -> str:
    model = context["model"]
    warm = getattr(model.summary, "warm_start", None)
    if warm is None or not warm.suggestions:
        why = "warm start was off" if warm is None else "the knowledge base held no tasks of this kind"
        return (f"<p><b>Cold start</b> ({esc(why)}): "
                "the search began from the learners' low-cost points and defaults.</p>")
    ran = {}
    for r in model.results:
        if r.origin.startswith("warm") or r.origin == "lr-prior":
            ran.setdefault(r.config.key(), r)
    labels = {s.config.key(): f"S{i}" for i, s in enumerate(warm.suggestions, start=1)}
    rows = []
    for s in warm.suggestions:
        result = ran.get(s.config.key())
        outcome = "not run" if result is None else (score(result.value) if result.ok else esc(result.status))
        rows.append([labels[s.config.key()], esc(s.config.learner), esc(s.method), outcome,
                     esc(short_params(dict(s.config.params)))])
    flags = [f"method <b>{esc(warm.method)}</b>", f"planned in {warm.seconds:.2f} s"]
    if not warm.trusted:
        flags.append("knowledge too thin to trust: defaults ran first")
    if warm.extrapolating:
        flags.append("data much larger than the histories: suggestions alternated with defaults")
    out = (f"<p>Meta-knowledge suggested {len(warm.suggestions)} configurations to try first ({', '.join(flags)}).</p>"
           + table(["", "learner", "proposed by", f"cv {context['metric'].name}", "parameters"], rows, numeric=(3,)))
    if warm.neighbours:
        nrows = [[esc(n.name), number(n.distance, 3),
                  esc(", ".join(f"{labels.get(c.key(), '?')} {v:.3f}" for c, v in n.scores)
                      or "none of the suggestions")]
                 for n in warm.neighbours]
        out += ("<h3>Nearest known datasets</h3><p>Distance in scaled meta-features (0: identical), "
                "and each suggestion's normalised score on that dataset "
                "(1: its best known configuration, 0: its median).</p>"
                + table(["dataset", "distance", "suggestions it knows, normalised score"], nrows, numeric=(1,)))
    return out


def _final_model(context: dict) -> str:
    model, metric = context["model"], context["metric"]
    members = model.members_
    scores = {}
    for r in model.results:
        if r.ok:
            scores.setdefault(r.config.key(), r.value)
    rows = [[esc(m.config.learner), number(m.weight, 3), score(scores.get(m.config.key())),
             esc(short_params(dict(m.config.params)))]
            for m in members]
    summary = model.summary
    note = summary.refit_note
    refit = esc(note[:1].upper() + note[1:] + ".") if note else f"Fitted on all {summary.refit_rows:,} training rows."
    out = table(["learner", "weight", f"cv {metric.name}", "parameters"], rows, numeric=(1, 2)) + f"<p>{refit}</p>"
    if len(members) > 1:
        out += embedded_figure("member weights", "horizontal_bars",
                       [f"{i}. {m.config.learner}" for i, m in enumerate(members, 1)],
                       [m.weight for m in members], "weight in the average", colour="#ff7f0e")[0]
    return ("<p>The configurations the final model averages (ensemble selection on out-of-fold predictions), "
            "heaviest first.</p>" + out)


def _budget(context: dict) -> str:
    summary = context["model"].summary
    known = {"prepare": getattr(summary, "prepare_seconds", 0.0), "search": getattr(summary, "search_seconds", 0.0),
             "final fit": getattr(summary, "final_seconds", 0.0)}
    if not any(known.values()):
        return (f'<p class="note">The fit took {summary.seconds:.1f} s; '
                'this model does not record where the time went.</p>')
    parts = {**known, "overhead": max(0.0, summary.seconds - sum(known.values()))}
    budget = getattr(summary, "time_budget", None)
    rows = [[esc(name), number(seconds, 3)] + ([number(100 * seconds / budget, 3)] if budget else [])
            for name, seconds in [*parts.items(), ("total", summary.seconds)]]
    header = ["part", "seconds"] + (["% of budget"] if budget else [])
    return ("<p>Where the call's time went: reading the data, meta-features and the warm start (prepare), the search, "
            "fitting the final model, and the rest" + ("" if budget else " (the search had no time budget)") + ".</p>"
            + embedded_figure("use of the budget", "budget_bar", parts, budget)[0]
            + table(header, rows, numeric=(1, 2)))


def _feature_importance(context: dict) -> str:
    model, evaluator, data = context["model"], context["evaluator"], context["data"]
    if data is not None:
        frame = model.feature_importance(*data, max_rows=HELD_OUT_ROWS)
        where = f"on {frame.attrs['rows']} held-out rows given to the report"
    elif evaluator is not None or getattr(model.summary, "feature_importance", None) is not None:
        frame = _out_of_fold(model, evaluator) if evaluator is not None else model.summary.feature_importance
        attrs = frame.attrs
        where = (f"out of fold at the end of the fit: {attrs.get('config', 'the leading configuration')} refitted on "
                 f"{_count(attrs.get('train_rows'))} training rows of each of {_count(attrs.get('splits'))} "
                 f"split(s) of the search and shuffled on {_count(attrs.get('rows'))} of their validation rows")
    else:
        return ("<p>Not measured: it needs rows the model was not trained on. Pass held-out rows: "
                "<code>model.report(path, X_test, y_test)</code> or <code>automl report MODEL --data test.csv</code> "
                "(or <code>fit(..., report=path)</code>, which measures it out of fold).</p>")
    if frame.empty:
        return '<p class="note">The model has no feature columns to shuffle.</p>'
    shown = frame.head(LEADERBOARD_ROWS)
    rows = [[esc(r.feature), number(r.importance), number(r.std, 2)] for r in shown.itertuples()]
    return (f"<p>How much {esc(model.metric)} gets worse when one input column is shuffled "
            "(positive: the model uses it), "
            f"mean and standard deviation over shuffles, measured {esc(where)}.</p>"
            + embedded_figure("feature importance", "feature_importance_bars", frame, model.metric)[0]
            + table(["feature", "importance", "std"], rows, numeric=(1, 2)))


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def _out_of_fold(model: Any, evaluator: Evaluator) -> pd.DataFrame:
    """The final model's leading configuration's importance on the search's splits; kept on the model's summary."""

    budget = getattr(model.summary, "time_budget", None) or 60.0
    leader = model.members_[0].config
    trial = next((r for r in model.results if r.ok and r.config.key() == leader.key()), None)
    frame = out_of_fold_importance(evaluator, leader, feature_groups(model.schema, list(evaluator.dataset.X.columns)),
                                   seconds=max(MIN_IMPORTANCE_SECONDS, IMPORTANCE_SHARE * budget),
                                   fit_seconds=None if trial is None else trial.fit_seconds)
    model.summary.feature_importance = frame
    return frame


def embedded_figure(alt: str, name: str, *args: Any, **kwargs: Any) -> tuple[str, int]:
    """``automl.reporting.plots.<name>(...)`` as an embedded image, and how many trials it leaves off its axis.

    Without matplotlib (an optional dependency) a note takes the figure's place.
    """
    try:
        report_plots = importlib.import_module("automl.reporting.plots")
    except ImportError:
        return NO_MATPLOTLIB, 0
    drawn = getattr(report_plots, name)(*args, **kwargs)
    png, hidden = drawn if isinstance(drawn, tuple) else (drawn, 0)
    return image(png, alt), hidden


def _learners(model: Any, evaluator: Evaluator | None) -> dict:
    """The search's learners (for their spaces): the evaluator's, or those registered under the results' names."""
    if evaluator is not None:
        return dict(evaluator.learners)

    kind = "regression" if model.task.task == "regression" else "classification"
    found = {}
    for name in {r.config.learner for r in model.results}:
        try:
            found[name] = get_learner(name, kind)
        except (KeyError, ValueError):
            pass  # a learner registered in the fitting session only: its distributions come from the values tried
    return found


