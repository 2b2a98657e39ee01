"""Run safety: reproducible seeds, the run-directory lock, non-empty directories, full disks, diverging losses.

Every test runs the real command (``labelwise train`` through :func:`labelwise.cli.main`, or
:func:`labelwise.run.train_from_config` where a test hook is needed) on a tiny MultiDigits-20 run (64 training
images, the 2-stage ``test_resnet`` backbone, 2 steps per epoch), and asserts both what the user sees and
that nothing already on disk was lost or overwritten.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from labelwise.cli import main
from labelwise.config import load_config
from labelwise.engine import Callback
from labelwise.engine.checkpoint import CheckpointWriteError, load_checkpoint
from labelwise.engine.run_lock import LOCK_NAME, RunLock, RunLockedError
from labelwise.engine.trainer import LossDivergedError, NonFiniteLossError
from labelwise.run import train_from_config

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "src" / "labelwise" / "configs" / "quickstart.yaml"
TINY = ["data.options.n_train=64", "data.options.n_val=32", "data.options.n_test=32", "trainer.max_epochs=1",
        "trainer.batch_size=32", "model.backbone=test_resnet", "trainer.progress=false", "trainer.report=false"]
CHECKPOINT_FILES = ("best.safetensors", "last.safetensors", "last.state.safetensors")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("multidigits_cache")


def argv(cache, out, *extra):
    """``labelwise train`` of the tiny run into ``out``; ``extra`` holds overrides and flags (in any order)."""
    overrides = [e for e in extra if "=" in e and not e.startswith("-")]
    flags = [e for e in extra if e not in overrides]
    return ["train", "--config", str(QUICKSTART), *TINY, f"data.root={cache}", *overrides, "--output", str(out),
            "--no-test", *flags]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def metrics_without_time(run: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(open(run / "metrics.csv", newline="")))
    return [{k: v for k, v in r.items() if k != "epoch_time"} for r in rows]


def snapshot(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory`` (relative path -> digest)."""
    return {str(p.relative_to(directory)): sha256(p) for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(run: Path) -> list[str]:
    return sorted(p.name for d in (run, run / "checkpoints") if d.is_dir() for p in d.iterdir()
                  if p.name.endswith(".new") or p.name.endswith(".tmp"))


@pytest.fixture
def restore_determinism():
    flag = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(flag)


# -- reproducibility ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("deterministic", [False, True])
def test_same_seed_gives_identical_runs(cache, tmp_path, capsys, restore_determinism, deterministic):
    extra = [f"trainer.deterministic={str(deterministic).lower()}"]
    runs = [tmp_path / "a", tmp_path / "b", tmp_path / "other_seed"]
    torch.manual_seed(123)  # whatever the global state before the command, the run seeds itself
    assert main(argv(cache, runs[0], *extra)) == 0
    torch.rand(1000)
    assert main(argv(cache, runs[1], *extra)) == 0
    assert main(argv(cache, runs[2], *extra, "trainer.seed=1")) == 0
    assert metrics_without_time(runs[0]) == metrics_without_time(runs[1])
    for name in CHECKPOINT_FILES:
        assert sha256(runs[0] / "checkpoints" / name) == sha256(runs[1] / "checkpoints" / name), name
    # the comparison can fail: another seed gives another run
    assert sha256(runs[0] / "checkpoints" / "last.safetensors") != sha256(runs[2] / "checkpoints" / "last.safetensors")
    assert metrics_without_time(runs[0]) != metrics_without_time(runs[2])


# -- the run-directory lock --------------------------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys, time
    from labelwise.engine.run_lock import RunLock
    lock = RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes stdin
    lock.release()
""")


def test_second_writer_is_refused_naming_the_holder(cache, tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        assert holder.stdout.readline().strip() == "locked"
        (run / "metrics.csv").write_text("epoch,mAP\n1,0.9\n")  # what the running run has written so far
        before = snapshot(run)
        assert main(argv(cache, run)) == 2
        err = capsys.readouterr().err
        assert "loading data" not in err  # refused at once, before anything is loaded or written
        assert f"run directory {run} is in use by another labelwise run (pid {holder.pid} on host " \
               f"{socket.gethostname()}" in err
        assert err.startswith("labelwise: error:") and len(err.strip().splitlines()) == 1
        assert snapshot(run) == before  # nothing written, nothing replaced
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not (run / LOCK_NAME).exists()  # the holder released it


def test_stale_lock_of_a_dead_process_is_taken_over(cache, tmp_path, caplog):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (run / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00",
                                             "command": "labelwise train (killed)"}))
    with caplog.at_level(logging.WARNING, logger="labelwise.engine.run_lock"):
        assert main(argv(cache, run)) == 0
    warned = [r.getMessage() for r in caplog.records if "stale lock" in r.getMessage()]
    assert warned and f"pid {pid} on host {socket.gethostname()}" in warned[0]
    assert (run / "checkpoints" / "last.json").is_file() and not (run / LOCK_NAME).exists()


def test_lock_of_another_host_is_not_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "another-node", "command": "labelwise train"}))
    with pytest.raises(RunLockedError, match=r"pid 1 on host another-node.*cannot tell whether it still runs.*delete"):
        RunLock(tmp_path).acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == "another-node"  # left as it was


# -- non-empty output directories --------------------------------------------------------------------------
def test_non_empty_directory_that_is_not_a_run_is_refused(cache, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.csv").write_text("my own numbers\n")
    (out / "notes.txt").write_text("keep me\n")
    before = snapshot(out)
    assert main(argv(cache, out)) == 2
    err = capsys.readouterr().err
    assert f"{out} is not empty and is not a labelwise run (it holds metrics.csv, notes.txt)" in err
    assert "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert snapshot(out) == before and sorted(p.name for p in out.iterdir()) == ["metrics.csv", "notes.txt"]


def test_output_that_is_a_file_or_under_a_file(cache, tmp_path, capsys):
    blocker = tmp_path / "results.txt"
    blocker.write_text("mine\n")
    assert main(argv(cache, blocker)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"labelwise: error: output directory {blocker} exists and is not a directory; choose another "
                   "--output"]
    assert main(argv(cache, blocker / "run", "--overwrite")) == 2  # not even --overwrite replaces a file
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"labelwise: error: {blocker / 'run'}: Not a directory"]
    assert blocker.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


def test_previous_run_is_refused_without_resume_or_overwrite(cache, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(argv(cache, run)) == 0
    before = snapshot(run)
    capsys.readouterr()
    assert main(argv(cache, run, "trainer.seed=5")) == 2
    err = capsys.readouterr().err
    assert f"{run} already holds a labelwise run" in err and f"--resume {run}" in err and "--overwrite" in err
    assert snapshot(run) == before


def test_overwrite_flag(cache, tmp_path, capsys):
    # into a directory that is not a run: the run's files are written, the user's other files are kept
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n")
    assert main(argv(cache, out, "--overwrite")) == 0
    assert (out / "notes.txt").read_text() == "keep me\n" and (out / "checkpoints" / "last.json").is_file()
    # over a previous run: its files are replaced, nothing of the old run is mixed into the new one
    first = sha256(out / "checkpoints" / "last.safetensors")
    (out / "tb" / "events.out.tfevents.old").write_text("old run events")
    assert main(argv(cache, out, "--overwrite", "trainer.seed=7")) == 0
    assert sha256(out / "checkpoints" / "last.safetensors") != first
    assert not (out / "tb" / "events.out.tfevents.old").exists()
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1
    assert load_config(out / "config.yaml").trainer.seed == 7
    assert [r["epoch"] for r in metrics_without_time(out)] == ["1"]


# -- resume ----------------------------------------------------------------------------------------------
def test_resume_of_a_missing_run_names_the_given_path(cache, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", str(QUICKSTART), *TINY, f"data.root={cache}", "--resume", "runs/missing"]) == 2
    err = capsys.readouterr().err
    assert "labelwise: error: checkpoint not found: runs/missing (no such run directory or checkpoint" in err
    assert "sidecar" not in err and "missing.json" not in err
    assert not (tmp_path / "runs").exists()  # no run directory was created for it


def test_resume_into_its_own_directory_continues(cache, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(argv(cache, run)) == 0
    first_row = metrics_without_time(run)[0]
    assert main(argv(cache, run, "--resume", str(run), "trainer.max_epochs=2")) == 0
    rows = metrics_without_time(run)
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[0] == first_row


# -- full disk ---------------------------------------------------------------------------------------------
def _assert_disk_full_handled(run: Path, err: str, cache: Path, resume_into: Path, capsys) -> None:
    assert "labelwise: error: could not write checkpoint" in err and "No space left on device" in err
    assert "is intact" in err and len([line for line in err.splitlines() if "error" in line]) == 1
    assert leftovers(run) == []  # no *.new, no .*.tmp left behind
    last = load_checkpoint(run / "checkpoints" / "last.json")  # sha256-checked, with its resume state
    assert last.state["epoch"] == 1 and last.meta["epoch"] == 1
    # the run can be continued from it
    shutil.copytree(run, resume_into)
    capsys.readouterr()
    assert main(argv(cache, resume_into, "--resume", str(resume_into), "trainer.max_epochs=2")) == 0
    assert [r["epoch"] for r in metrics_without_time(resume_into)] == ["1", "2"]


def test_disk_full_keeps_the_previous_checkpoint_simulated(cache, tmp_path, capsys, monkeypatch):
    """ENOSPC from fsync of the second epoch's resume state (where delayed allocation reports it)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to recognise the file being synced")
    real_fsync = os.fsync
    seen = []

    def fsync(fd):
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith(".last.state.safetensors.new."):
            seen.append(name)
            if len(seen) >= 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    run = tmp_path / "run"
    monkeypatch.setattr(os, "fsync", fsync)
    assert main(argv(cache, run, "trainer.max_epochs=2")) == 2
    monkeypatch.setattr(os, "fsync", real_fsync)
    _assert_disk_full_handled(run, capsys.readouterr().err, cache, tmp_path / "resumed", capsys)


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("a real full disk needs a Linux tmpfs mount")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=9m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_keeps_the_previous_checkpoint_tmpfs(cache, tmp_path, capsys, small_tmpfs):
    """A real 9 MB file system: epoch 1 fits (best 1.5 MB + last 4.5 MB), epoch 2's new ``last`` does not."""
    run = small_tmpfs / "run"
    status = main(argv(cache, run, "trainer.max_epochs=3", "trainer.tensorboard=false"))
    err = capsys.readouterr().err
    assert status == 2, err
    _assert_disk_full_handled(run, err, cache, tmp_path / "resumed", capsys)


def test_stale_temporary_files_are_swept_at_the_next_start(cache, tmp_path, capsys, caplog):
    run = tmp_path / "run"
    assert main(argv(cache, run)) == 0
    ck = run / "checkpoints"
    kept = {name: sha256(ck / name) for name in ("last.safetensors", "last.state.safetensors", "last.json")}
    # what kill -9 in the middle of a checkpoint write leaves
    (ck / ".last.safetensors.new.k2j3x_9q.tmp").write_bytes(b"\0" * 100_000)
    (ck / "last.state.safetensors.new").write_bytes(b"half written")
    (run / ".metrics.csv.ab12cd34.tmp").write_text("epoch\n")
    (run / ".my-own-hidden.tmp").write_text("not ours")  # not a labelwise temporary name: kept
    assert load_checkpoint(ck / "last.json").state["epoch"] == 1  # the previous commit is what loads
    assert {name: sha256(ck / name) for name in kept} == kept
    with caplog.at_level(logging.INFO, logger="labelwise.engine.trainer"):
        assert main(argv(cache, run, "--resume", str(run), "trainer.max_epochs=2")) == 0
    assert leftovers(run) == [".my-own-hidden.tmp"]
    swept = " ".join(r.getMessage() for r in caplog.records)
    assert ".last.safetensors.new.k2j3x_9q.tmp" in swept and "last.state.safetensors.new" in swept
    assert load_checkpoint(ck / "last.json").state["epoch"] == 2


# -- diverging loss ----------------------------------------------------------------------------------------
class NaNAtStep(Callback):
    """Adds a NaN loss term at one global step (0-based count of the steps done) and records the files
    of the last checkpoint at the start of every epoch."""

    def __init__(self, step: int, ckpt_dir: Path) -> None:
        self.step, self.ckpt_dir, self.at_epoch_start = step, ckpt_dir, {}

    def on_epoch_start(self, trainer, epoch):
        if (self.ckpt_dir / "last.json").exists():
            self.at_epoch_start[epoch] = snapshot(self.ckpt_dir)

    def extra_loss(self, trainer, batch, outputs):
        return torch.tensor(float("nan")) if trainer.global_step == self.step else None


def test_non_finite_loss_stops_at_that_step_keeping_the_last_good_checkpoint(cache, tmp_path):
    run = tmp_path / "run"
    cfg = load_config(QUICKSTART, [*TINY, f"data.root={cache}", "trainer.max_epochs=3"])
    hook = NaNAtStep(step=2, ckpt_dir=run / "checkpoints")  # the 3rd step: epoch 2, step 1
    with pytest.raises(NonFiniteLossError) as info:
        train_from_config(cfg, output_dir=run, evaluate_test=False, callbacks=[hook])
    msg = str(info.value)
    assert "the training loss is nan at epoch 2, step 1 (global step 3) with learning rate " in msg
    assert f"{run / 'checkpoints' / 'last.json'}, was written before and is kept" in msg and "\n" not in msg
    assert info.value.epoch == 2 and info.value.global_step == 3 and info.value.lr > 0
    # nothing computed from the NaN reached the disk: the checkpoints are the ones of epoch 1
    assert snapshot(run / "checkpoints") == hook.at_epoch_start[1]
    last = load_checkpoint(run / "checkpoints" / "last.json")
    assert last.meta["epoch"] == 1 and all(torch.isfinite(w).all() for w in last.weights.values())
    assert [r["epoch"] for r in metrics_without_time(run)] == ["1"]
    assert not (run / LOCK_NAME).exists()  # the lock is released on the error path too


class SpikeAtStep(NaNAtStep):
    """Adds a constant (no gradient: training itself is unaffected) of ``size`` to the loss at one global step."""

    def __init__(self, step: int, ckpt_dir: Path, size: float = 1e9) -> None:
        super().__init__(step, ckpt_dir)
        self.size = size

    def extra_loss(self, trainer, batch, outputs):
        return torch.tensor(self.size) if trainer.global_step == self.step else None


def test_diverging_learning_rate_stops_with_a_message(cache, tmp_path, capsys):
    """``trainer.lr=1e6``: the loss stays finite but blows up at the second step; the run stops there."""
    run = tmp_path / "run"
    assert main(argv(cache, run, "trainer.lr=1e6", "trainer.max_epochs=3")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("labelwise: error: the training loss diverged: ") and len(err) == 3, err  # 2 progress lines
    msg = err[-1]
    assert "at epoch 1, step 2 (global step 2) with learning rate " in msg
    assert "times the median magnitude" in msg and "trainer.divergence_factor=10000" in msg
    assert "no checkpoint was written" in msg and "trainer.stop_on_divergence=false" in msg
    assert not (run / "checkpoints").exists() and not (run / "metrics.csv").exists()  # nothing from the blow-up
    assert not (run / LOCK_NAME).exists()


def test_divergence_stops_keeping_the_last_good_checkpoint(cache, tmp_path):
    run = tmp_path / "run"
    cfg = load_config(QUICKSTART, [*TINY, f"data.root={cache}", "trainer.max_epochs=3"])
    hook = SpikeAtStep(step=2, ckpt_dir=run / "checkpoints")  # the 3rd step: epoch 2, step 1
    with pytest.raises(LossDivergedError) as info:
        train_from_config(cfg, output_dir=run, evaluate_test=False, callbacks=[hook])
    msg = str(info.value)
    assert msg.startswith("the training loss diverged: 1e+09 at epoch 2, step 1 (global step 3) with learning rate ")
    assert f"the last checkpoint, {run / 'checkpoints' / 'last.json'}, was written before and is kept" in msg
    assert info.value.epoch == 2 and info.value.global_step == 3 and 0 < info.value.reference < 10
    assert snapshot(run / "checkpoints") == hook.at_epoch_start[1]  # epoch 1's checkpoints, untouched
    assert [r["epoch"] for r in metrics_without_time(run)] == ["1"]
    assert not (run / LOCK_NAME).exists()


def test_divergence_only_warns_with_stop_on_divergence_false(cache, tmp_path, caplog):
    run = tmp_path / "run"
    cfg = load_config(QUICKSTART, [*TINY, f"data.root={cache}", "trainer.max_epochs=2",
                                   "trainer.stop_on_divergence=false"])
    hooks = [SpikeAtStep(step=1, ckpt_dir=run / "checkpoints"), SpikeAtStep(step=3, ckpt_dir=run / "checkpoints")]
    with caplog.at_level(logging.WARNING, logger="labelwise.engine.trainer"):
        summary = train_from_config(cfg, output_dir=run, evaluate_test=False, callbacks=hooks)
    warned = [r.getMessage() for r in caplog.records if "diverged" in r.getMessage()]
    assert len(warned) == 1, warned  # once, at the first divergence
    assert warned[0].startswith("the training loss diverged: 1e+09 at epoch 1, step 2 (global step 2) with learning "
                                "rate ")
    assert "training continues (trainer.stop_on_divergence=false)" in warned[0]
    assert summary["epochs"] == 2 and (run / "checkpoints" / "last.json").is_file()


def test_divergence_check_can_be_turned_off(cache, tmp_path, caplog):
    cfg = load_config(QUICKSTART, [*TINY, f"data.root={cache}", "trainer.divergence_factor=null"])
    with caplog.at_level(logging.WARNING, logger="labelwise.engine.trainer"):
        summary = train_from_config(cfg, output_dir=tmp_path / "run", evaluate_test=False,
                                    callbacks=[SpikeAtStep(step=1, ckpt_dir=tmp_path)])
    assert summary["epochs"] == 1 and not [r for r in caplog.records if "diverged" in r.getMessage()]


def test_nan_validation_scores_after_a_divergence_name_it(cache, tmp_path, capsys, caplog):
    """``lr=1e6`` without stopping: the weights become NaN; the error says so instead of a metrics message."""
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="labelwise.engine.trainer"):
        assert main(argv(cache, run, "trainer.lr=1e6", "trainer.max_epochs=3", "trainer.stop_on_divergence=false")) == 2
    assert any(r.getMessage().startswith("the training loss diverged: ") for r in caplog.records)  # the warning
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("labelwise: error: the model's validation scores are NaN or infinite after epoch 1 with "
                              "learning rate "), err
    assert "the training diverged (the training loss first diverged at epoch 1, step 2 (global step 2)" in err[-1]
    assert "no checkpoint was written" in err[-1] and not (run / "checkpoints").exists()


# -- files, names and numbers ------------------------------------------------------------------------------
def test_files_are_created_with_the_umask(cache, tmp_path):
    old = os.umask(0o027)
    try:
        assert main(argv(cache, tmp_path / "run")) == 0
    finally:
        os.umask(old)
    run = tmp_path / "run"
    files = [run / "config.yaml", run / "metrics.csv", *(run / "checkpoints").iterdir()]
    assert len(files) == 7
    for p in files:
        assert (p.stat().st_mode & 0o777) == 0o640, (p.name, oct(p.stat().st_mode & 0o777))


def test_renamed_checkpoint_pair_still_loads(cache, tmp_path):
    run = tmp_path / "run"
    assert main(argv(cache, run)) == 0
    moved = tmp_path / "kept"
    moved.mkdir()
    for suffix in (".json", ".safetensors", ".state.safetensors"):
        shutil.copy(run / "checkpoints" / f"last{suffix}", moved / f"epoch1{suffix}")
    for suffix in (".json", ".safetensors"):
        shutil.copy(run / "checkpoints" / f"best{suffix}", moved / f"my-best{suffix}")
    shutil.rmtree(run / "checkpoints")  # the originals are gone: nothing can be read from them
    last = load_checkpoint(moved / "epoch1.json")
    best = load_checkpoint(moved / "my-best.safetensors")
    assert last.state["epoch"] == 1 and last.path.name == "epoch1.json"
    assert best.meta["kind"] == "best" and set(best.weights) == set(last.weights)
    side = json.loads((moved / "epoch1.json").read_text())
    assert "last.safetensors" not in json.dumps(side["files"])  # the sidecar does not name its siblings


def test_epochs_are_numbered_from_one_everywhere(cache, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(argv(cache, run, "trainer.max_epochs=2", "trainer.lr=0.02")) == 0
    out = capsys.readouterr().out
    assert [r["epoch"] for r in metrics_without_time(run)] == ["1", "2"]
    last = json.loads((run / "checkpoints" / "last.json").read_text())
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert last["epoch"] == 2 and last["state"]["epoch"] == 2  # epoch 2 done (state: epochs completed)
    assert best["epoch"] == best["best_epoch"] in (1, 2) and last["best_epoch"] == best["epoch"]
    assert f"(epoch {best['epoch']})" in out
    rows = {r["epoch"]: r for r in csv.DictReader(open(run / "metrics.csv"))}
    assert float(rows[str(best["epoch"])]["mAP"]) == pytest.approx(best["metrics"]["mAP"])


def test_checkpoint_write_error_is_an_oserror_with_one_line():
    exc = CheckpointWriteError(errno.ENOSPC, "could not write checkpoint x (No space left on device)")
    assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC and str(exc).startswith("could not write")


# -- two processes -----------------------------------------------------------------------------------------
@pytest.mark.distributed
def test_two_process_ddp_runs_agree(cache, tmp_path):
    """Two ``labelwise train`` runs with ``trainer.devices=2`` (gloo on CPU, Fabric re-launches the command)."""
    assert main(["datasets", "stats", "multidigits20", "--root", str(cache), "--option", "n_train=64",
                 "--option", "n_val=32", "--option", "n_test=32"]) == 0  # the data cache is ready for both ranks
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("LABELWISE_RUN_DIR", None)
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        cmd = [sys.executable, "-m", "labelwise.cli", *argv(cache, run, "trainer.devices=2", "trainer.strategy=ddp",
                                                           "trainer.tensorboard=false")]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        assert not (run / LOCK_NAME).exists()
    assert [r["epoch"] for r in metrics_without_time(runs[0])] == ["1"]
    assert metrics_without_time(runs[0]) == metrics_without_time(runs[1])
    for name in CHECKPOINT_FILES:
        assert sha256(runs[0] / "checkpoints" / name) == sha256(runs[1] / "checkpoints" / name), name
    assert json.loads((runs[0] / "checkpoints" / "last.json").read_text())["state"]["world_size"] == 2
