"""The engine's messages in the command line's own words.

The engine's errors and warnings name the fix in Python's terms
(``pass task='regression'``, ``time_budget must be ...``), which is right for
``automl.fit`` and wrong in a shell, where the fix is a flag
(``--task regression``, ``--time``). :func:`in_cli_words` rewrites a message
for the CLI: each Python argument of ``automl.fit`` becomes its flag, and
the few Python recipes the engine suggests become their commands.

>>> in_cli_words("the target has a single class ('a'). If it is a numeric target, pass task='regression'.")
"the target has a single class ('a'). If it is a numeric target, pass --task regression."
>>> in_cli_words("time_budget must be a positive number of seconds, got -5.0")
'--time must be a positive number of seconds, got -5.0'
"""

from __future__ import annotations

import re

# automl.fit's arguments -> the flags of `automl fit` that set them
FLAGS = {
    "time_budget": "--time", "n_trials": "--trials", "task": "--task", "metric": "--metric", "target": "--target",
    "learners": "--learners", "space": "--space", "storage": "--storage", "study_name": "--study",
    "n_jobs": "--jobs", "backend": "--backend", "address": "--address", "max_concurrent": "--max-concurrent",
    "ensemble_size": "--ensemble", "final_fit": "--final-fit", "meta_init": "--meta-init",
    "max_predict_ms": "--max-predict-ms", "max_model_mb": "--max-model-mb", "seed": "--seed", "kb": "--kb",
    "report": "--report",
}
# Python recipes the engine suggests -> the commands that do the same
RECIPES = {
    "model.distill().export(path, X=X_train)":
        "fit again with --distill, then automl export MODEL.student.pkl --data FILE",
    "save one with model.save(path)": "write one with automl fit",
    "learners=[...]": "--learners NAME [NAME ...]",
}
_ASSIGNED = re.compile(r"\b(" + "|".join(FLAGS) + r")=(?:'([^']*)'|\"([^\"]*)\"|([^\s,;:)'\"]+))?")
# A bare argument name is rewritten only where it cannot be an English word (it holds an underscore).
_BARE = re.compile(r"(?<![\w-])(" + "|".join(name for name in FLAGS if "_" in name) + r")\b")


def in_cli_words(message: str) -> str:
    """``message`` with Python arguments and recipes replaced by the CLI's flags and commands."""
    for recipe, command in RECIPES.items():
        message = message.replace(recipe, command)

    def flag(match: re.Match) -> str:
        value = next((group for group in match.groups()[1:] if group), "")
        return f"{FLAGS[match.group(1)]} {value}".rstrip()

    message = _ASSIGNED.sub(flag, message)
    return _BARE.sub(lambda match: FLAGS[match.group(1)], message)
