"""DVC stage `train`: fit one (task, model) pair. All logic lives in convrec.training."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from convrec.cli import check_choices
from convrec.errors import user_errors
from convrec.quick_exit import exit_now
from convrec.warm_start import hand_over

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    with user_errors():
        # torch and Lightning load in seconds: not for a typo, so imported here
        if cfg.get("seeds") is None:
            from convrec.training import train

            return train(cfg)  # the value an Optuna sweep optimises
        from convrec.seeds import train_seeds

        return train_seeds(cfg)  # the seeds' mean


if __name__ == "__main__":
    hand_over(__file__)  # under `dvc repro`: run in the pre-imported worker when there is one
    with user_errors():
        groups = ("task", "model", "trainer", "profile", "hparams_search")
        check_choices(sys.argv[1:], CONF_DIR, groups=groups)
    main()
    exit_now(0)  # finished and written: skip the interpreter's collections
