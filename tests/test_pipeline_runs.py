"""The runs conf/pipeline.yaml asks for: listed ones, and a task of your own times its input
kind's model set; every set's models take what a task of that kind holds."""

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import CONF, REPO, pipeline
from convrec.errors import ConvrecError
from convrec.models import MODELS
from convrec.pipeline_runs import pipeline_runs

# what a source kind prepares (convrec.data.kinds): the input kind, and whether lengths vary
KIND_INPUTS = {"images": ("image", False), "series": ("sequence", True), "text": ("tokens", True)}


def test_listed_runs_come_first_then_each_set_task_with_every_model_of_its_kind():
    conf = OmegaConf.create({
        "runs": {"mnist-cnn": {"task": "mnist", "model": "cnn"}},
        "train_sets": {"images": [], "series": ["mine", "yours"], "text": ["notes"]},
        "model_sets": {"images": ["cnn"], "series": ["fcn", "gru"], "text": ["textcnn"]},
    })  # fmt: skip
    assert [(r["task"], r["model"]) for r in pipeline_runs(conf)] == [
        ("mnist", "cnn"), ("mine", "fcn"), ("mine", "gru"), ("yours", "fcn"), ("yours", "gru"),
        ("notes", "textcnn"),
    ]  # fmt: skip


def test_a_set_kind_without_models_is_one_line():
    conf = OmegaConf.create({"runs": {}, "train_sets": {"audio": ["mine"]},
                             "model_sets": {"series": ["fcn"]}})  # fmt: skip
    with pytest.raises(ConvrecError, match="train_sets.audio names no model set"):
        pipeline_runs(conf)


def test_the_shipped_pipeline_lists_its_runs_and_sets_one_kind_each():
    shipped = pipeline()
    assert pipeline_runs(shipped) == [dict(run) for run in shipped.runs.values()]
    assert set(shipped.model_sets) == set(shipped.train_sets) == set(KIND_INPUTS)


@pytest.mark.parametrize("kind", sorted(KIND_INPUTS))
def test_every_model_of_a_kind_set_takes_that_kinds_inputs(kind):
    """The set of a kind trains on any task of that kind: its models read the input, predict
    a class, and take series and texts of varying length."""
    inputs, varying = KIND_INPUTS[kind]
    for model in pipeline().model_sets[kind]:
        accepts = MODELS.get(model).accepts
        assert (CONF / "model" / f"{model}.yaml").is_file()
        assert inputs in accepts.inputs and "class" in accepts.targets, model
        assert accepts.variable_length or not varying, model


def test_a_set_stage_depends_on_what_a_listed_run_does_but_a_task_model_file():
    """The set stages of dvc.yaml repeat the train stage's command, deps and outs (a model of
    a set takes its defaults, so there is no conf/task_model file to depend on)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    listed = stages["train"]["do"]
    for kind in KIND_INPUTS:
        stage = stages[f"train_{kind}"]
        assert stage["matrix"] == {"task": f"${{train_sets.{kind}}}",
                                   "model": f"${{model_sets.{kind}}}"}  # fmt: skip
        assert stage["cmd"] == listed["cmd"] and stage["outs"] == listed["outs"]
        assert stage["deps"] == [d for d in listed["deps"] if not d.startswith("conf/task_model/")]
