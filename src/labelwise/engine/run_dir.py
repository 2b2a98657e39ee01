"""Claiming an output directory: one writer at a time, and never over files that are not a previous output.

Every command that writes an output directory (``labelwise train``, ``continual``, ``online``, ``select
run``/``plot``, ``analyze angles``) claims it with :func:`claim_output_dir` before it loads anything:

1. it takes the run-directory lock (:class:`~labelwise.engine.run_lock.RunLock`), so a second command writing
   into the same directory fails at once, naming the holder;
2. :func:`prepare_output_dir` refuses a non-empty directory unless ``overwrite`` is given (``--overwrite``):
   a previous output of the same command is then replaced (its files, described by an :class:`OutputLayout`,
   are removed first, so nothing of the old output mixes with the new one), and in a directory that is not
   such an output only files of the same names are overwritten, the user's other files are kept.

Continuing a training run (``labelwise train --resume``) writes into its own directory and skips step 2.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> layout = OutputLayout("demo output", files=("config.yaml", "table.md"))
>>> with claim_output_dir(d, layout=layout):
...     _ = (d / "config.yaml").write_text("a: 1"); _ = (d / "table.md").write_text("| a |")
>>> with claim_output_dir(d, layout=layout):
...     pass
Traceback (most recent call last):
...
FileExistsError: ... already holds a labelwise demo output (config.yaml, table.md); replace it with --overwrite, ...
>>> with claim_output_dir(d, layout=layout, overwrite=True):
...     sorted(p.name for p in d.iterdir())   # the previous output was removed (the lock file is hidden)
['.labelwise.lock']
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .run_lock import LOCK_NAME, RunLock, is_writer_process

__all__ = ["OutputLayout", "TRAIN_LAYOUT", "RUN_FILES", "prepare_output_dir", "claim_output_dir"]


@dataclass(frozen=True)
class OutputLayout:
    """What one command writes into its output directory.

    Parameters
    ----------
    noun : str
        How messages call the output (``"run"``, ``"online run"``, ...): "... already holds a labelwise <noun>".
    files : tuple of str
        The names (``fnmatch`` patterns allowed, e.g. ``"task_*"``) the command writes at the top of the
        directory; ``--overwrite`` removes them from a previous output.
    marker : str, optional
        A file every output of the command holds (default: the first of ``files``). A directory with the
        marker and at least one other of ``files`` is a previous output.
    resume_hint : str, optional
        The option that continues a previous output (``"--resume"``), named in the refusal.

    Examples
    --------
    >>> OutputLayout("plot", files=("a.png", "loss_*.png")).matches("loss_random.png")
    True
    """

    noun: str
    files: tuple[str, ...]
    marker: str | None = None
    resume_hint: str | None = None

    def matches(self, name: str) -> bool:
        """Whether a top-level entry called ``name`` is one the command writes."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.files)

    def is_output(self, directory: Path) -> bool:
        """Whether ``directory`` holds a previous output of the command (the marker and another of its files)."""
        marker = self.marker or self.files[0]
        if not (directory / marker).exists():
            return False
        return any(p.name != marker and self.matches(p.name) for p in directory.iterdir())


#: What ``labelwise train`` writes into its run directory (``--overwrite`` replaces these in a previous run).
RUN_FILES = ("config.yaml", "metrics.csv", "test_metrics.json", "checkpoints", "tb", "report")
TRAIN_LAYOUT = OutputLayout("run", files=RUN_FILES, marker="config.yaml", resume_hint="--resume")


def _is_ignored(name: str) -> bool:
    """The lock file and labelwise's temporary files (``.<name>.<random>.tmp``) do not make a directory non-empty."""
    return name == LOCK_NAME or (name.startswith(".") and name.endswith(".tmp"))


