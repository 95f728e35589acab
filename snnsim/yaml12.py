"""A strict, bounded YAML 1.2 reader for snnsim's configs.

PyYAML reads YAML 1.1: ``yes``/``no``/``on``/``off`` are booleans, ``1:30`` is 90, ``0_9`` is 9
and ``040`` is 32, and any tag can construct objects. :class:`StrictLoader` reads the YAML 1.2
core schema instead (https://yaml.org/spec/1.2.2/#1032-tag-resolution), with its own resolver
table: plain mappings, lists, text, numbers, booleans and null, and nothing else. Everything a
document could use to exhaust the reader is bounded: nesting (while composing, so no
RecursionError), alias expansion ("billion laughs"), recursive aliases, integer literal length.
:func:`notes_of` keeps the comment beside every value, which the hardware configs use to record
the source of each number. Refusals are :class:`YamlRefused`, with the fix; the caller turns them
into its own one-line errors.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from snnsim.limits import MAX_DOCUMENT_DEPTH

#: Nodes of one YAML document after aliases are expanded (the shipped configs have < 400).
MAX_DOCUMENT_NODES = 100_000
#: Digits of an integer literal (Python refuses to parse > 4,300; no snnsim bound needs > 19).
MAX_INT_DIGITS = 40


def short_value(value: Any) -> str:
    """A value as an error message quotes it (at most 60 characters)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class YamlRefused(yaml.MarkedYAMLError):
    """A YAML document snnsim will not read (tag, key, size, depth), with its fix."""

    def __init__(self, problem: str, fix: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.fix = fix


# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution): the only implicit
# types. PyYAML's own resolver is YAML 1.1's (yes/no/on/off booleans, 1:30 = 90, 0_9 = 9, 040 = 32).
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)\Z")
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)\Z")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT_NUM_RE = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF_RE = re.compile(r"^[-+]?\.(?:inf|Inf|INF)\Z")
_NAN_RE = re.compile(r"^\.(?:nan|NaN|NAN)\Z")
_FLOAT_RE = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z")
_TAG = "tag:yaml.org,2002:"
_STR_TAG = _TAG + "str"


