"""Command-line options derived from a config dataclass: one ``--field-name`` per field.

Every layer describes a run by a frozen dataclass whose numpydoc ``Parameters`` section
documents each field. :func:`add_config_options` turns those fields into ``argparse``
options -- name, value syntax, help text and default shown from the class itself -- and
:func:`config_from_args` builds the config back from the parsed options. The same command
line therefore always means the same config, and a new field is a new option with no
hand-written argument.

Option values are kept as text by ``argparse`` and converted by :func:`config_from_args`,
so a bad value raises ``ValueError`` naming the option (``--batch-sizes must be integers,
got 'x'``) and the command exits 2 with that message; choices of a scalar text field are
checked by ``argparse`` itself (``invalid choice``). An option left unset keeps the config's
default: every derived option has ``default=None``.

Value syntax, from the field's annotation:

``int``, ``float``, ``str``
    One value; floats must be finite, ints may be written ``1e4``.
``bool``
    ``--flag`` / ``--no-flag``.
``tuple[X, ...]`` (or ``tuple[X, X]``)
    One or more values separated by spaces or commas: ``--batch-sizes 32,64`` is
    ``--batch-sizes 32 64``; the option alone gives the empty tuple.
``X | None``
    ``none`` gives ``None`` (and ``0`` too, for the fields named in ``zero_is_none``).
``Literal[...]``
    One of the literal values.

This module is shared by every layer and imports none of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "add_config_options",
    "config_from_args",
    "parameter_docs",
    "option_name",
    "add_runs_option",
    "add_module_subcommands",
]

_SPECS = "_config_options"
"""Namespace attribute (a parser default) holding the option specs of each config class."""

_SHOWN = 6
"""Choices beyond this many are listed in the help text, not in the usage line."""

_ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::\s*(.*))?$")
_UNDERLINE = re.compile(r"^\s*(-{3,}|={3,})\s*$")


# ----------------------------------------------------------------------------- docstrings
def parameter_docs(cls: type) -> dict[str, str]:
    """Description of every entry of the numpydoc ``Parameters`` section of ``cls``.

    An entry is a ``name : type`` line (or ``a, b : type``, shared by ``a`` and ``b``, or a
    bare ``name``) followed by its indented description. Descriptions are joined into one
    line, with reST markup (````x````, ``:role:`x```) reduced to plain text.

    Parameters
    ----------
    cls : type
        A class (or any object) with a docstring.

    Returns
    -------
    dict of str to str
        Field name -> description (``""`` for an entry with no description), in order.
    """
    return {name: entry[2] for name, entry in _parameter_entries(cls).items()}


def _parameter_entries(cls: type) -> dict[str, tuple[tuple[str, ...], str, str]]:
    """``name -> (names of its entry, type text, description)`` of the Parameters section."""
    doc = inspect.cleandoc(getattr(cls, "__doc__", None) or "")
    lines = doc.splitlines()
    start = None
    for i in range(len(lines) - 1):
        if lines[i].strip() == "Parameters" and _UNDERLINE.match(lines[i + 1]):
            start = i + 2
            base = len(lines[i]) - len(lines[i].lstrip())
            break
    if start is None:
        return {}
    entries: list[tuple[tuple[str, ...], str, list[str]]] = []
    current: list[str] | None = None
    for i in range(start, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        if i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1]):
            break  # the next section
        indent = len(line) - len(line.lstrip())
        if indent > base:
            if current is not None:
                current.append(line.strip())
            continue
        match = _ENTRY.match(line.strip())
        if match is None:  # a free paragraph after the entries
            current = None
            continue
        current = []
        names = tuple(n.strip().lstrip("*") for n in match.group(1).split(","))
        entries.append((names, (match.group(2) or "").strip(), current))
    return {
        name: (names, kind, _plain(" ".join(text)))
        for names, kind, text in entries
        for name in names
    }


def _plain(text: str) -> str:
    """reST inline markup to plain text."""
    text = re.sub(r":\w+(?::\w+)?:`~?([^`]+)`", r"\1", text)  # :data:`x`, :py:func:`~a.b`
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"`([^`]+)`", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


# ----------------------------------------------------------------------------- specs
def option_name(field: str) -> str:
    """The option of a field: ``batch_sizes`` -> ``--batch-sizes``."""
    return "--" + field.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class _Option:
    """How one config field reads from the command line."""

    field: str
    option: str  # the primary option string, used in messages
    element: Callable[[str], Any]  # text of one value -> value
    sequence: bool  # tuple field: several values
    length: int | None  # fixed tuple length (tuple[X, X]), if any
    optional: bool  # None allowed: the text "none" gives None
    zero_is_none: bool
    choices: tuple | None  # checked after conversion (tuple fields, custom converters)
    flag: bool  # bool field: argparse gives True/False directly

    def convert(self, raw: Any) -> Any:
        """The field's value from what argparse stored (text, a list of texts, or a value)."""
        if self.flag or isinstance(raw, bool):
            return raw
        if self.sequence:
            if isinstance(raw, str):
                raw = [raw]
            if not isinstance(raw, (list, tuple)) or not all(isinstance(r, str) for r in raw):
                return raw  # already a value (a namespace built by hand)
            if len(raw) == 1 and self.optional and raw[0].strip().lower() == "none":
                return None
            texts = [t.strip() for r in raw for t in r.split(",") if t.strip()]
            values = tuple(self._one(t) for t in texts)
            if self.length is not None and len(values) != self.length:
                raise ValueError(
                    f"{self.option} takes {self.length} values, got {len(values)}: "
                    f"{' '.join(raw)!r}"
                )
            return values
        if not isinstance(raw, str):
            return raw
        if self.optional and raw.strip().lower() == "none":
            return None
        value = self._one(raw)
        if self.zero_is_none and value == 0 and not isinstance(value, bool):
            return None
        return value

    def _one(self, text: str) -> Any:
        try:
            value = self.element(text)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            message = str(exc)
            if self.option not in message:
                message = f"{self.option}: {message}"
            raise ValueError(message) from None
        if self.choices is not None and value not in self.choices:
            shown = ", ".join(map(str, self.choices))
            raise ValueError(f"{self.option}: invalid choice {text!r} (choose from {shown})")
        return value


