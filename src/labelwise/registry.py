"""The one name registry shared by datasets, models, heads, losses, samplers, strategies, callbacks,
online methods, online memories and evaluator kinds.

A :class:`Registry` maps names to factories (classes or functions). :meth:`Registry.create` looks a name up
and builds the entry with keyword options, after checking every option name against the factory's
signature (:meth:`Registry.check_options`); a wrong name raises one :class:`OptionError` that names the
registry kind, the entry, the unknown key with a close match and the accepted keys. The configuration
loader calls :meth:`Registry.check_options` with a ``context`` (the config section) so that its errors name
the dotted key, e.g. ``model.poolin``.

Examples
--------
>>> from labelwise.registry import Registry
>>> LOSSES = Registry("loss")
>>> @LOSSES.register("l1")
... def make_l1(*, scale=1.0):
...     return f"l1 x{scale}"
>>> LOSSES.create("l1", scale=2.0)
'l1 x2.0'
>>> LOSSES.create("l1", scael=2.0)
Traceback (most recent call last):
...
labelwise.registry.OptionError: unknown option 'scael' of loss 'l1' (did you mean 'scale'?); accepted: scale
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

__all__ = ["Registry", "OptionError", "signature_options"]


class OptionError(ValueError, TypeError):
    """Options that a registry entry does not accept (one error for all of them).

    A ``ValueError`` (the command line reports it as ``labelwise: error: ...``) and, like Python's own
    "unexpected keyword argument", a ``TypeError``.

    Attributes
    ----------
    kind : str
        The registry's kind (``"model"``, ``"loss"``, ...).
    name : str
        The entry.
    unknown : list of str
        The option names not accepted, in the order given.
    accepted : list of str
        The option names the entry accepts (sorted; without the arguments its creating function supplies).
    errors : list of (str, str)
        ``(key, message)`` per unknown option; ``key`` is ``<context>.<option>`` when a context was given
        (the shape of :attr:`labelwise.config.ConfigError.errors`).

    Examples
    --------
    >>> err = OptionError("loss", "focal", ["gama"], ["alpha", "gamma"], context="loss")
    >>> str(err)
    "loss.gama: unknown option of loss 'focal' (did you mean 'gamma'?); accepted: alpha, gamma"
    >>> err.errors
    [('loss.gama', "unknown option of loss 'focal' (did you mean 'gamma'?); accepted: alpha, gamma")]
    """

    def __init__(self, kind: str, name: str, unknown: Sequence[str], accepted: Sequence[str], *,
                 context: str | None = None) -> None:
        self.kind, self.name, self.context = kind, name, context
        self.unknown, self.accepted = list(unknown), sorted(accepted)
        listed = ", ".join(self.accepted) or "none"
        self.errors: list[tuple[str, str]] = []
        lines = []
        for key in self.unknown:
            close = difflib.get_close_matches(key, self.accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            message = f"unknown option of {kind} {name!r}{hint}; accepted: {listed}"
            where = f"{context}.{key}" if context else key
            self.errors.append((where, message))
            lines.append(f"{where}: {message}" if context else f"unknown option {key!r} of {kind} {name!r}{hint}; "
                         f"accepted: {listed}")
        super().__init__("; ".join(lines))

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (errors cross DataLoader worker processes)
        return (_rebuild_option_error, (self.kind, self.name, self.unknown, self.accepted, self.context))


def _rebuild_option_error(kind: str, name: str, unknown: list[str], accepted: list[str],
                          context: str | None) -> OptionError:
    return OptionError(kind, name, unknown, accepted, context=context)


def signature_options(factory: Callable[..., Any], *, skip: Iterable[str] = ()) -> list[str] | None:
    """The keyword options ``factory`` accepts (sorted), or ``None`` when it accepts any option.

    The rules, in order:

    1. A factory with an ``accepted_options`` attribute (an iterable of names) declares its options: exactly
       those are accepted, whatever its signature (use it for a factory that takes ``**kwargs`` but
       forwards them to something known, e.g. an image model's head).
    2. Otherwise the named parameters of its signature (positional-or-keyword and keyword-only; not
       positional-only ones nor ``self``).
    3. A *class* whose ``__init__`` also takes ``**kwargs`` is read as forwarding them to its base class
       (``super().__init__(**kwargs)``): the named parameters of the next ``__init__`` up the method
       resolution order are added, and so on until an ``__init__`` without ``**kwargs``.
    4. A *function* taking ``**kwargs`` (or a class whose chain reaches ``object``, or a callable without a
       signature) accepts any option: ``None``, and the factory validates when called.

    Parameters
    ----------
    factory : callable
        A class or function.
    skip : iterable of str
        Names left out of the result (arguments the caller supplies itself).

    Examples
    --------
    >>> class Base:
    ...     def __init__(self, *, seed=0): ...
    >>> class Child(Base):
    ...     def __init__(self, *, alpha=1.0, **kwargs): super().__init__(**kwargs)
    >>> signature_options(Child)
    ['alpha', 'seed']
    >>> signature_options(lambda x, **kw: None) is None
    True
    """
    skip = {"self", *skip}
    declared = getattr(factory, "accepted_options", None)
    if declared is not None and not isinstance(declared, str):
        return sorted(set(declared) - skip)
    if inspect.isclass(factory):
        targets = [klass.__dict__["__init__"] for klass in factory.__mro__ if "__init__" in klass.__dict__]
    else:
        targets = [factory]
    names: set[str] = set()
    for target in targets:
        if target is object.__init__:
            return None
        try:
            params = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):  # builtins without a signature
            return None
        names.update(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return sorted(names - skip)
        if not inspect.isclass(factory):
            return None
    return None  # pragma: no cover - every class's chain ends at object.__init__


class Registry:
    """Map names to factories (classes or functions), with helpful errors on unknown names and options.

    Parameters
    ----------
    kind : str
        What the registry holds ("dataset", "model", ...); used in error messages.
    supplied : iterable of str
        Arguments that the registry's creating function passes itself (e.g. ``num_classes`` for models,
        ``root`` and ``split`` for datasets): :meth:`create` accepts them, while :meth:`options` and
        :meth:`check_options` treat them as not being user options.

    Examples
    --------
    >>> MODELS = Registry("model", supplied=["num_classes"])
    >>> @MODELS.register()
    ... def linear(*, num_classes, bias=True):
    ...     return ("linear", num_classes, bias)
    >>> MODELS.create("linear", num_classes=3, bias=False), MODELS.options("linear")
    (('linear', 3, False), ['bias'])
    """

    def __init__(self, kind: str, *, supplied: Iterable[str] = ()) -> None:
        self.kind = kind
        self.supplied = tuple(supplied)
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None, *, overwrite: bool = False) -> Callable:
        """Decorator registering ``obj`` under ``name`` (default: ``obj.__name__``)."""

        def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
            key = (name or obj.__name__).lower()
            if key in self._entries and not overwrite and self._entries[key] is not obj:
                raise KeyError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = obj
            return obj

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        """Return the factory registered as ``name`` or raise a ``KeyError`` listing close matches."""
        key = name.lower()
        if key not in self._entries:
            close = difflib.get_close_matches(key, self._entries, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(
                f"unknown {self.kind} {name!r}{hint} (registered: {', '.join(sorted(self._entries)) or 'none'})"
            )
        return self._entries[key]

    def options(self, name: str) -> list[str] | None:
        """The option names a user may give entry ``name`` (sorted), or ``None`` when it accepts any.

        Read from the factory by :func:`signature_options`, without the registry's ``supplied`` arguments.

        Examples
        --------
        >>> HEADS = Registry("head", supplied=["in_features"])
        >>> _ = HEADS.register("linear")(lambda in_features, *, bias=True, dropout=0.0: None)
        >>> _ = HEADS.register("any")(lambda in_features, **options: None)
        >>> HEADS.options("linear"), HEADS.options("any")
        (['bias', 'dropout'], None)
        """
        return signature_options(self.get(name), skip=self.supplied)

    def check_options(self, name: str, options: Iterable[str] | Mapping[str, Any], *,
                      context: str | None = None) -> None:
        """Raise :class:`OptionError` if entry ``name`` does not accept every key of ``options``.

        The registry's ``supplied`` arguments are not user options: given here, they are reported too.

        Parameters
        ----------
        name : str
            A registered name (an unknown one raises the ``KeyError`` of :meth:`get`).
        options : mapping or iterable of str
            The options (only their names are checked).
        context : str, optional
            Where the options come from, e.g. the config section ``"model"``: the error then names
            ``<context>.<key>`` (as :class:`labelwise.config.ConfigError` does).

        Raises
        ------
        KeyError
            Unknown ``name``.
        OptionError
            One or more unknown options: each named, with a close match, and the accepted ones listed.

        Examples
        --------
        >>> LOSSES = Registry("loss")
        >>> _ = LOSSES.register("focal")(lambda *, gamma=2.0, alpha=None: None)
        >>> LOSSES.check_options("focal", {"gamma": 2.0})
        >>> LOSSES.check_options("focal", {"gama": 2.0, "reduction": "sum"}, context="loss")
        Traceback (most recent call last):
        ...
        labelwise.registry.OptionError: loss.gama: unknown option of loss 'focal' (did you mean 'gamma'?); accepted: alpha, gamma; loss.reduction: unknown option of loss 'focal'; accepted: alpha, gamma
        """
        accepted = self.options(name)
        if accepted is None:
            return
        unknown = [key for key in options if key not in accepted]
        if unknown:
            raise OptionError(self.kind, name.lower(), unknown, accepted, context=context)

    def create(self, name: str, /, **options: Any) -> Any:
        """Build entry ``name`` with ``options`` after checking every option name.

        ``options`` may include the registry's ``supplied`` arguments; the others must be accepted by the
        factory (:func:`signature_options`: its named parameters, followed through ``**kwargs`` into the
        base classes of a class; a function taking ``**kwargs`` accepts anything unless it declares
        ``accepted_options``). Invalid *values* are left to the factory.

        Parameters
        ----------
        name : str
            A registered name (case-insensitive).
        **options
            Keyword arguments of the factory.

        Returns
        -------
        object
            What the factory returns.

        Raises
        ------
        KeyError
            Unknown ``name`` (the message lists close matches and the registered names).
        OptionError
            An option the entry does not accept (a ``ValueError``: the message names the registry kind, the
            entry, the key, a close match and the accepted keys).

        Examples
        --------
        >>> SAMPLERS = Registry("sampler", supplied=["batch_size"])
        >>> @SAMPLERS.register("hard")
        ... class Hard:
        ...     def __init__(self, *, batch_size, selection_pressure=2.0):
        ...         self.batch_size, self.selection_pressure = batch_size, selection_pressure
        >>> SAMPLERS.create("hard", batch_size=4, selection_pressure=8.0).selection_pressure
        8.0
        >>> SAMPLERS.create("hard", batch_size=4, selection_presure=8.0)
        Traceback (most recent call last):
        ...
        labelwise.registry.OptionError: unknown option 'selection_presure' of sampler 'hard' (did you mean 'selection_pressure'?); accepted: selection_pressure
        """
        factory = self.get(name)
        self.check_options(name, [key for key in options if key not in self.supplied])
        return factory(**options)

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
