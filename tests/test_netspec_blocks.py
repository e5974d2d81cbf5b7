"""The text form of blocks (``specs/netspec.md``, "Blocks in the text grammar"): residual and concat blocks,
repeat counts and names read and written, round trips text <-> JSON <-> Python, errors that name the word and
its column, hostile texts, and the suggestions for a mistyped preset name.

Expected records are written by hand in Python; expected counts are the arithmetic of each layer's weights
(filters x C_in x k x k + filters for a convolution, 2 x C trainable and 2 x C running values for batch norm).
"""

import json
import pathlib
import re

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import cnn
from cnnbase import netspec as ns
from cnnbase.netspec import (
    Activation, BatchNorm, Concat, Conv2D, Dense, Flatten, GlobalAvgPool2D, MaxPool2D, Residual, SpecParseError,
)
from cnnbase.netspec.text import MAX_TEXT_LAYERS

from test_netspec import any_layer

SPEC = pathlib.Path(__file__).resolve().parent.parent / "specs" / "netspec.md"


def conv_bn(filters, k, stride=1, relu=True):
    """conv (no bias, 'same'-style padding k//2) + batch norm (+ ReLU): the unit of torchvision's ResNets."""
    layers = [Conv2D(filters, k, strides=stride, padding=k // 2, use_bias=False), BatchNorm()]
    return layers + [Activation("relu")] if relu else layers


# The worked examples of specs/netspec.md, each with its records written by hand.
BASIC_WITH_PROJECTION = (
    "residual(conv128k3s2p1 nobias, bn, relu, conv128k3p1 nobias, bn | shortcut: conv128k1s2 nobias, bn) relu",
    Residual(conv_bn(128, 3, 2) + conv_bn(128, 3, relu=False), conv_bn(128, 1, 2, relu=False), activation="relu"),
)
BOTTLENECK = (
    "residual(conv64k1 nobias, bn, relu, conv64k3p1 nobias, bn, relu, conv256k1 nobias, bn"
    " | shortcut: conv256k1 nobias, bn) relu",
    Residual(conv_bn(64, 1) + conv_bn(64, 3) + conv_bn(256, 1, relu=False), conv_bn(256, 1, relu=False),
             activation="relu"),
)
INCEPTION_3A = (
    "concat(conv64k1 relu ; conv96k1 relu, conv128k3p1 relu ; conv16k1 relu, conv32k5p2 relu ; maxpool3s1p1,"
    " conv32k1 relu) @inception_3a",
    Concat([
        [Conv2D(64, 1, activation="relu")],
        [Conv2D(96, 1, activation="relu"), Conv2D(128, 3, padding=1, activation="relu")],
        [Conv2D(16, 1, activation="relu"), Conv2D(32, 5, padding=2, activation="relu")],
        [MaxPool2D(3, strides=1, padding=1), Conv2D(32, 1, activation="relu")],
    ], name="inception_3a"),
)


@pytest.mark.parametrize("text, record", [BASIC_WITH_PROJECTION, BOTTLENECK, INCEPTION_3A])
def test_worked_examples_read_as_the_records_written_by_hand(text, record):
    assert ns.parse_spec(text) == [record]
    assert ns.to_spec([record]) == text  # the canonical text is the one the spec shows


def test_worked_examples_count_their_published_weights():
    # Inception (3a) of GoogLeNet (Szegedy et al. 2015, table 1) on its 192x28x28 input.
    inception = sum([64 * 192 + 64, 96 * 192 + 96, 128 * 96 * 9 + 128, 16 * 192 + 16, 32 * 16 * 25 + 32,
                     32 * 192 + 32])
    summary = ns.summarize(ns.parse_spec(INCEPTION_3A[0]), (192, 28, 28))
    assert summary.total_params == inception and summary.rows[0].output_shape == (256, 28, 28)
    # ResNet-50's conv2_1 bottleneck (He et al. 2016, torchvision Bottleneck) on 64x56x56.
    weights = 64 * 64 + 64 * 64 * 9 + 256 * 64 + 256 * 64
    norms = 64 + 64 + 256 + 256
    summary = ns.summarize(ns.parse_spec(BOTTLENECK[0]), (64, 56, 56))
    assert (summary.trainable_params, summary.non_trainable_params) == (weights + 2 * norms, 2 * norms)


def test_every_example_of_the_spec_parses():
    """Every ``netspec`` fenced block of specs/netspec.md is a network of the grammar, and its canonical
    text reads back as the same records."""
    blocks = re.findall(r"```netspec\n(.*?)```", SPEC.read_text(), re.S)
    assert len(blocks) >= 5
    for block in blocks:
        text = " ".join(block.split())
        layers = ns.parse_spec(text)
        assert ns.parse_spec(ns.to_spec(layers)) == layers, text
    assert BASIC_WITH_PROJECTION[0] in SPEC.read_text() and BOTTLENECK[0].replace(" | ", "\n  | ") in SPEC.read_text()


def test_repeats_names_identity_and_the_block_activation():
    block = Residual(conv_bn(8, 3) + conv_bn(8, 3, relu=False), activation="relu")
    text = "conv8k3p1 nobias, bn, relu, 3*residual(conv8k3p1 nobias, bn, relu, conv8k3p1 nobias, bn) relu, gap, dense10"
    layers = ns.parse_spec(text)
    assert layers == conv_bn(8, 3) + [block] * 3 + [GlobalAvgPool2D(), Dense(10)]
    assert ns.to_spec(layers) == text
    # ``residual(...) relu`` is the block's own activation; ``residual(...), relu`` a layer after it.
    assert ns.parse_spec("residual(conv8k1), relu") == [Residual([Conv2D(8, 1)]), Activation("relu")]
    assert ns.parse_spec("residual(conv8k1 | shortcut:conv8k1) @r") == [
        Residual([Conv2D(8, 1)], [Conv2D(8, 1)], name="r")]
    assert ns.parse_spec("residual(conv8k1 | conv8k1)") == ns.parse_spec("residual(conv8k1 | shortcut: conv8k1)")
    assert ns.parse_spec("residual(relu | identity)") == [Residual([Activation("relu")])]
    assert ns.parse_spec("concat(conv8k1;identity)") == [Concat([[Conv2D(8, 1)], []])]
    assert ns.to_spec([Concat([[], [Conv2D(8, 1)]])]) == "concat(identity ; conv8k1)"
    assert ns.parse_spec("2* relu, 1*flatten") == [Activation("relu"), Activation("relu"), Flatten()]
    assert ns.to_spec([Flatten(), Flatten(name="f"), Flatten(name="f")]) == "flatten, flatten @f, flatten @f"
    nested = ns.parse_spec("concat(concat(relu ; identity) ; residual(relu, 2*conv8k3 same) @r)")
    assert nested == [Concat([[Concat([[Activation("relu")], []])],
                              [Residual([Activation("relu"), Conv2D(8, 3, padding="same"),
                                         Conv2D(8, 3, padding="same")], name="r")]])]


# --------------------------------------------------------------------------------------------------
# Round trips: random networks of layers and blocks


@st.composite
def layer_or_block(draw, depth=0):
    """A plain layer, or (while ``depth`` < 2) a residual or concat block of such items, some repeated."""
    kind = draw(st.sampled_from(["layer", "layer", "residual", "concat"] if depth < 2 else ["layer"]))
    if kind == "layer":
        return draw(any_layer())
    name = draw(st.one_of(st.none(), st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True)))
    if kind == "residual":
        return Residual(draw(paths(depth, 1)), draw(paths(depth, 0)),
                        activation=draw(st.sampled_from((None,) + ns.ACTIVATIONS)), name=name)
    return Concat(draw(st.lists(paths(depth, 0), min_size=2, max_size=4)), name=name)


@st.composite
def paths(draw, depth, least):
    """A list of items in which some are repeated in a row (written back as ``N*item``)."""
    items = draw(st.lists(st.tuples(layer_or_block(depth + 1), st.integers(1, 3)), min_size=least, max_size=3))
    return [item for item, count in items for _ in range(count if item.name is None else 1)]


networks = st.lists(layer_or_block(), min_size=1, max_size=4).filter(bool)


@settings(max_examples=80, deadline=None)
@given(networks)
def test_text_round_trip_with_blocks(layers):
    text = ns.to_spec(layers)
    assert ns.parse_spec(text) == layers, text


@settings(max_examples=40, deadline=None)
@given(networks)
def test_text_json_python_round_trip_with_blocks(layers):
    """Python -> text -> Python -> JSON -> Python -> text: every form holds the same network."""
    text = ns.to_spec(layers)
    network = ns.Network((3, 16, 16), tuple(ns.parse_spec(text)))
    back = ns.Network.from_dict(json.loads(json.dumps(network.to_dict())))
    assert back == network == ns.Network((3, 16, 16), tuple(layers))
    assert ns.to_spec(list(back.layers)) == text


# --------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("text, words", [
    ("residual(conv8k3 same, bogus)", ["layer 1, body layer 2", "'bogus'", "column 24", "unknown layer"]),
    ("conv8k3, concat(conv8k1 ; conv8k1, maxpol2)", ["layer 2, branch1 layer 2", "'maxpol2'", "column 36"]),
    ("residual(relu | shortcut: conv8k1 s2 s2)", ["shortcut layer 1", "'s2'", "column 38", "twice"]),
    ("concat(concat(relu ; conv8k1 bogus) ; relu)", ["layer 1, branch0 layer 1, branch1 layer 1", "column 30"]),
    ("residual(conv8k3 same; conv8k1)", ["';' at column 22", "separated by '|'"]),
    ("concat(conv8k1 | conv8k1)", ["'|' at column 16", "separated by ';'"]),
    ("concat(conv8k1)", ["'concat' at column 1", "at least 2 paths"]),
    ("concat(conv8k1 ;)", ["branch1 at column 17 is empty", "identity"]),
    ("residual(conv8k1, )", ["body layer 2 is empty at column 19"]),
    ("residual(conv8k1", ["'residual' at column 1", "never closed"]),
    ("conv8k1)", ["')' at column 8", "closes no block"]),
    ("conv8k1 ; relu", ["';' at column 9", "layers are separated by ','"]),
    ("residual(relu | relu | relu)", ["'|' at column 22", "at most 2 paths"]),
    ("residual(identity)", ["'residual' at column 1", "`body`"]),
    ("residual(relu) same", ["'same' at column 16", "Residual takes no padding"]),
    ("concat(relu ; relu) relu", ["'relu' at column 21", "Concat takes no activation"]),
    ("residual, relu", ["'residual' at column 1", "parentheses"]),
    ("conv8k3 relu(x)", ["'(' at column 13", "follows its word"]),
    ("resdual(relu)", ["'resdual(relu)' at column 1", "unknown layer or block", "residual(...) or concat(...)"]),
    ("relu, identity", ["'identity' at column 7", "whole path"]),
    ("3*residual(relu) @r", ["'@r' at column 18", "3 copies would share the name"]),
    ("2*relu @a", ["'@a' at column 8", "2 copies"]),
    ("0*relu", ["'0*relu' at column 1", "at least 1"]),
    ("3*", ["'3*' at column 1", "comes before a layer or a block"]),
    ("concat(relu ; shortcut: relu)", ["'shortcut:'", "labels the shortcut"]),
    ("2*conv8k3, bogus", ["layer 3,", "column 12"]),  # numbered as the summary numbers layers
])
def test_grammar_errors_in_blocks_name_the_word_and_its_column(text, words):
    with pytest.raises(SpecParseError) as info:
        ns.parse_spec(text)
    message = str(info.value)
    assert "\n" not in message and len(message) < 500, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("text, words", [
    ("(" * 5000, ["column 1", "follows its word"]),
    ("residual(" * 5000, ["blocks nest more than 32 deep", f"column {32 * 9 + 1}", "more)"]),
    ("concat(relu ; " * 5000 + "relu", ["blocks nest more than 32 deep"]),
    ("conv" + "(" * 5000, ["unknown layer", "..."]),
    (")" * 5000, ["closes no block"]),
    ("99999*residual(99999*relu)", [f"more than {MAX_TEXT_LAYERS:,} layers"]),
    ("9" * 400 + "*relu", ["repeat count", "2**63-1"]),
    ("residual(" * 32 + "relu" + ")" * 33, ["closes no block"]),
])
def test_hostile_texts_fail_with_one_spec_parse_error(text, words):
    with pytest.raises(SpecParseError) as info:
        ns.parse_spec(text)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    for word in words:
        assert word in message, message


