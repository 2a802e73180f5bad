"""The check behind the end-to-end test's "every stage lists the code it loads"
(tests/stage_deps.py): it names a loaded module no dep covers, and only those."""

from stage_deps import uncovered

from conftest import REPO


def test_a_loaded_module_missing_from_the_stage_deps_is_named():
    loaded = [
        str(REPO / "src/convrec/registry.py"),  # loaded, listed by no dep
        str(REPO / "src/convrec/models/cnn.py"),  # inside a folder dep
        str(REPO / "src/convrec/__init__.py"),  # a docstring only: runs nothing
        "pipelines/train.py",  # the script, as the stage's command named it
        "/usr/lib/python3.11/json/__init__.py",  # not the project's
    ]
    deps = ["pipelines/train.py", "src/convrec/models", "data/prepared/mnist"]
    assert uncovered(loaded, deps, [REPO]) == ["src/convrec/registry.py"]
    assert uncovered(loaded, [*deps, "src/convrec/registry.py"], [REPO]) == []
    assert uncovered(loaded, deps[1:] + ["src/convrec/registry.py"], [REPO]) == [
        "pipelines/train.py"
    ]
