"""The text grammar of ``specs/netspec.md``: ``"conv32k3 relu, maxpool2, flatten, dense10 softmax"``.

Layers are separated by commas. A layer is a head word, the layer type with its main number and any
numeric options glued to it (``conv32k3s2``), followed by option words (``s2``, ``same``, ``relu``,
``@name``, ...). This module holds the words of each layer type: :func:`_parse_layer` reads one layer,
:func:`layer_word_text` writes it back.

Each layer type with a text form has ONE entry in :data:`_FORMS` that holds both directions: the regex
that reads its head word, and the function that writes the layer back. The option words are shared by
every type: an option is accepted where the layer's record has the argument it sets. A type without an
entry has no text form.

A whole network (items, blocks, repeats) is read and written by :mod:`cnnbase.netspec.text`, which
reads each layer's words here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Callable

from .. import shapes
from ..checks import is_int
from ..padding import PADDING_MODES
from .errors import NetSpecError, SpecParseError
from .formats import _ints_text, format_value
from .record import ACTIVATIONS, LAYER_TYPES, LARGEST_INT, Layer


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


def _conv_head(layer, word: str):
    """The word of a convolution, plain or transposed, up to its padding: ``conv32k3s2d1g2p1`` and the words
    that follow it (a padding that is no number, such as ``same``)."""
    head = f"{word}{layer.filters}k{_ints_text(layer.kernel_size)}"
    if set(layer.strides) != {1}:
        head += f"s{_ints_text(layer.strides)}"
    if set(layer.dilation) != {1}:
        head += f"d{_ints_text(layer.dilation)}"
    if layer.groups != 1:
        head += f"g{layer.groups}"
    return _with_padding(head, layer.padding)


def _write_conv(layer, word: str):
    head, words = _conv_head(layer, word)
    if layer.padding_mode != "zeros":
        words.append(layer.padding_mode)
    if not layer.use_bias:
        words.append("nobias")
    if layer.activation:
        words.append(layer.activation)
    if layer.connections is not None:
        words.append("table=" + _table_text(layer.connections))
    return head, words


def _channels_text(channels: tuple[int, ...]) -> str:
    """``(0, 1, 2, 5)`` -> ``0-2.5``: runs of three or more consecutive channels as ``first-last``."""
    parts, start = [], 0
    while start < len(channels):
        end = start
        while end + 1 < len(channels) and channels[end + 1] == channels[end] + 1:
            end += 1
        if end - start >= 2:
            parts.append(f"{channels[start]}-{channels[end]}")
        else:
            parts.extend(str(c) for c in channels[start:end + 1])
        start = end + 1
    return ".".join(parts)


def _table_text(connections) -> str:
    """A named table by its name; an explicit one as the channels of each filter, filters joined by ``/``."""
    return connections if isinstance(connections, str) else "/".join(map(_channels_text, connections))


def _read_table(word: _Word, value: str):
    """``lenet5`` -> ``"lenet5"``; ``0-2/1.3`` -> ``((0, 1, 2), (1, 3))``: per filter, channels joined by ``.``,
    ``a-b`` for the channels a to b, filters joined by ``/``. The record checks the rest."""
    if value[:1].isascii() and value[:1].isalpha():
        return value
    table, total = [], 0
    for entry in value.split("/"):
        channels = []
        for part in entry.split("."):
            first, dash, last = part.partition("-")
            if not (first.isascii() and first.isdigit() and (not dash or last.isascii() and last.isdigit())):
                raise _BadWord(word, "a connection table is a name (table=lenet5) or, per filter, input channels "
                                     "joined by '.' with a-b for a range, filters joined by '/' "
                                     f"(table=0-2/1.3); received {format_value(value)}")
            low = _int(word, first, "channel")
            high = _int(word, last, "channel") if dash else low
            if high < low:
                raise _BadWord(word, f"channel range {part} must run upwards (low-high)")
            total += high - low + 1
            if total > MAX_TABLE_LINKS:
                raise _BadWord(word, f"a connection table links at most {MAX_TABLE_LINKS:,} (filter, channel) pairs")
            channels.extend(range(low, high + 1))
        table.append(tuple(channels))
    return tuple(table)


#: The most (filter, channel) pairs a text table may spell out (``0-999999`` is a million of them): far more
#: than a hand-written table, and a bound on what a short hostile text can make the reader build.
MAX_TABLE_LINKS = 1 << 20


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
    head, words = _conv_head(layer, word)
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
    elif text.startswith("table="):
        _take_option(word, kind, kwargs, "connections", _read_table(word, text[len("table="):]))
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
# Writing one layer


def layer_word_text(layer: Layer) -> str:
    """The text of one layer of a type with a :data:`_FORMS` entry (``conv32k3s2 relu @c1``); blocks are
    written by :mod:`cnnbase.netspec.text`."""
    form = _FORMS.get(layer.type)
    if form is None:
        raise NetSpecError(
            f"a {layer.type} layer has no text form; write the network as JSON or Python (specs/netspec.md)"
        )
    head, words = form.write(layer, form.word)
    if layer.name is not None:
        words.append("@" + layer.name)
    return " ".join([head] + words)


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
