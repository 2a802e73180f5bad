"""DVC stage `compare`: leaderboard, plots and reports/index.html of every run in
conf/pipeline.yaml."""

from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console

from convrec.compare.report import write_reports
from convrec.errors import user_errors
from convrec.paths import project_root

if __name__ == "__main__":
    root = project_root()
    with user_errors():
        runs = OmegaConf.load(root / "conf" / "pipeline.yaml").runs
        out = write_reports(
            root / "results", runs.values(), root / "reports", root / "conf/task", root
        )
    Console().print(f"report: {out / 'index.html'}, leaderboard: {out / 'leaderboard.md'}")
    Console().print(Path(out / "leaderboard.md").read_text())
