"""The measurement experiments' summaries (results/experiments/<name>/summary.json), each
with its figure and one-sentence conclusion; a listed experiment that left none shows as
missing."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def load_claims(folder: Path, names: Iterable[str]) -> list[dict]:
    claims = []
    for name in names:
        path = folder / name / "summary.json"
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            claims.append({"experiment": name, "status": "missing"})
            continue
        figure = folder / name / summary.get("figure", "")
        claims.append(
            {**summary, "status": "ok", "figure_path": figure if figure.is_file() else None}
        )
    return claims
