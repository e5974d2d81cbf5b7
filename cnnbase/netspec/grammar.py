"""The text grammar of ``specs/netspec.md``: ``"conv32k3 relu, maxpool2, flatten, dense10 softmax"``.

Layers are separated by commas. A layer is a head word, the layer type with its main number and any
numeric options glued to it (``conv32k3s2``), followed by option words (``s2``, ``same``, ``relu``,
``@name``, ...). :func:`parse_spec` reads it; :func:`to_spec` writes the canonical text back.

Each layer type with a text form has ONE entry in :data:`_FORMS` that holds both directions: the regex
that reads its head word, and the function that writes the layer back. The option words are shared by
every type: an option is accepted where the layer's record has the argument it sets. A type without an
entry has no text form.

Blocks are written ``residual(body | shortcut: path) relu`` and ``concat(branch ; branch ; ...)``: each path
a list of items read as the network is, so blocks nest; ``3*item`` repeats an item. Each block type has one
entry in :data:`_BLOCK_FORMS` (its word, its path separator, how to build and split it). The reader
(:class:`_Reader`) keeps the open blocks on a stack of its own rather than recursing, so that hostile text
(thousands of ``(``) fails with one :class:`SpecParseError`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Callable

from .. import shapes
from ..checks import invalid, is_int
from ..padding import PADDING_MODES
from .errors import NetSpecError, SpecParseError
from .formats import _ints_text, brief_value, format_value
from .record import ACTIVATIONS, LAYER_TYPES, LARGEST_INT, Layer
from .blocks import MAX_NESTING, Concat, Residual


@dataclass(frozen=True)
class _Word:
    text: str
    column: int  # 1-based position in the spec


class _BadWord(Exception):
    def __init__(self, word: _Word, why: str):
        super().__init__(why)
        self.word, self.why = word, why


@dataclass(frozen=True)
class _Form:
    """The text form of one layer type, both directions.

    * ``type``: the layer type (a key of :data:`LAYER_TYPES`);
    * ``word``: the head word the layer is written with (``conv``, ``maxpool1d``);
    * ``head``: regex of every head word read as this type; group 1 is the main number, group 2 the
      numeric options glued to it (``k3s2`` in ``conv32k3s2``);
    * ``write``: ``(layer, word) -> (head, option words)``, defaults left out;
    * ``hint``: how the message for an unknown head word names this one (``conv<filters>``);
    * ``main``, ``read``: the argument the main number sets and ``(word, text, main) -> value`` reading it;
    * ``letters``: numeric option letters that set another argument than :data:`_LETTER_KEYS` says;
    * ``needs``: arguments the layer cannot be read without, each with how to write it.
    """

    type: str
    word: str
    head: str
    write: Callable[[Layer, str], tuple[str, list[str]]]
    hint: str
    main: str | None = None
    read: Callable[[_Word, str, str], object] | None = None
    letters: dict[str, str] = field(default_factory=dict)
    needs: dict[str, str] = field(default_factory=dict)
    pattern: re.Pattern = field(init=False, repr=False, compare=False)  # ``head``, compiled

    def __post_init__(self):
        object.__setattr__(self, "pattern", re.compile(self.head))


# --------------------------------------------------------------------------------------------------
# Reading a main number, and writing a layer back


def _int(word: _Word, digits: str, what: str) -> int:
    """The int of a run of ASCII digits, refused beyond :data:`LARGEST_INT` before it is converted (Python
    refuses to convert more than 4,300 digits, and no size needs more than 19)."""
    if len(digits) > 19 or int(digits) > LARGEST_INT:
        shown = digits if len(digits) <= 24 else digits[:21] + "..."
        raise _BadWord(word, f"{what} {shown} is larger than the largest size, 2**63-1")
    return int(digits)


def _ints(word: _Word, value: str, what: str) -> tuple[int, ...]:
    parts = value.split("x")
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise _BadWord(word, f"{what} must be ints joined by 'x' (3 or 3x5); received {format_value(value)}")
    return tuple(_int(word, p, what) for p in parts)


def _one_or_tuple(values: tuple[int, ...]):
    return values[0] if len(values) == 1 else values


def _read_int(word: _Word, number: str, what: str) -> int:
    return _int(word, number, what)


def _read_pool_size(word: _Word, number: str, what: str):
    return _one_or_tuple(_ints(word, number, what))


def _read_rate(word: _Word, number: str, what: str) -> float:
    try:
        return float(number)
    except ValueError:
        raise _BadWord(word, f"dropout needs a rate such as dropout0.5; received {format_value(number)}") from None


def _read_name(word: _Word, name: str, what: str) -> str:
    return name


def _read_channel_pad(word: _Word, number: str, what: str):
    """``chpad8`` -> 8 (8 zero channels on each side), ``chpad4:12`` -> (4, 12) (before, after)."""
    before, _, after = number.partition(":")
    return (_int(word, before, what), _int(word, after, what)) if after else _int(word, before, what)


def _padding_text(padding) -> str:
    if isinstance(padding, str):
        return "" if padding == "valid" else " " + padding
    if is_int(padding):
        return f"p{padding}"
    if all(is_int(v) for v in padding):
        return "p" + "x".join(map(str, padding))
    return "p" + "x".join(f"{b}:{e}" for b, e in padding)


def _with_padding(head: str, padding) -> tuple[str, list[str]]:
    """A padding amount is glued to the head (``p1``); a padding name is a word of its own (``same``)."""
    pad = _padding_text(padding)
    return (head + pad, []) if pad.startswith("p") else (head, [pad.strip()] if pad else [])


def _write_conv(layer, word: str):
    head = f"{word}{layer.filters}k{_ints_text(layer.kernel_size)}"
    if set(layer.strides) != {1}:
        head += f"s{_ints_text(layer.strides)}"
    if set(layer.dilation) != {1}:
        head += f"d{_ints_text(layer.dilation)}"
    if layer.groups != 1:
        head += f"g{layer.groups}"
    head, words = _with_padding(head, layer.padding)
    if layer.padding_mode != "zeros":
        words.append(layer.padding_mode)
    if not layer.use_bias:
        words.append("nobias")
    if layer.activation:
        words.append(layer.activation)
    return head, words


def _write_pool(layer, word: str):
    head = f"{word}{_ints_text(layer.pool_size)}"
    if layer.strides != layer.pool_size:
        head += f"s{_ints_text(layer.strides)}"
    head, words = _with_padding(head, layer.padding)
    if layer.ceil_mode:
        words.append("ceil")
    return head, words


def _write_avg_pool(layer, word: str):
    head, words = _write_pool(layer, word)
    if not layer.count_include_pad:
        words.append("exclude_pad")
    return head, words


def _write_word(layer, word: str):
    return word, []


def _write_dense(layer, word: str):
    head, words = f"{word}{layer.units}", []
    if not layer.use_bias:
        words.append("nobias")
    if layer.activation:
        words.append(layer.activation)
    return head, words


def _write_dropout(layer, word: str):
    return f"{word}{layer.rate!r}", []


def _write_batch_norm(layer, word: str):
    words = []
    if layer.eps != 1e-5:
        words.append(f"eps={layer.eps!r}")
    if layer.momentum != 0.1:
        words.append(f"momentum={layer.momentum!r}")
    return word, words


def _write_channel_pad(layer, word: str):
    before, after = layer.pads
    return (f"{word}{before}" if before == after else f"{word}{before}:{after}"), []


def _write_conv_transpose(layer, word: str):
    head = f"{word}{layer.filters}k{_ints_text(layer.kernel_size)}"
    if set(layer.strides) != {1}:
        head += f"s{_ints_text(layer.strides)}"
    if set(layer.dilation) != {1}:
        head += f"d{_ints_text(layer.dilation)}"
    head, words = _with_padding(head, layer.padding)
    if layer.output_padding is not None:
        words.append(f"op{_ints_text(layer.output_padding)}")
    if not layer.use_bias:
        words.append("nobias")
    if layer.activation:
        words.append(layer.activation)
    return head, words


def _read_zero_padding(word: _Word, number: str, what: str):
    return _padding_value(word, number)


def _write_zero_padding(layer, word: str):
    pairs = layer.pairs
    if all(b == e for b, e in pairs):
        per_axis = [b for b, _ in pairs]
        amount = str(per_axis[0]) if len(set(per_axis)) == 1 else "x".join(map(str, per_axis))
    else:
        amount = "x".join(f"{b}:{e}" for b, e in pairs)
    return f"{word}{amount}", []


def _write_activation(layer, word: str):
    return layer.activation, []


# --------------------------------------------------------------------------------------------------
# The text form of each layer type

_CONV_GLUED = r"((?:[kspdg][0-9][0-9x:]*)*)"
_POOL_GLUED = r"((?:[sp][0-9][0-9x:]*)*)"
_POOL_LETTERS = {"k": "pool_size"}  # a pooling window's size is its pool_size, not a kernel_size
_KERNEL = {"kernel_size": "a kernel size: k3 or k3x5 (for example conv32k3)"}

#: One entry per layer type that has a text form, in the order the unknown-head message lists them.
_FORMS = {
    form.type: form
    for form in (
        _Form("Conv2D", "conv", r"conv(?:2d)?([0-9]+)" + _CONV_GLUED, _write_conv, "conv<filters>",
              main="filters", read=_read_int, needs=_KERNEL),
        _Form("Conv1D", "conv1d", r"conv1d([0-9]+)" + _CONV_GLUED, _write_conv, "conv1d<filters>",
              main="filters", read=_read_int, needs=_KERNEL),
        _Form("MaxPool2D", "maxpool", r"maxpool(?:2d)?([0-9]+(?:x[0-9]+)?)" + _POOL_GLUED, _write_pool, "maxpool<size>",
              main="pool_size", read=_read_pool_size, letters=_POOL_LETTERS),
        _Form("AvgPool2D", "avgpool", r"avgpool(?:2d)?([0-9]+(?:x[0-9]+)?)" + _POOL_GLUED, _write_avg_pool,
              "avgpool<size>",
              main="pool_size", read=_read_pool_size, letters=_POOL_LETTERS),
        _Form("MaxPool1D", "maxpool1d", r"maxpool1d([0-9]+)" + _POOL_GLUED, _write_pool, "maxpool1d<size>",
              main="pool_size", read=_read_pool_size, letters=_POOL_LETTERS),
        _Form("AvgPool1D", "avgpool1d", r"avgpool1d([0-9]+)" + _POOL_GLUED, _write_avg_pool, "avgpool1d<size>",
              main="pool_size", read=_read_pool_size, letters=_POOL_LETTERS),
        _Form("GlobalAvgPool2D", "gap", r"gap(?:2d)?()()", _write_word, "gap"),
        _Form("GlobalMaxPool2D", "gmp", r"gmp(?:2d)?()()", _write_word, "gmp"),
        _Form("GlobalAvgPool1D", "gap1d", r"gap1d()()", _write_word, "gap1d"),
        _Form("GlobalMaxPool1D", "gmp1d", r"gmp1d()()", _write_word, "gmp1d"),
        _Form("Flatten", "flatten", r"flatten()()", _write_word, "flatten"),
        _Form("Dense", "dense", r"dense([0-9]+)()", _write_dense, "dense<units>", main="units", read=_read_int),
        _Form("Dropout", "dropout", r"dropout([0-9.eE+\-]+)()", _write_dropout, "dropout<rate>",
              main="rate", read=_read_rate),
        _Form("BatchNorm", "bn", r"(?:bn|batchnorm)()()", _write_batch_norm, "bn"),
        _Form("ChannelPad", "chpad", r"chpad([0-9]+(?::[0-9]+)?)()", _write_channel_pad, "chpad<channels>",
              main="padding", read=_read_channel_pad),
        _Form("Conv2DTranspose", "deconv", r"deconv(?:2d)?([0-9]+)" + _CONV_GLUED, _write_conv_transpose,
              "deconv<filters>", main="filters", read=_read_int, needs=_KERNEL),
        _Form("Conv1DTranspose", "deconv1d", r"deconv1d([0-9]+)" + _CONV_GLUED, _write_conv_transpose,
              "deconv1d<filters>", main="filters", read=_read_int, needs=_KERNEL),
        _Form("ZeroPadding2D", "zeropad", r"zeropad(?:2d)?([0-9][0-9x:]*)()", _write_zero_padding, "zeropad<pad>",
              main="padding", read=_read_zero_padding),
        _Form("ZeroPadding1D", "zeropad1d", r"zeropad1d([0-9][0-9:]*)()", _write_zero_padding, "zeropad1d<pad>",
              main="padding", read=_read_zero_padding),
        # An Activation layer is written as its activation's name alone: no head word of its own.
        _Form("Activation", "", "(" + "|".join(map(re.escape, ACTIVATIONS)) + ")()", _write_activation,
              f"an activation ({', '.join(ACTIVATIONS)})", main="activation", read=_read_name),
    )
}

# Head words are tried longest word first: a word that extends another must win over it, since
# ``conv1d8k3`` also reads as ``conv`` with 1 filter, dilation 8 and kernel 3.
_READ_ORDER = sorted(_FORMS.values(), key=lambda form: -len(form.word))


# --------------------------------------------------------------------------------------------------
# Reading

_NUMERIC_OPTION = re.compile(r"([kspdg])([0-9][0-9x:]*)")
_LETTER_KEYS = {"k": "kernel_size", "s": "strides", "p": "padding", "d": "dilation", "g": "groups"}
_FLOAT_KEYS = {"eps": "eps", "momentum": "momentum"}
_OUTPUT_PADDING = re.compile(r"op([0-9][0-9x]*)")  # a transposed convolution's output_padding: op1, op1x0


def _padding_value(word: _Word, value: str):
    """``1`` -> 1, ``1x2`` -> (1, 2), ``1:2x0:1`` -> ((1, 2), (0, 1))."""
    axes = value.split("x")
    if all(":" in axis for axis in axes):
        pairs = []
        for axis in axes:
            begin, _, end = axis.partition(":")
            if not (begin.isascii() and begin.isdigit() and end.isascii() and end.isdigit()):
                raise _BadWord(
                    word, f"per-side padding is begin:end per axis (1:2x0:1); received {format_value(value)}")
            pairs.append((_int(word, begin, "padding"), _int(word, end, "padding")))
        return tuple(pairs)
    if any(":" in axis for axis in axes):
        raise _BadWord(word, "padding mixes per-side (1:2) and per-axis (1) forms; write every axis as begin:end")
    return _one_or_tuple(_ints(word, value, "padding"))


def _take_option(word: _Word, kind: str, kwargs: dict, key: str, value) -> None:
    cls = LAYER_TYPES[kind]
    if key not in {f.name for f in dataclasses.fields(cls)}:
        raise _BadWord(word, f"{kind} takes no {key}")
    if key in kwargs:
        raise _BadWord(word, f"{key} given twice")
    kwargs[key] = value


def _numeric_option(word: _Word, form: _Form, kwargs: dict, letter: str, value: str) -> None:
    key = form.letters.get(letter, _LETTER_KEYS[letter])
    parsed = _padding_value(word, value) if key == "padding" else _one_or_tuple(_ints(word, value, key))
    _take_option(word, form.type, kwargs, key, parsed)


def _word_option(word: _Word, form: _Form, kwargs: dict) -> None:
    text, kind = word.text, form.type
    if text.startswith("@"):
        _take_option(word, kind, kwargs, "name", text[1:])
    elif _NUMERIC_OPTION.fullmatch(text):
        letter, value = _NUMERIC_OPTION.fullmatch(text).groups()
        _numeric_option(word, form, kwargs, letter, value)
    elif _OUTPUT_PADDING.fullmatch(text):
        value = _one_or_tuple(_ints(word, _OUTPUT_PADDING.fullmatch(text).group(1), "output_padding"))
        _take_option(word, kind, kwargs, "output_padding", value)
    elif "=" in text and text.split("=", 1)[0] in _FLOAT_KEYS:
        key, value = text.split("=", 1)
        try:
            number = float(value)
        except ValueError:
            raise _BadWord(word, f"{key} needs a number; received {format_value(value)}") from None
        _take_option(word, kind, kwargs, _FLOAT_KEYS[key], number)
    elif text in shapes.PADDING_STRINGS:
        _take_option(word, kind, kwargs, "padding", text)
    elif text in PADDING_MODES:
        _take_option(word, kind, kwargs, "padding_mode", text)
    elif text in ACTIVATIONS:
        _take_option(word, kind, kwargs, "activation", text)
    elif text == "nobias":
        _take_option(word, kind, kwargs, "use_bias", False)
    elif text == "ceil":
        _take_option(word, kind, kwargs, "ceil_mode", True)
    elif text == "exclude_pad":
        _take_option(word, kind, kwargs, "count_include_pad", False)
    else:
        raise _BadWord(word, f"unknown option {format_value(text)} for {kind}")


def _parse_head(word: _Word) -> tuple[_Form, dict]:
    """The first word: the layer's form, its main number and any glued numeric options."""
    for form in _READ_ORDER:
        match = form.pattern.fullmatch(word.text)
        if not match:
            continue
        number, glued = match.groups()
        kwargs: dict = {}
        if form.main is not None:
            kwargs[form.main] = form.read(word, number, form.main)
        for letter, value in _NUMERIC_OPTION.findall(glued):
            _numeric_option(word, form, kwargs, letter, value)
        return form, kwargs
    hints = [form.hint for form in _FORMS.values()]
    raise _BadWord(word, f"unknown layer; a layer starts with {', '.join(hints[:-1])} or {hints[-1]}; a block is "
                         "residual(...) or concat(...)")


