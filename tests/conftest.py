"""Fixtures shared by the tests."""

from pathlib import Path

import pytest


@pytest.fixture
def write_spec(tmp_path):
    def _write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
