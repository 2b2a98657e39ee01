"""The kinds of error a labelwise command reports, and how each one is shown to the user.

The command line (:mod:`labelwise.cli`) sorts every exception that reaches it into one of three kinds,
in one place (:func:`classify`):

``user``
    Caused by the user's input or environment: a missing file, an invalid configuration, an unknown name,
    a refused pickle, a corrupt checkpoint, a full disk, no internet for ``pretrained: true``. Printed as one
    line ``labelwise: error: <message>`` on stderr, exit status 2. The library raises these as
    :class:`UserError` (and its subclasses), ``ValueError`` / ``KeyError`` (the library's convention for
    a bad argument, e.g. :class:`~labelwise.config.ConfigError`), ``OSError`` (files and disks) or one of the
    dedicated types listed in :data:`USER_ERROR_TYPES`.
``check``
    A requested verification failed (``labelwise export --check``): one line
    ``labelwise: export check failed: <message>``, exit status 1.
``internal``
    Anything else is a bug in labelwise: the traceback is printed, then the line
    ``labelwise: internal error: <type>: <message> (this is a bug; please report it with the traceback
    above)``, exit status 1.

With ``--debug`` (or ``LABELWISE_DEBUG=1``) the traceback is printed for every kind, followed by the same
last line.

Library code raises these exceptions and never prints; new user-facing errors subclass :class:`UserError`
(or a ``ValueError``) so that they are reported in one line without any change to the command line.

Examples
--------
>>> from labelwise.errors import UserError, classify, one_line
>>> classify(UserError("no such run")), classify(FileNotFoundError("x")), classify(ZeroDivisionError())
('user', 'user', 'internal')
>>> one_line(OSError(28, "No space left on device", "runs/a/metrics.csv"))
'runs/a/metrics.csv: No space left on device'
"""

from __future__ import annotations

import pickle

__all__ = ["UserError", "USER_ERROR_TYPES", "classify", "one_line", "EXIT_USER", "EXIT_INTERNAL"]

#: Exit status of a user or environment error (as argparse uses for usage errors).
EXIT_USER = 2
#: Exit status of an internal error (a bug) and of a failed export check.
EXIT_INTERNAL = 1


class UserError(Exception):
    """An error the user can fix (bad input, missing file, unsupported environment); shown as one line.

    Examples
    --------
    >>> str(UserError("runs/x: not a labelwise run"))
    'runs/x: not a labelwise run'
    """


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception type reported as a user error (imported lazily: the packages are heavy)."""
    import yaml

    from .data import ImageLoadError
    from .models.backbone import PretrainedUnavailableError

    types: list[type[BaseException]] = [
        UserError,
        ValueError,  # ConfigError, CheckpointError, UnsafeWeightsError, parser errors: bad arguments or files
        KeyError,  # unknown registry names
        OSError,  # missing files, permissions, a full disk, a locked run directory
        FloatingPointError,  # a training loss that became NaN/inf (the configuration diverges)
        pickle.UnpicklingError,  # UnsafePickleError: a refused pickle (nothing was executed)
        yaml.YAMLError,  # a YAML file or value that does not parse
        ImageLoadError,  # an unreadable image, named
        PretrainedUnavailableError,  # pretrained: true without internet access
    ]
    try:
        import torch

        types.append(torch.cuda.OutOfMemoryError)  # the environment: too little accelerator memory
    except (ImportError, AttributeError):  # pragma: no cover
        pass
    return tuple(types)


class _LazyTypes:
    """``USER_ERROR_TYPES``: resolved on first use so that importing this module stays cheap."""

    _types: tuple[type[BaseException], ...] | None = None

    def get(self) -> tuple[type[BaseException], ...]:
        if self._types is None:
            self._types = _user_error_types()
        return self._types


USER_ERROR_TYPES = _LazyTypes()


def classify(exc: BaseException) -> str:
    """``"user"``, ``"check"`` or ``"internal"``: how the command line reports ``exc`` (see the module doc).

    Examples
    --------
    >>> classify(KeyError("unknown model 'x'")), classify(TypeError("bug"))
    ('user', 'internal')
    """
    from .export import ExportCheckError

    if isinstance(exc, ExportCheckError):
        return "check"
    if isinstance(exc, USER_ERROR_TYPES.get()):
        return "user"
    return "internal"


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (``OSError`` as ``<file>: <reason>``; a ``KeyError`` unquoted).

    Examples
    --------
    >>> one_line(KeyError("unknown dataset 'x'")), one_line(ValueError("a\\n  b"))
    ("unknown dataset 'x'", 'a b')
    >>> one_line(FileNotFoundError("config file not found: c.yaml"))
    'config file not found: c.yaml'

    An error raised in a DataLoader worker process comes back with the worker's traceback as its message;
    only the original error's own message is kept:

    >>> one_line(ValueError("Caught ValueError in DataLoader worker process 0.\\nOriginal Traceback (most "
    ...                     "recent call last):\\n  File \\"x.py\\", line 1, in f\\nValueError: bad row 3\\n"))
    'bad row 3'
    """
    worker = _worker_message(exc)
    if worker is not None:
        return worker
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        msg = f"{where}: {exc.strerror}"
    elif isinstance(exc, KeyError) and exc.args:
        msg = str(exc.args[0])
    else:
        msg = str(exc)
    return " ".join(msg.split()) or type(exc).__name__


def _worker_message(exc: BaseException) -> str | None:
    """The original message of an error re-raised by a DataLoader worker (``None`` for any other error).

    PyTorch re-raises a worker's exception as the same type whose message is "Caught <Type> in DataLoader
    worker process N." followed by the worker's traceback; the error's own message is the traceback's last
    line after ``<module>.<Type>: ``.
    """
    text = str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else ""
    if not (text.startswith("Caught ") and "DataLoader worker" in text and "Original Traceback" in text):
        return None
    lines = [line for line in text.rstrip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    head, sep, message = last.partition(": ")
    if not sep or " " in head:  # not "<module>.<Type>: message"
        return None
    return " ".join(message.split()) or None
