"""DVC stage `code_<group>`: one small file that changes when any code file of the group does.

Every train stage runs the same ~30 modules. Listed in each of the 86 train stages, their
hashes made dvc.lock 470 KB, which DVC parses (4.4 s) and rewrites (2.5 s) after every stage.
The train stages depend on this stage's file instead, and this stage on the modules: its deps
in dvc.yaml, read from there, so that the list is written once. It loads no torch: a second.

    python pipelines/stamp.py <stage> <output>
"""

import sys
from pathlib import Path

import yaml

from convrec.data.checksums import digest

ROOT = Path(__file__).resolve().parent.parent


def files_of(path: Path) -> list[Path]:
    """A file, or every file under a folder (bytecode caches aside), in a stable order."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def stamp(stage: str, root: Path = ROOT) -> str:
    """`<sha256>  <path>` for every file the stage depends on, one per line."""
    deps = yaml.safe_load((root / "dvc.yaml").read_text())["stages"][stage]["deps"]
    lines = []
    for dep in deps:
        for path in files_of(root / dep):
            lines.append(f"{digest(path)}  {path.relative_to(root).as_posix()}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    stage, output = sys.argv[1], Path(sys.argv[2])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(stamp(stage))
