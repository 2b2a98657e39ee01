"""The error of an invalid configuration: every problem as a dotted key and a message, and the file."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """An invalid run configuration; the message names the file (when there is one) and the dotted key.

    Attributes
    ----------
    errors : list of (str, str)
        ``(dotted_key, message)`` pairs, one per problem found.
    source : str or None
        The configuration file, if the configuration came from one.
    """

    def __init__(self, errors: Sequence[tuple[str, str]] | str, *, source: str | None = None) -> None:
        if isinstance(errors, str):
            errors = [("", errors)]
        self.errors = list(errors)
        self.source = source
        body = "; ".join(f"{k}: {m}" if k else m for k, m in self.errors)
        super().__init__(f"{source}: {body}" if source else body)


ConfigError.__module__ = "labelwise.config"  # its public name (tracebacks, docs)
