"""Where the repository and the built binaries are.

FLOWGATED / FLOWGATECTL override the defaults (the Makefile sets them to the
debug build); relative paths are taken from the repository root so pytest can
be started from anywhere.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def _binary(env_name: str, default: str) -> Path:
    value = os.environ.get(env_name) or default
    path = Path(value)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def flowgated_bin() -> Path:
    return _binary("FLOWGATED", ".build/debug/flowgated")


def flowgatectl_bin() -> Path:
    return _binary("FLOWGATECTL", ".build/debug/flowgatectl")


def default_config() -> Path:
    return REPO_ROOT / "config" / "flowgate.yaml"