def test_blocks_nest_exactly_max_nesting_deep_in_text():
    text = "residual(" * ns.MAX_NESTING + "relu" + ")" * ns.MAX_NESTING
    (layer,) = ns.parse_spec(text)
    assert layer.nesting() == ns.MAX_NESTING and ns.to_spec([layer]) == text


PIECES = ["residual", "concat", "(", ")", ";", " | ", "shortcut:", "identity", "2*", "conv8k1", "relu", "bn",
          ", ", " ", "@n", "same", "flatten", "dense3"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=14))
def test_any_text_of_block_pieces_is_a_network_or_one_spec_parse_error(pieces):
    text = "".join(pieces)
    try:
        layers = ns.parse_spec(text)
    except SpecParseError as error:
        assert "\n" not in str(error) and len(str(error)) < 500
        return
    assert ns.parse_spec(ns.to_spec(layers)) == layers


# --------------------------------------------------------------------------------------------------
# cnn shape, and mistyped preset names


def test_cnn_shape_reads_a_residual_block_in_text():
    text = "residual(conv16k3 same nobias, bn, relu, conv16k3 same nobias, bn) relu"
    result = CliRunner().invoke(cnn, ["shape", text, "--input", "16x8x8"])
    assert result.exit_code == 0, result.output
    convs, norms = 2 * 16 * 16 * 9, 2 * 16  # two 3x3 convolutions 16 -> 16 without bias; two batch norms
    assert f"Total params: {ns.format_count(convs + 4 * norms)}" in result.output
    assert f"Non-trainable params: {ns.format_count(2 * norms)}" in result.output
    assert "residual (Residual)" in result.output and "16x8x8" in result.output
    result = CliRunner().invoke(cnn, ["shape", "residual(conv16k3 same, bogus)", "--input", "16x8x8"])
    assert result.exit_code == 2 and "'bogus' at column 25" in result.output


@pytest.mark.parametrize("name, words", [
    ("lenet-6", ["unknown preset 'lenet-6'", "did you mean lenet5?"]),
    ("keras-mnst", ["did you mean keras-mnist"]),
    ("LeNet5", ["neither a preset", "did you mean lenet5?"]),
    ("lenet", ["neither a preset", "lenet5"]),
])
def test_an_unknown_preset_name_suggests_the_closest(name, words):
    with pytest.raises(SpecParseError) as info:
        ns.load_network(name)
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
    for word in words:
        assert word in message, message
