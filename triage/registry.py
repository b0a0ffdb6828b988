"""Where models live: the shipped one in the package, the user's versions in the data dir.

No scikit-learn here: listing and switching versions reads only the JSON metadata.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from triage.errors import ModelError

SHIPPED = "shipped"


@dataclass(frozen=True)
class Version:
    name: str
    directory: Path
    meta: dict[str, Any]


def shipped_dir() -> Path:
    return Path(str(resources.files("triage.models")))


def _root(state_dir: Path) -> Path:
    return state_dir / "models"


def versions(state_dir: Path) -> list[Version]:
    found = [Version(SHIPPED, shipped_dir(), _meta(shipped_dir()))]
    root = _root(state_dir)
    if root.is_dir():
        for directory in sorted(root.iterdir(), key=lambda p: _number(p.name)):
            if directory.is_dir() and (directory / "model.json").exists():
                found.append(Version(directory.name, directory, _meta(directory)))
    return found


def _number(name: str) -> int:
    match = re.fullmatch(r"v(\d+)", name)
    return int(match.group(1)) if match else -1


def _meta(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def active(state_dir: Path) -> Version:
    pointer = _root(state_dir) / "active"
    name = pointer.read_text(encoding="utf-8").strip() if pointer.exists() else SHIPPED
    for version in versions(state_dir):
        if version.name == name:
            return version
    raise ModelError(
        f"the active model {name!r} ({pointer}) is missing; "
        "choose one with `triage model use VERSION` (see `triage model list`)"
    )


def use(state_dir: Path, name: str) -> Version:
    for version in versions(state_dir):
        if version.name == name:
            if not (version.directory / "model.skops").exists():
                raise ModelError(f"model {name!r} has no model file in {version.directory}")
            root = _root(state_dir)
            root.mkdir(parents=True, exist_ok=True)
            tmp = root / "active.tmp"
            tmp.write_text(name + "\n", encoding="utf-8")
            tmp.replace(root / "active")
            return version
    known = ", ".join(v.name for v in versions(state_dir))
    raise ModelError(f"no model version {name!r}; known: {known}")


def next_dir(state_dir: Path) -> Path:
    numbers = [_number(v.name) for v in versions(state_dir)]
    return _root(state_dir) / f"v{max([0, *numbers]) + 1}"
