"""Every command that writes an output directory claims it the same way, and the same seed gives the same output.

``labelwise continual``, ``online``, ``select run``, ``select plot`` and ``analyze angles`` share
:func:`labelwise.engine.run_dir.claim_output_dir` with ``labelwise train`` (tested in ``tests/engine/test_engine_run_safety.py``):
a directory another live run holds is refused at once naming the holder, a non-empty directory is refused
unless ``--overwrite`` is given, and both refusals happen before anything is loaded or written. Each test runs
the real command through :func:`labelwise.cli.main` on tiny inputs and asserts the message, the exit status and
that every file already there is unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from labelwise.cli import main
from labelwise.engine.run_lock import LOCK_NAME

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ROOT = Path(__file__).resolve().parents[2]
CONTINUAL = ROOT / "src" / "labelwise" / "configs" / "continual" / "multidigits20_b4c2.yaml"
ONLINE = ROOT / "src" / "labelwise" / "configs" / "online" / "multidigits.yaml"
CONTINUAL_TINY = ["data.options.n_train=60", "data.options.n_test=40", "data.options.n_val=8", "data.image_size=16",
                  "model.backbone=test_resnet", "trainer.max_epochs=1", "trainer.batch_size=16", "trainer.progress=false",
                  "continual.scenario=B16-C4", "continual.plot=false"]
ONLINE_TINY = ["sequence.options.n_train=120", "sequence.options.n_test=200", "sequence.options.image_size=24",
               "sequence.options.test_per_class=4", "sequence.options.cache=false", "online.backbone=test_resnet",
               "online.memory_size=8", "online.backbone_kwargs={output_stride: 8}", "online.embed_dim=8",
               "methods=[prs]", "seeds=[0]"]
SELECT_TINY = ["--epochs", "2", "--warmup", "1", "--folds", "3", "--run-folds", "1", "--pressures", "2",
               "--min-positives", "5", "--model-params", '{"mlp": {"hidden": [8]}}', "--strategies", "random,adaptive",
               "--quiet"]


def snapshot(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory`` (relative path -> digest)."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def one_error(argv, capsys) -> str:
    """Run ``labelwise ARGV``; it must fail with one line ``labelwise: error: ...`` (exit 2): return the message."""
    status = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1 and err[0].startswith("labelwise: error: "), err
    return err[0][len("labelwise: error: "):]


def without_times(obj):
    """``obj`` without wall-clock entries (keys naming seconds or times), for comparing two runs."""
    if isinstance(obj, dict):
        return {k: without_times(v) for k, v in obj.items()
                if not any(w in str(k).lower() for w in ("time", "seconds", "elapsed"))}
    if isinstance(obj, list):
        return [without_times(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def mulan(tmp_path_factory) -> Path:
    """A small MULAN dataset in its on-disk format (dense ARFF + label XML) with a learnable signal."""
    d = tmp_path_factory.mktemp("mulan") / "tiny"
    d.mkdir()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6))
    y = (x[:, :4] + 0.3 * rng.normal(size=(90, 4)) > 0.2).astype(int)
    lines = ["@relation tiny", "", *(f"@attribute f{j} numeric" for j in range(6)),
             *(f"@attribute label{j} {{0,1}}" for j in range(4)), "", "@data"]
    lines += [",".join([*(f"{v:.5f}" for v in xi), *map(str, yi)]) for xi, yi in zip(x, y)]
    (d / "tiny.arff").write_text("\n".join(lines) + "\n")
    (d / "tiny.xml").write_text('<?xml version="1.0" encoding="utf-8"?>\n<labels xmlns="http://mulan.sourceforge.net/'
                                'labels">\n' + "".join(f'<label name="label{j}"></label>\n' for j in range(4))
                                + "</labels>\n")
    return d


def commands(out: Path, mulan_dir: Path | None = None) -> dict[str, list[str]]:
    """The argv of every command that writes an output directory, into ``out``."""
    return {
        "continual": ["continual", "-c", str(CONTINUAL), "--strategy", "finetune", *CONTINUAL_TINY, "-o", str(out),
                      "--no-progress"],
        "online": ["online", "-c", str(ONLINE), *ONLINE_TINY, "-o", str(out)],
        "select run": ["select", "run", "--datasets", str(mulan_dir), *SELECT_TINY, "-o", str(out)],
        "select plot": ["select", "plot", "--dataset", str(mulan_dir), *SELECT_TINY[:-3], "-o", str(out)],
        "analyze angles": ["analyze", "angles", "--output", str(out)],
    }


NOUNS = {"continual": "continual run", "online": "online run", "select run": "batch-selection benchmark",
         "select plot": "batch-selection figure set", "analyze angles": "angle analysis"}


# -- non-empty directories, lock --------------------------------------------------------------------------
@pytest.mark.parametrize("command", list(NOUNS))
def test_non_empty_output_that_is_not_an_output_is_refused(command, tmp_path, capsys, mulan):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.json").write_text('{"mine": true}\n')
    (out / "notes.txt").write_text("keep me\n")
    before = snapshot(out)
    msg = one_error(commands(out, mulan)[command], capsys)
    assert msg == (f"{out} is not empty and is not a labelwise {NOUNS[command]} (it holds notes.txt, results.json); "
                   "choose a new or empty --output, or pass --overwrite to write into it anyway")
    assert snapshot(out) == before and sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.json"]


HOLDER = textwrap.dedent("""
    import sys
    from labelwise.engine.run_lock import RunLock
    lock = RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes stdin
    lock.release()
