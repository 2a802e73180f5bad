"""Figures a person would rather look at than read."""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from convrec.atomic import write_bytes  # noqa: E402

FAMILY_COLOURS = {"mlp": "tab:gray", "cnn": "tab:blue", "rnn": "tab:orange", "hybrid": "tab:green"}


def accuracy_vs_params(table: pd.DataFrame, path: Path) -> None:
    done = table[table["status"] == "ok"]
    tasks = sorted(done["task"].unique())
    cols = min(3, max(1, len(tasks)))
    rows = math.ceil(max(1, len(tasks)) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        group = done[done["task"] == task]
        for family, members in group.groupby("family"):
            ax.scatter(members["params"], members["value"], s=60, label=family,
                       color=FAMILY_COLOURS.get(family, "black"))  # fmt: skip
        for _, row in group.iterrows():
            ax.annotate(row["model"], (row["params"], row["value"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters")
        metric = group["metric"].iloc[0]
        if group["higher_is_better"].eq(False).any():  # losses and errors span decades
            ax.set_yscale("log")
            ax.set_ylabel(f"test {metric} (lower is better)")
        else:
            ax.set_ylabel(f"test {metric} (%)")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    fig.suptitle("Test metric vs parameters, per task")
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # keep the first row's titles clear of the suptitle
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    write_bytes(path, buffer.getvalue())
