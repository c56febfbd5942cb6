"""How a training run ends when it does not finish: one exception per exit code."""

from __future__ import annotations

CHECKPOINT_FORMAT = 1
# 2 is a usage error and 3 an internal one (specc's own codes): a diverged run has a code of its own.
EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 4, 130


class TrainingError(Exception):
    """A problem the user can fix: printed as one line, exit code 1."""


class Diverged(Exception):
    """The loss became NaN or infinite: exit code 4 (the last checkpoint is kept)."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM after a checkpoint was saved: exit code 130."""
