"""Typed options that an extension declares once: parsed, checked and listed from that one place.

A backend or a task declares a frozen dataclass of its options, each field made with `option()`
(its help text, whether it changes what a model generates, a lower bound, allowed values). The
spec grammar (`llamacpp:m.gguf#n_ctx=8192`, `chains:depth=1-4`) gives strings; `parse_options`
turns them into that dataclass or one line saying which option is wrong and what it takes;
`describe` lists them for `harness models --backend` and `harness tasks --task`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.errors import HarnessError
from harness.registry import suggest

OptionsT = TypeVar("OptionsT")

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def option(
    default: Any = None,
    help: str = "",
    *,
    identity: bool = True,
    low: float | None = None,
    choices: Sequence[str] | None = None,
    above: float | None = None,
    high: float | None = None,
) -> Any:
    """A declared option. `identity=False`: it changes how requests are sent or how fast they
    run, not what comes back (parallelism, threads, a key's name), so it stays out of the
    cache key. `low`: the smallest value a number may take. `choices`: the values a string
    may take. `above`: a bound a number must exceed (a timeout > 0); `high`: the largest
    value it may take (a share <= 1)."""
    meta = {"help": help, "identity": identity, "low": low, "choices": tuple(choices or ())}
    if above is not None:
        meta["above"] = above
    if high is not None:
        meta["high"] = high
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class NoOptions:
    """For an extension that takes no options."""


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: str
    default: Any
    help: str
    identity: bool
    choices: tuple[str, ...] = ()
    low: float | None = None
    above: float | None = None
    high: float | None = None


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap(tp: Any) -> Any:
    """`int | None` -> int (an option left out is its default, which may be None)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _type_name(tp: Any) -> str:
    tp = _unwrap(tp)
    return getattr(tp, "__name__", str(tp))


def describe(cls: type) -> list[OptionInfo]:
    """Each option of an options dataclass: name, type, default, help, cache identity."""
    hints = _hints(cls)
    return [
        OptionInfo(
            name=f.name,
            type=_type_name(hints[f.name]),
            default=f.default if f.default is not dataclasses.MISSING else None,
            help=f.metadata.get("help", ""),
            identity=f.metadata.get("identity", True),
            choices=tuple(f.metadata.get("choices", ())),
            low=f.metadata.get("low"),
            above=f.metadata.get("above"),
            high=f.metadata.get("high"),
        )
        for f in dataclasses.fields(cls)
    ]


def names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def non_identity(cls: type) -> frozenset[str]:
    """Options that do not change what comes back: left out of cache keys."""
    return frozenset(
        f.name for f in dataclasses.fields(cls) if not f.metadata.get("identity", True)
    )


def _bounds(meta: Mapping[str, Any]) -> str:
    """` >= 1`, ` > 0 and <= 1`: a number option's bounds, for its messages."""
    parts = []
    if meta.get("above") is not None:
        parts.append(f"> {meta['above']:g}")
    if meta.get("low") is not None:
        parts.append(f">= {meta['low']:g}")
    if meta.get("high") is not None:
        parts.append(f"<= {meta['high']:g}")
    return (" " + " and ".join(parts)) if parts else ""


def _convert(value: str, tp: Any, f: dataclasses.Field, where: str, mark: str = "") -> Any:
    tp = _unwrap(tp)
    name = mark + f.name
    meta = f.metadata
    low = meta.get("low")
    choices = meta.get("choices") or ()
    text = value.strip()
    if tp is bool:
        low_text = text.lower()
        if low_text in TRUE:
            return True
        if low_text in FALSE:
            return False
        raise HarnessError(f"{where}: {name}= takes 1 or 0, not '{value}'")
    if tp is int:
        try:
            number: int | float = int(text)
        except ValueError:
            raise HarnessError(
                f"{where}: {name}= takes a whole number{_bounds(meta)}, not '{value}'"
            ) from None
    elif tp is float:
        try:
            number = float(text)
        except ValueError:
            raise HarnessError(
                f"{where}: {name}= takes a number{_bounds(meta)}, not '{value}'"
            ) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise HarnessError(f"{where}: {name}= takes a finite number, not '{value}'")
    else:
        if choices and text not in choices:
            raise HarnessError(f"{where}: {name}= takes one of {', '.join(choices)}, not '{value}'")
        return text
    above, high = meta.get("above"), meta.get("high")
    if (
        (low is not None and number < low)
        or (above is not None and number <= above)
        or (high is not None and number > high)
    ):
        kind = "a whole number" if tp is int else "a number"
        raise HarnessError(f"{where}: {name}= takes {kind}{_bounds(meta)}, not '{value}'")
    return number


def parse_options(
    cls: type[OptionsT], raw: Mapping[str, str], where: str, *, mark: str = ""
) -> OptionsT:
    """The options dataclass from `key=value` strings, or one line naming the bad option.

    `mark` is written before an option's name in messages (`#` for a model spec's options,
    as the user wrote them: `#n_ctx= takes ...`)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in raw if k not in fields]
    if unknown:
        known = sorted(fields)
        first = unknown[0]
        raise HarnessError(
            f"{where}: unknown option(s) {', '.join(mark + k for k in unknown)}"
            f"{suggest(first, known)}; "
            + (f"known: {', '.join(known)}" if known else "it takes none")
        )
    hints = _hints(cls)
    values = {k: _convert(v, hints[k], fields[k], where, mark) for k, v in raw.items()}
    return cls(**values)


__all__ = [
    "FALSE",
    "TRUE",
    "NoOptions",
    "OptionInfo",
    "describe",
    "names",
    "non_identity",
    "option",
    "parse_options",
]
