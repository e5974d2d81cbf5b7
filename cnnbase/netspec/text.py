"""The text form of a whole network: the items of ``specs/netspec.md``'s grammar, separated by commas, each a
layer (its words are :mod:`cnnbase.netspec.grammar`'s), a block or a repeat.

Blocks are written ``residual(body | shortcut: path) relu`` and ``concat(branch ; branch ; ...)``: each path
a list of items read as the network is, so blocks nest; ``3*item`` repeats an item. Each block type has one
entry in :data:`_BLOCK_FORMS` (its word, its path separator, how to build and split it). The reader
(:class:`_Reader`) keeps the open blocks on a stack of its own rather than recursing, so that hostile text
(thousands of ``(``) fails with one :class:`SpecParseError`. :func:`parse_spec` reads a network, :func:`to_spec`
writes the canonical text back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from ..checks import invalid
from .blocks import MAX_NESTING, Concat, Residual
from .errors import NetSpecError, SpecParseError
from .formats import brief_value, format_value
from .grammar import _BadWord, _int, _parse_layer, _Word, _word_option, layer_word_text
from .record import Layer
# --------------------------------------------------------------------------------------------------
# Blocks and the reader of a whole network

#: The tokens of the grammar: the punctuation ``,`` (between layers), ``(`` ``)`` (around a block's paths),
#: ``|`` (before a residual's shortcut), ``;`` (between a concat's branches), and words.
_TOKEN = re.compile(r"[,;|()]|[^\s,;|()]+")
_PUNCTUATION = {",", ";", "|", "(", ")"}
_CHUNK = re.compile(r"\S+")

#: ``3*residual(...)``: a repeat count glued to ``*`` before a layer or a block.
_REPEAT = re.compile(r"([0-9]+)\*(.*)", re.S)

#: The optional label after a residual's ``|`` (``| shortcut: conv64k1s2, bn``); :func:`to_spec` writes it.
_SHORTCUT = "shortcut:"

#: The word of an empty path, one that passes the block's input through (``concat(conv8k1 ; identity)``).
_IDENTITY = "identity"

#: How many layers a text spec may expand to, counting the layers inside blocks and every repeat. Without
#: repeats the length of the text bounds its layers; with them a short text could ask for billions
#: (``999*residual(999*residual(...))``), which every walk over the network would then visit. The largest
#: published networks have a few hundred layers (ResNet-152: about 500 with its batch norms and ReLUs).
MAX_TEXT_LAYERS = 100_000


@dataclass(frozen=True)
class _BlockForm:
    """The text form of one block type: ``word(path <separator> path ...) options``.

    * ``type``: the block type (a key of :data:`BLOCK_TYPES`); ``word``: the word before its ``(``;
    * ``separator``: the punctuation between its paths; ``least``, ``most``: how many paths it takes
      (``None``: no bound);
    * ``build``: ``(paths, options) -> record``; ``split``: ``record -> paths`` as they are written (a
      residual's identity shortcut is left out);
    * ``letters``: for the shared option reader (:func:`_word_option`); blocks take no numeric option.

    Messages label the paths as :meth:`Block.named_branches` does (``body``, ``shortcut``, ``branch0``).
    """

    type: str
    word: str
    separator: str
    least: int
    most: int | None
    build: Callable[[list, dict], Layer]
    split: Callable[[Layer], list]
    letters: dict[str, str] = field(default_factory=dict)  # none: blocks take no numeric option


def _build_residual(paths: list, options: dict) -> Layer:
    return Residual(paths[0], paths[1] if len(paths) > 1 else (), **options)


def _split_residual(block) -> list:
    return [block.body, block.shortcut] if block.shortcut else [block.body]


#: The blocks that have a text form, by their word.
_BLOCK_FORMS = {
    form.word: form
    for form in (
        _BlockForm("Residual", "residual", "|", 1, 2, _build_residual, _split_residual),
        _BlockForm("Concat", "concat", ";", 2, None, lambda paths, options: Concat(paths, **options),
                   lambda block: list(block.branches)),
    )
}
_BLOCK_FORMS_BY_TYPE = {form.type: form for form in _BLOCK_FORMS.values()}
_BLOCKS_HINT = " or ".join(f"{word}(...)" for word in _BLOCK_FORMS)


def _path_label(form: _BlockForm | None, index: int) -> str:
    if form is None:
        return ""
    if form.type == "Residual":
        return ("body", "shortcut")[min(index, 1)]
    return f"branch{index}"


@dataclass
class _Open:
    """A block being read (or, with ``form`` None, the network itself): its paths so far and their size."""

    form: _BlockForm | None
    word: _Word | None
    count: int = 1
    paths: list = field(default_factory=lambda: [[]])
    size: int = 0  # layers in the paths so far, counting those inside blocks and every repeat


class _Reader:
    """Reads a text spec token by token with an explicit stack of open blocks: no recursion, so that a
    hostile text of thousands of ``(`` fails with one :class:`SpecParseError` (past :data:`MAX_NESTING`)
    instead of a ``RecursionError``."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = [_Word(m.group(), m.start() + 1) for m in _TOKEN.finditer(text)]
        self.at = 0
        self.stack = [_Open(None, None)]

    # ---- where we are, for messages

    def place(self, depth: int | None = None) -> str:
        """``layer 3`` or ``layer 2, body layer 1, branch0 layer 2``: the item being read (in the ``depth``
        outer frames of the stack: all by default), numbered as the summary numbers layers (from 1 within
        each path, every repeat counted)."""
        parts = []
        for frame in self.stack[:depth]:
            label = _path_label(frame.form, len(frame.paths) - 1)
            parts.append(f"{label} layer {len(frame.paths[-1]) + 1}".lstrip())
        if len(parts) > 5:  # deep nesting: the outer and inner places, so that the message stays one short line
            parts = parts[:2] + [f"... ({len(parts) - 4} more)"] + parts[-2:]
        return ", ".join(parts)

    def fail(self, word: _Word, why: str):
        raise SpecParseError(f"{self.place()}, word {format_value(word.text, 40)} at column {word.column}: {why}")

    def chunk(self, word: _Word) -> _Word:
        """The word as typed, up to the next space (``conv(8k3``): what to show for a ``(`` after a layer."""
        return _Word(_CHUNK.match(self.text, word.column - 1).group(), word.column)

    def peek(self, ahead: int = 0) -> _Word | None:
        index = self.at + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    # ---- reading

    def network(self) -> list[Layer]:
        if not self.tokens:
            raise SpecParseError(
                "the spec is empty; write layers separated by commas, e.g. 'conv32k3 relu, flatten, dense10'")
        while True:
            if self.item():
                continue  # a block opened: its first path starts here
            if not self.separator():
                return self.stack[0].paths[0]

    def item(self) -> bool:
        """Read one item: a layer (added) or the head of a block (opened; True)."""
        token = self.peek()
        if token is None or token.text in _PUNCTUATION:
            self.missing_item(token)
        count, token = self.repeat(token)
        after = self.peek(1)
        if after is not None and after.text == "(":
            self.open(token, count)
            return True
        words = []
        while self.peek() is not None and self.peek().text not in _PUNCTUATION:
            words.append(self.peek())
            self.at += 1
        if words[0].text == _IDENTITY:
            self.identity(words, count)
            return False
        if words[0].text in _BLOCK_FORMS:
            self.fail(words[0], f"a {words[0].text} block writes its paths in parentheses: "
                                f"{words[0].text}(...){self.example(words[0].text)}")
        if words[0].text.startswith(_SHORTCUT):
            self.fail(words[0], "'shortcut:' labels the shortcut of a residual, after its '|'")
        try:
            layer = _parse_layer(words)
        except _BadWord as bad:
            self.fail(bad.word, bad.why)
        if count > 1 and layer.name is not None:
            self.fail(words[-1] if words[-1].text.startswith("@") else words[0],
                      f"a repeated layer cannot be named: its {count} copies would share the name")
        self.add(layer, count, 1, words[0])
        return False

    @staticmethod
    def example(word: str) -> str:
        return {"residual": " (residual(conv8k3 same, bn | shortcut: conv8k1, bn) relu)",
                "concat": " (concat(conv8k1 ; conv8k3 same))"}.get(word, "")

    def missing_item(self, token: _Word | None):
        """No item where one must start: a ``(`` without its block word, a separator out of place, an
        empty path of a block, or an empty layer (two commas in a row)."""
        frame = self.stack[-1]
        if token is not None and token.text == "(":
            self.fail(token, f"a '(' opens the paths of a block and follows its word: {_BLOCKS_HINT}")
        if frame.form is None and token is not None and token.text in ";|)":
            self.separator()  # refuses the punctuation that belongs to blocks
        column = token.column if token is not None else len(self.text) + 1
        if frame.form is not None and not frame.paths[-1] and (token is None or token.text != ","):
            label = _path_label(frame.form, len(frame.paths) - 1)
            raise SpecParseError(
                f"{self.place(len(self.stack) - 1)}, the {frame.form.word}'s {label} at column {column} is empty; "
                f"write '{_IDENTITY}' for a path that passes the input through")
        at = "" if frame.form is None else f" at column {column}"
        raise SpecParseError(f"{self.place()} is empty{at} (two commas in a row, or a comma at an end)")

    def repeat(self, token: _Word) -> tuple[int, _Word]:
        """``3*residual(...)``: the count and the item's first word (``3* conv8k3`` may have a space)."""
        match = _REPEAT.fullmatch(token.text)
        if not match:
            return 1, token
        digits, rest = match.groups()
        try:
            count = _int(token, digits, "the repeat count")
        except _BadWord as bad:
            self.fail(bad.word, bad.why)
        if count < 1:
            self.fail(token, "a repeat count is at least 1 (3*residual(...))")
        if rest:
            head = _Word(rest, token.column + len(digits) + 1)
            self.tokens[self.at] = head
            return count, head
        self.at += 1
        head = self.peek()
        if head is None or head.text in _PUNCTUATION:
            self.fail(token, f"a repeat count comes before a layer or a block: 3*conv8k3 same, 2*{_BLOCKS_HINT}")
        return count, head

    def identity(self, words: list[_Word], count: int):
        frame, after = self.stack[-1], self.peek()
        at_path_start = frame.form is not None and not frame.paths[-1] and count == 1
        if not (at_path_start and len(words) == 1 and (after is None or after.text in ";|)")):
            self.fail(words[-1] if len(words) > 1 else words[0],
                      f"'{_IDENTITY}' is a whole path of a block that passes its input through "
                      f"(concat(conv8k1 ; {_IDENTITY})), written alone between its separators")

    def open(self, word: _Word, count: int):
        form = _BLOCK_FORMS.get(word.text)
        if form is None:
            self.fail(self.chunk(word), f"unknown layer or block; a block is {_BLOCKS_HINT}")
        if len(self.stack) > MAX_NESTING:
            self.fail(word, f"blocks nest more than {MAX_NESTING} deep here; a network needs far fewer")
        self.stack.append(_Open(form, word, count))
        self.at += 2

    def separator(self) -> bool:
        """After an item: ``,`` (next item, True), ``;`` or ``|`` (next path, True), ``)`` (close the block,
        then look again), or the end (False)."""
        while True:
            token = self.peek()
            if token is None:
                self.end()
                return False
            frame = self.stack[-1]
            if token.text == ")":
                self.close(token)
                continue
            if token.text == "(":
                self.fail(token, f"a '(' opens the paths of a block and follows its word: {_BLOCKS_HINT}")
            if token.text in ";|":
                self.next_path(frame, token)
            self.at += 1
            if token.text == "|" and self.peek() is not None and self.peek().text.startswith(_SHORTCUT):
                self.shortcut_label()
            return True

    def next_path(self, frame: _Open, token: _Word):
        if frame.form is None:
            self.fail(token, f"'{token.text}' separates the paths of a block ({_BLOCKS_HINT}); layers are "
                             "separated by ','")
        form = frame.form
        if token.text != form.separator:
            self.fail(token, f"the paths of a {form.word} are separated by '{form.separator}'"
                             f"{self.example(form.word)}")
        if form.most is not None and len(frame.paths) >= form.most:
            self.fail(token, f"a {form.word} has at most {form.most} paths"
                             f"{': a body and a shortcut' if form.type == 'Residual' else ''}")
        frame.paths.append([])

    def shortcut_label(self):
        label = self.peek()
        if label.text == _SHORTCUT:
            self.at += 1
        else:  # glued: shortcut:conv64k1
            self.tokens[self.at] = _Word(label.text[len(_SHORTCUT):], label.column + len(_SHORTCUT))

    def close(self, token: _Word):
        frame = self.stack[-1]
        if frame.form is None:
            self.fail(token, "this ')' closes no block (is a '(' missing?)")
        self.stack.pop()
        self.at += 1
        form, options = frame.form, {}
        words = []
        while self.peek() is not None and self.peek().text not in _PUNCTUATION:
            words.append(self.peek())
            self.at += 1
        try:
            for word in words:
                _word_option(word, form, options)
        except _BadWord as bad:
            self.fail(bad.word, bad.why)
        if frame.count > 1 and "name" in options:
            named = next(word for word in words if word.text.startswith("@"))
            self.fail(named, f"a repeated block cannot be named: its {frame.count} copies would share the name")
        if len(frame.paths) < form.least:
            self.fail(frame.word, f"a {form.word} needs at least {form.least} paths separated by "
                                  f"'{form.separator}'{self.example(form.word)}")
        try:
            block = form.build(frame.paths, options)
        except (ValueError, TypeError) as error:
            self.fail(frame.word, str(error))
        self.add(block, frame.count, frame.size + 1, frame.word)

    def add(self, layer: Layer, count: int, size: int, word: _Word):
        frame = self.stack[-1]
        total = frame.size + count * size
        if total > MAX_TEXT_LAYERS:
            self.fail(word, f"the text expands to more than {MAX_TEXT_LAYERS:,} layers (counting those inside blocks "
                            "and every repeat); a network needs far fewer")
        frame.size = total
        frame.paths[-1].extend([layer] * count)

    def end(self):
        if len(self.stack) > 1:
            frame = self.stack.pop()
            self.fail(frame.word, f"the '(' of this {frame.form.word} is never closed; end its paths with ')'")


def parse_spec(text: str) -> list[Layer]:
    """Read the text grammar of ``specs/netspec.md``: layers separated by commas, each a head word
    (``conv32k3``, ``maxpool2``, ``dense10``, ...) followed by options (``s2``, ``p1``, ``same``,
    ``relu``, ``@name``, ...); blocks ``residual(body | shortcut: path) relu`` and
    ``concat(branch ; branch ; ...)``, nested as deep as :data:`MAX_NESTING`; ``3*item`` repeats an item.

    Raises :class:`SpecParseError` naming the layer number (within each path of the blocks around it), the
    bad word and its column.
    """
    if not isinstance(text, str):
        raise SpecParseError(f"a text spec must be a str; received {type(text).__name__}")
    return _Reader(text).network()


# --------------------------------------------------------------------------------------------------
# Writing


def _layer_text(layer: Layer) -> str:
    if not isinstance(layer, Layer):
        raise NetSpecError(f"to_spec: expected layer records (Conv2D, Dense, ...); received {format_value(layer)}")
    if layer.type in _BLOCK_FORMS_BY_TYPE:
        return _block_text(layer, _BLOCK_FORMS_BY_TYPE[layer.type])
    return layer_word_text(layer)


def _block_text(block, form: _BlockForm) -> str:
    """``residual(body | shortcut: path) relu @name``; an empty path is written ``identity``."""
    paths = [_items_text(path) or _IDENTITY for path in form.split(block)]
    if form.type == "Residual" and len(paths) > 1:
        inner = f"{paths[0]} | {_SHORTCUT} {paths[1]}"
    else:
        inner = f" {form.separator} ".join(paths)
    words = [f"{form.word}({inner})"]
    if getattr(block, "activation", None):
        words.append(block.activation)
    if block.name is not None:
        words.append("@" + block.name)
    return " ".join(words)


def _items_text(layers) -> str:
    """The layers of one path, a run of equal unnamed layers written once with its count (``3*residual(...)``)."""
    parts, start = [], 0
    while start < len(layers):
        layer, end = layers[start], start + 1
        if isinstance(layer, Layer) and layer.name is None:
            while end < len(layers) and layers[end] == layer:
                end += 1
        text = _layer_text(layer)
        parts.append(text if end - start == 1 else f"{end - start}*{text}")
        start = end
    return ", ".join(parts)


def to_spec(layers) -> str:
    """The text form of ``layers``, the inverse of :func:`parse_spec`: defaults left out, numeric options
    glued, blocks written with their paths in parentheses and runs of equal unnamed layers as ``N*layer``."""
    if not isinstance(layers, (list, tuple)):
        raise TypeError(invalid("to_spec", "layers", "a list of layer records", brief_value(layers)))
    return _items_text(layers)
