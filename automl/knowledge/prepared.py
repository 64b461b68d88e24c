"""What a warm start learns from the knowledge, fitted once per version of the knowledge and kept on disk.

Reading the knowledge (shipped Parquet tables plus the user's base, a file or a server),
normalising its histories and fitting the warm starters, the cost model and
the learning-rate prior takes about half a second: a sixth of a 3-second
budget, paid by every new process. So the fitted state is written to the user
cache directory the first time, under a key read from the knowledge's files
without opening them (their sizes and modification times, the tasks held
out, the engine's version and the fitting code), and the next process loads
it in milliseconds (a base on a server is versioned by one small query, its
newest run and task). When the knowledge changes (every ``fit`` appends to the
user's base) the key changes and the state is fitted afresh: by a fit whose
budget affords it, else in a background process while the state prepared
before serves. A cache file that cannot be read or written costs only that
refit.

A first fit on a fresh machine has no cache yet, and its budget must not pay
for the fitting: the state of the shipped knowledge alone ships with the
package, ready (``automl/knowledge/data/prepared.pkl``, written by
``python -m automl.knowledge.prepared``), and serves while the user's base is
still empty and the code that fitted it is the code that runs. Where the user's
base already holds searches (a team's base, met by a new machine), a fit with
a time budget starts from the shipped state too, while the whole knowledge is
prepared in the background for the fits that follow.

>>> prepared = prepared_knowledge(None)                # doctest: +SKIP
>>> prepared.starter("nearest").suggest(meta, "binary")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import gc
import hashlib
import itertools
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import metaknowledge
from automl._version import __version__
from automl.knowledge.portfolio_refit import USER_SOURCE, refit_table, write_refitted
from metaknowledge.cost import CostModel
from metaknowledge.histories import KINDS, MIN_SHARED_TASKS, Histories
from metaknowledge.location import mask_secrets
from metaknowledge.lr_prior import LearningRatePrior, best_learning_rates
from metaknowledge.shipped import (
    SHIPPED,
    cache_dir,
    holds_anything,
    load_knowledge,
    shipped_directory,
    shipped_knowledge,
    user_kb,
)
from metaknowledge.snapshot import Knowledge
from metaknowledge.store import KnowledgeBase, KnowledgeBaseError
from metaknowledge.warmstart import WarmStarter, make_warm_starter, prepared
from searchspaces import space_learners

log = logging.getLogger(__name__)

EXCLUDE_ENV = "AUTOML_KB_EXCLUDE"  # comma-separated task names left out (held-out evaluations)
CACHE_FORMAT = 3  # 2: the engine's modules moved into subpackages; 3: histories keep each task's own best apart
KEPT_CACHE_FILES = 8  # older cache files are deleted
HISTORY_ROWS = 3000  # rows the shipped histories were evaluated on at most (automl kb build --max-rows)
EAGER_METHODS = ("nearest", "portfolio", "nearest+portfolio")  # the starters the engine uses by default
EAGER_SPACES = ("default", "with_boosters")  # ... fitted ahead, for the learners of these spaces
SHIPPED_STATE = Path(__file__).parent / "data" / "prepared.pkl"  # the shipped knowledge's state, ready to use
REFRESH_ENV = "AUTOML_BACKGROUND_REFRESH"  # "0": never prepare the knowledge in a background process
REFRESH_LOCK_ENV = "AUTOML_REFRESH_LOCK"  # the lock file a background refresh removes when it ends
REFRESH_LOCK_SECONDS = 600.0  # a lock older than this was left by a refresh that died
MAX_USER_TASKS = 1_000  # of the user's own tasks, the warm start learns from the newest this many per task type

_in_process: dict[str, PreparedKnowledge] = {}


@dataclass
class PreparedKnowledge:
    """Histories, fitted warm starters, the cost model and the learning-rate prior of one version of the knowledge."""

    tasks_per_kind: dict[str, int]
    n_runs: int
    histories: dict[str, Histories]
    meta_table: pd.DataFrame
    cost: CostModel
    learning_rates: pd.DataFrame  # the best learning rate per (task, architecture) of the neural histories
    starters: dict[str, WarmStarter] = field(default_factory=dict)
    _lr_prior: LearningRatePrior | None = None
    _of_learners: dict[frozenset[str], dict[str, Histories]] = field(default_factory=dict)
    fit_seconds: float = 0.0  # what preparing it took, reading the knowledge included (a state that took long serves
    # stale rather than wait)

    @property
    def empty(self) -> bool:
        """True when no run is known (a cold start)."""
        return self.n_runs == 0

    @property
    def lr_prior(self) -> LearningRatePrior:
        """The learning-rate model of the neural learners (fitted on first use: only neural searches need it)."""
        if self._lr_prior is None:
            self._lr_prior = LearningRatePrior().fit_examples(self.learning_rates, self.meta_table)
        return self._lr_prior

    def starter(self, method: str, learners: Collection[str] | None = None) -> WarmStarter:
        """The warm starter ``method`` fitted on the histories of ``learners`` (default: all), fitted on first use.

        Fitted on the searched learners only, a starter's normalisation and portfolio are those of the search
        (histories of a learner the search leaves out, such as a booster added to the base, change nothing).
        """
        known = set().union(*(history.learners() for history in self.histories.values()))
        chosen = known if learners is None else known & set(learners)
        key = method if chosen == known else f"{method}:{','.join(sorted(chosen))}"
        if key not in self.starters:
            self.starters[key] = make_warm_starter(method).fit_histories(self._histories_of(chosen, known),
                                                                         self.meta_table)
        return self.starters[key]

    def _histories_of(self, chosen: set[str], known: set[str]) -> dict[str, Histories]:
        """The histories of the ``chosen`` learners, made once per set and shared by its starters (and by the
        cache file, which then holds them once)."""
        if chosen == known:
            return self.histories
        key = frozenset(chosen)
        if key not in self._of_learners:
            self._of_learners[key] = {kind: history.of_learners(chosen) for kind, history in self.histories.items()}
        return self._of_learners[key]

    @classmethod
    def fit(cls, knowledge: Knowledge) -> PreparedKnowledge:
        """Prepare everything from ``knowledge`` (the slow path the cache spares)."""
        started = time.perf_counter()
        histories, meta_table = prepared(knowledge)
        kinds = knowledge.tasks["task_type"].map(KINDS).value_counts()
        tasks_per_config = knowledge.runs.groupby("config_id")["task"].nunique()
        suggestible = set(tasks_per_config.index[tasks_per_config >= MIN_SHARED_TASKS]).union(
            *(history.configs for history in histories.values()))
        state = cls({kind: int(kinds.get(kind, 0)) for kind in ("classification", "regression")}, len(knowledge.runs),
                    histories, meta_table, CostModel().fit(knowledge, rows_cap=HISTORY_ROWS, kept=suggestible),
                    best_learning_rates(knowledge))
        if not state.empty:
            for method, space in itertools.product(EAGER_METHODS, EAGER_SPACES):
                state.starter(method, space_learners(space))
        state.fit_seconds = time.perf_counter() - started
        return state


def excluded_tasks() -> list[str]:
    """Task names left out of the knowledge by ``$AUTOML_KB_EXCLUDE`` (held-out evaluations)."""
    return sorted(name for name in os.environ.get(EXCLUDE_ENV, "").split(",") if name)


def knowledge_for(kb: str | Path | None) -> Knowledge:
    """Shipped plus user knowledge, minus tasks named in ``$AUTOML_KB_EXCLUDE``, and of the user's searches the
    newest ``MAX_USER_TASKS`` per task type (so that what a fit loads stays small however large a team's base
    grows: the base keeps everything)."""
    knowledge = load_knowledge(kb).newest_of_source(USER_SOURCE, MAX_USER_TASKS)
    excluded = excluded_tasks()
    return knowledge.without_tasks(excluded) if excluded else knowledge


def prepared_knowledge(kb: str | Path | None, stale_ok: bool = False,
                       affordable: float | None = None) -> PreparedKnowledge:
    """The prepared state of the knowledge ``kb`` names (see the module docstring): from memory, the cache, the
    state shipped ready with the package, or fitted.

    With ``stale_ok``, the newest state prepared before the user's base last
    grew serves rather than fitting one now (a small budget must not pay the
    half second to two seconds that takes): it lacks only the latest runs of
    the user's own searches, whose failures on the same data are read apart
    (:mod:`automl.knowledge.own_history`). ``affordable`` (seconds) lets it
    serve too where the last preparation took longer than that: a base that a
    team grows all day is not read whole at every fit. Whenever a stale state
    serves, the current one is prepared in a background process
    (:func:`refresh_in_background`), so the next fit finds it ready;
    ``automl kb refresh`` prepares it in the foreground.
    """
    key = knowledge_key(kb)
    stale_key = f"{key}:stale"  # a stale state serves this process again, but only where stale is fine
    if key in _in_process or ((stale_ok or affordable is not None) and stale_key in _in_process):
        return _in_process.get(key) or _in_process[stale_key]
    folder = cache_dir() / "warm"
    state = _read(folder / f"{key}.pkl")
    if state is None and (stale_ok or affordable is not None):
        stale = _newest(folder, knowledge_family(kb))
        first_here = stale is None and holds_anything(user_kb(kb))
        if first_here:  # nothing prepared on this machine yet: the shipped state serves, the user's base in a while
            stale = _shipped_state(kb, without_user_base=True)
        if stale is not None and (stale_ok or first_here or stale.fit_seconds > affordable):
            refresh_in_background(kb)
            _in_process.clear()
            _in_process[stale_key] = stale
            return stale
    if state is None:
        state = _shipped_state(kb)
        if state is None:
            started = time.perf_counter()
            knowledge = knowledge_for(kb)
            state = PreparedKnowledge.fit(knowledge)
            write_refitted(refit_table(knowledge), knowledge_family(kb))
            # what preparing cost in all (reading the knowledge too), for the next fit to judge whether it affords it
            state.fit_seconds = time.perf_counter() - started
        _write(folder / f"{key}.pkl", state)
    _in_process.clear()  # one version of the knowledge at a time
    _in_process[key] = state
    return state


def refresh_in_background(kb: str | Path | None) -> bool:
    """Prepare the current knowledge in a process of its own, which writes it to the cache and ends; whether one
    was started. One at a time per version of the knowledge (a lock file in the cache); never where
    ``$AUTOML_BACKGROUND_REFRESH`` is ``0``. The base's location reaches the process through its environment, so
    a password in a URL never shows in the list of processes."""
    if os.environ.get(REFRESH_ENV, "1") == "0":
        return False
    lock = cache_dir() / "warm" / f"{knowledge_key(kb)}.refreshing"
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        if lock.exists() and time.time() - lock.stat().st_mtime < REFRESH_LOCK_SECONDS:
            return False
        lock.unlink(missing_ok=True)  # left by a refresh that died
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except OSError:
        return False  # another process took the lock first, or the cache cannot be written
    env = dict(os.environ, AUTOML_KB=str(user_kb(kb)), **{REFRESH_LOCK_ENV: str(lock)})
    subprocess.Popen([sys.executable, "-m", "automl.knowledge.prepared", "--refresh"], env=env,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    log.info("preparing the knowledge as it is now in the background")
    return True


def knowledge_key(kb: str | Path | None) -> str:
    """A name for the current version of the knowledge, from its files' sizes and times (without reading them) or a
    server's newest run and task:
    ``FAMILY-VERSION``, where the family is all but the user's base's contents (the code, the shipped knowledge, the
    tasks held out, where the user's base is), so that states of one family differ only by the user's searches."""
    family = _family(kb)
    return f"{_digest(family, 12)}-{_digest([family, _user_version(user_kb(kb))], 24)}"


def knowledge_family(kb: str | Path | None) -> str:
    """The family part of :func:`knowledge_key`: the same until the code, the shipped knowledge or held-out tasks
    change, whatever the user's searches add (and known without asking a server)."""
    return _digest(_family(kb), 12)


def _family(kb: str | Path | None) -> list[object]:
    shipped = shipped_directory()
    user = user_kb(kb)
    family: list[object] = [CACHE_FORMAT, _code_version(), excluded_tasks(),
                            mask_secrets(user) if isinstance(user, str) else str(user.resolve())]
    family.append(_stats(sorted(shipped.glob("*.parquet"))) if shipped is not None and shipped.is_dir()
                  else "no shipped")
    return family


def _user_version(user: Path | str) -> object:
    """What changes when the user's base grows: a file's size and time (read without opening it), a server's
    newest run and task (one small query; nothing when the server cannot be reached: the warm start then does
    without the user's knowledge)."""
    if isinstance(user, Path):
        return _stats([user, user.with_name(user.name + "-wal")])
    try:
        return KnowledgeBase(user).revision()
    except KnowledgeBaseError as error:
        log.warning("%s", error)
        return "unreachable"


def _digest(parts: list[object], length: int) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:length]


