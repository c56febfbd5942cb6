"""Writing files so that nothing is ever half-written: a temporary file in the same folder,
fsync, rename. A full disk is the user's to fix: it becomes one clear message naming the path
and the space the file needed, and no partial file is left behind."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from .diagnostics import UserError


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (/proc); elsewhere set
    and put straight back (the only portable way to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: Path, size_hint: int | None = None):
    """A binary file to write `path` through; it appears whole, or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give it open()'s mode
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            needed = f" (it needs about {size_hint / 1e6:.1f} MB)" if size_hint else ""
            raise UserError(
                f"no space left on the device to write {path}{needed}; free some and rerun"
            ) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write text or bytes atomically (readers never see half a file)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(path, len(payload)) as f:
        f.write(payload)
