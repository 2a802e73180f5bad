"""reports/index.html: one self-contained page (figures inlined as data URIs), so it opens
offline, from an email attachment or an MLflow artifact alike."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

import pandas as pd

from convrec.compare.leaderboard import SHOWN, cell, task_protocol, value_cell

COLUMNS = [*SHOWN, "mlflow_run_id"]  # every number traces to its MLflow run

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, td:nth-child(2) { text-align: left; }
tr.missing td, tr.failed td, p.missing { color: #b00; font-style: italic; }
tr.published td { color: #666; }
img { max-width: 100%; border: 1px solid #eee; }
dt { font-weight: bold; } dd { margin: 0 0 0.5em 1em; font-family: monospace; }
"""


def render(
    table: pd.DataFrame,
    figures: Mapping[str, Path],
    provenance: Mapping,
    claims: Sequence[Mapping] = (),
    task_figures: Mapping[str, Mapping[str, Path]] | None = None,
) -> str:
    """`figures` maps a caption to a PNG file; each is inlined. `claims`: the measurement
    experiments' summaries (compare.claims), one section each. `task_figures`: the figures shown
    under a task's table, by caption (its confusion matrices, its time to accuracy)."""
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>convrec report</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>convrec report</h1>",
             "<p>Every run of the pipeline: test headline metric, best first per task, beside "
             "the published number where there is one (delta = ours - published). Missing or "
             "failed runs are listed as such.</p>"]  # fmt: skip
    parts += _figures(figures)
    for task, group in table.groupby("task", sort=True):
        runs = group[group["status"] != "published"]
        metric = runs["metric"].dropna().iloc[0] if runs["metric"].notna().any() else "metric"
        parts.append(f"<h2>{escape(str(task))} <small>({escape(str(metric))})</small></h2>")
        parts.append(f"<p>Protocol (every model): {escape(task_protocol(group))}.</p>")
        parts.append(_table(group))
        sources = group[["model", "reference", "reference_source", "reference_protocol"]]
        sources = sources.dropna(subset=["reference", "reference_source"])
        if len(sources):
            items = "".join(f"<li>{escape(str(r.model))}: {cell(r.reference)}, "
                            f"{escape(str(r.reference_source))} "
                            f"({escape(str(r.reference_protocol))})</li>"
                            for r in sources.itertuples())  # fmt: skip
            parts.append("<p>Published numbers (protocol; a delta only under the same "
                         f"protocol):</p><ul>{items}</ul>")
        parts += _figures((task_figures or {}).get(task, {}))
    if claims:
        parts.append("<h2>The seeds' claims, measured</h2>")
        parts += [_claim(claim) for claim in claims]
    parts.append("<h2>Made from</h2>" + _provenance(provenance))
    parts.append("</body></html>")
    return "\n".join(parts)


def _claim(claim: Mapping) -> str:
    name = escape(str(claim["experiment"]))
    if claim["status"] != "ok":
        return f'<h3>{name}</h3><p class="missing">missing: the experiment left no summary</p>'
    parts = [f"<h3>{name}</h3>", f"<p><strong>{escape(claim['conclusion'])}</strong></p>"]
    if claim.get("figure_path"):
        parts += _figures({f"{claim['experiment']} (device: {claim.get('device')})":
                           claim["figure_path"]})  # fmt: skip
    for text, body in claim.get("text_bodies", {}).items():
        shown = escape(body) if body is not None else "missing: the experiment left no such file"
        parts.append(f"<details><summary>{escape(text)}</summary><pre>{shown}</pre></details>")
    parts.append(f"<p>MLflow run: {escape(str(claim.get('mlflow_run_id')))}</p>")
    return "\n".join(parts)


def _figures(figures: Mapping[str, Path]) -> list[str]:
    parts = []
    for caption, path in figures.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts.append(f"<figure><img alt=\"{escape(caption)}\" "
                     f"src=\"data:image/png;base64,{data}\"><figcaption>{escape(caption)}"
                     "</figcaption></figure>")  # fmt: skip
    return parts


def _table(group: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    rows = []
    for _, row in group.iterrows():
        cells = "".join(f"<td>{escape(value_cell(row) if c == 'value' else cell(row[c]))}</td>"
                        for c in COLUMNS)  # fmt: skip
        rows.append(f'<tr class="{escape(str(row["status"]))}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _provenance(provenance: Mapping) -> str:
    items = []
    for key, value in provenance.items():
        if isinstance(value, Mapping):
            value = "<br>".join(f"{escape(str(k))}: {escape(str(v))}" for k, v in value.items())
            value = value or "not recorded (data not prepared by dvc repro)"
        else:
            value = escape(str(value))
        items.append(f"<dt>{escape(str(key))}</dt><dd>{value}</dd>")
    return f"<dl>{''.join(items)}</dl>"