""")


def test_output_in_use_by_another_run_is_refused(tmp_path, capsys, mulan):
    out = tmp_path / "shared"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        assert holder.stdout.readline().strip() == "locked"
        (out / "table.md").write_text("what the running command wrote so far\n")
        before = snapshot(out)
        for command, argv in commands(out, mulan).items():
            msg = one_error(argv, capsys)
            assert msg.startswith(f"run directory {out} is in use by another labelwise run (pid {holder.pid} on host "
                                  f"{socket.gethostname()}"), (command, msg)
            assert snapshot(out) == before, command
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not (out / LOCK_NAME).exists()


# -- same seed, same output; a previous output is refused, --overwrite replaces it -------------------------
def test_online_same_seed_same_results_and_previous_output(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(commands(a)["online"]) == 0
    assert main(commands(b)["online"]) == 0
    first = json.loads((a / "results.json").read_text())
    assert without_times(first) == without_times(json.loads((b / "results.json").read_text()))
    assert (a / "table.md").read_text() == (b / "table.md").read_text()
    # another seed gives another run: the comparison can fail
    assert main(commands(tmp_path / "c")["online"][:-2] + ["seeds=[1]", "-o", str(tmp_path / "c")]) == 0
    other = json.loads((tmp_path / "c" / "results.json").read_text())
    assert without_times(other["runs"]) != without_times(first["runs"])
    capsys.readouterr()
    before = snapshot(a)
    msg = one_error(commands(a)["online"], capsys)
    assert msg == (f"{a} already holds a labelwise online run (config.yaml, results.json, table.md); replace it with "
                   "--overwrite, or choose another --output")
    assert snapshot(a) == before
    (a / "notes.txt").write_text("keep me\n")
    assert main([*commands(a)["online"], "--overwrite"]) == 0
    assert (a / "notes.txt").read_text() == "keep me\n"
    assert without_times(json.loads((a / "results.json").read_text())) == without_times(first)


def test_select_run_same_seed_same_results_and_previous_output(tmp_path, capsys, mulan):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(commands(a, mulan)["select run"]) == 0
    assert main(commands(b, mulan)["select run"]) == 0
    for name in ("candidates.csv", "folds.csv", "summary.csv"):
        rows_a = [without_times(r) for r in csv.DictReader(open(a / name))]
        assert rows_a == [without_times(r) for r in csv.DictReader(open(b / name))], name
    first = json.loads((a / "results.json").read_text())
    assert without_times(first) == without_times(json.loads((b / "results.json").read_text()))
    assert main([*commands(tmp_path / "c", mulan)["select run"], "--seed", "1"]) == 0
    assert without_times(json.loads((tmp_path / "c" / "results.json").read_text())["records"]) != \
        without_times(first["records"])
    capsys.readouterr()
    before = snapshot(a)
    msg = one_error(commands(a, mulan)["select run"], capsys)
    assert msg.startswith(f"{a} already holds a labelwise batch-selection benchmark (candidates.csv, folds.csv, ")
    assert msg.endswith("; replace it with --overwrite, or choose another --output")
    assert snapshot(a) == before
    (a / "wilcoxon.csv").write_text("stale\n")
    (a / "notes.txt").write_text("keep me\n")
    assert main([*commands(a, mulan)["select run"], "--overwrite"]) == 0
    assert (a / "wilcoxon.csv").read_text() == (b / "wilcoxon.csv").read_text()  # the previous output is replaced
    assert (a / "notes.txt").read_text() == "keep me\n"  # the user's files are kept
    assert without_times(json.loads((a / "results.json").read_text())) == without_times(first)


def test_continual_previous_run_is_refused_and_overwrite_replaces_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(commands(run)["continual"]) == 0
    tasks = [without_times(r) for r in csv.DictReader(open(run / "tasks.csv"))]
    assert len(tasks) == 2 and (run / "task_1").is_dir()
    capsys.readouterr()
    before = snapshot(run)
    msg = one_error(commands(run)["continual"], capsys)
    assert msg.startswith(f"{run} already holds a labelwise continual run (ap_per_class.csv, config.yaml, ")
    assert msg.endswith("replace it with --overwrite, or choose another --output") and "--resume" not in msg
    assert snapshot(run) == before
    (run / "task_7").mkdir()  # a task directory of an older, longer scenario: removed by --overwrite
    (run / "task_7" / "metrics.csv").write_text("epoch\n1\n")
    (run / "notes.txt").write_text("keep me\n")
    assert main([*commands(run)["continual"], "--overwrite"]) == 0
    assert not (run / "task_7").exists() and (run / "notes.txt").read_text() == "keep me\n"
    # the same seed gives the same scenario results
    assert [without_times(r) for r in csv.DictReader(open(run / "tasks.csv"))] == tasks


def test_analyze_angles_previous_output_and_overwrite(tmp_path, capsys):
    out = tmp_path / "angles"
    assert main(commands(out)["analyze angles"]) == 0
    (out / "angles_summary.csv").write_text("model,M\nold,3\n")  # as a run with --checkpoint leaves it
    capsys.readouterr()
    before = snapshot(out)
    msg = one_error(commands(out)["analyze angles"], capsys)
    assert msg == (f"{out} already holds a labelwise angle analysis (angles_summary.csv, optimal_angle_curve.png); "
                   "replace it with --overwrite, or choose another --output")
    assert snapshot(out) == before
    assert main([*commands(out)["analyze angles"], "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["optimal_angle_curve.png"]  # nothing of the old analysis left