def _has_layer_head(text: str) -> bool:
    """Whether ``text`` starts as a layer (``dense10``, ``conv8k3``, ...), whatever follows."""
    head = text.split(None, 1)[0] if text.strip() else ""
    return any(form.pattern.fullmatch(head) for form in _READ_ORDER)


def _parse_layer(words: list[_Word]) -> Layer:
    form, kwargs = _parse_head(words[0])
    for word in words[1:]:
        _word_option(word, form, kwargs)
    for key, how in form.needs.items():
        if key not in kwargs:
            raise _BadWord(words[0], f"{form.type} needs {how}")
    try:
        return LAYER_TYPES[form.type](**kwargs)
    except (ValueError, TypeError) as error:
        raise _BadWord(words[0], str(error)) from None


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
    form = _FORMS.get(layer.type)
    if form is None:
        raise NetSpecError(
            f"a {layer.type} layer has no text form; write the network as JSON or Python (specs/netspec.md)"
        )
    head, words = form.write(layer, form.word)
    if layer.name is not None:
        words.append("@" + layer.name)
    return " ".join([head] + words)


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


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x28x28"`` -> ``(1, 28, 28)``: a sample shape (C, H, W), (C, L) or (features,), each size a positive
    int up to 2**63-1."""
    parts = text.strip().lower().split("x") if isinstance(text, str) else []
    if (not 1 <= len(parts) <= 3 or not all(p.isascii() and p.isdigit() and len(p) <= 19 for p in parts)
            or not all(0 < int(p) <= LARGEST_INT for p in parts)):
        raise SpecParseError(
            f"invalid input shape {format_value(text)}: expected CxHxW, CxL or F with positive ints up to 2**63-1 "
            "(for example 1x28x28)"
        )
    return tuple(int(p) for p in parts)
