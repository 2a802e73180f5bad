"""DVC stage `compare`: leaderboard, plots and reports/index.html of every run in
conf/pipeline.yaml, logged to MLflow as one comparison run."""

from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console

from convrec.compare.mlflow_comparison import GROUP_TAG, log_comparison
from convrec.compare.provenance import git_commit
from convrec.compare.report import write_reports
from convrec.errors import user_errors
from convrec.paths import project_root
from convrec.pipeline_runs import pipeline_runs
from convrec.quick_exit import exit_now
from convrec.tracking.mlflow_run import end_orphaned_runs, tracking_uri

if __name__ == "__main__":
    root = project_root()
    with user_errors():
        pipeline = OmegaConf.load(root / "conf" / "pipeline.yaml")
        results, reports = root / "results", root / "reports"
        out = write_reports(results, pipeline_runs(pipeline), reports, root / "conf/task", root,
                            [*pipeline.get("experiments", []),
                             *pipeline.get("speed", [])])  # fmt: skip
        uri = tracking_uri(OmegaConf.load(root / "conf" / "train.yaml").tracking.uri, root)
        end_orphaned_runs(uri)  # runs whose process was killed: KILLED, not RUNNING forever
        run_id = log_comparison(uri, out, git_commit(root))
    Console().print(f"report: {out / 'index.html'}, leaderboard: {out / 'leaderboard.md'}")
    Console().print(f"MLflow: experiment 'comparison', run {run_id}; its training runs carry "
                    f"the tag {GROUP_TAG}={run_id}")  # fmt: skip
    Console().print(Path(out / "leaderboard.md").read_text())
    exit_now(0)  # finished and written: skip the interpreter's collections
