"""`code-rename`: a HumanEval or MBPP problem with its function and its arguments renamed the
same way in the prompt, the tests and the canonical solution, and the docstring's examples
dropped or rewritten with the new name.

Code is renamed through the syntax tree, never by searching text: every reference to the
function (definition, calls, recursive calls, the tests' direct calls) and every use of an
argument inside the function (its signature, body, nested scopes, keyword arguments of calls
to the function) is found with `ast` and edited at its position; an attribute (`s.count`) or a
keyword of another function's call is left alone. Prose (docstrings, comments, MBPP's task
text) is renamed word by word: the function's name where it is used as a name (an identifier
such as `has_close_elements`, or a plain word such as `maximum` only where it is called or
introduced as "function maximum"), an argument wherever it stands as a word (articles such as
`a` excepted). New names come from a synonym table (`sum_of_squares` becomes, e.g.,
`total_of_squares`) or, for words it lacks, a list of neutral nouns; they never collide with a
name or word of the problem, a builtin or a keyword.

The problem is skipped, with its reason, when its code does not parse, when its function is not
found, or when it uses the name in a way this renaming does not follow (imported, declared
global, bound by `except ... as`, written inside a string literal that is not a docstring).
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import random
import re
import tokenize
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from harness.perturb.base import Context, Perturbation, Skip, derive
from harness.tasks.code import fenced
from harness.types import Problem

# -- names ----------------------------------------------------------------------------------------

SYNONYMS: dict[str, tuple[str, ...]] = {
    # verbs
    "add": ("combine", "plus", "accumulate"),
    "append": ("attach", "extend_with"),
    "arrange": ("order", "lay_out"),
    "calc": ("compute", "evaluate"),
    "calculate": ("compute", "evaluate", "work_out"),
    "change": ("alter", "modify"),
    "check": ("verify", "confirm", "validate"),
    "choose": ("pick", "select"),
    "compare": ("contrast", "weigh"),
    "compute": ("calculate", "evaluate"),
    "concatenate": ("join", "chain"),
    "convert": ("transform", "turn"),
    "count": ("tally", "number_of"),
    "create": ("build", "make_up"),
    "decode": ("decipher", "unscramble"),
    "encode": ("encipher", "scramble"),
    "encrypt": ("encipher", "scramble"),
    "decrypt": ("decipher", "unscramble"),
    "extract": ("pull_out", "take_out"),
    "filter": ("screen", "sift"),
    "find": ("locate", "discover", "determine"),
    "flip": ("invert", "swap"),
    "generate": ("produce", "build"),
    "get": ("obtain", "fetch", "retrieve"),
    "group": ("bundle", "cluster"),
    "has": ("holds", "contains"),
    "is": ("check_if", "whether"),
    "make": ("build", "form", "construct"),
    "match": ("fit", "pair_up"),
    "merge": ("join", "fuse"),
    "move": ("shift", "relocate"),
    "multiply": ("times", "scale"),
    "parse": ("read", "interpret"),
    "remove": ("drop", "delete", "strip_out"),
    "replace": ("substitute", "swap_out"),
    "reverse": ("invert", "flip_over"),
    "rotate": ("turn", "cycle"),
    "search": ("look_up", "scan"),
    "select": ("pick", "choose"),
    "separate": ("split_up", "divide"),
    "shift": ("move", "offset"),
    "solve": ("resolve", "work_out"),
    "sort": ("order", "rank"),
    "split": ("divide", "break_up"),
    "swap": ("exchange", "switch"),
    "test": ("given", "probe"),
    "toggle": ("switch", "flip"),
    "truncate": ("cut", "trim"),
    # quantities and qualities
    "sum": ("total", "aggregate"),
    "total": ("sum_of", "overall"),
    "max": ("largest", "top", "greatest"),
    "maximum": ("largest", "top", "greatest"),
    "min": ("smallest", "least", "lowest"),
    "minimum": ("smallest", "least", "lowest"),
    "largest": ("biggest", "greatest"),
    "smallest": ("tiniest", "least"),
    "greatest": ("largest", "biggest"),
    "highest": ("top", "greatest"),
    "longest": ("lengthiest", "widest"),
    "closest": ("nearest",),
    "close": ("near", "nearby"),
    "first": ("initial", "leading"),
    "last": ("final", "trailing"),
    "next": ("following", "upcoming"),
    "even": ("paired", "divisible_by_two"),
    "odd": ("unpaired", "uneven"),
    "unique": ("distinct", "single"),
    "distinct": ("unique", "different"),
    "common": ("shared", "mutual"),
    "same": ("identical", "matching"),
    "equal": ("identical", "matching"),
    "positive": ("above_zero",),
    "negative": ("below_zero",),
    "neg": ("below_zero",),
    "valid": ("proper", "legal"),
    "empty": ("blank", "vacant"),
    "missing": ("absent", "lost"),
    "special": ("particular", "notable"),
    "nested": ("inner", "layered"),
    "consecutive": ("successive", "adjacent"),
    "repeated": ("recurring", "duplicated"),
    "repeating": ("recurring",),
    "duplicate": ("repeat", "copy"),
    "duplicates": ("repeats", "copies"),
    "average": ("mean_value", "midpoint"),
    "mean": ("average",),
    "median": ("middle_value", "midpoint"),
    "absolute": ("unsigned",),
    "frequency": ("rate", "occurrence_count"),
    "freq": ("rate", "occurrence_count"),
    "difference": ("gap", "delta"),
    "diff": ("gap", "delta"),
    "product": ("multiple", "result_of_multiplying"),
    "prod": ("multiple",),
    "power": ("exponent", "raised"),
    "factorial": ("falling_product",),
    "distance": ("gap", "separation"),
    "length": ("size", "extent"),
    "len": ("size", "extent"),
    "position": ("place", "location"),
    "pos": ("place", "location"),
    "index": ("place", "slot"),
    "order": ("sequence", "ranking"),
    "range": ("span", "interval"),
    "area": ("surface", "extent"),
    "volume": ("capacity", "space"),
    "perimeter": ("boundary", "outline"),
    "angle": ("corner", "bend"),
    "times": ("occasions", "repeats"),
    "many": ("several", "multiple"),
    "how": ("find",),
    "all": ("every", "each"),
    "no": ("without",),
    # things
    "list": ("sequence", "collection", "items"),
    "lists": ("sequences", "collections"),
    "lst": ("items", "sequence", "entries"),
    "arr": ("values", "sequence", "entries"),
    "array": ("sequence", "row"),
    "nums": ("values", "figures", "amounts"),
    "num": ("value", "figure", "amount"),
    "number": ("value", "figure", "amount"),
    "numbers": ("values", "figures", "amounts"),
    "int": ("whole", "integral"),
    "integer": ("whole_number", "integral"),
    "integers": ("whole_numbers", "integrals"),
    "digit": ("numeral", "figure"),
    "digits": ("numerals", "figures"),
    "string": ("text", "phrase", "characters"),
    "strings": ("texts", "phrases"),
    "str": ("text", "phrase"),
    "text": ("passage", "phrase", "content"),
    "txt": ("passage", "phrase", "content"),
    "word": ("term", "token"),
    "words": ("terms", "tokens"),
    "sentence": ("statement", "line"),
    "char": ("symbol", "glyph"),
    "chars": ("symbols", "glyphs"),
    "ch": ("symbol", "glyph"),
    "character": ("symbol", "glyph"),
    "characters": ("symbols", "glyphs"),
    "letter": ("symbol", "glyph"),
    "letters": ("symbols", "glyphs"),
    "vowels": ("open_sounds",),
    "substring": ("fragment", "slice"),
    "substrings": ("fragments", "slices"),
    "sub": ("part", "piece"),
    "prefix": ("head", "opening"),
    "prefixes": ("heads", "openings"),
    "suffix": ("tail", "ending"),
    "tuple": ("record", "row"),
    "tuples": ("records", "rows"),
    "tup": ("record", "row"),
    "dict": ("mapping", "table"),
    "set": ("collection", "group"),
    "element": ("member", "entry"),
    "elements": ("members", "entries"),
    "ele": ("member", "entry"),
    "item": ("member", "entry"),
    "items": ("members", "entries"),
    "pairs": ("couples", "twins"),
    "pair": ("couple", "twin"),
    "points": ("spots", "locations"),
    "point": ("spot", "location"),
    "path": ("route", "trail"),
    "grid": ("board", "matrix"),
    "matrix": ("table", "board"),
    "heap": ("pile", "priority_queue"),
    "series": ("progression", "sequence"),
    "sequence": ("progression", "series"),
    "subset": ("portion", "part"),
    "combinations": ("selections", "groupings"),
    "intersection": ("overlap", "shared_part"),
    "value": ("amount", "quantity"),
    "values": ("amounts", "quantities"),
    "bit": ("flag", "binary_digit"),
    "bits": ("flags", "binary_digits"),
    "binary": ("base_two",),
    "decimal": ("base_ten",),
    "octal": ("base_eight",),
    "prime": ("indivisible",),
    "divisor": ("factor",),
    "factors": ("divisors",),
    "palindrome": ("mirror_word", "symmetric_text"),
    "triangle": ("trigon", "three_sided"),
    "square": ("quad", "squared"),
    "squares": ("quads", "squared_values"),
    "cube": ("cubed", "third_power"),
    "circle": ("ring", "disc"),
    "sphere": ("ball", "globe"),
    "cylinder": ("tube", "drum"),
    "cone": ("funnel",),
    "date": ("day", "calendar_day"),
    "case": ("casing",),
    "upper": ("capital",),
    "lower": ("small",),
    "lowercase": ("small_letters",),
    "uppercase": ("capital_letters",),
    "zero": ("nil", "naught"),
    "one": ("single", "unit"),
    "two": ("pair", "couple"),
    "three": ("triple", "trio"),
    "nth": ("indexed", "kth"),
    "fib": ("fibonacci",),
    "gcd": ("greatest_common_factor",),
    "lcm": ("least_common_multiple",),
    "ascii": ("char_code",),
    "occurrence": ("appearance", "instance"),
    "occurrences": ("appearances", "instances"),
    "result": ("outcome", "answer"),
    "message": ("note", "text_message"),
    "threshold": ("cutoff", "limit"),
    "height": ("altitude", "tallness"),
    "width": ("breadth",),
    "radius": ("half_width",),
    "base": ("foundation", "radix"),
    "price": ("cost", "amount_due"),
    "capacity": ("room", "limit"),
    "grades": ("marks", "scores"),
    "game": ("match_results", "play"),
    "guess": ("estimate", "prediction"),
    "operator": ("operation",),
    "operand": ("argument_value",),
    "brackets": ("parens_string",),
    "parens": ("brackets",),
    "paren": ("bracket",),
    "input": ("given", "source"),
    "my": ("given",),
    "to": ("into", "as"),
    "of": ("for", "in"),
    "in": ("within", "inside"),
    "by": ("using", "per"),
    "with": ("having", "using"),
    "and": ("plus", "together_with"),
    "or": ("either",),
    "name": ("label", "title"),
    "file": ("document", "record_file"),
    "class": ("category", "kind"),
    "extension": ("suffix_part", "add_on"),
    "extensions": ("add_ons", "suffix_parts"),
    "operation": ("step", "transaction"),
    "operations": ("steps", "transactions"),
    "note": ("remark", "tone"),
    "notes": ("remarks", "tones"),
    "day": ("date_part",),
    "month": ("calendar_month",),
    "year": ("calendar_year",),
    "interval": ("span", "segment"),
    "planet": ("world", "orb"),
    "need": ("demand", "requirement"),
    "remaining": ("left_over", "leftover"),
    "delimiter": ("separator", "divider"),
    "delimeter": ("separator", "divider"),
    "weight": ("load", "mass"),
    "key": ("field", "label_key"),
    "keys": ("fields",),
    "row": ("line", "record"),
    "col": ("column_index",),
    "column": ("field_column",),
    "pattern": ("template", "motif"),
    "patterns": ("templates", "motifs"),
    "expression": ("formula", "term_text"),
}
"""Words of a name and what may stand for them (lower case; a name's other words are kept)."""

GENERIC_VERBS = ("compute", "determine", "produce", "evaluate", "derive", "work_out")
GENERIC_NOUNS = ("result", "answer", "outcome", "output", "value", "solution")
ARG_NOUNS = (
    "value",
    "amount",
    "quantity",
    "operand",
    "term",
    "entry",
    "item",
    "figure",
    "measure",
    "factor",
    "size",
    "target",
    "source",
    "limit",
    "bound",
    "key",
    "data",
    "subject",
)
"""Names for arguments whose words the table lacks (`x`, `q`, `w`)."""

PROSE_STOPWORDS = frozenset(
    {"a", "an", "i", "the", "is", "in", "it", "of", "or", "on", "at", "to", "be", "by", "as"}
    | {"if", "no", "so", "up", "we", "do", "go", "and", "for", "not", "all", "any", "can"}
    | {"one", "two"}
)
"""Argument names never renamed in prose: there they are almost always English words."""

_TAKEN_ALWAYS = frozenset(dir(builtins)) | frozenset(keyword.kwlist)
_TAKEN_ALWAYS |= frozenset(getattr(keyword, "softkwlist", ()))
_TAKEN_ALWAYS |= frozenset({"self", "cls", "check", "candidate", "METADATA"})


_NAME_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_MANY = re.compile(r"\b(?:list|tuple|set|dict|sequence|iterable|frozenset|deque)\b", re.I)
_TEXT = re.compile(r"\bstr\b")
_NUMBER = re.compile(r"\b(?:int|float|complex|number)\b", re.I)
LETTER_KINDS = {
    **dict.fromkeys(("l", "lst", "li", "xs", "arr", "ls", "seq", "nums", "vals"), "many"),
    **dict.fromkeys(("s", "st", "txt", "ch", "c"), "text"),
    **dict.fromkeys(tuple("abdhijkmnpqrtwxyz") + ("num", "val", "no"), "number"),
}
"""What conventional short argument names stand for (`l` a list, `s` a string, `n` a number)."""
NOUNS = {
    "many": ("items", "values", "entries", "elements", "records", "collection", "members"),
    "text": ("text", "phrase", "word", "label", "characters", "message"),
    "number": ("value", "amount", "quantity", "count", "size", "total", "measure", "figure"),
    "any": ARG_NOUNS,
}
"""Fresh argument names by what the argument holds, for names the synonym table lacks."""


def name_words(name: str) -> list[str]:
    """The words of an identifier, lower case: `minPath` -> min, path; `test_tup1` -> test,
    tup (digits are not words)."""
    return [w.lower() for w in _NAME_WORD.findall(name)]


def swap_words(name: str, pick: Callable[[str], str | None]) -> str:
    """`name` with each word that `pick` has a replacement for replaced in place: separators,
    digits, camel case and capitals kept (`string_to_md5` -> `text_into_md5`, `minPath` ->
    `lowestTrail`)."""
    camel = "_" not in name and any(c.isupper() for c in name[1:])

    def one(m: re.Match[str]) -> str:
        word = m.group()
        new = pick(word.lower())
        if new is None:
            return word
        parts = new.split("_")
        if camel:
            new = parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
        if len(word) > 1 and word.isupper():
            return new.upper()
        if word[:1].isupper():
            return new[:1].upper() + new[1:]
        return new

    return _NAME_WORD.sub(one, name)


def is_identifier_like(name: str) -> bool:
    """Whether a name reads as code in prose (an underscore, a digit, mixed case, or one or two
    letters) rather than as an English word (`maximum`, `solve`)."""
    return not (name.isalpha() and name.islower() and len(name) > 2)


def argument_kind(arg: ast.arg) -> str:
    """What an argument holds, from its annotation or its conventional name: many | text |
    number | any."""
    if arg.annotation is not None:
        hint = ast.unparse(arg.annotation)
        for kind, pattern in (("many", _MANY), ("text", _TEXT), ("number", _NUMBER)):
            if pattern.search(hint):
                return kind
    base = re.sub(r"_?\d+$", "", arg.arg).lower()
    if base in LETTER_KINDS:
        return LETTER_KINDS[base]
    if len(base) > 3 and base.endswith("s") and not base.endswith("ss"):
        return "many"
    return "any"


class _Names:
    """Fresh names for one problem: each word of the old names keeps one synonym, so
    `list1`, `list2` become `values1`, `values2`."""

    def __init__(self, rng: random.Random, taken: set[str]) -> None:
        self.rng = rng
        self.taken = set(taken) | _TAKEN_ALWAYS
        self.lowered = {t.lower() for t in self.taken}
        self.memo: dict[str, str] = {}

    def _ok(self, name: str, old: str) -> bool:
        return (
            name.isidentifier()
            and not keyword.iskeyword(name)
            and name.lower() not in self.lowered
            and name != old
            and (len(old) < 3 or old.lower() not in name.lower())
        )

    def _take(self, name: str) -> str:
        self.taken.add(name)
        self.lowered.add(name.lower())
        return name

    def _synonym(self, word: str) -> str | None:
        if word not in SYNONYMS:
            return None
        if word not in self.memo:
            self.memo[word] = self.rng.choice(SYNONYMS[word])
        return self.memo[word]

    def function(self, old: str) -> str:
        name = swap_words(old, self._synonym)
        if self._ok(name, old):
            return self._take(name)
        camel = "_" not in old and any(c.isupper() for c in old[1:])
        pairs = [f"{v}_{n}" for v in GENERIC_VERBS for n in GENERIC_NOUNS]
        self.rng.shuffle(pairs)
        for pair in pairs:
            name = swap_words(pair, lambda w: w) if not camel else _camel(pair)
            if self._ok(name, old):
                return self._take(name)
        return self._numbered(pairs[0], old)

    def argument(self, arg: ast.arg) -> str:
        old = arg.arg
        name = swap_words(old, self._synonym)
        if self._ok(name, old):
            return self._take(name)
        m = re.fullmatch(r"(.*?)(_?\d*)", old)
        base, digits = (m.group(1), m.group(2)) if m else (old, "")
        key = f"<noun:{base.lower()}>"
        remembered = self.memo.get(key)
        if remembered and self._ok(remembered + digits, old):
            return self._take(remembered + digits)
        nouns = list(NOUNS[argument_kind(arg)])
        self.rng.shuffle(nouns)
        for noun in nouns + list(ARG_NOUNS):
            if self._ok(noun + digits, old):
                self.memo[key] = noun
                return self._take(noun + digits)
        return self._numbered(nouns[0], old)

    def _numbered(self, stem: str, old: str) -> str:
        i = 2
        while not self._ok(f"{stem}_{i}", old):
            i += 1
        return self._take(f"{stem}_{i}")


def _camel(snake: str) -> str:
    first, *rest = snake.split("_")
    return first + "".join(p[:1].upper() + p[1:] for p in rest)


# -- locating and editing -------------------------------------------------------------------------


class Unsupported(Exception):
    """A use of a renamed name this kind does not follow; its message is the skip reason."""


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


def parse(code: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in the data are its own business
            return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


class Located:
    """A source text with its tree: ast positions (line, UTF-8 byte column) as offsets."""

    def __init__(self, text: str, tree: ast.Module) -> None:
        self.text = text
        self.tree = tree
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", "replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def at(self, lineno: int, col: int, old: str, new: str) -> Edit:
        start = self.offset(lineno, col)
        if self.text[start : start + len(old)] != old:
            raise Unsupported(f"could not place '{old}' in the code (an f-string?)")
        return Edit(start, start + len(old), new)

    def in_span(self, node: ast.AST, old: str, new: str, pattern: str) -> list[Edit]:
        """Edits for `old` where `pattern` (with one group around the name) matches inside the
        node's source: names that carry no position of their own (def names, global lists)."""
        start, end = self.span(node)
        found = list(re.finditer(pattern, self.text[start:end]))
        if not found:
            raise Unsupported(f"could not place '{old}' in the code")
        return [Edit(start + m.start(1), start + m.end(1), new) for m in found]


def _def_edit(src: Located, node: ast.AST, old: str, new: str) -> Edit:
    start = src.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
    m = re.compile(rf"(?:async\s+)?(?:def|class)\s+({re.escape(old)})\b").match(src.text, start)
    if m is None:
        raise Unsupported(f"could not place the definition of '{old}'")
    return Edit(m.start(1), m.end(1), new)


def _binds_unfollowed(node: ast.AST, names: set[str]) -> str | None:
    """Why a node binds one of `names` in a way the renaming does not follow, or None."""
    if isinstance(node, ast.alias) and ({node.name, node.asname} & names):
        return "a renamed name is imported"
    if isinstance(node, ast.Global) and set(node.names) & names:
        return "a renamed name is declared global"
    if isinstance(node, ast.ExceptHandler) and node.name in names:
        return "a renamed name is bound by except ... as"
    if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name in names:
        return "a renamed name is bound by a match pattern"
    if isinstance(node, ast.MatchMapping) and node.rest in names:
        return "a renamed name is bound by a match pattern"
    return None


def reference_edits(
    src: Located,
    nodes: Iterable[ast.AST],
    names: dict[str, str],
    calls_to: set[str],
) -> list[Edit]:
    """Edits renaming every reference to `names` among `nodes` (and their descendants): names
    read or bound, parameters, definitions, `nonlocal` lists, and keyword arguments of calls
    to a function in `calls_to` (the renamed function, `candidate` in HumanEval's tests)."""
    edits: list[Edit] = []
    wanted = set(names)
    for root in nodes:
        for node in ast.walk(root):
            why = _binds_unfollowed(node, wanted)
            if why:
                raise Unsupported(why)
            if isinstance(node, ast.Name) and node.id in names:
                edits.append(src.at(node.lineno, node.col_offset, node.id, names[node.id]))
            elif isinstance(node, ast.arg) and node.arg in names:
                edits.append(src.at(node.lineno, node.col_offset, node.arg, names[node.arg]))
            elif (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and node.name in names
            ):
                edits.append(_def_edit(src, node, node.name, names[node.name]))
            elif isinstance(node, ast.Nonlocal):
                for name in set(node.names) & wanted:
                    pattern = rf"(?<![\w.])({re.escape(name)})(?!\w)"
                    edits.extend(src.in_span(node, name, names[name], pattern))
            elif isinstance(node, ast.Call):
                func = node.func
                target = func.id if isinstance(func, ast.Name) else None
                for kw in node.keywords:
                    if kw.arg in names and target in calls_to:
                        edits.append(src.at(kw.lineno, kw.col_offset, kw.arg, names[kw.arg]))
    return edits


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    out, pos = [], 0
    for e in sorted(set(edits), key=lambda e: (e.start, e.end)):
        if e.start < pos:
            raise Unsupported("two renamings overlap")
        out.append(text[pos : e.start])
        out.append(e.text)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


# -- prose ----------------------------------------------------------------------------------------


def _word_pattern(names: Sequence[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


_NOT_A_NAME_AFTER = (
    r"(?!\s+(?!(?:and|or|is|are|was|to|with|as|be|must|should|will|has|have|of|in|at|by|for"
    r"|if|than|then|into|from|times)\b)[A-Za-z])"
)
"""After a stopword argument (`a`): a following word that makes it the article (`a side`),
not the name (`a and b`, `if a is even`)."""


def rename_prose(text: str, function: tuple[str, str] | None, args: dict[str, str]) -> str:
    """Renamed words of prose: the function where it stands as a name, each argument wherever
    it stands as a word (a stopword such as `a` only where it cannot be the article), all at
    once (a new name is never renamed again). A word is whole when no letter, digit or `_`
    touches it, and it is not the tail of a contraction (`file's` keeps its `s`)."""
    table: dict[str, str] = {}
    patterns: list[str] = []
    word = r"(?<!\w)(?<!\w['’])({names})(?!\w)"
    loose = {a: b for a, b in args.items() if a.lower() not in PROSE_STOPWORDS}
    stop = {a: b for a, b in args.items() if a.lower() in PROSE_STOPWORDS}
    if function and is_identifier_like(function[0]):
        loose[function[0]] = function[1]
    elif function:
        old = re.escape(function[0])
        patterns.append(
            rf"(?<![\w'’.])({old})(?=\s*\()|(?<=`)({old})(?=`)"
            rf"|(?:(?<=function )|(?<=named )|(?<=called ))({old})(?![\w'’])"
        )
        table[function[0]] = function[1]
    if loose:
        patterns.insert(0, word.format(names=_word_pattern(list(loose))))
        table.update(loose)
    if stop:
        patterns.append(word.format(names=_word_pattern(list(stop))) + _NOT_A_NAME_AFTER)
        table.update(stop)
    if not patterns:
        return text
    regex = re.compile("|".join(patterns))
    return regex.sub(lambda m: table[next(g for g in m.groups() if g)], text)


_EXAMPLE_HEADER = re.compile(
    r"^\s*(?:for\s+)?(?:examples?|e\.g\.|for instance|sample(?:s)?)(?:\s*\d+)?\s*[:.]?\s*$",
    re.IGNORECASE,
)
_IO_LINE = re.compile(r"^\s*(?:input|output|explanation)\s*[:：]", re.IGNORECASE)
_FOR_VALUE = re.compile(r"^\s*for\s+[A-Za-z_]\w*\s*=", re.IGNORECASE)
"""`For x = 3 the output should be 5`: an example without a call."""
_CALL_RESULT = re.compile(
    r"^\s*(?:assert\s+)?[A-Za-z_]\w*\s*\(.*\)\s*(?:==>?|=>|➞|->|→|should\s+(?:return|be))"
)
"""`f(3) == 5`, `g([1]) => [1]`: an example of a call with its result, whatever it calls (some
docstrings name their function otherwise)."""
_INLINE_EXAMPLE = re.compile(r"\s*(?:for example|for instance|e\.g\.|example)\b[,:]?", re.I)
_RESULT_MARKS = ("#", "=", "->", "➞", "=>", "→")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
_ENDS_SENTENCE = re.compile(r"[.!?:;)\]}'\"\w]\s*$")


def _depth(text: str) -> int:
    """Brackets opened minus closed outside quotes: a call that goes on to the next line."""
    bare = _QUOTED.sub("", text)
    return sum(bare.count(c) for c in "([{") - sum(bare.count(c) for c in ")]}")


def drop_examples(literal: str, function: str) -> str | None:
    """A docstring literal (as written, quotes included) without its examples: doctest
    sessions and their output, lines that call the function (a call spread over lines, the
    comments and results that follow it), `For x = ...` lines, Input:/Output:/Explanation:
    blocks and the headers that announce them. The literal itself when it has none; None
    when nothing but examples is there (the description must stay)."""
    lines = literal.split("\n")
    if len(lines) < 3:
        return literal
    call = re.compile(rf"(?<![\w.]){re.escape(function)}\s*\(")
    keep = [True] * len(lines)
    inner = range(1, len(lines) - 1)
    in_doctest = in_example = open_sentence = in_block = False
    io_indent: int | None = None
    depth = 0
    for i in inner:
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if depth > 0:  # the rest of a call spread over lines
            keep[i], depth = False, depth + _depth(line)
            continue
        if not stripped:
            in_doctest = in_example = open_sentence = in_block = False
            io_indent = None
            continue
        if stripped.startswith(">>>"):
            keep[i], in_doctest = False, True
        elif in_doctest or in_block:
            keep[i] = False  # the session's output, the block under an "Example:" header
        elif called := call.search(line):
            # "Return x. For example, f(2) == 4": the sentence before the example stays.
            head = _INLINE_EXAMPLE.split(line[: called.start()])[0].rstrip()
            if head.strip() and not in_example and not head.lower().endswith("for"):
                lines[i] = head
            else:
                keep[i] = False
            in_example, depth = True, max(0, _depth(line[called.start() :]))
            open_sentence = not _ENDS_SENTENCE.search(line)
        elif in_example and (
            stripped.startswith(_RESULT_MARKS) or (open_sentence and stripped[:1].islower())
        ):
            keep[i] = False  # its result, its comment, or the rest of its sentence
        elif _FOR_VALUE.match(line) or _CALL_RESULT.match(line):
            keep[i], in_example = False, True
            depth = max(0, _depth(line))
        elif _IO_LINE.match(line):
            keep[i], io_indent = False, indent
        elif io_indent is not None and indent >= io_indent:
            keep[i] = False
        elif _EXAMPLE_HEADER.match(line):
            keep[i], in_block = False, True
        else:
            in_example = open_sentence = False
            io_indent = None
    first = call.search(lines[0])
    if first:  # the opening line: `"""Add them. For example, add(2, 3) == 5.`
        lines[0] = _INLINE_EXAMPLE.split(lines[0][: first.start()])[0].rstrip()
    last = call.search(lines[-1])
    if last:  # the closing line: `    add(2, 3) == 5"""`
        closing = re.search(r"(?:'{3}|\"{3}|'|\")\s*$", lines[-1])
        margin = lines[-1][: len(lines[-1]) - len(lines[-1].lstrip())]
        lines[-1] = margin + (closing.group().strip() if closing else "")
    if all(keep) and not first and not last:
        return literal
    out: list[str] = [lines[0]]
    for i in inner:
        if keep[i] and not (not lines[i].strip() and not out[-1].strip()):
            out.append(lines[i])
    while len(out) > 1 and not out[-1].strip():
        out.pop()
    out.append(lines[-1])
    body = "\n".join(out)
    words = re.sub(r"^[rRuUbB]*('{3}|\"{3}|'|\")", "", out[0]) + "\n".join(out[1:-1])
    if not re.search(r"[A-Za-z]{3,}", words):
        return None
    return body


def docstring_node(node: ast.AST) -> ast.Constant | None:
    """A module's, class's or function's description: its first statement when that is a
    string, or the first string after nothing but imports (`import math` then the docstring,
    as some HumanEval prompts have it)."""
    body = getattr(node, "body", None)
    if not body or not isinstance(body, list):
        return None
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            return stmt.value if isinstance(stmt.value.value, str) else None
        if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
            return None
    return None


def _tokens(text: str) -> Iterator[tokenize.TokenInfo]:
    try:
        yield from tokenize.generate_tokens(io.StringIO(text).readline)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return


# -- one program ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What is renamed: the function, its arguments, and how its docstring's examples go."""

    old: str
    new: str
    args: dict[str, str]
    examples: str
    """drop | rename: what is done to the docstring's examples."""


def program_edits(text: str, tree: ast.Module, plan: Plan) -> tuple[list[Edit], str]:
    """The edits that apply the plan to a program, and what happened to the function's
    docstring examples (dropped, renamed, none: it had none)."""
    src = Located(text, tree)
    entry = _entry_def(tree, plan.old)
    if entry is None:
        raise Unsupported("entry point not found")
    _refuse_shadowed_keywords(tree, plan.old)
    _refuse_class_attributes(entry, set(plan.args))
    edits = reference_edits(src, [tree], {plan.old: plan.new}, set())
    for a in _all_args(entry):
        if a.arg in plan.args:
            edits.append(src.at(a.lineno, a.col_offset, a.arg, plan.args[a.arg]))
    edits += reference_edits(src, entry.body, plan.args, {plan.old})
    examples = "none"
    entry_doc = docstring_node(entry)
    for doc in [d for n in ast.walk(tree) if (d := docstring_node(n)) is not None]:
        start, end = src.span(doc)
        literal = text[start:end]
        args = plan.args if doc is entry_doc else {}
        if doc is entry_doc:
            dropped = drop_examples(literal, plan.old)
            if dropped != literal:  # it has examples: renamed, or dropped where that leaves text
                examples = "renamed"
                if plan.examples == "drop" and dropped is not None:
                    literal, examples = dropped, "dropped"
        new = rename_prose(literal, (plan.old, plan.new), args)
        if new != text[start:end]:
            edits.append(Edit(start, end, new))
    span = (entry.lineno, entry.end_lineno or entry.lineno)
    edits += comment_edits(src, plan, span)
    return edits, examples


def _refuse_shadowed_keywords(tree: ast.AST, name: str) -> None:
    """A parameter named like the function is renamed with it, so a keyword of that name
    (`helper(f=...)`) could no longer reach it: not followed."""
    nodes = list(ast.walk(tree))
    if any(isinstance(n, ast.arg) and n.arg == name for n in nodes) and any(
        isinstance(n, ast.keyword) and n.arg == name for n in nodes
    ):
        raise Unsupported("the entry point's name is also a parameter passed by keyword")


def _refuse_class_attributes(entry: ast.AST, names: set[str]) -> None:
    """A class inside the function that binds an argument's name makes it an attribute (read
    as `C.n`), which renaming the name would break: not followed."""
    for node in ast.walk(entry):
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            bound = [
                n.id
                for n in ast.walk(stmt)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            ]
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound = [stmt.name]
            if names & set(bound):
                raise Unsupported("an argument's name is also a class attribute")


def _entry_def(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    return None


def _all_args(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    a = fn.args
    return [*a.posonlyargs, *a.args, *([a.vararg] if a.vararg else []), *a.kwonlyargs] + (
        [a.kwarg] if a.kwarg else []
    )


def comment_edits(src: Located, plan: Plan, span: tuple[int, int] | None) -> list[Edit]:
    """Comments renamed as prose: the function everywhere, its arguments inside its `span` of
    lines."""
    edits: list[Edit] = []
    for tok in _tokens(src.text):
        if tok.type != tokenize.COMMENT:
            continue
        inside = span is not None and span[0] <= tok.start[0] <= span[1]
        new = rename_prose(tok.string, (plan.old, plan.new), plan.args if inside else {})
        if new != tok.string:
            start = src.starts[tok.start[0] - 1] + tok.start[1]
            edits.append(Edit(start, start + len(tok.string), new))
    return edits


def rename_tests(text: str, plan: Plan) -> str:
    """Test code with the function renamed (its comments too), and the keyword arguments of
    calls to it, or to the parameter of HumanEval's `check(candidate)`, renamed with its
    arguments."""
    tree = parse(text)
    if tree is None:
        raise Unsupported("the tests do not parse")
    src = Located(text, tree)
    checks = {
        n.args.args[0].arg
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and n.name == "check" and n.args.args
    }
    edits = reference_edits(src, [tree], {plan.old: plan.new}, set())
    edits += _keyword_edits(src, tree, plan.args, {plan.old, *checks})
    edits += comment_edits(src, plan, None)
    return apply_edits(text, edits)


def _keyword_edits(
    src: Located, tree: ast.AST, args: dict[str, str], calls_to: set[str]
) -> list[Edit]:
    edits: list[Edit] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id not in calls_to:
                continue
            for kw in node.keywords:
                if kw.arg in args:
                    edits.append(src.at(kw.lineno, kw.col_offset, kw.arg, args[kw.arg]))
    return edits


def still_named(code: str, old: str) -> bool:
    """Whether code still refers to `old` as a name (not as an attribute)."""
    tree = parse(code)
    if tree is None:
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == old:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == old:
            return True
    return False


def strings_naming(code: str, old: str) -> bool:
    """Whether a string literal that is not a docstring names `old` (an identifier-like name
    as a word, a plain word only as a call: "No solution" is English, `"solution(2)"` code)."""
    tree = parse(code)
    if tree is None:
        return False
    docs = {id(d) for n in ast.walk(tree) if (d := docstring_node(n)) is not None}
    tail = r"(?!\w)" if is_identifier_like(old) else r"\s*\("
    pattern = re.compile(rf"(?<!\w){re.escape(old)}{tail}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docs:
            continue
        if isinstance(node.value, str) and pattern.search(node.value):
            return True
    return False


def used_names(*texts: str) -> set[str]:
    """Every identifier-shaped word of the problem (code, tests, prose): none is a new name."""
    return {w for t in texts for w in re.findall(r"[A-Za-z_]\w*", t)}


def mbpp_entry(code: ast.Module, tests: Sequence[str]) -> str | None:
    """The function MBPP's asserts test: a module-level function of the code called in every
    assert (the outermost such call of the first assert when several are)."""
    defined = [n.name for n in code.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    called: list[list[str]] = []
    for t in tests:
        tree = parse(t)
        if tree is None:
            return None
        called.append(
            [
                n.func.id
                for n in ast.walk(tree)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in defined
            ]
        )
    if not called or not called[0]:
        return None
    everywhere = [n for n in called[0] if all(n in c for c in called[1:])]
    return (everywhere or called[0])[0]


# -- the kind -------------------------------------------------------------------------------------


class CodeRename(Perturbation):
    name = "code-rename"
    description = (
        "the function and its arguments renamed consistently in prompt, tests and solution; "
        "docstring examples dropped or rewritten with the new name"
    )
    tasks = ("humaneval", "mbpp", "mbpp-sanitized")
    preserves_answer = False

    def apply(self, problem: Problem, rng: random.Random, ctx: Context) -> Problem | Skip:
        try:
            if ctx.task == "humaneval":
                return self._humaneval(problem, rng)
            return self._mbpp(problem, rng)
        except Unsupported as e:
            return Skip(str(e))

    def _plan(self, old: str, args: list[ast.arg], rng: random.Random, taken: set[str]) -> Plan:
        names = _Names(rng, taken)
        new = names.function(old)
        renamed = {a.arg: names.argument(a) for a in args}
        return Plan(old, new, renamed, rng.choice(("drop", "rename")))

    def _humaneval(self, problem: Problem, rng: random.Random) -> Problem | Skip:
        meta = problem.meta
        prompt, test, old = str(meta["prompt"]), str(meta["test"]), str(meta["entry_point"])
        program = problem.answer
        if not program.startswith(prompt):
            return Skip("the canonical program does not start with the prompt")
        tree = parse(program)
        if tree is None:
            return Skip("the canonical program does not parse")
        entry = _entry_def(tree, old)
        if entry is None:
            return Skip("entry point not found")
        plan = self._plan(old, _all_args(entry), rng, used_names(program, test))
        edits, examples = program_edits(program, tree, plan)
        cut = len(prompt)
        if any(e.start < cut < e.end for e in edits):
            raise Unsupported("a renaming crosses the end of the prompt")
        new_prompt = apply_edits(prompt, [e for e in edits if e.end <= cut])
        new_solution = apply_edits(
            program[cut:],
            [Edit(e.start - cut, e.end - cut, e.text) for e in edits if e.start >= cut],
        )
        new_program = new_prompt + new_solution
        new_test = rename_tests(test, plan)
        checked = self._check(plan, [new_program, new_test])
        if checked:
            return checked
        return derive(
            problem,
            self.name,
            _params(plan, examples),
            question=new_prompt,
            answer=new_program,
            reference=fenced(new_program),
            meta={"prompt": new_prompt, "test": new_test, "entry_point": plan.new},
        )

    def _check(self, plan: Plan, pieces: Sequence[str]) -> Skip | None:
        """Why the renamed code still holds the old name, or None."""
        for piece in pieces:
            if strings_naming(piece, plan.old):
                return Skip("the entry point's name is written inside a string literal")
            if still_named(piece, plan.old):
                return Skip("the entry point's name is still used after renaming")
            if parse(piece) is None:
                return Skip("the renamed code does not parse")
        return None

    def _mbpp(self, problem: Problem, rng: random.Random) -> Problem | Skip:
        meta = problem.meta
        code, tests, setup = problem.answer, list(meta["tests"]), str(meta.get("setup") or "")
        tree = parse(code)
        if tree is None:
            return Skip("the canonical solution does not parse")
        old = mbpp_entry(tree, tests)
        if old is None:
            return Skip("entry point not found (no function of the code is called by the tests)")
        entry = _entry_def(tree, old)
        assert entry is not None
        plan = self._plan(
            old,
            _all_args(entry),
            rng,
            used_names(code, setup, problem.question, *tests),
        )
        edits, examples = program_edits(code, tree, plan)
        new_code = apply_edits(code, edits)
        new_tests = [rename_tests(t, plan) for t in tests]
        new_setup = rename_tests(setup, plan) if setup.strip() else setup
        question = rename_prose(problem.question, (old, plan.new), {})
        checked = self._check(plan, [new_code, new_setup, *new_tests])
        if checked:
            return checked
        return derive(
            problem,
            self.name,
            _params(plan, examples),
            question=question,
            answer=new_code,
            reference=fenced(new_code),
            meta={
                "tests": new_tests,
                "setup": new_setup,
                "test": new_setup + "\n" + "\n".join(new_tests),
                "entry_point": plan.new,
            },
        )


def _params(plan: Plan, examples: str) -> dict[str, Any]:
    return {"entry_point": [plan.old, plan.new], "arguments": dict(plan.args), "examples": examples}


__all__ = [
    "SYNONYMS",
    "CodeRename",
    "docstring_node",
    "drop_examples",
    "name_words",
    "rename_prose",
    "swap_words",
]
