"""Team tracking: runs go to an `mlflow server` backed by a real PostgreSQL database
(postgresql+psycopg2://) with a proxied artifact store. The test starts its own throwaway
PostgreSQL cluster and server; CI (.ci/run) installs PostgreSQL and sets
CONVREC_REQUIRE_POSTGRES=1, so there a missing server fails instead of skipping."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import compose_config
from convrec.training import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_tool(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def postgres_uri():
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

    run(tools["initdb"], "-D", str(data), "-A", "trust", "-U", "convrec", "--no-sync")
    run(tools["pg_ctl"], "-D", str(data), "-l", str(home / "log"), "-w", "start", "-o",
        f"-p {port} -k {home} -c listen_addresses=127.0.0.1")  # fmt: skip
    try:
        run(tools["createdb"], "-h", "127.0.0.1", "-p", str(port), "-U", "convrec", "mlflow")
        yield f"postgresql+psycopg2://convrec@127.0.0.1:{port}/mlflow"
    finally:
        run(tools["pg_ctl"], "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres_uri, tmp_path_factory):
    port = _free_port()
    artifacts = tmp_path_factory.mktemp("artifacts")
    log = open(tmp_path_factory.mktemp("server") / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres_uri,
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
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
        yield url, artifacts
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


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
