"""What a run folder is: a folder specc marked as its own, with a manifest of the files it wrote.

Nothing a user owns is lost: specc writes into a folder that is empty, missing, or already marked
as a specc folder (manifest.json); `--overwrite` removes only the files the manifest lists (and
the per-epoch files train.py names itself: samples/epoch_NNN.png, checkpoints' temporary files,
tensorboard events) and says which; files anyone else put there stay.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import __version__
from .diagnostics import UserError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1

# What the generated train.py writes, by name (recorded before it runs, since a kill may stop it
# before specc could look) and by pattern (pictures and logs it names per epoch).
TRAIN_FILES = (
    "splits.npz",
    "metrics.jsonl",
    "metrics.png",
    "results.json",
    "ranks.json",
    "latent.png",
    "checkpoints/last.pt",
    "checkpoints/best.pt",
)
GRAPHS = ("model.onnx", "step.onnx", "encoder.onnx", "decoder.onnx", "generator.onnx")
TRAIN_PATTERNS = (
    "samples/epoch_*.png",
    "checkpoints/*.pt.tmp",
    "tensorboard/events.out.tfevents.*",
    ".results.json.tmp",
    ".tmp.*.png",
)
FOLDERS = ("checkpoints", "samples", "tensorboard")  # removed when emptied by --overwrite


class RunFolder:
    """A folder specc writes a build or a training run into."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def is_marked(self) -> bool:
        return self.manifest_path.is_file()

    def is_empty(self) -> bool:
        return not self.path.exists() or not any(self.path.iterdir())

    def holds_training(self) -> bool:
        return (self.path / "checkpoints" / "last.pt").is_file()

    def files(self) -> list[str]:
        """The files the manifest lists (relative, forward slashes)."""
        try:
            doc = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [f for f in doc.get("files", []) if isinstance(f, str)]

    def record(self, *names: str | Path) -> None:
        """Add files to the manifest (marking the folder as specc's on first use): a Path is a
        file as written (under the folder, absolute or relative like the folder's own path), a
        str a name inside the folder."""
        from .files import atomic_write

        known = self.files()
        for name in names:
            rel = Path(name)
            if isinstance(name, Path):
                rel = rel.absolute().relative_to(self.path.absolute())
            if rel.as_posix() not in known:
                known.append(rel.as_posix())
        doc = {"format": MANIFEST_FORMAT, "written_by": f"specc {__version__}", "files": known}
        atomic_write(self.manifest_path, json.dumps(doc, indent=2) + "\n")

    def owned(self) -> list[Path]:
        """The files specc wrote here that exist now: the manifest's, and train.py's patterns."""
        found = {self.path / f for f in self.files()}
        for pattern in TRAIN_PATTERNS:
            found.update(self.path.glob(pattern))
        root = self.path.resolve()
        return sorted(p for p in found if p.is_file() and root in p.resolve().parents)

    def remove_owned(self) -> list[str]:
        """Remove what specc wrote (the manifest last), and its folders that are left empty."""
        removed = []
        for path in self.owned():
            path.unlink()
            removed.append(path.relative_to(self.path).as_posix())
        for folder in FOLDERS:
            path = self.path / folder
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        self.manifest_path.unlink(missing_ok=True)
        return removed

    # -- the rules

    def claim_for_build(self) -> None:
        """A build writes into an empty folder or one of specc's that holds no training run."""
        self._refuse_foreign()
        if self.holds_training():
            raise UserError(
                f"{self.path} holds a training run; building into it would replace the model.py "
                "its checkpoints belong to: build into another folder"
            )

    def claim_for_training(self, resume: bool, overwrite: bool, log) -> None:
        """Continuing a run or replacing one is asked for by flag; a folder that is not specc's
        is never written into."""
        last = self.path / "checkpoints" / "last.pt"
        if resume and overwrite:
            raise UserError("--resume and --overwrite contradict each other")
        if resume and not last.is_file():
            raise UserError(f"nothing to resume: {last} does not exist")
        if resume:
            return
        self._refuse_foreign()
        if self.holds_training() and not overwrite:
            raise UserError(
                f"{self.path} already holds a training run; continue it with --resume, or start "
                "over with --overwrite (which removes only the files specc wrote there)"
            )
        if overwrite and self.is_marked():
            removed = self.remove_owned()
            log(
                f"--overwrite removed {len(removed)} file(s) specc had written: {', '.join(removed)}"
            )

    def _refuse_foreign(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"output path {self.path} exists and is not a folder")
        if not self.is_empty() and not self.is_marked():
            shown = sorted(p.name for p in self.path.iterdir())[:5]
            raise UserError(
                f"{self.path} is not empty and is not a specc folder (no {MANIFEST}: it holds "
                f"{', '.join(shown)}{', ...' if len(shown) == 5 else ''}); specc writes only into "
                "an empty folder or one it made: choose another -o"
            )


# ----------------------------------------------------------------------------- resuming

# What a resume may change: when a run stops and how it reports, never what it computes. The
# number of epochs may grow unless a schedule is laid out over all of them.
RESUMABLE = (
    ("train", "epochs"),
    ("train", "target"),
    ("train", "log_every_steps"),
    ("train", "tensorboard"),
    ("train", "workers"),
    ("train", "checkpoint", "every_epochs"),
    ("train", "checkpoint", "every_steps"),
)
SCHEDULES_OVER_ALL_EPOCHS = ("cosine", "one_cycle")


def run_identity(spec_doc: dict) -> tuple[str, dict]:
    """(sha256, settings) of a validated spec (its JSON dump) without what a resume may change:
    a checkpoint may be continued by any spec with the same identity."""
    import copy
    import hashlib

    settings = copy.deepcopy(spec_doc)
    schedule = (settings.get("train", {}).get("schedule") or {}).get("type")
    for path in RESUMABLE:
        if path == ("train", "epochs") and schedule in SCHEDULES_OVER_ALL_EPOCHS:
            continue
        node = settings
        for key in path[:-1]:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(path[-1], None)
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), settings


def changed_settings(old, new, path: str = "") -> list[str]:
    """The dotted keys whose values differ between two settings trees."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [
            c
            for k in keys
            for c in changed_settings(old.get(k), new.get(k), f"{path}.{k}".lstrip("."))
        ]
    return [] if old == new else [path or "(the spec)"]


def resumable_names() -> str:
    return ", ".join(".".join(p) for p in RESUMABLE)
