"""Regenerate tests/golden/<spec name>/ from specs/* (run: make golden). Review the diff before committing."""

from pathlib import Path

from specc.compiler.codegen import render
from specc.compiler.pipeline import compile_file

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_FILES = ("model.py", "train.py")


def main():
    for spec in sorted((ROOT / "specs").glob("*.*")):
        files = render(compile_file(spec))
        out = ROOT / "tests" / "golden" / spec.stem
        out.mkdir(parents=True, exist_ok=True)
        for name in GOLDEN_FILES:
            (out / name).write_text(files[name], encoding="utf-8")
        print(f"{spec.name} -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
