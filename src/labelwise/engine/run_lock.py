"""The run-directory lock: one writer per run directory for the life of a run.

A run takes ``<run_dir>/.labelwise.lock`` before it writes anything and keeps it until it ends. The lock is
an advisory ``flock`` on that file (released by the kernel when the process dies, however it dies); the
file holds the holder's pid, host name, start time and command line, so that a second writer is refused
at once with an error naming the holder::

    labelwise: error: run directory runs/exp1 is in use by another labelwise run (pid 4242 on host gpu3,
    started 2026-11-30T21:04:55, command: labelwise train -c exp.yaml ...); wait for it to finish or choose
    another --output

A lock file left by a process that no longer exists (killed, machine rebooted) is *stale*: the next run
takes it over and logs a warning naming the dead holder. When the holder ran on another host and the file
system does not propagate ``flock`` (old NFS), this host cannot tell whether it still runs: the run is
refused and the message names the lock file to delete.

The lock is re-entrant within a process (``train_from_config`` holds it around the ``Trainer``, which takes
it again), and only the process that writes (global rank 0) takes it: :func:`is_writer_process` reads the
launcher's environment (``RANK``, ``LOCAL_RANK``/``NODE_RANK``, SLURM, Open MPI) before any process group
exists.

Examples
--------
>>> import tempfile
>>> from labelwise.engine.run_lock import RunLock, RunLockedError
>>> d = tempfile.mkdtemp()
>>> with RunLock(d) as lock:
...     lock.path.name, lock.path.exists()
('.labelwise.lock', True)
>>> lock.path.exists()   # released: the file is removed
False
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "is_writer_process"]

LOCK_NAME = ".labelwise.lock"

# realpath of the directory -> [lock, count]: the lock is re-entrant within a process.
_HELD: dict[str, list[Any]] = {}


class RunLockedError(FileExistsError):
    """The run directory is locked by another live run (the message names its pid, host and command)."""


def is_writer_process() -> bool:
    """Whether this process is (or will become) global rank 0 of its launch, the one that writes files.

    Read from the launcher's environment: ``RANK`` (torchrun, Fabric), ``SLURM_PROCID`` (``srun`` with
    several tasks), ``OMPI_COMM_WORLD_RANK`` (Open MPI), else ``LOCAL_RANK``/``NODE_RANK`` (the processes
    Lightning Fabric re-launches). A plain ``python`` process is the writer.

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"RANK": "1"}):
    ...     is_writer_process()
    False
    >>> with mock.patch.dict(os.environ, {"RANK": "0"}):
    ...     is_writer_process()
    True
    """
    env = os.environ
    for var in ("RANK", "OMPI_COMM_WORLD_RANK"):
        if env.get(var, "").strip():
            return _int(env[var]) == 0
    if env.get("SLURM_PROCID", "").strip() and _int(env.get("SLURM_NTASKS", "1")) > 1:
        return _int(env["SLURM_PROCID"]) == 0
    return all(_int(env.get(var, "0")) == 0 for var in ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK"))


def _int(value: str) -> int:
    try:
        return int(str(value).strip() or 0)
    except ValueError:
        return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _describe(info: dict[str, Any]) -> str:
    parts = [f"pid {info.get('pid', '?')} on host {info.get('host', '?')}"]
    if info.get("started"):
        parts.append(f"started {info['started']}")
    if info.get("command"):
        parts.append(f"command: {info['command']}")
    return ", ".join(parts)


class RunLock:
    """Exclusive lock of a run directory (see the module documentation).

    Parameters
    ----------
    directory : str or path
        The run directory (created when missing).

    Raises
    ------
    RunLockedError
        From :meth:`acquire` when another live process holds the lock (its pid, host and command are named).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> a = RunLock(d).acquire(); b = RunLock(d).acquire()   # re-entrant within one process
    >>> b.release(); a.path.exists(); a.release(); a.path.exists()
    True
    False
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None
        self._key: str | None = None

    # -- context manager -----------------------------------------------------------------------------
    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # -- holder information --------------------------------------------------------------------------
    def holder(self) -> dict[str, Any] | None:
        """The recorded holder (``pid``, ``host``, ``started``, ``command``) of the lock file, or None."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return None
        return _parse(text)

    def _refuse(self, info: dict[str, Any] | None, extra: str = "") -> RunLockedError:
        who = _describe(info) if info else "a process that did not record itself"
        return RunLockedError(
            f"run directory {self.directory} is in use by another labelwise run ({who}){extra}; wait for it to "
            "finish or choose another --output"
        )

    # -- acquire / release ---------------------------------------------------------------------------
    def acquire(self) -> RunLock:
        """Take the lock (re-entrant within this process); returns ``self``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(self.directory)
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
            self._key = key
            return self
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            if fcntl is None:  # pragma: no cover
                ok = self._acquire_without_flock(fd)
            else:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    ok = True
                except OSError:
                    info = self.holder()
                    os.close(fd)
                    raise self._refuse(info) from None
            # The file may have been removed (and re-created) by its releasing holder between open and flock.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not (ok and same):
                os.close(fd)
                continue
            previous = _parse(os.pread(fd, 1 << 16, 0).decode("utf-8", "replace"))
            if previous and _int(str(previous.get("pid", -1))) != os.getpid():
                host = socket.gethostname()
                if previous.get("host") not in (None, host):
                    os.close(fd)
                    raise self._refuse(previous, f"; this host ({host}) cannot tell whether it still runs: if it "
                                                 f"does not, delete {self.path}")
                logger.warning("run directory %s: taking over the stale lock of a process that no longer runs (%s)",
                               self.directory, _describe(previous))
            self._write_info(fd)
            self._fd = fd
            self._key = key
            _HELD[key] = [self, 1]
            return self
        raise self._refuse(self.holder(), " (the lock file keeps changing)")

    def _acquire_without_flock(self, fd: int) -> bool:  # pragma: no cover - Windows only
        info = _parse(os.read(fd, 1 << 16).decode("utf-8", "replace"))
        if info and _int(str(info.get("pid", -1))) != os.getpid():
            if info.get("host") == socket.gethostname() and not _pid_alive(_int(str(info.get("pid", -1)))):
                return True
            os.close(fd)
            raise self._refuse(info)
        return True

    def _write_info(self, fd: int) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join([os.path.basename(sys.argv[0]) if sys.argv else "python", *sys.argv[1:]])[:500],
        }
        data = (json.dumps(info) + "\n").encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)

    def release(self) -> None:
        """Release the lock (the outermost release of this process removes the lock file)."""
        key = self._key
        if key is None:
            return
        self._key = None
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[key]
        owner: RunLock = held[0]
        fd, owner._fd = owner._fd, None
        if fd is None:
            return
        try:
            owner.path.unlink(missing_ok=True)  # while still holding the flock: no one can take a dying file
        finally:
            os.close(fd)


def _parse(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return {"pid": "?", "host": "?", "command": text[:200]}
    return info if isinstance(info, dict) else None
