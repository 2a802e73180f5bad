"""Every (task, model) pair of the lab: trained (a forward and a backward pass on synthetic
inputs of the task's spec, with the hyperparameters the pipeline composes) or refused by the
config check with one line before any data is read or any MLflow run opens. Which it is comes
from each model's declared `accepts`, never from a table kept here.

tests/task_specs.json holds each task's spec as the quick profile prepares it (the fields of
meta.json that IOSpec reads); the end-to-end test checks it against the tasks it prepares."""

import json
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from conftest import compose_config
from convrec.data.contract import FORMAT_VERSION, META_KEYS
from convrec.data.tasks import TASKS
from convrec.errors import ConvrecError
from convrec.models import MODELS, build_model
from convrec.models.spec import IOSpec

TASK_SPECS = json.loads((Path(__file__).parent / "task_specs.json").read_text())
PAIRS = [(task, model) for task in TASK_SPECS for model in MODELS.names()]


def task_spec(task: str) -> IOSpec:
    return IOSpec.from_meta(TASK_SPECS[task])


def synthetic_inputs(spec: IOSpec, batch: int = 2) -> list[torch.Tensor]:
    """x, [lengths], [question] as the task's batches hold them, random."""
    generator = torch.Generator().manual_seed(0)
    if spec.input_kind == "tokens":
        x = torch.randint(2, spec.vocab_size, (batch, *spec.input_shape), generator=generator)
    else:
        x = torch.randn(batch, *spec.input_shape, generator=generator)
    inputs = [x]
    if spec.variable_length:
        inputs.append(torch.tensor([spec.steps] + [max(1, spec.steps // 2)] * (batch - 1)))
    if spec.question_length:
        shape = (batch, spec.questions_per_input, spec.question_length)
        inputs.append(torch.randint(1, 20, shape, generator=generator))
    return inputs


def test_the_specs_cover_every_task():
    assert sorted(TASK_SPECS) == TASKS.names()


@pytest.mark.parametrize("task, model", PAIRS)
def test_a_pair_trains_a_step_or_is_refused_with_the_models_that_fit(task, model):
    spec = task_spec(task)
    if MODELS.get(model).accepts.refusal(spec) is not None:
        with pytest.raises(ConvrecError, match=f"model {model} cannot train on"):
            build_model(model, spec)
        return
    cfg = compose_config("train", [f"task={task}", f"model={model}"])
    torch.manual_seed(0)
    net = build_model(model, spec, **OmegaConf.to_container(cfg.model.net, resolve=True))
    inputs = synthetic_inputs(spec)
    if getattr(net, "decoding", None) == "autoregressive":  # it reads the target while training
        inputs.append(torch.zeros(2, spec.target_length, dtype=torch.long))
    out = net.train()(*inputs)
    assert torch.isfinite(out).all()
    out.float().square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


# what a model's `accepts` is decided by; the same under every profile
KINDS = ("input_kind", "target_kind", "variable_length", "question_length")


def kinds(meta: dict) -> dict:
    return {key: bool(meta[key]) if key == "question_length" else meta[key] for key in KINDS}


def test_a_prepared_task_has_the_spec_listed_here(prepared_root):
    meta = json.loads((prepared_root / "mnist1d/meta.json").read_text())
    assert {key: meta[key] for key in TASK_SPECS["mnist1d"]} == TASK_SPECS["mnist1d"]


def test_every_run_of_the_pipeline_is_a_pair_its_model_accepts():
    runs = OmegaConf.load(Path(__file__).parents[1] / "conf/pipeline.yaml").runs
    refused = {name: MODELS.get(run.model).accepts.refusal(task_spec(run.task))
               for name, run in runs.items()}  # fmt: skip
    assert {name: why for name, why in refused.items() if why} == {}


def test_an_impossible_pair_is_refused_before_data_is_read_or_a_run_opens(tmp_path):
    """task=sort_of_clevr model=cnn (it would answer without reading the question): one line
    naming the models that fit. Only meta.json is prepared: the check reads nothing else."""
    from convrec.training import train

    (tmp_path / "prepared/sort_of_clevr").mkdir(parents=True)
    # a whole meta.json (convrec.data.contract): the spec, and the rest as a prepare would write
    rest = {"profile": "tiny", "class_names": [], "question_groups": {}, "normalize": None,
            "baseline": None, "split_seed": 0, "sources": {}, "generator": {}}  # fmt: skip
    meta = {**rest, **TASK_SPECS["sort_of_clevr"], "format_version": FORMAT_VERSION,
            "task": "sort_of_clevr", "split_sizes": {"train": 1, "val": 1, "test": 1},
            "files": {}}  # fmt: skip
    assert set(meta) == set(META_KEYS)
    (tmp_path / "prepared/sort_of_clevr/meta.json").write_text(json.dumps(meta))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_config("train", ["task=sort_of_clevr", "model=cnn", "profile=tiny",
                                   f"paths.prepared={tmp_path / 'prepared'}",
                                   f"paths.results={tmp_path / 'results'}", f"tracking.uri={uri}"])
    with pytest.raises(ConvrecError) as refused:
        train(cfg)
    message = str(refused.value)
    assert message.startswith("model cnn cannot train on task sort_of_clevr: it reads no question")
    assert message.endswith("models that fit: image_cnn, question_lstm, relation_net, vqa_concat, "
                            "vqa_product")  # fmt: skip
    assert MlflowClient(uri).get_experiment_by_name("sort_of_clevr") is None
