"""How a training run ends when it does not finish: one exception per exit code."""

from __future__ import annotations

CHECKPOINT_FORMAT = 1
EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 2, 130


class TrainingError(Exception):
    """A problem the user can fix: printed as one line, exit code 1."""


class Diverged(Exception):
    """The loss became NaN or infinite: exit code 2 (the last checkpoint is kept)."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM after a checkpoint was saved: exit code 130."""
