"""DVC stage `prepare`: fetch, verify and prepare one task. Logic in convrec.data.prepare."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from convrec.cli import check_choices
from convrec.errors import user_errors
from convrec.paths import project_root
from convrec.quick_exit import exit_now

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path="../conf", config_name="prepare")
def main(cfg: DictConfig) -> None:
    from convrec.data.prepare import prepare_task  # loads torch: after the cheap checks

    root = project_root()
    with user_errors():
        prepare_task(cfg.task, root / cfg.paths.prepared, root / cfg.paths.raw, str(cfg.profile))


if __name__ == "__main__":
    with user_errors():
        check_choices(sys.argv[1:], CONF_DIR, groups=("task",))
    main()
    exit_now(0)  # finished and written: skip the interpreter's collections
