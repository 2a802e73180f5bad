"""Checks the stage entry points run on their command line before Hydra composes anything."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from convrec.errors import ConvrecError


def check_choices(argv: Sequence[str], conf_dir: Path, groups: Iterable[str]) -> None:
    """One clear line for `task=nope` instead of Hydra's multi-line search-path report."""
    candidates = [arg for arg in argv if "=" in arg and not arg.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except HydraException:
        return  # malformed overrides: Hydra's own message is the right one
    groups = set(groups)
    for override in overrides:
        group = override.key_or_group
        if group not in groups or override.is_delete():
            continue
        if override.is_discrete_sweep():
            choices = list(override.sweep_string_iterator())
        else:
            choices = [override.get_value_element_as_str()]
        known = sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))
        for choice in choices:
            if choice not in known:
                raise ConvrecError(
                    f"unknown {group} {choice!r}; known: {', '.join(known)}. "
                    f"Pick one of those, or add conf/{group}/{choice}.yaml"
                )