def _element_parser(kind: Any, option: str) -> tuple[Callable[[str], Any], str, tuple | None]:
    """``(text -> value, metavar, literal choices)`` of one value of type ``kind``."""
    if typing.get_origin(kind) is typing.Literal:
        values = typing.get_args(kind)
        by_text = {str(v): v for v in values}

        def literal(text: str) -> Any:
            if text not in by_text:
                raise ValueError(f"{option} must be one of {list(by_text)}, got {text!r}")
            return by_text[text]

        return literal, "{" + ",".join(by_text) + "}", values
    if kind is bool:
        words = {"true": True, "yes": True, "on": True, "1": True}
        words |= {"false": False, "no": False, "off": False, "0": False}

        def boolean(text: str) -> bool:
            try:
                return words[text.strip().lower()]
            except KeyError:
                raise ValueError(f"{option} must be true or false, got {text!r}") from None

        return boolean, "BOOL", None
    if kind is int:

        def integer(text: str) -> int:
            try:
                return int(text)
            except ValueError:
                pass
            try:
                value = float(text)  # 1e4
            except ValueError:
                value = math.nan
            if not value.is_integer():
                raise ValueError(f"{option} must be an integer, got {text!r}") from None
            return int(value)

        return integer, "INT", None
    if kind is float:

        def number(text: str) -> float:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{option} must be a number, got {text!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"{option} must be a finite number, got {text!r}")
            return value

        return number, "FLOAT", None
    if isinstance(kind, type) and kind is not str:

        def other(text: str) -> Any:
            return kind(text)

        return other, kind.__name__.upper(), None
    return str, "TEXT", None


