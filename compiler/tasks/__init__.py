"""Task registry: every module in this package defines one task; they are collected here.

Adding a task means adding one module (plus its template partials and runtime class); the
generic stages find it through `TASKS` and call the hooks documented in `base.py`.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Layout, Output, Task

TASKS: dict[str, Task] = {}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name == "base" or _info.name.startswith("_"):
        continue
    _mod = importlib.import_module(f"{__name__}.{_info.name}")
    for _obj in vars(_mod).values():
        if (
            isinstance(_obj, type)
            and issubclass(_obj, Task)
            and _obj.__module__ == _mod.__name__
            and "name" in vars(_obj)
        ):
            TASKS[_obj.name] = _obj()


def sections_of(tasks) -> list[str]:
    """The top-level keys any of `tasks` reads, each once, in a stable order."""
    return list(dict.fromkeys(key for task in tasks for key in task.reads))


def foreign_train_keys(task: Task) -> set[str]:
    """`train:` keys that only other tasks read (a classifier's spec has no use for tbptt)."""
    return {key for t in TASKS.values() for key in t.train_keys} - set(task.train_keys)


__all__ = ["TASKS", "Layout", "Output", "Task", "foreign_train_keys", "sections_of"]
