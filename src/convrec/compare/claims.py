"""The measurement experiments' summaries (results/experiments/<name>/summary.json), each
with its figure, its one-sentence conclusion and the text tables it names (`texts`); a
listed experiment that left none shows as missing."""

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
        texts = {text: folder / name / text for text in summary.get("texts", [])}
        claims.append({
            **summary,
            "status": "ok",
            "figure_path": figure if figure.is_file() else None,
            # a text the summary names but the folder lacks reads as missing, not as nothing
            "text_bodies": {t: p.read_text() if p.is_file() else None for t, p in texts.items()},
        })  # fmt: skip
    return claims


def claims_markdown(claims: Iterable[dict]) -> str:
    """The leaderboard's closing section: each experiment's conclusion and its MLflow run."""
    lines = ["", "# The seeds' claims, measured", ""]
    for claim in claims:
        if claim["status"] != "ok":
            lines.append(f"- **{claim['experiment']}**: missing (the experiment left no summary)")
            continue
        lines.append(f"- **{claim['experiment']}** ({claim.get('device')}): "
                     f"{claim['conclusion']} MLflow run {claim['mlflow_run_id']}.")  # fmt: skip
    return "\n".join(lines) + "\n" if len(lines) > 3 else ""
