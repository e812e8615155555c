"""Port of SrsConfDirective::parse_conf / read_token: the SRS config syntax as a directive tree.

The syntax, nginx-like::

    # a comment, to the end of the line
    listen              1935 [::]:1935;
    vhost __defaultVhost__ {
        play { gop_cache off; mw_latency "100"; }
    }
    include             ./conf/vhosts.conf;

* A directive is ``name arg...`` closed by ``;`` or by a ``{ ... }`` block, and it must
  sit on ONE line: a newline before its ``;`` or ``{`` is an error, as in SRS.
* Arguments may be quoted with ``"`` or ``'`` (no escapes; a quote cannot span lines).
* ``#`` opens a comment only where a token may start, so ``http://h/#x`` is one word.
* ``include FILE...;`` is allowed at any level and inlines the files' directives in its
  place. A relative FILE is looked up beside the including file first, then in each of
  ``include_dirs`` (SRS resolves includes against its working directory, and its own
  samples say ``include ./conf/x.conf;``). Include cycles are errors.

The parser is pure: it reads files only to follow ``include``, and knows nothing of what
the directives mean. Every error is a :class:`~srspy.errors.ConfigError` whose message
starts with ``FILE:LINE:``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from ..errors import ConfigError

INCLUDE = "include"

# One alternative per token kind; every character of the input starts exactly one of them.
_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r]+)
  | (?P<eol>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<punct>[;{}])
  | (?P<quoted>"[^"\n]*"|'[^'\n]*')
  | (?P<badquote>["'])
  | (?P<word>[^ \t\r\n;{}"'\#][^ \t\r\n;{}]*)
    """,
    re.VERBOSE,
)
_DELIMITERS = " \t\r\n;{}"


@dataclass(slots=True)
class Directive:
    """Port of SrsConfDirective: ``name args...`` with its place in the source and its block.

    ``block`` tells ``name { }`` (True) from ``name;`` (False); the root is a block named "".
    """

    name: str
    args: list[str]
    line: int
    file: str
    children: list["Directive"] = field(default_factory=list)
    block: bool = False

    @property
    def where(self) -> str:
        """``FILE:LINE``, how errors and warnings point at this directive."""
        return f"{self.file}:{self.line}"

    def get(self, name: str) -> "Directive | None":
        """Port of SrsConfDirective::get: the first child called ``name``."""
        for child in self.children:
            if child.name == name:
                return child
        return None


def parse_file(path: str, include_dirs: Sequence[str] = ()) -> Directive:
    """Parse the file at ``path``; errors name it as given."""
    return _Parser(include_dirs).parse_file(path, display=path, chain=())


def parse_text(text: str, file: str = "<text>", include_dirs: Sequence[str] = ()) -> Directive:
    """Parse ``text``; ``file`` names it in errors, relative includes use ``include_dirs``."""
    return _Parser(include_dirs).parse_text(text, file, base_dir=None, chain=())


def _tokens(text: str, file: str) -> Iterator[tuple[str, str, int]]:
    """Yield ``(kind, value, line)`` with kind word, ``;``, ``{``, ``}``, eol or eof."""
    line = 1
    for m in _TOKEN.finditer(text):
        kind, value = m.lastgroup, m.group()
        if kind == "eol":
            yield "eol", value, line
            line += 1
        elif kind == "punct":
            yield value, value, line
        elif kind == "word":
            yield "word", value, line
        elif kind == "quoted":
            end = m.end()
            if end < len(text) and text[end] not in _DELIMITERS:
                raise ConfigError(f"{file}:{line}: unexpected {text[end]!r} after the quoted string {value}")
            yield "word", value[1:-1], line
        elif kind == "badquote":
            raise ConfigError(f"{file}:{line}: quoted string not closed before the end of the line")
    yield "eof", "", line


class _Parser:
    """Builds the tree; a small state machine over the tokens of one file at a time."""

    def __init__(self, include_dirs: Sequence[str]):
        self.include_dirs = list(include_dirs)

    def parse_file(self, path: str, display: str, chain: tuple[str, ...]) -> Directive:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ConfigError(f"{display}: cannot read the config file: {reason}") from None
        real = os.path.realpath(path)
        return self.parse_text(text, display, os.path.dirname(real), chain + (real,))

    def parse_text(self, text: str, file: str, base_dir: str | None, chain: tuple[str, ...]) -> Directive:
        root = Directive("", [], 0, file, block=True)
        stack = [root]
        words: list[tuple[str, int]] = []
        for kind, value, line in _tokens(text, file):
            if kind == "word":
                words.append((value, line))
            elif kind == ";":
                self._end_statement(file, line, words, stack[-1], base_dir, chain, value)
                words = []
            elif kind == "{":
                stack.append(self._open_block(file, line, words, stack[-1]))
                words = []
            else:  # "}", eol or eof: nothing may be pending
                if words:
                    where = {"}": '"}"', "eol": "the end of the line", "eof": "the end of the file"}[kind]
                    name, first = words[0]
                    raise ConfigError(f'{file}:{first}: directive "{name}" is not terminated: '
                                      f'expected ";" or "{{" before {where}')
                if kind == "}":
                    if len(stack) == 1:
                        raise ConfigError(f'{file}:{line}: unexpected "}}": no block to close')
                    stack.pop()
        if len(stack) > 1:
            block = stack[-1]
            raise ConfigError(f'{block.where}: block "{block.name}" is not closed: missing "}}"')
        return root

    def _end_statement(self, file, line, words, parent, base_dir, chain, value) -> None:
        if not words:
            raise ConfigError(f'{file}:{line}: unexpected "{value}": no directive before it')
        (name, first), args = words[0], [w for w, _ in words[1:]]
        if name == INCLUDE:
            parent.children.extend(self._include(file, first, args, base_dir, chain))
        else:
            parent.children.append(Directive(name, args, first, file))

    def _open_block(self, file, line, words, parent) -> Directive:
        if not words:
            raise ConfigError(f'{file}:{line}: unexpected "{{": no directive before it')
        (name, first), args = words[0], [w for w, _ in words[1:]]
        if name == INCLUDE:
            raise ConfigError(f'{file}:{first}: directive "include" cannot have a block')
        block = Directive(name, args, first, file, block=True)
        parent.children.append(block)
        return block

    def _include(self, file, line, args, base_dir, chain) -> list[Directive]:
        """Port of SrsConfDirective::parse_include_file: inline each file's directives."""
        if not args:
            raise ConfigError(f'{file}:{line}: directive "include" needs at least one file')
        out: list[Directive] = []
        for arg in args:
            path = self._locate(arg, base_dir)
            if path is None:
                raise ConfigError(f'{file}:{line}: include file "{arg}" not found')
            real = os.path.realpath(path)
            if real in chain:
                cycle = " -> ".join(os.path.basename(p) for p in chain[chain.index(real):] + (real,))
                raise ConfigError(f"{file}:{line}: include cycle: {cycle}")
            beside = bool(base_dir) and path == os.path.join(base_dir, arg)
            display = os.path.normpath(os.path.join(os.path.dirname(file), arg)) if beside else arg
            out.extend(self.parse_file(path, display, chain).children)
        return out

    def _locate(self, arg: str, base_dir: str | None) -> str | None:
        if os.path.isabs(arg):
            return arg if os.path.isfile(arg) else None
        dirs = ([base_dir] if base_dir else []) + self.include_dirs
        for d in dirs:
            candidate = os.path.join(d, arg)
            if os.path.isfile(candidate):
                return candidate
        return None

