"""Inlining: real, linted, tested Python modules of this package copied into a generated file.

The generated train.py and model.py stay single standalone files with no specc import, yet what
they share (the training loop, checkpoints, the exportable recurrent layers) is ordinary Python
here. `inline` takes a module's source without its docstring and imports; `add_imports` then
writes, at the template's `# @imports` line, exactly the imports the finished file uses.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from importlib import resources

IMPORTS_MARK = "# @imports"

# What generated code may use without inlining anything: the usual names of torch code.
COMMON_IMPORTS = (
    "import math",
    "import numpy as np",
    "import torch",
    "import torch.nn.functional as F",
    "from torch import nn",
)


@dataclass(frozen=True)
class Inlined:
    imports: tuple[str, ...]  # the module's import statements (not specc's own), as source
    body: str  # the module without its docstring and imports


def inline(module: str) -> Inlined:
    """The source of `module` (e.g. "specc.compiler.train.loop"), ready to paste. Imports of
    specc's own modules are dropped: what they provide is inlined or defined by the template."""
    package, _, name = module.rpartition(".")
    text = resources.files(package).joinpath(f"{name}.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    lines = text.splitlines()
    dropped: set[int] = set()
    imports = []
    for k, node in enumerate(tree.body):
        is_doc = k == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if not (is_doc or isinstance(node, ast.Import | ast.ImportFrom)):
            continue
        dropped.update(range(node.lineno - 1, node.end_lineno))
        if is_doc or _is_local(node):
            continue
        imports.append(ast.get_source_segment(text, node))
    body = "\n".join(line for i, line in enumerate(lines) if i not in dropped).strip("\n")
    return Inlined(tuple(imports), body + "\n")


def _is_local(node: ast.Import | ast.ImportFrom) -> bool:
    """An import the generated file must not keep: specc's own modules (relative or absolute),
    and `from __future__`."""
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "").split(".")[0] in ("specc", "__future__")
    return any(alias.name.split(".")[0] == "specc" for alias in node.names)


def add_imports(code: str, candidates) -> str:
    """Replace the `# @imports` line with those of `candidates` whose names the code uses,
    stdlib first, each group sorted (ruff's isort then orders them as it likes)."""
    used = _names_used(code.replace(IMPORTS_MARK, ""))
    kept = []
    for statement in dict.fromkeys(candidates):
        node = ast.parse(statement).body[0]
        names = [a for a in node.names if (a.asname or a.name.split(".")[0]) in used]
        if not names:
            continue
        if isinstance(node, ast.ImportFrom):
            node.names = names
        kept.append(ast.unparse(node))
    stdlib = sorted(s for s in kept if _top(s) in sys.stdlib_module_names)
    others = sorted(s for s in kept if _top(s) not in sys.stdlib_module_names)
    block = "\n".join(stdlib) + ("\n\n" if stdlib and others else "") + "\n".join(others)
    return code.replace(IMPORTS_MARK, block, 1)


def _top(statement: str) -> str:
    return statement.split()[1].split(".")[0]


def _names_used(code: str) -> set[str]:
    """Every name the code reads (roots of attribute chains included)."""
    return {
        node.id
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
