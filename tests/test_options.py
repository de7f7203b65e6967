"""Declared options: strings from a spec become typed values, or one line naming the option, its
type and what it takes; the declaration also says what is listed and what is cache identity."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.errors import HarnessError
from harness.options import NoOptions, describe, names, non_identity, option, parse_options


@dataclass(frozen=True)
class Opts:
    flag: bool = option(False, "a switch")
    count: int = option(2, "how many", low=1)
    share: float | None = option(None, "a share", above=0, high=1, identity=False)
    mode: str = option("fast", "how", choices=("fast", "slow"))
    label: str | None = option(None, "free text", identity=False)
    offset: int = option(0, "may be negative")


def parse(**raw: str) -> Opts:
    return parse_options(Opts, raw, "spec 'x'")


def error(mark: str = "", **raw: str) -> str:
    with pytest.raises(HarnessError) as e:
        parse_options(Opts, raw, "spec 'x'", mark=mark)
    text = str(e.value)
    assert "\n" not in text
    return text


def test_defaults_stand_when_nothing_is_given() -> None:
    assert parse() == Opts()
    assert parse_options(NoOptions, {}, "w") == NoOptions()


@pytest.mark.parametrize("text", ["1", "true", "YES", " on "])
def test_true_words(text: str) -> None:
    assert parse(flag=text).flag is True


@pytest.mark.parametrize("text", ["0", "false", "No", "off"])
def test_false_words(text: str) -> None:
    assert parse(flag=text).flag is False


def test_numbers_and_strings_are_typed() -> None:
    got = parse(count="5", share="0.25", mode="slow", label=" hi ", offset="-3")
    assert got == Opts(flag=False, count=5, share=0.25, mode="slow", label="hi", offset=-3)
    assert isinstance(got.count, int) and isinstance(got.share, float)
    assert parse(share="1").share == 1.0  # high is inclusive


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"flag": "maybe"}, "spec 'x': flag= takes 1 or 0, not 'maybe'"),
        ({"count": "0"}, "spec 'x': count= takes a whole number >= 1, not '0'"),
        ({"count": "2.5"}, "count= takes a whole number >= 1, not '2.5'"),
        ({"offset": "x"}, "offset= takes a whole number, not 'x'"),
        ({"share": "0"}, "share= takes a number > 0 and <= 1, not '0'"),
        ({"share": "1.5"}, "share= takes a number > 0 and <= 1, not '1.5'"),
        ({"share": "half"}, "share= takes a number > 0 and <= 1, not 'half'"),
        ({"share": "nan"}, "share= takes a finite number"),
        ({"mode": "medium"}, "mode= takes one of fast, slow, not 'medium'"),
    ],
)
def test_bad_values_name_the_option_and_what_it_takes(raw: dict[str, str], fragment: str) -> None:
    assert fragment in error(**raw)


def test_unknown_keys_get_the_close_name_and_the_known_ones() -> None:
    text = error(cuont="1")
    assert "unknown option(s) cuont; did you mean 'count'?" in text
    assert "known: count, flag, label, mode, offset, share" in text
    assert "unknown option(s) zz, yy; known:" in error(zz="1", yy="2")
    with pytest.raises(HarnessError, match="it takes none"):
        parse_options(NoOptions, {"a": "1"}, "w")


def test_a_mark_writes_options_as_the_spec_does() -> None:
    assert "#count= takes a whole number >= 1" in error("#", count="0")
    assert "unknown option(s) #cuont; did you mean 'count'?" in error("#", cuont="1")


def test_the_declaration_is_listed_and_says_what_is_identity() -> None:
    infos = {o.name: o for o in describe(Opts)}
    assert list(infos) == list(names(Opts))
    assert infos["count"].type == "int" and infos["count"].low == 1 and infos["count"].default == 2
    assert infos["share"].type == "float" and (infos["share"].above, infos["share"].high) == (0, 1)
    assert infos["mode"].choices == ("fast", "slow") and infos["flag"].help == "a switch"
    assert infos["label"].type == "str" and infos["label"].default is None
    assert non_identity(Opts) == {"share", "label"}
