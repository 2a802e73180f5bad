"""Team tracking: runs go to an `mlflow server` backed by a real PostgreSQL database
(postgresql+psycopg2://) with a proxied artifact store. The test starts its own throwaway
PostgreSQL cluster and server; CI (.ci/run) installs PostgreSQL and sets
CONVREC_REQUIRE_POSTGRES=1, so there a missing server fails instead of skipping."""

from __future__ import annotations

import base64
import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from conftest import REPO, compose_config, run_stage
from convrec.compare.mlflow_comparison import log_comparison
from convrec.compare.report import write_reports
from convrec.training import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_tool(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def postgres():
    """`postgres(name)`: the URL of a new database of a throwaway PostgreSQL cluster."""
    tools = {name: _pg_tool(name) for name in ("initdb", "pg_ctl", "createdb")}
    if not all(tools.values()):
        if os.environ.get("CONVREC_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL's initdb/pg_ctl not found; install the Debian package "
                        "postgresql (.ci/run does)")  # fmt: skip
        pytest.skip("no PostgreSQL: apt-get install postgresql to run this test")
    # PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user,
    # in a folder that user owns.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    home = Path(tempfile.mkdtemp(prefix="convrec-pg-"))
    if as_user:
        shutil.chown(home, "postgres")
    data, port = home / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    def database(name: str) -> str:
        run(tools["createdb"], "-h", "127.0.0.1", "-p", str(port), "-U", "convrec", name)
        return f"postgresql+psycopg2://convrec@127.0.0.1:{port}/{name}"

    run(tools["initdb"], "-D", str(data), "-A", "trust", "-U", "convrec", "--no-sync")
    run(tools["pg_ctl"], "-D", str(data), "-l", str(home / "log"), "-w", "start", "-o",
        f"-p {port} -k {home} -c listen_addresses=127.0.0.1")  # fmt: skip
    try:
        yield database
    finally:
        run(tools["pg_ctl"], "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_uri(postgres):
    return postgres("mlflow")


@contextmanager
def _server(folder: Path, *args: str, env: dict | None = None):
    """`mlflow server` on a free port of 127.0.0.1 until the block ends; yields its URL."""
    port = _free_port()
    log = open(folder / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", *args, "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a loaded 2-core machine needs its time
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("mlflow server did not start: " + Path(log.name).read_text()[-2000:])
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def mlflow_server(postgres_uri, tmp_path_factory):
    artifacts = tmp_path_factory.mktemp("artifacts")
    with _server(tmp_path_factory.mktemp("server"), "--backend-store-uri", postgres_uri,
                 "--artifacts-destination", str(artifacts)) as url:  # fmt: skip
        yield url, artifacts


def test_a_training_run_lands_in_the_postgresql_backed_server(
    mlflow_server, postgres_uri, prepared_root, tmp_path, monkeypatch
):
    import sqlalchemy

    url, artifacts = mlflow_server
    monkeypatch.chdir(tmp_path)
    cfg = compose_config("train", [
        "task=mnist1d", "model=mlp", "profile=tiny", f"paths.prepared={prepared_root}",
        f"tracking.uri={url}",
    ])  # fmt: skip
    train(cfg)

    client = MlflowClient(url)
    (run,) = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    assert run.info.status == "FINISHED" and "test/acc" in run.data.metrics
    assert "checkpoints/best.ckpt" in {
        a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")
    }
    assert list(artifacts.rglob("best.ckpt"))  # uploaded through the server to its store
    # and the run is a row of the PostgreSQL database itself
    with sqlalchemy.create_engine(postgres_uri).connect() as db:
        rows = db.execute(sqlalchemy.text("SELECT run_uuid, status FROM runs")).all()
    assert (run.info.run_id, "FINISHED") in [tuple(r) for r in rows]


# --- the authenticated team server: MLflow's basic-auth app, deploy/basic_auth.ini ---

ADMIN = "admin"


@pytest.fixture(scope="module")
def auth_server(postgres, tmp_path_factory):
    """`mlflow server --app-name basic-auth` as the README starts it: runs in one PostgreSQL
    database, users and permissions in another, no permission unless granted. Yields its URL
    and the users' passwords (alice and bob, created by the admin)."""
    folder = tmp_path_factory.mktemp("auth")
    ini = (REPO / "deploy" / "basic_auth.ini").read_text()
    users_db = postgres("mlflow_users")
    (folder / "basic_auth.ini").write_text(
        "\n".join(f"database_uri = {users_db}" if line.startswith("database_uri") else line
                  for line in ini.splitlines())  # fmt: skip
    )
    passwords = {name: secrets.token_urlsafe(18) for name in (ADMIN, "alice", "bob")}
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(folder / "basic_auth.ini"),
           "MLFLOW_AUTH_ADMIN_PASSWORD": passwords[ADMIN],
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)}  # fmt: skip
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    with _server(folder, "--app-name", "basic-auth", "--backend-store-uri",
                 postgres("mlflow_runs"), "--artifacts-destination", str(folder / "artifacts"),
                 env=env) as url:  # fmt: skip
        with _as(ADMIN, passwords[ADMIN]):
            users = get_app_client("basic-auth", tracking_uri=url)
            for name in ("alice", "bob"):
                users.create_user(name, passwords[name])
        yield url, passwords


@contextmanager
def _as(user: str | None, password: str | None = None):
    """The MLflow client's credentials, as a user sets them: in the environment."""
    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    old = {key: os.environ.pop(key, None) for key in keys}
    if user is not None:
        os.environ.update(zip(keys, (user, password), strict=True))
    try:
        yield
    finally:
        for key, value in old.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value


def _status(url: str, user: str | None = None, password: str | None = None) -> int:
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search?max_results=5")
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_auth_server_refuses_strangers_and_users_without_permission(auth_server):
    url, passwords = auth_server
    assert _status(url) == 401  # no credentials
    assert _status(url, "alice", "not-her-password") == 401
    assert _status(url, "alice", passwords["alice"]) == 200
    with _as(ADMIN, passwords[ADMIN]):
        private = MlflowClient(url).create_experiment("private")
        get_app_client("basic-auth", tracking_uri=url).grant_user_permission(
            "alice", "experiment", private, "READ")  # fmt: skip
    with _as("bob", passwords["bob"]), pytest.raises(MlflowException) as refused:
        MlflowClient(url).get_experiment(private)
    assert refused.value.get_http_status_code() == 403
    with _as("alice", passwords["alice"]):
        assert MlflowClient(url).get_experiment(private).name == "private"
        with pytest.raises(MlflowException):  # READ: she may look, not delete
            MlflowClient(url).delete_experiment(private)


def test_everything_the_lab_runs_works_through_the_auth_server(
    auth_server, prepared_root, tmp_path, monkeypatch
):
    """As alice: a training run, a 2-job sweep with its parent run, a 2-seed stage (a parent
    with a nested run per seed) and the compare stage's comparison run, artifacts through the
    server's proxy; all FINISHED, and bob, who has no permission, cannot read any of it."""
    url, passwords = auth_server
    monkeypatch.chdir(tmp_path)
    with _as("alice", passwords["alice"]):
        cfg = compose_config("train", [
            "task=mnist1d", "model=mlp", "profile=tiny", f"paths.prepared={prepared_root}",
            f"tracking.uri={url}", "seed=7",
        ])  # fmt: skip
        train(cfg)
        env = {**os.environ}
    common = ("task=mnist1d", "model=mlp", "profile=tiny", f"paths.prepared={prepared_root}",
              f"tracking.uri={url}")  # fmt: skip
    for args in (["-m", "seed=0,1"], ["seed=3", "seeds=2"]):  # a sweep; a multi-seed stage
        done = run_stage("train.py", *args, *common, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    reports = write_reports(tmp_path / "results", [{"task": "mnist1d", "model": "mlp"}],
                            tmp_path / "reports")  # fmt: skip
    with _as("alice", passwords["alice"]):
        comparison = log_comparison(url, reports, "abc123def456")
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("mnist1d").experiment_id
        runs = client.search_runs([experiment])
        (single,) = [r for r in runs if r.data.params.get("seed") == "7"]
        assert "checkpoints/best.ckpt" in {
            a.path for a in client.list_artifacts(single.info.run_id, "checkpoints")
        }  # uploaded through the server's artifact proxy, as alice
        compared = client.get_run(comparison)
        assert "report/index.html" in {a.path for a in client.list_artifacts(comparison, "report")}
    (sweep,) = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    (seeds,) = [r for r in runs if r.data.tags.get("seeds") == "3,4"]
    children = {parent.info.run_id: [r for r in runs
                                     if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
                for parent in (sweep, seeds)}  # fmt: skip
    assert [len(c) for c in children.values()] == [2, 2] and len(runs) == 7
    assert sweep.data.metrics["jobs_finished"] == 2 and seeds.data.metrics["seeds"] == 2
    assert {r.info.status for r in [*runs, compared]} == {"FINISHED"}
    assert set(compared.data.metrics) == {"mnist1d.mlp"}  # the one run compared
    with _as("bob", passwords["bob"]), pytest.raises(MlflowException):
        MlflowClient(url).get_experiment(experiment)  # her experiment: no permission of his


def test_no_secret_reaches_the_store_the_results_or_the_output(
    auth_server, prepared_root, tmp_path
):
    """A tracking URI with alice's password in it, and a config key named like a password:
    the run works (the process keeps the real values) and neither secret is in its params,
    tags or artifacts, in results/ or logs/, or in what the run printed."""
    url, passwords = auth_server
    secret, other = passwords["alice"], "hunter2-" + secrets.token_hex(4)
    with _as(None):
        env = {**os.environ}
    with_password = url.replace("http://", f"http://alice:{secret}@")
    done = run_stage(
        "train.py", "task=mnist1d", "model=mlp", "profile=tiny",
        f"paths.prepared={prepared_root}", f"tracking.uri={with_password}",
        f"+secrets.api_password={other}", "hydra.verbose=true", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with _as("alice", passwords["alice"]):
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("mnist1d").experiment_id
        (run,) = [r for r in client.search_runs([experiment])
                  if r.data.params.get("secrets.api_password")]  # fmt: skip
        assert run.info.status == "FINISHED"
        assert run.data.params["secrets.api_password"] == "***"
        assert run.data.params["tracking.uri"] == url.replace("http://", "http://alice:***@")
        downloaded = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "dl")))
    written = [p for folder in ("results", "logs", "dl") for p in (tmp_path / folder).rglob("*")
               if p.is_file()]  # fmt: skip
    assert any(p.name == "config.yaml" for p in written) and downloaded.is_dir()
    places = {
        "params": json.dumps(run.data.params), "tags": json.dumps(run.data.tags),
        "output": done.stdout + done.stderr,
        **{str(p.relative_to(tmp_path)): p.read_bytes().decode("latin-1") for p in written},
    }
    for value in (secret, other):
        leaks = {place: text[max(0, text.index(value) - 300) : text.index(value) + 100]
                 for place, text in places.items() if value in text}  # fmt: skip
        assert not leaks, f"a secret reached {leaks}".replace(value, "<SECRET>")
