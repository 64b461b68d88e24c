"""Reading data from where users keep it: files, OpenML, scikit-learn Bunches.

Every reader returns a :class:`RawData`: the feature table, the target (or the
name of its column), and what the source itself declares (feature types, task,
a name). Validation and type inference happen afterwards, in :mod:`automl.data.dataset`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from automl.errors import DataError

log = logging.getLogger(__name__)

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}
COMPRESSIONS = {".gz", ".bz2", ".zip", ".xz", ".zst"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
PMLB_TARGET = "target"
CATEGORICAL_TYPES = {"categorical", "nominal"}  # PMLB / OpenML words for unordered categories


@dataclass
class RawData:
    """A table as read from its source, before validation."""

    frame: pd.DataFrame
    target: Any = None  # a column name of ``frame``, or the target values
    categorical: list[str] = field(default_factory=list)  # declared by the source
    task: str | None = None  # "classification" / "regression" when the source says
    name: str = "data"


def _split_suffixes(path: Path) -> tuple[str, str | None]:
    suffixes = [s.lower() for s in path.suffixes]
    compression = suffixes.pop() if suffixes and suffixes[-1] in COMPRESSIONS else None
    return (suffixes[-1] if suffixes else ""), compression


def dataset_name(path: Path) -> str:
    """A file's name without its data and compression suffixes."""
    name = path.name
    for suffix in reversed(path.suffixes):
        if suffix.lower() not in COMPRESSIONS | set(TABLE_SUFFIXES) | PARQUET_SUFFIXES:
            break
        name = name[: -len(suffix)]
    return name


def pmlb_metadata(path: Path) -> dict[str, Any] | None:
    """The ``NAME.yaml`` beside a PMLB-layout file, if there is one."""
    meta_path = path.parent / f"{dataset_name(path)}.yaml"
    if not meta_path.exists():
        return None
    import yaml

    with open(meta_path) as handle:
        meta = yaml.safe_load(handle)
    return meta if isinstance(meta, dict) else None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV/TSV (optionally compressed) or Parquet file into a DataFrame."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"no such file: {str(path)!r}. Check the path (relative paths start at {str(Path.cwd())!r}).")
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a directory; give the path of one data file (.csv, .tsv, .parquet)")
    suffix, compression = _split_suffixes(path)
    try:
        if suffix in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        if suffix in TABLE_SUFFIXES:
            return pd.read_csv(path, sep=TABLE_SUFFIXES[suffix], engine=None if TABLE_SUFFIXES[suffix] else "python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as error:
        raise DataError(f"could not read {str(path)!r} as a {suffix.lstrip('.')} table: {error}") from None
    supported = sorted(set(TABLE_SUFFIXES) | PARQUET_SUFFIXES)
    raise DataError(
        f"cannot tell how to read {path.name!r}: the suffix {suffix or '(none)'!r} is not one of {supported} "
        f"(optionally followed by one of {sorted(COMPRESSIONS)})"
    )


def read_file(path: str | Path, target: str | None) -> RawData:
    """A data file, with PMLB metadata (target ``target``, feature types, task) when present."""
    path = Path(path).expanduser()
    frame = read_table(path)
    meta = pmlb_metadata(path)
    raw = RawData(frame=frame, target=target, name=dataset_name(path))
    if meta is not None:
        features = meta.get("features") or []
        raw.categorical = [str(f["name"]) for f in features if str(f.get("type", "")).lower() in CATEGORICAL_TYPES]
        task = str(meta.get("task", "")).lower()
        raw.task = task if task in ("classification", "regression") else None
        if target is None and PMLB_TARGET in frame.columns:
            raw.target = PMLB_TARGET
    if raw.target is None:
        raise DataError(
            f"which column of {path.name!r} is the target? Pass target='<column>'; "
            f"the columns are {list(map(str, frame.columns))[:20]}"
        )
    return raw


def read_bunch(bunch: Any) -> RawData:
    """A scikit-learn ``Bunch`` (``data``, ``target`` and optionally ``feature_names``)."""
    data = bunch["data"]
    if isinstance(data, pd.DataFrame):
        frame = data
    else:
        names = bunch.get("feature_names")
        frame = pd.DataFrame(data, columns=list(names) if names is not None and len(names) == data.shape[1] else None)
    return RawData(frame=frame, target=bunch["target"], name=str(bunch.get("name", "bunch")))


def read_openml(spec: str) -> RawData:
    """``openml:<dataset id>`` or ``openml-task:<task id>`` through the openml package."""
    kind, _, ident = spec.partition(":")
    if not ident.strip().isdigit():
        raise DataError(f"{spec!r}: expected '{kind}:<number>', e.g. '{kind}:31'")
    try:
        import openml
    except ImportError:
        raise DataError("reading OpenML data needs the openml package: pip install 'automl-engine[openml]'") from None
    number = int(ident)
    try:
        if kind == "openml-task":
            task = openml.tasks.get_task(number, download_data=False, download_qualities=False)
            dataset = task.get_dataset()
            target = task.target_name
            task_kind = "regression" if "regression" in str(task.task_type).lower() else "classification"
        else:
            dataset = openml.datasets.get_dataset(number, download_data=True, download_qualities=False)
            target = dataset.default_target_attribute
            task_kind = None
        if not target:
            raise DataError(f"OpenML dataset {number} names no default target; load it yourself and pass target=")
        X, y, categorical, names = dataset.get_data(target=target)
    except DataError:
        raise
    except Exception as error:  # the openml client raises many kinds on network trouble
        text = f"{type(error).__name__}: {error}"
        if _looks_offline(error):
            raise DataError(
                f"could not reach OpenML to fetch {spec!r} ({text}). This machine seems to have no internet access: "
                "download the data elsewhere and pass the file instead, or pre-fill openml's cache."
            ) from None
        raise DataError(f"could not load {spec!r} from OpenML: {text}") from None
    frame = X.copy()
    frame[target] = y
    cats = [name for name, is_cat in zip(names, categorical) if is_cat]
    return RawData(frame=frame, target=target, categorical=cats, task=task_kind, name=dataset.name)


def _looks_offline(error: BaseException) -> bool:
    words = ("connection", "resolve", "network", "timed out", "timeout", "unreachable", "max retries")
    chain, seen = [error], set()
    while chain:
        current = chain.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if any(word in f"{type(current).__name__} {current}".lower() for word in words):
            return True
        chain.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


SKLEARN_DATASETS = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
    "diabetes": "load_diabetes",
}


def read_sklearn(spec: str) -> RawData:
    """``sklearn:<name>``: one of scikit-learn's bundled datasets (no download needed)."""
    name = spec.partition(":")[2]
    if name not in SKLEARN_DATASETS:
        raise DataError(f"unknown bundled dataset {name!r}; choose one of {sorted(SKLEARN_DATASETS)}")
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, SKLEARN_DATASETS[name])(as_frame=True)
    raw = read_bunch(bunch)
    raw.name = name
    return raw


def is_sklearn_spec(data: Any) -> bool:
    return isinstance(data, str) and data.startswith("sklearn:")


def is_openml_spec(data: Any) -> bool:
    return isinstance(data, str) and data.split(":", 1)[0] in ("openml", "openml-task") and ":" in data