class _Core12Resolver(yaml.resolver.BaseResolver):
    """Implicit tags of the YAML 1.2 core schema only (its own table, not the 1.1 one)."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}


_Core12Resolver.add_implicit_resolver(_TAG + "null", _NULL_RE, ["~", "n", "N", ""])
_Core12Resolver.add_implicit_resolver(_TAG + "bool", _BOOL_RE, list("tTfF"))
_Core12Resolver.add_implicit_resolver(_TAG + "int", _INT_RE, list("-+0123456789"))
_Core12Resolver.add_implicit_resolver(_TAG + "float", _FLOAT_RE, list("-+0123456789."))


class StrictLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
                    yaml.constructor.SafeConstructor, _Core12Resolver):
    """A safe YAML 1.2 core-schema loader: only plain mappings, lists, text, numbers, booleans and
    null; nesting bounded while composing (no RecursionError); no other tags."""

    yaml_constructors: dict[Any, Any] = {}

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Core12Resolver.__init__(self)
        self._nesting = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._nesting >= MAX_DOCUMENT_DEPTH:
            raise YamlRefused(f"nested deeper than {MAX_DOCUMENT_DEPTH} levels",
                               "flatten it (a config needs at most 6 levels)", self.peek_event().start_mark)
        self._nesting += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._nesting -= 1


def _construct_null(loader: StrictLoader, node: yaml.ScalarNode) -> None:
    text = loader.construct_scalar(node)
    if not _NULL_RE.match(text):
        raise YamlRefused(f"{text!r} is not null", "write null or ~, or remove the tag", node.start_mark)
    return None


def _construct_bool(loader: StrictLoader, node: yaml.ScalarNode) -> bool:
    text = loader.construct_scalar(node)
    if not _BOOL_RE.match(text):
        raise YamlRefused(f"{text!r} is not a boolean (YAML 1.2: only true and false are)",
                           "write true or false", node.start_mark)
    return text.lower() == "true"


def _construct_int(loader: StrictLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if not _INT_RE.match(text):
        raise YamlRefused(f"{text!r} is not an integer (YAML 1.2: digits, 0o... or 0x...)",
                           "write plain digits such as 1000", node.start_mark)
    digits = text.lstrip("+-")
    if len(digits) > MAX_INT_DIGITS:
        raise YamlRefused(f"an integer of {len(digits)} digits is out of range",
                           f"write at most {MAX_INT_DIGITS} digits (every bound is far smaller)", node.start_mark)
    if digits.startswith("0o"):
        return int(digits[2:], 8)
    if digits.startswith("0x"):
        return int(digits[2:], 16)
    return int(text, 10)


def _construct_float(loader: StrictLoader, node: yaml.ScalarNode) -> float:
    text = loader.construct_scalar(node)
    if _INF_RE.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN_RE.match(text):
        return math.nan
    if not _FLOAT_NUM_RE.match(text):
        raise YamlRefused(f"{text!r} is not a number (YAML 1.2 core schema)",
                           "write a number such as 0.9 or 2.0e+8", node.start_mark)
    return float(text)  # a huge literal is inf here, and refused by the schema as not finite


def _construct_map(loader: StrictLoader, node: yaml.MappingNode) -> Any:
    data: dict[str, Any] = {}
    yield data
    # keys were checked (text, no duplicates) by _check_graph; no YAML 1.1 merge keys (<<)
    data.update(yaml.constructor.BaseConstructor.construct_mapping(loader, node))


def _construct_undefined(loader: StrictLoader, node: yaml.Node) -> None:
    raise YamlRefused(f"the tag {node.tag!r} is not allowed",
                       "remove it; a config holds only mappings, lists, text, numbers, true/false and null",
                       node.start_mark)


for _tag, _fn in ((_TAG + "null", _construct_null), (_TAG + "bool", _construct_bool),
                  (_TAG + "int", _construct_int), (_TAG + "float", _construct_float),
                  (_STR_TAG, yaml.constructor.SafeConstructor.construct_yaml_str),
                  (_TAG + "seq", yaml.constructor.SafeConstructor.construct_yaml_seq),
                  (_TAG + "map", _construct_map), (None, _construct_undefined)):
    StrictLoader.add_constructor(_tag, _fn)


def check_graph(root: yaml.Node) -> None:
    """Refuse what the schema must never see: non-text or duplicate keys, recursive aliases, and
    documents that aliases expand beyond MAX_DOCUMENT_DEPTH levels or MAX_DOCUMENT_NODES nodes
    ("billion laughs"). Memoised per node, so it costs the size of the text, not of the expansion."""
    height: dict[int, int] = {}
    size: dict[int, int] = {}
    active: set[int] = set()

    def visit(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in active:
            raise YamlRefused("an alias refers to the mapping or list that contains it",
                               "remove the recursive alias", node.start_mark)
        if key in height:
            if depth + height[key] - 1 > MAX_DOCUMENT_DEPTH:
                raise YamlRefused(f"aliases nest it deeper than {MAX_DOCUMENT_DEPTH} levels",
                                   "write the values out instead of aliasing them", node.start_mark)
            return height[key], size[key]
        if depth > MAX_DOCUMENT_DEPTH:
            raise YamlRefused(f"nested deeper than {MAX_DOCUMENT_DEPTH} levels", "flatten it", node.start_mark)
        h, s = 1, 1
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            active.add(key)
            children: list[yaml.Node] = []
            if isinstance(node, yaml.MappingNode):
                seen: dict[str, yaml.Node] = {}
                for k, v in node.value:
                    if not isinstance(k, yaml.ScalarNode) or k.tag != _STR_TAG:
                        what = "a mapping" if isinstance(k, yaml.MappingNode) else \
                            "a list" if isinstance(k, yaml.SequenceNode) else \
                            f"{short_value(k.value)} (a YAML {k.tag.rsplit(':', 1)[-1]})"
                        raise YamlRefused(f"keys must be text, found {what} as a key",
                                           "write the key as a plain name", k.start_mark)
                    if k.value in seen:
                        raise YamlRefused(f"duplicate key {k.value!r} (line {k.start_mark.line + 1}; first "
                                           f"on line {seen[k.value].start_mark.line + 1})",
                                           "remove one of them", k.start_mark)
                    seen[k.value] = k
                    children += [k, v]
            else:
                children = list(node.value)
            for child in children:
                ch, cs = visit(child, depth + 1)
                h = max(h, ch + 1)
                s += cs
                if s > MAX_DOCUMENT_NODES:
                    raise YamlRefused(f"aliases expand it to more than {MAX_DOCUMENT_NODES:,} values",
                                       "write a plain config without alias chains", node.start_mark)
            active.discard(key)
        height[key], size[key] = h, s
        return h, s

    visit(root, 1)


@dataclass(frozen=True)
class Note:
    """The comment written beside a scalar value (its recorded source) and the file it is in."""

    text: str | None
    file: Path


_COMMENT_RE = re.compile(r"(?:^|\s)#\s?(.*)$")


def notes_of(node: yaml.Node, lines: list[str], file: Path, depth: int = 0) -> Any:
    """A tree shaped like the document, with a :class:`Note` at every scalar."""
    if depth > MAX_DOCUMENT_DEPTH:
        return None
    if isinstance(node, yaml.MappingNode):
        return {k.value: notes_of(v, lines, file, depth + 1) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [notes_of(v, lines, file, depth + 1) for v in node.value]
    if getattr(node, "style", None) in ("|", ">"):  # a block scalar: no comment on its last line
        return Note(None, file)
    line = node.end_mark.line
    rest = lines[line][node.end_mark.column:] if line < len(lines) else ""
    m = _COMMENT_RE.search(rest)
    return Note(m.group(1).strip() or None if m else None, file)
