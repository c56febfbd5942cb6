"""The training machinery every generated train.py shares, as real Python.

These modules are linted and unit-tested like the rest of specc, and inlined into each train.py
(after the spec's own part) in the order of MACHINERY; `_spec` names what that part defines.
"""

MACHINERY = tuple(
    f"specc.compiler.train.{name}"
    for name in ("errors", "data", "checkpoints", "evaluation", "progress", "init", "loop")
)
