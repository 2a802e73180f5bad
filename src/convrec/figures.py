"""Matplotlib set up for files only (no display), and the one way the lab saves a figure:
as a PNG written atomically, so an interrupted stage never leaves half an image."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from convrec.atomic import write_bytes  # noqa: E402

__all__ = ["plt", "save_png"]


def save_png(fig, path: Path, *, top: float = 1.0) -> None:
    """`top` < 1 keeps room for a suptitle above the first row's titles."""
    fig.tight_layout(rect=(0, 0, 1, top))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_bytes(path, buffer.getvalue())