def _union_args(kind: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return typing.get_args(kind)
    return None


def _specs(
    config_cls: type,
    *,
    choices: Mapping[str, Iterable] | None = None,
    exclude: Iterable[str] = (),
    names: Mapping[str, str | Sequence[str]] | None = None,
    converters: Mapping[str, Callable[[str], Any]] | None = None,
    zero_is_none: Iterable[str] = (),
) -> dict[str, tuple[_Option, dataclasses.Field, Any, list[str], str | None]]:
    """``field -> (option spec, dataclass field, element type, option strings, metavar)``."""
    if not dataclasses.is_dataclass(config_cls) or not isinstance(config_cls, type):
        raise TypeError(f"config_cls must be a dataclass type, got {config_cls!r}")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    choices, names, converters = dict(choices or {}), dict(names or {}), dict(converters or {})
    exclude, zero_is_none = set(exclude), set(zero_is_none)
    for label, given in (
        ("choices", choices),
        ("names", names),
        ("converters", converters),
        ("exclude", exclude),
        ("zero_is_none", zero_is_none),
    ):
        unknown = sorted(set(given) - set(fields))
        if unknown:
            raise ValueError(f"{label} names no field of {config_cls.__name__}: {unknown}")
    hints = typing.get_type_hints(config_cls)
    out = {}
    for name, f in fields.items():
        if name in exclude or not f.init:
            continue
        given = names.get(name, option_name(name))
        strings = [given] if isinstance(given, str) else list(given)
        option = strings[0]
        kind = hints.get(name, str)
        optional, union = False, None
        members = _union_args(kind)
        if members is not None:
            optional = type(None) in members
            rest = [m for m in members if m is not type(None)]
            kind = rest[0] if len(rest) == 1 else None
            union = None if kind is not None else rest
        sequence, length = False, None
        if typing.get_origin(kind) is tuple:
            args = typing.get_args(kind)
            sequence = True
            if len(args) == 2 and args[1] is Ellipsis:
                kind = args[0]
            elif args and all(a == args[0] for a in args):
                kind, length = args[0], len(args)
            else:
                kind = str
        if name in converters:
            element, metavar, literal = converters[name], None, None
            sequence, length = False, None  # the converter reads the whole text
        elif union is not None:  # int | str: the first member type that reads the text
            element, literal = _first_that_parses(union, option), None
            metavar = "|".join(getattr(k, "__name__", str(k)).upper() for k in union)
        else:
            element, metavar, literal = _element_parser(kind, option)
        allowed = tuple(choices[name]) if name in choices else literal
        flag = kind is bool and not sequence and not optional and name not in converters
        spec = _Option(
            field=name,
            option=option,
            element=element,
            sequence=sequence,
            length=length,
            optional=optional,
            zero_is_none=name in zero_is_none,
            choices=allowed,
            flag=flag,
        )
        out[name] = (spec, f, kind, strings, metavar)
    return out


def _first_that_parses(kinds: list[Any], option: str) -> Callable[[str], Any]:
    """The element parser of ``A | B``: the first member type that reads the text."""
    parsers = [_element_parser(k, option)[0] for k in kinds]

    def parse(text: str) -> Any:
        for p in parsers:
            try:
                return p(text)
            except (ValueError, TypeError):
                continue
        shown = " or ".join(getattr(k, "__name__", str(k)) for k in kinds)
        raise ValueError(f"{option} must be {shown}, got {text!r}")

    return parse


# ----------------------------------------------------------------------------- public API
def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    if isinstance(value, (tuple, list)):
        return ",".join(_show(v) for v in value) if value else "empty"
    return str(value)


def _list(values: Iterable) -> str:
    return ", ".join(map(str, values))


def add_config_options(
    parser: argparse.ArgumentParser,
    config_cls: type,
    *,
    choices: Mapping[str, Iterable] | None = None,
    exclude: Iterable[str] = (),
    names: Mapping[str, str | Sequence[str]] | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    help: Mapping[str, str] | None = None,
    converters: Mapping[str, Callable[[str], Any]] | None = None,
    zero_is_none: Iterable[str] = (),
) -> dict[str, argparse.Action]:
    """Add one option per field of the dataclass ``config_cls`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The (sub)command's parser.
    config_cls : type
        A dataclass; ``ClassVar`` attributes (such as ``KIND``) are not fields and get no
        option. A field without a default is a required option.
    choices : mapping of str to iterable, optional
        Allowed values of a field (the registries: models, datasets, losses...). Checked by
        ``argparse`` for a scalar text field, per value for a tuple field.
    exclude : iterable of str
        Fields that get no option (filled in otherwise, or derived).
    names : mapping of str to str or sequence of str, optional
        Option strings of a field instead of ``--field-name`` (the first is shown in
        messages).
    aliases : mapping of str to sequence of str, optional
        Further option strings of a field (old spellings kept working).
    help : mapping of str to str, optional
        Help text of a field instead of its docstring entry (one that says
        ``(default: ...)`` itself gets no default appended).
    converters : mapping of str to callable, optional
        ``text -> value`` of a field instead of the one its annotation implies (it may
        raise ``ValueError``; the option is named in the message).
    zero_is_none : iterable of str
        Optional fields where ``0`` also means ``None`` (``--grad-clip 0``: off).

    Returns
    -------
    dict of str to argparse.Action
        Field -> the option added for it.

    Raises
    ------
    TypeError
        If ``config_cls`` is not a dataclass.
    ValueError
        If a mapping names a field ``config_cls`` does not have.
    """
    specs = _specs(
        config_cls,
        choices=choices,
        exclude=exclude,
        names=names,
        converters=converters,
        zero_is_none=zero_is_none,
    )
    aliases, help, converters = dict(aliases or {}), dict(help or {}), dict(converters or {})
    unknown = sorted((set(aliases) | set(help)) - {f.name for f in dataclasses.fields(config_cls)})
    if unknown:
        raise ValueError(f"aliases/help name no field of {config_cls.__name__}: {unknown}")
    docs = _parameter_entries(config_cls)
    actions = {}
    for name, (spec, f, _kind, strings, metavar) in specs.items():
        strings = [*strings, *aliases.get(name, ())]
        has_default = not (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        notes = []
        listed = spec.choices is not None and (spec.sequence or len(spec.choices) > _SHOWN)
        if spec.sequence:
            notes.append("values separated by spaces or commas")
        if listed:
            notes.append(("each " if spec.sequence else "") + "one of " + _list(spec.choices))
        if spec.optional:
            notes.append("none" + (" or 0" if spec.zero_is_none else "") + " for None")
        text = help.get(name)
        if not (text and "(default:" in text):  # a help text may state its own default
            notes.append(f"default: {_show(default)}" if has_default else "required")
        if not text and name in docs:
            shared, _, text = docs[name]
            if len(shared) > 1:  # "momentum, weight_decay : float  SGD settings."
                text = f"{name.replace('_', ' ')}: {text}"
        text = text or name.replace("_", " ")
        text = (f"{text} ({'; '.join(notes)})" if notes else text).replace("%", "%%")
        kwargs: dict[str, Any] = dict(dest=name, default=None, help=text, required=not has_default)
        if spec.flag:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            if spec.sequence:
                kwargs["nargs"] = "*"
            checked = spec.choices is not None and not spec.sequence and name not in converters
            if checked and all(isinstance(c, str) for c in spec.choices):
                kwargs["choices"] = list(spec.choices)  # argparse checks them ("invalid choice")
            if spec.choices is not None and not spec.sequence and not listed:
                metavar = "{" + ",".join(map(str, spec.choices)) + "}"
            kwargs["metavar"] = name.upper() if listed or not metavar else metavar
        actions[name] = parser.add_argument(*strings, **kwargs)
    known = dict(parser.get_default(_SPECS) or {})
    known[config_cls] = {name: entry[0] for name, entry in specs.items()}
    parser.set_defaults(**{_SPECS: known})
    return actions


def config_from_args(
    config_cls: type,
    args: argparse.Namespace,
    *,
    exclude: Iterable[str] = (),
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    """The ``config_cls`` of a parsed command line; options left unset keep the defaults.

    Parameters
    ----------
    config_cls : type
        The dataclass given to :func:`add_config_options`.
    args : argparse.Namespace
        The parsed options. Without :func:`add_config_options`' record of the options (a
        namespace built by hand) the fields' annotations are used; values that are not text
        are taken as they are.
    exclude : iterable of str
        Fields not read from ``args``.
    overrides : mapping, optional
        Field values that replace (or supply) the command line's.

    Returns
    -------
    object
        ``config_cls(**values)``, validated by the class itself.

    Raises
    ------
    ValueError
        For a value that does not read as its field's type, naming the option; and whatever
        ``config_cls`` raises for values it refuses.
    """
    specs = (getattr(args, _SPECS, None) or {}).get(config_cls)
    if specs is None:
        specs = {name: entry[0] for name, entry in _specs(config_cls).items()}
    exclude = set(exclude)
    values = {}
    for name, spec in specs.items():
        if name in exclude or not hasattr(args, name):
            continue
        raw = getattr(args, name)
        if raw is None:
            continue  # unset: the config's default
        values[name] = spec.convert(raw)
    values.update(overrides or {})
    return config_cls(**values)


def add_runs_option(
    parser: argparse.ArgumentParser,
    *,
    hidden_aliases: Sequence[str] = (),
    default: str = "runs",
    help: str = "folder of run folders",
) -> argparse.Action:
    """Add ``--runs DIR`` (dest ``runs``), with old spellings kept working but not shown."""
    action = parser.add_argument(
        "--runs", dest="runs", default=default, metavar="DIR", help=f"{help} (default: {default})"
    )
    for alias in hidden_aliases:
        parser.add_argument(alias, dest="runs", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return action


def add_module_subcommands(subparsers: Any, module_names: Iterable[str]) -> None:
    """Let each module of ``module_names`` that is present register its subcommand.

    A module defines ``add_parser(subparsers)``; one that is not installed is skipped (an
    import error from inside a present module is raised, not hidden).
    """
    import importlib

    for name in module_names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        if hasattr(module, "add_parser"):
            module.add_parser(subparsers)
