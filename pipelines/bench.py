"""DVC stage `bench`: one measurement experiment (`experiment=<name>`). All logic lives in
convrec.bench and convrec.experiments."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig
from rich.console import Console

from convrec.cli import check_choices
from convrec.errors import user_errors
from convrec.paths import project_root
from convrec.quick_exit import exit_now

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
def main(cfg: DictConfig) -> None:
    from convrec.bench import run_experiment  # torch loads in seconds; not for a typo

    with user_errors():
        summary = run_experiment(cfg, project_root())
    Console().print(summary["conclusion"])


if __name__ == "__main__":
    with user_errors():
        check_choices(sys.argv[1:], CONF_DIR, groups=("experiment",))
    main()
    exit_now(0)  # finished and written: skip the interpreter's collections
