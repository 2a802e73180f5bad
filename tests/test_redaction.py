"""Credentials are masked wherever the lab writes a config, its overrides or a message."""

from __future__ import annotations

import json
import logging
import os

import pytest

from conftest import compose_config
from convrec.errors import ConvrecError, user_errors
from convrec.redaction import MASK, is_secret_key, redact, redact_logging, redact_text
from convrec.tracking.sweep import job_overrides, sweep_key


@pytest.mark.parametrize(("text", "masked"), [
    ("http://alice:s3cr3t@host:5000", "http://alice:***@host:5000"),
    ("postgresql+psycopg2://mlflow:pw@db:5432/runs", "postgresql+psycopg2://mlflow:***@db:5432/runs"),
    ("https://ghp_token123@github.com/org/repo", "https://***@github.com/org/repo"),
    ("tracking.uri=http://a:b@h:1", "tracking.uri=http://a:***@h:1"),
    ("+db.password=hunter2", "+db.password=***"),
    ("https://h/api?token=abc&page=2", "https://h/api?token=***&page=2"),
    ("apiKey: zzz", "apiKey: ***"),
    ("http://host:5000/path", "http://host:5000/path"),
    ("uri=https://h/?token=x/y", "uri=https://h/?token=***"),
    ("task.tokenizer=word max_tokens=5 lr=0.1", "task.tokenizer=word max_tokens=5 lr=0.1"),
])  # fmt: skip
def test_credentials_in_text_are_masked_and_the_rest_kept(text, masked):
    assert redact_text(text) == masked


def test_keys_named_like_credentials_and_only_those():
    secret = ["password", "db_password", "api_token", "apiKey", "aws_secret_access_key",
              "client-secret", "SECRET", "credentials"]  # fmt: skip
    plain = ["tokenizer", "max_tokens", "vocab", "keyword", "passes", "key_column"]
    assert all(map(is_secret_key, secret))
    assert not any(map(is_secret_key, plain))


def test_a_config_tree_keeps_its_shape_with_secrets_masked():
    tree = {"tracking": {"uri": "http://u:p@h"}, "db": {"password": "x", "token": None},
            "task": {"tokenizer": "word", "sizes": [1, 2]}, "urls": ["http://x:y@z"]}  # fmt: skip
    assert redact(tree) == {
        "tracking": {"uri": f"http://u:{MASK}@h"}, "db": {"password": MASK, "token": None},
        "task": {"tokenizer": "word", "sizes": [1, 2]}, "urls": [f"http://x:{MASK}@z"],
    }  # fmt: skip


def test_log_records_and_the_error_line_carry_no_credential(caplog, capsys):
    redact_logging()
    with caplog.at_level(logging.INFO):
        logging.getLogger("hydra").info("\t#%d : %s", 0, "tracking.uri=http://u:pw1@h seed=0")
    assert "pw1" not in caplog.text and "http://u:***@h" in caplog.text
    with pytest.raises(SystemExit):
        with user_errors():
            raise ConvrecError("cannot reach http://u:pw2@h: check the server")
    assert "pw2" not in capsys.readouterr().err


def test_a_sweep_job_records_masked_overrides_and_is_matched_by_them():
    overrides = ["tracking.uri=http://u:pw@h", "model.lr=0.1"]
    recorded = job_overrides(overrides)
    assert "pw" not in recorded
    assert sweep_key(overrides) == sweep_key(json.loads(recorded))


def test_the_config_a_run_logs_is_masked(tmp_path):
    """What training logs as params and writes as config.yaml: the resolved config, masked."""
    from omegaconf import OmegaConf

    from convrec.tracking.mlflow_run import flatten

    cfg = compose_config("train", ["task=mnist1d", "model=mlp", "tracking.uri=http://u:pw@h:1",
                                   "+secrets.api_password=hunter2"])  # fmt: skip
    params = flatten(redact(OmegaConf.to_container(cfg, resolve=True)))
    assert params["tracking.uri"] == f"http://u:{MASK}@h:1"
    assert params["secrets.api_password"] == MASK
    assert "hunter2" not in str(params) and ":pw@" not in str(params)


def test_a_tracking_uris_credentials_move_to_mlflows_environment(monkeypatch):
    """MLflow prints the URI it is given (a run's "View run" link): it gets none with a
    password; the password reaches it through MLFLOW_TRACKING_PASSWORD instead."""
    from convrec.tracking.mlflow_run import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    assert tracking_uri("http://alice:p%40ss@127.0.0.1:5000/x", None) == "http://127.0.0.1:5000/x"
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == (
        "alice", "p@ss")  # fmt: skip
    assert tracking_uri("https://[::1]:443", None) == "https://[::1]:443"
    db = "postgresql+psycopg2://u:pw@db/mlflow"  # SQLAlchemy needs it in the URL; MLflow
    assert tracking_uri(db, None) == db  # prints no link for a database store