def _newest(folder: Path, family: str) -> PreparedKnowledge | None:
    """The most recently written state of ``family`` in the cache ``folder``, if one can be read."""
    try:
        candidates = sorted(folder.glob(f"{family}-*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    for path in candidates:
        state = _read(path)
        if state is not None:
            log.info("the warm start uses the knowledge as prepared before your latest searches (%s)", path.name)
            return state
    return None


def _stats(paths: list[Path]) -> list[tuple[str, int, int]]:
    """Name, size and modification time of each file that exists and holds something.

    (Reading an SQLite base in WAL mode creates an empty ``-wal`` file: that is no change.)
    """
    found = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        if stat.st_size:
            found.append((path.name, stat.st_size, stat.st_mtime_ns))
    return found


@functools.cache
def _code_version() -> str:
    """The engine's version and a hash of the modules whose objects the cache holds (a new release refits)."""
    digest = hashlib.sha256(__version__.encode())
    for module in ("warmstart.py", "histories.py", "cost.py", "lr_prior.py"):
        digest.update((Path(metaknowledge.__file__).parent / module).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def shipped_signature() -> str:
    """What the shipped prepared state was fitted from and by: the cache format, the fitting code, and the names and
    sizes of the shipped knowledge's files (not their times, which a checkout does not keep)."""
    files = sorted((p.name, p.stat().st_size) for p in SHIPPED.glob("*.parquet"))
    return hashlib.sha256(repr([CACHE_FORMAT, _code_version(), files]).encode()).hexdigest()[:24]


def _shipped_state(kb: str | Path | None, without_user_base: bool = False) -> PreparedKnowledge | None:
    """The state shipped ready with the package, where it is the state of this knowledge: the shipped base alone
    (the user's base not written yet, no task held out) fitted by this code; else None. ``without_user_base``: also
    where the user's base holds something, which the state then lacks (a stale state to serve meanwhile)."""
    if excluded_tasks() or shipped_directory() != SHIPPED or (not without_user_base and holds_anything(user_kb(kb))):
        return None
    try:
        with open(SHIPPED_STATE, "rb") as handle:
            signature, state = pickle.load(handle)
    except Exception as error:  # missing, damaged or of another version: fit instead
        log.debug("no shipped warm-start state (%s)", error)
        return None
    if signature != shipped_signature() or not isinstance(state, PreparedKnowledge):
        log.info("the shipped warm-start state was fitted by other code: fitting it here once")
        return None
    return state


def write_shipped_state() -> Path:
    """Fit the state of the shipped knowledge alone and write it where the package ships it (run after the shipped
    base or the fitting code changes: ``python -m automl.knowledge.prepared``)."""
    state = PreparedKnowledge.fit(shipped_knowledge())
    SHIPPED_STATE.parent.mkdir(parents=True, exist_ok=True)
    with open(SHIPPED_STATE, "wb") as handle:
        pickle.dump((shipped_signature(), state), handle, protocol=pickle.HIGHEST_PROTOCOL)
    return SHIPPED_STATE


def _read(path: Path) -> PreparedKnowledge | None:
    """The state cached at ``path``, or None where there is none that can be read.

    The garbage collector is paused while it loads: the state is tens of
    thousands of objects, whose allocation would otherwise trigger collections
    that scan every object the fit holds (at 10,000 tasks, 160 ms of the load's
    200, where the load itself takes 40).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        with open(path, "rb") as handle:
            state = pickle.load(handle)
    except FileNotFoundError:
        return None
    except Exception as error:  # a damaged or foreign cache file: fit afresh
        log.debug("ignoring the warm-start cache %s: %s", path, error)
        return None
    finally:
        if collecting:
            gc.enable()
    return state if isinstance(state, PreparedKnowledge) else None


def _write(path: Path, state: PreparedKnowledge) -> None:
    """Write atomically (several processes may race), keeping the newest few cache files."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(handle.name, path)
        older = sorted(path.parent.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)[KEPT_CACHE_FILES:]
        for stale in older:
            stale.unlink(missing_ok=True)
    except OSError as error:
        log.debug("could not write the warm-start cache %s: %s", path, error)


def _refresh_here() -> None:
    """The background refresh's own work: prepare the knowledge ``$AUTOML_KB`` names, then give the lock back."""
    try:
        prepared_knowledge(None)
    finally:
        Path(os.environ[REFRESH_LOCK_ENV]).unlink(missing_ok=True)


if __name__ == "__main__":  # the package's own copy of this module, so that the pickle names its classes' home
    from automl.knowledge import prepared

    if sys.argv[1:] == ["--refresh"]:
        prepared._refresh_here()
    else:
        print(f"wrote {prepared.write_shipped_state()}")