def prepare_output_dir(run_dir: str | os.PathLike, *, overwrite: bool = False,
                       log: Callable[[str], None] | None = None, layout: OutputLayout = TRAIN_LAYOUT) -> None:
    """Check that a new output may be written into ``run_dir``; with ``overwrite``, clear a previous one there.

    An empty or missing directory is fine. A directory holding a previous output of the command
    (:meth:`OutputLayout.is_output`) or other files is refused unless ``overwrite`` is true; then the
    previous output's files (``layout.files``) are removed, while files of a directory that is not such an
    output are only overwritten when the command writes a file of their name. The run lock and temporary
    files do not count.

    Parameters
    ----------
    run_dir : str or path
        The output directory.
    overwrite : bool
        Allow a non-empty directory (``--overwrite``).
    log : callable, optional
        Receives a one-line message when a previous output was removed.
    layout : OutputLayout
        What the command writes (default: a ``labelwise train`` run directory).

    Raises
    ------
    FileExistsError
        The directory is not empty and ``overwrite`` is false (the message lists what it holds), or
        ``run_dir`` is a file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "metrics.csv").write_text("mine")
    >>> prepare_output_dir(d)
    Traceback (most recent call last):
    ...
    FileExistsError: ... is not empty and is not a labelwise run (it holds metrics.csv); ...
    >>> prepare_output_dir(d, overwrite=True); (d / "metrics.csv").read_text()   # kept until the run writes
    'mine'
    """
    d = Path(run_dir)
    if not d.is_dir():
        if d.exists():
            raise FileExistsError(f"output directory {d} exists and is not a directory; choose another --output")
        return
    entries = sorted(p.name for p in d.iterdir() if not _is_ignored(p.name))
    if not entries:
        return
    is_output = layout.is_output(d)
    shown = ", ".join(entries[:6]) + (f" and {len(entries) - 6} more" if len(entries) > 6 else "")
    if not overwrite:
        if is_output:
            resume = f"continue it with {layout.resume_hint} {d}, " if layout.resume_hint else ""
            raise FileExistsError(
                f"{d} already holds a labelwise {layout.noun} ({shown}); {resume}replace it with --overwrite, "
                "or choose another --output"
            )
        raise FileExistsError(
            f"{d} is not empty and is not a labelwise {layout.noun} (it holds {shown}); choose a new or empty "
            "--output, or pass --overwrite to write into it anyway"
        )
    if is_output:
        for p in sorted(d.iterdir()):
            if not layout.matches(p.name):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        if log is not None:
            log(f"--overwrite: removed the previous {layout.noun}'s files from {d}")


@contextlib.contextmanager
def claim_output_dir(run_dir: str | os.PathLike, *, overwrite: bool = False, resume: bool = False,
                     log: Callable[[str], None] | None = None,
                     layout: OutputLayout = TRAIN_LAYOUT) -> Iterator[Path]:
    """Hold the lock of ``run_dir`` and check it with :func:`prepare_output_dir` for the life of the block.

    Only the process that writes (global rank 0 of a distributed launch, see
    :func:`~labelwise.engine.run_lock.is_writer_process`) locks and checks; the block runs in every process.
    The directory is created (by the lock) when missing.

    Parameters
    ----------
    run_dir : str or path
        The output directory.
    overwrite : bool
        Allow a non-empty directory (see :func:`prepare_output_dir`).
    resume : bool
        The command continues the output already there (``labelwise train --resume``): no emptiness check.
    log : callable, optional
        Receives one-line progress messages.
    layout : OutputLayout
        What the command writes.

    Yields
    ------
    pathlib.Path
        ``run_dir``.

    Raises
    ------
    labelwise.engine.RunLockedError
        Another live process holds the directory.
    FileExistsError
        See :func:`prepare_output_dir`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with claim_output_dir(pathlib.Path(tempfile.mkdtemp()) / "new") as out:
    ...     (out / ".labelwise.lock").exists()
    True
    """
    d = Path(run_dir)
    lock = None
    if is_writer_process():
        if d.exists() and not d.is_dir():  # before the lock tries to create a directory there
            prepare_output_dir(d, overwrite=overwrite, log=log, layout=layout)
        lock = RunLock(d).acquire()
    try:
        if lock is not None and not resume:
            prepare_output_dir(d, overwrite=overwrite, log=log, layout=layout)
        yield d
    finally:
        if lock is not None:
            lock.release()
