"""reports/index.html rendered in a real headless Chromium: every figure decodes and shows
something. CI installs Chromium and sets CONVREC_REQUIRE_BROWSER=1, so there a missing
browser fails instead of skipping."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import run_metrics
from convrec.compare.report import write_reports
from convrec.results import aggregate

# Per image: decoded size, and how many distinct colours a 64x64 downsample of it holds
# (a blank or broken image has one).
PROBE = """
return Array.from(document.images).map(img => {
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 64;
  const ctx = canvas.getContext('2d');
  let colours = 0;
  if (img.complete && img.naturalWidth > 0) {
    ctx.drawImage(img, 0, 0, 64, 64);
    const data = ctx.getImageData(0, 0, 64, 64).data;
    const seen = new Set();
    for (let i = 0; i < data.length; i += 4) seen.add(data.slice(i, i + 3).join(','));
    colours = seen.size;
  }
  return {alt: img.alt, width: img.naturalWidth, colours: colours};
});
"""


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CONVREC_REQUIRE_BROWSER"):
            pytest.fail("Chromium or chromedriver not on PATH; install the Debian packages "
                        "chromium and chromium-driver (.ci/run does)")  # fmt: skip
        pytest.skip("no Chromium: apt-get install chromium chromium-driver to run this test")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))


def test_every_figure_of_the_report_renders_in_headless_chromium(tmp_path):
    """Three seeds per run on five tasks, so every kind of figure is drawn: the matrix, the
    Pareto fronts, the learning curves, the confusion matrices, the time-to-accuracy figures
    and the critical-difference diagram."""
    results = tmp_path / "results"
    runs = [(task, model, family, value - shift)
            for shift, task in enumerate(("mnist", "mnist1d", "t3", "t4", "t5"))
            for model, family, value in (("cnn", "cnn", 99.2), ("lstm", "rnn", 98.4),
                                         ("cnn_lstm", "hybrid", 98.9))]  # fmt: skip
    for task, model, family, value in runs:
        folder = results / task / model
        seeds = [run_metrics(task=task, model=model, family=family, value=value + 0.1 * s,
                             params=10_000 * len(model), train_seconds=value / 3, epochs=2,
                             seed=s) for s in range(3)]  # fmt: skip
        for seed in range(3):
            (folder / "seeds" / str(seed)).mkdir(parents=True)
            (folder / "seeds" / str(seed) / "history.csv").write_text(
                "epoch,val/loss,val/acc,samples,train_seconds\n"
                f"1,0.3,0.9,100,{1 + seed}\n2,0.2,0.95,100,{1 + seed}\n"
            )
        (folder / "metrics.json").write_text(json.dumps(aggregate(seeds, mlflow_run_id="p")))
        if task == "mnist":  # class targets leave a test confusion matrix: one figure per task
            counts = np.diag(np.full(10, 90)) + np.random.default_rng(0).integers(0, 3, (10, 10))
            names = [str(i) for i in range(10)]
            pd.DataFrame(counts, index=pd.Index(names, name="true"), columns=names).to_csv(
                folder / "confusion.csv"
            )
    listed = [{"task": task, "model": model} for task, model, _, _ in runs]
    page = write_reports(results, listed, tmp_path / "reports") / "index.html"
    figures = list((tmp_path / "reports" / "figures").glob("*.png"))

    browser = _browser()
    try:
        browser.get(page.as_uri())
        assert browser.title == "convrec report"
        images = browser.execute_script(PROBE)
    finally:
        browser.quit()
    names = {f.name for f in figures}
    assert {"critical_difference.png", "time_to_accuracy_mnist.png", "confusion_mnist.png",
            "family_matrix.png", "learning_curves.png"} <= names  # fmt: skip
    assert len(images) == len(figures) == 4 + 1 + 1 + 5  # confusion: mnist only; 5 tasks' speed
    for image in images:
        assert image["width"] > 300 and image["colours"] > 5, image


HOSTILE = {
    "task": "<img src=x onerror=alert(1)>",
    "model": '"><svg onload=alert(2)>',
    "source": "<script>alert(3)</script> et al.",
    "conclusion": "<b onmouseover=alert(4)>bold</b> & <script>alert(5)</script>",
}


def test_markup_in_names_and_texts_renders_as_text(tmp_path):
    """A task, model, published source or conclusion holding markup is shown as the text it
    is: the page runs no script, grows no element from it, and reads back every string."""
    results, task_conf = tmp_path / "results", tmp_path / "task"
    task, model = HOSTILE["task"], HOSTILE["model"]
    folder = results / task / model
    (folder / "seeds" / "0").mkdir(parents=True)
    seeds = [run_metrics(task=task, model=model, value=90.0 + s, seed=s) for s in range(2)]
    (folder / "metrics.json").write_text(json.dumps(aggregate(seeds, mlflow_run_id="p")))
    task_conf.mkdir()
    (task_conf / f"{task}.yaml").write_text(json.dumps({"references": [{
        "model": model, "value": 91.0, "source": HOSTILE["source"],
        "protocol": {"profile": "full", "train_examples": 1, "test_examples": 1}}]}))
    claim = results / "experiments" / "hostile"
    claim.mkdir(parents=True)
    (claim / "summary.json").write_text(json.dumps({
        "experiment": "hostile", "conclusion": HOSTILE["conclusion"], "device": "cpu",
        "mlflow_run_id": "<i>run</i>", "texts": ["notes.md"]}))
    (claim / "notes.md").write_text("</pre><script>alert(6)</script>")
    page = write_reports(results, [{"task": task, "model": model}], tmp_path / "reports",
                         task_conf, tmp_path, ["hostile"]) / "index.html"  # fmt: skip

    browser = _browser()
    try:
        browser.get(page.as_uri())
        alerts = browser.execute_script("return typeof window.alert")  # the page loaded
        elements = browser.execute_script(
            "return [document.scripts.length, document.querySelectorAll('svg, b, i').length,"
            " Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes)"
            ".some(a => a.name.startsWith('on'))).length]"
        )
        for details in browser.find_elements("tag name", "details"):
            browser.execute_script("arguments[0].open = true", details)
        text = browser.execute_script("return document.body.innerText")
    finally:
        browser.quit()
    assert alerts == "function"
    assert elements == [0, 0, 0]  # no script, no element and no handler came from the data
    for value in [*HOSTILE.values(), "</pre><script>alert(6)</script>", "<i>run</i>"]:
        assert value in text
