"""Whether each DVC stage lists every file of the project's code it loads.

A stage's deps are what DVC hashes to decide that its outputs are stale. The registries load
their packages' modules by name, and stages import lazily, so reading the imports is not
enough: the end-to-end test runs the real stages with tests/stage_imports/sitecustomize.py,
which records the files each process loaded, and `uncovered` names those no dep covers.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

CODE = ("src/convrec/", "pipelines/")


def uncovered(loaded: list[str], deps: list[str], roots: list[Path]) -> list[str]:
    """The project code files in `loaded` that no dep is or contains (a dep may be a folder).
    `roots`: where the project's files may have loaded from (a copy of the repository runs its
    own pipelines/ but imports the installed `convrec`, the repository's src/). A file that
    only holds a docstring (a package's `__init__.py`) runs nothing, so it needs no dep."""
    missing = []
    for name in loaded:
        found = [(root, Path(name).relative_to(root)) for root in roots
                 if Path(name).is_relative_to(root)]  # fmt: skip
        if not Path(name).is_absolute():  # the script itself, as `python pipelines/x.py` named it
            found = [(roots[0], Path(name))]
        if not found:
            continue
        root, relative = found[0]
        if not relative.as_posix().startswith(CODE) or _runs_nothing(root / relative):
            continue
        if not any(relative.as_posix() == d or relative.as_posix().startswith(d.rstrip("/") + "/")
                   for d in deps):  # fmt: skip
            missing.append(relative.as_posix())
    return sorted(missing)


def _runs_nothing(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) for s in body)


def stages_missing_deps(project: Path, records: Path, repo: Path) -> dict[str, list[str]]:
    """Stage name -> code files it loaded that dvc.lock (the stage's resolved deps) lacks, for
    every pipeline process recorded in `records`; every stage of the lock must be recorded."""
    import yaml

    stages = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    by_cmd = {stage["cmd"]: name for name, stage in stages.items()}
    runs = [json.loads(record.read_text()) for record in records.glob("*.json")]
    stage_of = {}  # pid -> stage name, for the processes a stage's command started
    for run in runs:
        if run["argv"] and run["argv"][0].startswith("pipelines/"):  # not dvc itself, git hooks
            name = by_cmd.get(" ".join(["python", *run["argv"]]))
            assert name is not None, f"no stage of dvc.lock runs {run['argv']}"
            stage_of[run["pid"]] = name
    loaded: dict[str, list[str]] = {}
    for run in runs:  # a stage's worker processes (multiprocessing) count as the stage's
        if (name := stage_of.get(run["pid"]) or stage_of.get(run["ppid"])) is not None:
            loaded.setdefault(name, []).extend(run["files"])
    assert set(loaded) == set(stages), f"stages not recorded: {set(stages) - set(loaded)}"
    # a dep that another stage writes (a code stamp, pipelines/stamp.py) stands for its deps
    made_by = {out["path"]: stage for stage in stages.values() for out in stage.get("outs", [])}
    missing = {}
    for name, files in loaded.items():
        deps = [dep["path"] for dep in stages[name].get("deps", [])]
        deps += [d["path"] for dep in deps if dep in made_by for d in made_by[dep].get("deps", [])]
        if gaps := uncovered(files, deps, [project, repo]):
            missing[name] = gaps
    return missing
