"""A Hydra sweeper on Optuna's ask-and-tell API, with a study that outlives the process.

hydra-optuna-sweeper 1.3 pins Optuna below 3, whose database storage breaks under SQLAlchemy 2
(which MLflow needs) and which has no journal storage; so the lab has its own, reading the same
search-space syntax (`hydra.sweeper.params`: `interval(a, b)`, `tag(log, interval(a, b))`,
`range(a, b, step)`, `choice(...)`).

The study lives in `storage`: by default `optuna.db`, a SQLite file beside the MLflow store;
PostgreSQL (`postgresql://...`) or a journal file (`journal:<path>`) for workers on several
machines. Its name is derived from the sweep's command line unless `study_name` is set, so
rerunning a crashed sweep's command continues its study: a trial the crash left running whose
job had finished (its MLflow run under the sweep's parent holds the score) gets that score, the
others are marked failed, and the sweep asks for new ones until `n_trials` have completed.

No `from __future__ import annotations` here: Hydra loads plugin modules without putting them
in sys.modules, where a dataclass would look its postponed annotations up.
"""

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from convrec.redaction import redact_text

log = logging.getLogger(__name__)


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.convrec_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    direction: str = "maximize"
    n_trials: int = 20  # completed trials the study ends with
    n_jobs: int = 1  # trials asked at a time (the launcher may run them in parallel)
    storage: str | None = None  # null: sqlite:///<project>/optuna.db, beside the MLflow store
    study_name: str | None = None  # null: derived from the sweep's command line
    max_failure_rate: float = 0.0  # of a batch's trials, before the sweep stops
    sampler: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": 0}
    )
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf,
                             provider="convrec")  # fmt: skip


def distribution(override: Override) -> BaseDistribution | str:
    """An Optuna distribution for a sweep override; a plain value stays a string."""
    if not override.is_sweep_override():
        return override.get_value_element_as_str()
    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        numbers = (value.start, value.stop, value.step)
        if any(isinstance(x, float) for x in numbers):
            return FloatDistribution(value.start, value.stop - value.step, step=value.step)
        return IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step))
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{override.input_line}: this sweep cannot be searched by Optuna")


def search_space(overrides: Sequence[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """The searched parameters and the fixed ones, from `key=value` overrides."""
    space, fixed = {}, {}
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        value = distribution(override)
        target = space if isinstance(value, BaseDistribution) else fixed
        target[override.get_key_element()] = value
    return space, fixed


def default_storage(config: DictConfig) -> str:
    from convrec.paths import project_root, store_root

    return f"sqlite:///{store_root(project_root()) / 'optuna.db'}"


def default_study_name(config: DictConfig, overrides: Sequence[str]) -> str:
    """The same sweep command, the same study: task, model and a hash of its overrides."""
    digest = hashlib.sha256("\n".join(sorted(overrides)).encode()).hexdigest()[:10]
    return f"{config.task.name}-{config.model.name}-{digest}"


def storage_for(url: str) -> Any:
    """A URL Optuna takes, or `journal:<path>`: a journal file (one file, no database server;
    safe across processes that share the filesystem)."""
    if url.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    return url


def study_identity(config: DictConfig) -> tuple[str, str]:
    """(storage, study name) of the sweep `config` describes: what the sweeper opens and what
    the sweep's MLflow parent run is found by when a crashed sweep is run again."""
    sweeper = config.hydra.sweeper
    overrides = [*(f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()),
                 *config.hydra.overrides.task]  # fmt: skip
    storage = sweeper.get("storage") or default_storage(config)
    return storage, sweeper.get("study_name") or default_study_name(config, overrides)


def trial_overrides(params: Mapping[str, Any], fixed: Mapping[str, str]) -> tuple[str, ...]:
    """The overrides a trial's job is launched with (and its MLflow run is tagged with)."""
    return tuple(f"{k}={v}" for k, v in {**params, **fixed}.items())


def settle_interrupted_trials(
    study: optuna.Study, fixed: Mapping[str, str], job_scores: Mapping[frozenset[str], list[float]]
) -> None:
    """Trials an earlier crash left RUNNING: one whose job finished gets the job's score (a
    finished job not yet claimed by a complete trial of the same overrides); the rest fail."""
    from convrec.tracking.sweep import sweep_key

    complete = Counter(sweep_key(trial_overrides(t.params, fixed))
                       for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    unclaimed = {key: list(scores[complete[key]:]) for key, scores in job_scores.items()}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        scores = unclaimed.get(sweep_key(trial_overrides(trial.params, fixed)))
        if scores:
            study.tell(trial.number, scores.pop(0))
            log.info(f"trial {trial.number}: its job had finished before the crash")
        else:
            study.tell(trial.number, state=TrialState.FAIL)


def sweep_job_scores(config: DictConfig) -> Mapping[frozenset[str], list[float]]:
    """The finished jobs' scores under this sweep's MLflow parent run (none without one)."""
    from convrec.paths import project_root
    from convrec.tracking.mlflow_run import SWEEP_PARENT_ENV, tracking_uri
    from convrec.tracking.sweep import finished_job_scores

    parent = os.environ.get(SWEEP_PARENT_ENV)
    if not parent:
        return {}
    return finished_job_scores(tracking_uri(config.tracking.uri, project_root()), parent)


class OptunaSweeper(Sweeper):
    def __init__(self, direction: str, n_trials: int, n_jobs: int, storage: str | None,
                 study_name: str | None, max_failure_rate: float, sampler: Any,
                 params: DictConfig | None) -> None:  # fmt: skip
        self.direction, self.n_trials, self.n_jobs = direction, n_trials, n_jobs
        self.max_failure_rate = max_failure_rate
        self.sampler = sampler
        self.params = params or {}
        self.config: DictConfig | None = None
        self.launcher = None
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:  # fmt: skip
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.launcher is not None
        space, fixed = search_space([*(f"{k}={v}" for k, v in self.params.items()), *arguments])
        storage, name = study_identity(self.config)
        if storage.startswith("sqlite:///"):
            Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        sampler = self.sampler if not isinstance(self.sampler, DictConfig | dict) else (
            instantiate(self.sampler))  # fmt: skip
        study = optuna.create_study(study_name=name, storage=storage_for(storage),
                                    sampler=sampler, direction=self.direction,
                                    load_if_exists=True)  # fmt: skip
        if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            settle_interrupted_trials(study, fixed, sweep_job_scores(self.config))
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        log.info(f"Optuna study {name} in {storage}: {done} of {self.n_trials} trials done")
        while done < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            overrides = [trial_overrides(trial.params, fixed) for trial in trials]
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            failures = 0
            for trial, ret in zip(trials, returns, strict=True):
                try:
                    study.tell(trial, float(ret.return_value))
                except Exception as err:  # the job raised, or returned no number
                    study.tell(trial, state=TrialState.FAIL)
                    log.warning(f"trial {trial.number} failed: {err}")
                    failures += 1
            if failures / len(returns) > self.max_failure_rate:
                raise RuntimeError(f"{failures} of {len(returns)} trials failed (above "
                                   f"max_failure_rate={self.max_failure_rate}); see the logs")
            done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        best = study.best_trial
        log.info(f"Best value {best.value} with {best.params}")
        OmegaConf.save(OmegaConf.create({"name": "optuna", "study": name,
                                         "storage": redact_text(storage),
                                         "best_params": best.params, "best_value": best.value}),
                       Path(self.config.hydra.sweep.dir) / "optimization_results.yaml")  # fmt: skip
