import importlib.util

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from conftest import CONF, REPO, compose_config, pipeline
from convrec.config_check import check_config
from convrec.data.datamodule import PreparedDataModule
from convrec.errors import ConvrecError
from convrec.lit import MODULES
from convrec.models import build_model
from convrec.models.spec import IOSpec
from convrec.protocol import protocol

RUNS = list(pipeline().runs.values())


@pytest.mark.parametrize("run", RUNS, ids=[f"{r.task}-{r.model}" for r in RUNS])
def test_every_run_of_the_pipeline_composes_and_builds(run, prepared):
    cfg = compose_config("train", [f"task={run.task}", f"model={run.model}"])
    check_config(cfg)
    assert cfg.trainer.max_epochs == cfg.task.max_epochs.quick  # quick is the default profile
    data = PreparedDataModule(prepared(run.task) / run.task, batch_size=4)
    data.setup()
    first, *_ = next(iter(data.train_dataloader()))  # training hands out chunks of batches
    x, *rest, y = first  # rest: lengths or a question
    spec = IOSpec.from_meta(data.meta)
    net = build_model(run.model, spec, **cfg.model.net)
    if spec.target_kind == "sequence":  # logits per step or position, one class more (the end)
        loss, out = MODULES["sequence"](net, spec, optimizer=torch.optim.SGD).loss(x, y)
        assert out.shape[0] == 4 and out.shape[-1] == spec.num_classes + 1 and loss.isfinite()
        return
    out = net(x, *rest)
    assert out.shape[0] == 4 and out.shape[1:] == y.shape[1:] + (
        (spec.num_classes,) if spec.target_kind != "value" else ()
    )


@pytest.mark.parametrize("profile", ["quick", "full", "tiny"])
def test_every_profile_resolves_for_every_task(profile):
    for task in pipeline().tasks:
        cfg = compose_config("train", [f"task={task}", f"profile={profile}"])
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        assert cfg.profile == profile and cfg.trainer.max_epochs >= 1


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp", "ddp_cpu"])
def test_every_trainer_config_composes(trainer):
    cfg = compose_config("train", [f"trainer={trainer}"])
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=-1", r"trainer.max_epochs=-1 is invalid: it must be an integer >= 1"),
        ("trainer.max_epochs=0", r"trainer.max_epochs=0 is invalid"),
        ("task.batch_size=0", r"task.batch_size=0 is invalid"),
        ("model.lr=-0.1", r"optimizer.lr=-0.1 is invalid: it must be a number > 0"),
        ("seed=-3", r"seed=-3 is invalid"),
        ("trainer.gradient_clip_val=-1", r"gradient_clip_val=-1 is invalid"),
        ("task=gunpoint task.select=val", r"gunpoint: val_size=0 leaves no validation split"),
    ],
)
def test_invalid_values_are_refused_with_the_fix(override, message):
    cfg = compose_config("train", override.split())
    with pytest.raises(ConvrecError, match=message):
        check_config(cfg)


def test_seed_zero_is_a_valid_seed():
    check_config(compose_config("train", ["seed=0"]))


def test_unknown_registry_names_are_refused():
    cfg = compose_config("train")
    cfg.model.name = "nope"
    with pytest.raises(ConvrecError, match="unknown model 'nope'; known: bilstm, cnn, cnn_bilstm"):
        check_config(cfg)


def test_configs_need_no_hydra_runtime():
    """DVC and tests compose the configs, so only the hydra: node may use Hydra's resolvers."""
    for path in CONF.rglob("*.yaml"):
        tree = yaml.safe_load(path.read_text()) or {}
        tree.pop("hydra", None)
        assert "${hydra:" not in str(tree) and "${now:" not in str(tree), path
        assert "${oc.env" not in str(tree), path


def test_dvc_pipeline_trains_every_run_and_tracks_its_config_files():
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    train = dvc["stages"]["train"]
    assert train["foreach"] == "${runs}"
    deps = train["do"]["deps"]
    for config in ("train", "trainer/default", "profile/${profile}", "task/${item.task}",
                   "model/${item.model}", "task_model/${item.task}_${item.model}"):  # fmt: skip
        assert f"conf/{config}.yaml" in deps, config
    # the code, as one file of hashes: the stage that writes it depends on the code itself
    code = dvc["stages"]["code_train"]
    assert "build/code_train.txt" in deps and code["outs"] == ["build/code_train.txt"]
    assert {"pipelines/train.py", "pipelines/stamp.py", "src/convrec/training.py"} <= set(
        code["deps"])


def test_a_code_stamp_changes_with_any_file_it_covers_and_only_then(tmp_path):
    """pipelines/stamp.py: the hashes of a stage's deps (files, and every file of a folder),
    read from dvc.yaml."""
    spec = importlib.util.spec_from_file_location("stamp", REPO / "pipelines" / "stamp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stamp = module.stamp
    (tmp_path / "pkg").mkdir()
    (tmp_path / "a.py").write_text("a = 1\n")
    (tmp_path / "pkg" / "b.py").write_text("b = 1\n")
    (tmp_path / "other.py").write_text("c = 1\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  code_x:\n    deps: [a.py, pkg]\n")
    first = stamp("code_x", tmp_path)
    assert [line.split()[1] for line in first.splitlines()] == ["a.py", "pkg/b.py"]
    (tmp_path / "other.py").write_text("c = 2\n")
    assert stamp("code_x", tmp_path) == first
    (tmp_path / "pkg" / "b.py").write_text("b = 2\n")
    assert stamp("code_x", tmp_path) != first


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_every_model_of_a_task_trains_under_the_same_protocol(profile):
    """Same data, epochs and test set for every model of a task: a difference between two rows
    measures the models, not their budgets."""
    protocols: dict[str, dict[str, dict]] = {}
    for run in RUNS:
        cfg = compose_config("train", [f"task={run.task}", f"model={run.model}",
                                       f"profile={profile}"])  # fmt: skip
        protocols.setdefault(run.task, {})[run.model] = protocol(cfg)
    for task, by_model in protocols.items():
        first, *others = by_model.items()
        for model, fields in others:
            assert fields == first[1], f"{task}: {model} differs from {first[0]}"
        assert first[1]["profile"] == profile and first[1]["epochs"] >= 1


def test_every_run_of_the_pipeline_has_its_task_model_file():
    """Its train stage depends on it (DVC cannot depend on a file that does not exist)."""
    missing = [f"{r.task}_{r.model}" for r in RUNS
               if not (CONF / "task_model" / f"{r.task}_{r.model}.yaml").is_file()]  # fmt: skip
    assert not missing, f"add conf/task_model/<task>_<model>.yaml for {missing}"


def test_a_model_s_settings_for_a_task_are_composed_and_the_command_line_beats_them():
    assert compose_config("train", ["task=arrowhead", "model=fcn"]).task.batch_size == 8
    assert compose_config("train", ["task=arrowhead", "model=lstm"]).task.batch_size == 16
    cfg = compose_config("train", ["task=arrowhead", "model=fcn", "task.batch_size=64"])
    assert cfg.task.batch_size == 64
    assert compose_config("train", ["task=imdb", "model=bilstm"]).model.net.hidden_size == 64
    cfg = compose_config("train", ["task=imdb", "model=bilstm", "model.net.hidden_size=256"])
    assert cfg.model.net.hidden_size == 256
