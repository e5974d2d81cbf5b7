"""Hostile network descriptions and model files (issue 10, defects 1, 5 and 10, models part).

Every description (text spec, JSON network file) and every model file (``.npz``) that is damaged, absurd or
hostile fails with one library error naming the file or the word and the problem: ``SpecParseError`` /
``NetSpecError`` for descriptions, ``CheckpointError`` for model files, ``SizeLimitError`` for a network whose
arrays would exceed ``CNN_MAX_ARRAY_BYTES``; ``cnn shape`` turns them into one line and exit status 2. The
files are made here, each a few bytes to a few KB.
"""

import io
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cli import cnn
from cnn.files import CheckpointError, load_archive, save_archive
from cnn.model import Model, load_model
from cnn.train import evaluate, fit, predict
from cnnbase import netspec
from cnnbase.limits import SizeLimitError
from cnnbase.netspec import (
    Activation, BatchNorm, Conv2D, Dense, Flatten, MaxPool2D, NetSpecError, Residual, SpecParseError,
)

DEEP = 5000  # levels of nesting: beyond Python's recursion limit, where json.loads itself gives up


def shape_command(*args):
    """``cnn shape ARGS`` in-process: (exit status, stdout, stderr)."""
    result = CliRunner().invoke(cnn, ["shape", *args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(args, *fragments):
    status, out, err = shape_command(*args)
    assert status == 2, (status, out, err)
    assert out == "" and err.startswith("cnn: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


# --------------------------------------------------------------------------------------------------
# Text specs


@pytest.mark.parametrize("spec, fragments", [
    ("", ["the spec is empty"]),
    ("   ", ["the spec is empty"]),
    ("conv" + "(" * DEEP, ["layer 1", "unknown layer", "..."]),
    ("dense" + "1" * DEEP, ["units 111111111111111111111...", "larger than the largest size, 2**63-1"]),
    ("flatten, dense" + str(2**70), ["layer 2", "units 1180591620717411303424", "2**63-1"]),
    ("conv8k" + "9" * DEEP, ["kernel_size", "2**63-1"]),
    ("conv8k3p" + "9" * DEEP, ["padding", "2**63-1"]),
    ("conv8k3p99999999999999999999:1", ["padding 99999999999999999999", "2**63-1"]),
    ("conv8k3s" + "9" * 30, ["strides", "2**63-1"]),
    ("maxpool" + "9" * DEEP, ["pool_size", "2**63-1"]),
    ("conv8k3g" + "9" * 30, ["groups", "2**63-1"]),
    ("bn eps=inf", ["`eps`", "a finite number > 0.0", "eps=inf"]),
    ("bn eps=" + "9" * DEEP, ["`eps`", "eps=inf"]),
    ("flatten @a\x1b[31m", ["`name`", r"\x1b"]),
    ("dense１０", ["neither a preset"]),  # full-width digits are not digits of the grammar
    ("," * 100_000, ["layer 1 is empty"]),
])
def test_text_specs_refused_with_one_spec_parse_error(spec, fragments):
    with pytest.raises(SpecParseError) as caught:
        netspec.load_network(spec)
    message = str(caught.value)
    assert len(message) < 400 and "\n" not in message, message  # a 5,000-character word is not echoed whole
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert_one_line_error([spec, "--input", "1x28x28"])


@pytest.mark.parametrize("text", ["1x" + "9" * DEEP, "1x" + str(2**70), "1x²", "0x5", "1x1x1x1"])
def test_input_shapes_refused_by_the_parser(text):
    with pytest.raises(SpecParseError, match="invalid input shape"):
        netspec.parse_shape(text)
    assert_one_line_error(["flatten, dense10", "--input", text], "invalid input shape")


def test_huge_networks_are_counted_not_refused_by_cnn_shape():
    """``cnn shape`` is a calculator: nothing is allocated, so a network of 785 billion weights is counted."""
    status, out, err = shape_command("flatten, dense1000000000", "--input", "1x28x28")
    assert status == 0, err
    assert "785,000,000,000" in out
    summary = netspec.summarize(netspec.parse_spec("flatten, dense10"), (10**12,), batch_size=10**9)
    assert summary.total_params == 10**13 + 10
    assert summary.activation_bytes == (10**12 + 10) * 10**9 * 4
    assert netspec.render_table(summary)  # numbers of any size render
    with pytest.raises(NetSpecError, match="invalid input shape"):
        netspec.summarize([Flatten()], (1, 0, 5))


def test_cnn_shape_refuses_batch_sizes_and_item_sizes_beyond_int64():
    for option in ("--batch-size", "--dtype-bytes"):
        assert_one_line_error(["lenet5", option, "9" * 400], f"`{option[2:].replace('-', '_')}`", "2**63-1")
    with pytest.raises(NetSpecError, match="`batch_size`"):
        netspec.summarize([Flatten()], (3,), batch_size=2**63)
    # The largest numbers allowed still render, and the memory stays short.
    summary = netspec.summarize(netspec.parse_spec("conv8k3, gap, dense10"), (3, 10**18, 10**18), batch_size=2**63 - 1)
    assert "EiB" in netspec.render_table(summary)
    assert netspec.format_bytes(2**70) == "1024.00 EiB" and netspec.format_bytes(10**30) == "8.7e+11 EiB"


def test_renderers_refuse_what_is_no_summary():
    for render in (netspec.render_table, netspec.render_keras, netspec.render_csv, netspec.render_json):
        with pytest.raises(TypeError, match="argument `summary` must be a Summary"):
            render({"rows": []})
    with pytest.raises(ValueError, match="`model_name` must be a printable str"):
        netspec.render_keras(netspec.PRESETS["lenet5"].summary(), model_name="a\x1b[2J")


#: Words of the text grammar, pieces of them and hostile characters: their concatenations are specs that are
#: right, nearly right and absurd.
SPEC_PIECES = ["conv", "conv1d", "maxpool", "avgpool1d", "gap", "flatten", "dense", "dropout", "bn", "relu", "softmax",
               "same", "reflect", "nobias", "ceil", "exclude_pad", "@n", "eps=", "k", "s", "p", "d", "g", "x", ":",
               "0", "1", "3", "9" * 25, ".", "e", "nan", ",", " ", "@", "\x00", "\x1b", "é", "1e999"]


@given(pieces=st.lists(st.sampled_from(SPEC_PIECES), min_size=1, max_size=10),
       shape=st.sampled_from([(1, 8, 8), (3, 5, 7), (2, 9), (10,)]))
def test_any_text_spec_is_a_network_or_one_net_spec_error(pieces, shape):
    spec = "".join(pieces)
    try:
        network = netspec.load_network(spec)
        summary = netspec.summarize(network.layers, shape)
    except NetSpecError as error:
        assert "\n" not in str(error) and len(str(error)) < 600
        return
    assert netspec.render_table(summary)
    assert netspec.parse_spec(netspec.to_spec(network.layers)) == list(network.layers)


def test_records_refuse_sizes_beyond_int64_whatever_their_source():
    with pytest.raises(ValueError, match=r"`units`. Expected .*2\*\*63"):
        Dense(2**70)
    with pytest.raises(ValueError, match="an int of 16610 bits"):  # too long for Python to print: described
        Conv2D(10**5000, 3)
    with pytest.raises(ValueError, match="`pool_size`"):
        MaxPool2D(2**64)
    with pytest.raises(ValueError, match="at most 200 characters"):
        Flatten(name="a" * 201)


def nested_residuals(depth: int, inner=None) -> list:
    layers = inner or [Activation("relu")]
    for _ in range(depth):
        layers = [Residual(layers)]
    return layers


def test_blocks_nest_at_most_max_nesting_deep():
    model = Model(nested_residuals(netspec.MAX_NESTING) + [Flatten(), Dense(2)], (1, 2, 2), engine="refcnn")
    logits = model.forward(np.ones((3, 1, 2, 2)), training=True)
    assert model.backward(np.ones_like(logits)).shape == (3, 1, 2, 2)
    with pytest.raises(ValueError, match=f"blocks nest more than {netspec.MAX_NESTING} deep"):
        nested_residuals(netspec.MAX_NESTING + 1)


def test_to_spec_and_summarize_refuse_what_is_no_layer_list():
    with pytest.raises(NetSpecError, match="expected layer records"):
        netspec.to_spec([Flatten(), 5])
    with pytest.raises(TypeError, match="invalid value for argument `layers`"):
        netspec.to_spec(None)
    with pytest.raises(TypeError, match="invalid value for argument `layers`"):
        netspec.summarize("flatten", (3,))
    odd = [Flatten(name="_a.b-c"), Dense(3, name="X-9.z")]
    assert netspec.parse_spec(netspec.to_spec(odd)) == odd


# --------------------------------------------------------------------------------------------------
# JSON network files

NET = '{"input_shape": [1, 28, 28], "layers": [%s]}'
LAYERS = '{"type": "Flatten"}, {"type": "Dense", "units": 10}'


def residual_json(depth: int) -> str:
    layer = '{"type": "Activation", "activation": "relu"}'
    for _ in range(depth):
        layer = '{"type": "Residual", "body": [%s]}' % layer
    return '{"input_shape": [1, 4, 4], "layers": [%s]}' % layer


HOSTILE_JSON = {
    "bad_utf8": (b'{"layers": [\xff\xfe]}', ["is not UTF-8 text", "byte 0xff at position 12"]),
    "nested_lists": ('{"layers": ' + "[" * DEEP + "]" * DEEP + "}", ["nested thousands of levels deep"]),
    "nested_objects": ('{"a": ' * DEEP + "1" + "}" * DEEP, ["nested thousands of levels deep"]),
    "long_int": (NET % ('{"type": "Flatten"}, {"type": "Dense", "units": %s}' % ("9" * DEEP)), ["4300 digits"]),
    "int_beyond_int64": (NET % ('{"type": "Flatten"}, {"type": "Dense", "units": %d}' % 2**70),
                         ["layer 2 of the JSON file", "`units`", "2**63"]),
    "shape_beyond_int64": ('{"input_shape": [%d], "layers": [{"type": "Dense", "units": 2}]}' % 2**64,
                           ['"input_shape"', "up to 2**63-1"]),
    "empty_layers": (NET % "", ["the network has no layers"]),
    "string_layer": (NET % '"conv32k3"', ["layer 1 of the JSON file", 'a JSON object with a "type" key']),
    "null_layer": (NET % "null", ["layer 1", "received None"]),
    "list_of_lists": (NET % ("[%s]" % LAYERS), ["layer 1", "received [{"]),
    "unknown_key": (NET % '{"type": "Flatten", "size": 3}', ["Flatten: unknown key(s) 'size'"]),
    "bool_for_int": (NET % '{"type": "Flatten"}, {"type": "Dense", "units": true}', ["`units`", "units=True"]),
    "float_for_int": (NET % '{"type": "Conv2D", "filters": 2.0, "kernel_size": 3}', ["`filters`"]),
    "type_list": (NET % '{"type": ["Flatten"]}', ['"type" must be a string']),
    "type_null": (NET % '{"type": null}', ['"type" must be a string']),
    "type_unknown": (NET % '{"type": "Conv9D"}', ["unknown layer type 'Conv9D'"]),
    "description_int": ('{"input_shape": [3], "layers": [{"type": "Dense", "units": 2}], "description": 5}',
                        ['"description" must be a string']),
    "top_level_list": ("[%s]" % LAYERS, ["must be a JSON object"]),
    "layers_object": ('{"layers": {"type": "Flatten"}}', ["must be a JSON object"]),
    "unknown_top_key": ('{"layers": [{"type": "Flatten"}], "optimizer": "adam"}', ["unknown key(s)", "optimizer"]),
    "padding_nested_deep": (NET % ('{"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": %s}'
                                   % ("[" * 300 + "]" * 300)), ["nested more than 100 levels deep"]),
    "eps_overflows": (NET % '{"type": "BatchNorm", "eps": 1e999}', ["`eps`", "finite"]),
    "rate_nan": (NET % '{"type": "Dropout", "rate": NaN}', ["`rate`", "rate=nan"]),
    "ansi_name": (NET % '{"type": "Flatten", "name": "x\\u001b[2J"}', ["`name`", r"\x1b[2J"]),
    "residuals_too_deep": (residual_json(netspec.MAX_NESTING + 1), ["blocks nest more than 32 deep"]),
    "residuals_nested_past_the_json_depth": (residual_json(60), ["nested more than 100 levels deep"]),
}


@pytest.mark.parametrize("name", list(HOSTILE_JSON))
def test_hostile_json_network_files_give_one_spec_parse_error(tmp_path, name):
    content, fragments = HOSTILE_JSON[name]
    path = tmp_path / f"{name}.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SpecParseError) as caught:
        netspec.load_network(str(path))
    message = str(caught.value)
    assert str(path) in message and "\n" not in message and len(message) < 600, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert_one_line_error([str(path)], str(path))


def test_a_json_network_file_larger_than_the_file_limit_is_not_read(tmp_path, monkeypatch):
    path = tmp_path / "big.json"
    path.write_text(NET % ", ".join(['{"type": "Activation", "activation": "relu"}'] * 100))
    monkeypatch.setenv("CNN_MAX_FILE_BYTES", "1K")
    with pytest.raises(SizeLimitError, match="the network file .*big.json.*CNN_MAX_FILE_BYTES"):
        netspec.load_network(str(path))
    monkeypatch.setenv("CNN_MAX_FILE_BYTES", "1M")
    assert len(netspec.load_network(str(path)).layers) == 100


def test_a_json_network_of_a_million_channels_is_counted_by_cnn_shape(tmp_path):
    path = tmp_path / "wide.json"
    path.write_text(NET % '{"type": "Conv2D", "filters": 1000000, "kernel_size": 3}, '
                          '{"type": "Conv2D", "filters": 1000000, "kernel_size": 3}')
    status, out, err = shape_command(str(path))
    assert status == 0, err
    assert "9,000,011,000,000" in out


# --------------------------------------------------------------------------------------------------
# Model(...) in Python: arguments, and sizes checked before anything is allocated


def small_layers():
    return [Conv2D(2, 3, activation="relu"), BatchNorm(), Flatten(), Dense(3)]


@pytest.mark.parametrize("kwargs, error", [
    ({"seed": 1.5}, TypeError), ({"seed": "abc"}, TypeError), ({"seed": -5}, ValueError), ({"seed": True}, TypeError),
    ({"seed": None}, TypeError), ({"seed": 2**64}, ValueError),
    ({"dtype": "float16"}, ValueError), ({"dtype": "int32"}, ValueError), ({"dtype": None}, TypeError),
    ({"dtype": "abc"}, ValueError), ({"dtype": 5}, TypeError),
    ({"engine": "torch"}, ValueError), ({"engine": 5}, TypeError), ({"engine": None}, TypeError),
    ({"name": 5}, TypeError), ({"name": "a\nb"}, ValueError), ({"name": ""}, ValueError),
])
def test_model_arguments_refused_with_the_invalid_template(kwargs, error):
    (name, value), = kwargs.items()
    with pytest.raises(error, match=rf"^Model: invalid value for argument `{name}`\. Expected .* Received {name}="):
        Model(small_layers(), (1, 5, 5), **kwargs)


def test_model_seed_is_kept_exactly_and_numpy_ints_are_seeds():
    assert Model(small_layers(), (1, 5, 5), engine="refcnn", seed=np.uint64(2**63)).seed == 2**63


@pytest.mark.parametrize("layers, error, match", [
    ([], NetSpecError, "the network has no layers"),
    (None, TypeError, "invalid value for argument `layers`"),
    (5, TypeError, "invalid value for argument `layers`"),
    ([Flatten(), "dense10"], NetSpecError, "layer 2: expected a layer record"),
])
def test_model_layers_that_are_no_network_are_refused(layers, error, match):
    with pytest.raises(error, match=match):
        Model(layers, (1, 5, 5))


@pytest.mark.parametrize("layers, shape, fragments", [
    ([Flatten(), Dense(10**9)], (1, 28, 28),
     ["Model: layer 2 (Dense 'dense'): its weight of shape (1000000000, 784)", "2.85 TiB (3136000000000 bytes)"]),
    ([Conv2D(10**6, 3), Conv2D(10**6, 3)], (1, 28, 28),
     ["layer 2 (Conv2D 'conv2d_1'): its weight of shape (1000000, 1000000, 3, 3)"]),
    ([Flatten(), Dense(3)], (10**12,), ["layer 2 (Dense 'dense'): its weight of shape (3, 1000000000000)"]),
    ([MaxPool2D(1), BatchNorm(), Residual([Conv2D(10**5, 1), Conv2D(10**5, 1), Conv2D(1, 1)])], (1, 4, 4),
     ["layer 3 (Conv2D 'residual/body/conv2d_1'): its weight of shape (100000, 100000, 1, 1)"]),
])
def test_model_weights_beyond_the_array_limit_are_refused_before_allocation(layers, shape, fragments):
    with pytest.raises(SizeLimitError) as caught:
        Model(layers, shape)
    message = str(caught.value)
    for fragment in fragments + ["the limit is 4.00 GiB (set CNN_MAX_ARRAY_BYTES to raise it)"]:
        assert fragment in message, (fragment, message)


def test_the_array_limit_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "64")
    with pytest.raises(SizeLimitError, match=r"layer 1 \(Conv2D 'conv2d'\): its weight of shape \(2, 1, 3, 3\)"):
        Model(small_layers(), (1, 5, 5), engine="refcnn", dtype="float64")  # 144 bytes
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "1K")
    model = Model(widening_layers(), (1, 5, 5), engine="refcnn")
    model.forward(np.zeros((1, 1, 5, 5), np.float32))  # the conv's output: 8 x 5 x 5 floats = 800 bytes
    with pytest.raises(SizeLimitError, match=r"Model.forward: layer 1 \(Conv2D 'conv2d'\): its output for a batch of 2"):
        model.forward(np.zeros((2, 1, 5, 5), np.float32))


def widening_layers():
    """Each sample's largest activation (8 x 5 x 5, after the conv) is 8 times its input (1 x 5 x 5)."""
    return [Conv2D(8, 1), MaxPool2D(5), Flatten(), Dense(3)]


def test_forward_checks_the_batch_before_copying_it():
    model = Model(widening_layers(), (1, 5, 5), engine="refcnn")
    huge = np.broadcast_to(np.float64(0), (10**9, 1, 5, 5))  # no memory of its own; a copy would take 186 GiB
    with pytest.raises(SizeLimitError, match=r"Model.forward: the input as float32, \(1000000000, 1, 5, 5\)"):
        model.forward(huge)
    with pytest.raises(SizeLimitError, match=r"layer 1 \(Conv2D 'conv2d'\): its output for a batch of 10000000"):
        model.check_batch_size(10**7)  # the input would take 0.9 GiB, the conv's output 7.5 GiB


def test_fit_evaluate_and_predict_check_one_batch_not_the_whole_data_set(monkeypatch):
    # The full Fashion-MNIST through keras-mnist is 8 GiB of first-conv output at once, but 16 MiB per batch:
    # fit refused it when it checked the data set as one batch.
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "64K")
    model = Model(widening_layers(), (1, 5, 5), engine="refcnn", seed=0)
    x = np.random.default_rng(0).random((200, 1, 5, 5))  # the conv's output: 160,000 bytes; per batch of 32: 25,600
    y = np.arange(200) % 3
    history = fit(model, x, y, epochs=1, batch_size=32, verbose=0)
    assert len(history.epochs) == 1
    assert evaluate(model, x, y, batch_size=32)["loss"] > 0
    assert predict(model, x, batch_size=32).shape == (200, 3)
    with pytest.raises(SizeLimitError, match=r"its output for a batch of 100"):
        fit(model, x, y, epochs=1, batch_size=100, verbose=0)
    with pytest.raises(SizeLimitError, match=r"fit: argument `x` as float32, \(20000, 1, 5, 5\)"):
        fit(model, np.zeros((20000, 1, 5, 5)), np.zeros(20000, np.int64), epochs=1, batch_size=8, verbose=0)


def test_forward_backward_and_their_arguments():
    model = Model([Conv2D(2, 3), Flatten(), Dense(3)], (1, 5, 5), engine="refcnn")
    with pytest.raises(RuntimeError, match="no forward pass to go back through"):
        model.backward(np.zeros((2, 3)))
    assert model.forward(np.zeros((0, 1, 5, 5), np.float32)).shape == (0, 3)
    assert np.isnan(model.forward(np.full((1, 1, 5, 5), np.nan))).all()  # computed with, not refused
    for step, error in ((-1, ValueError), (1.5, TypeError)):
        with pytest.raises(error, match="invalid value for argument `step`"):
            model.forward(np.zeros((2, 1, 5, 5)), step=step)
    model.forward(np.zeros((2, 1, 5, 5)), training=True)
    with pytest.raises(ValueError, match=r"must have the shape of the last forward pass's logits, \(2, 3\)"):
        model.backward(np.zeros((4, 3)))
    with pytest.raises(TypeError, match="`grad_logits` must be a numpy.ndarray of floats; received list"):
        model.backward([[0.0]])
    with pytest.raises(KeyError, match="no layer named 'nope'; layers: conv2d, flatten, dense"):
        model.freeze("nope")
    with pytest.raises(TypeError, match="`arrays` must be a dict"):
        model.load_state_arrays([])


# --------------------------------------------------------------------------------------------------
# Model files (.npz)


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "good.npz"
    Model(small_layers(), (1, 5, 5), engine="refcnn", seed=3).save(path)
    return path


def set_key(key, value):
    return lambda config: config.__setitem__(key, value)


def set_layer(index, value):
    return lambda config: config["layers"].__setitem__(index, value)


def set_array(key, make):
    return lambda arrays: arrays.__setitem__(key, make(arrays[key]))


def set_value(key, value):
    def change(arrays):
        arrays[key] = arrays[key].copy()
        arrays[key].flat[0] = value
    return change


CONV_W = "param/conv2d/weight"

#: name -> (change to the model configuration, change to the arrays, raw JSON document, message fragments)
HOSTILE_MODELS = {
    "dtype_float16": (set_key("dtype", "float16"), None, None, ["`dtype`", "dtype='float16'"]),
    "dtype_int32": (set_key("dtype", "int32"), None, None, ["`dtype`", "dtype='int32'"]),
    "dtype_null": (set_key("dtype", None), None, None, ["`dtype`", "dtype=None"]),
    "seed_string": (set_key("seed", "abc"), None, None, ["`seed`", "seed='abc'"]),
    "seed_negative": (set_key("seed", -5), None, None, ["`seed`", "seed=-5"]),
    "seed_fraction": (set_key("seed", 1.5), None, None, ["`seed`", "seed=1.5"]),
    "seed_bool": (set_key("seed", True), None, None, ["`seed`", "seed=True"]),
    "seed_beyond_64_bits": (set_key("seed", 2**64), None, None, ["`seed`", "below 2**64"]),
    "engine_key": (set_key("engine", "torch"), None, None, ["unknown key(s) ['engine']"]),
    "no_layers": (set_key("layers", []), None, None, ["the network has no layers"]),
    "layers_string": (set_key("layers", "conv8k3"), None, None, ["`layers` must be a list"]),
    "layer_string": (set_layer(0, "conv"), None, None, ["layer 1 of the model configuration", '"type" key']),
    "layer_wrong_type": (set_layer(0, {"type": "Conv2D", "filters": "2", "kernel_size": 3}), None, None,
                         ["layer 1", "`filters`", "filters='2'"]),
    "layer_unknown_key": (set_layer(2, {"type": "Flatten", "axis": 1}), None, None, ["unknown key(s) 'axis'"]),
    "layer_name_escape": (set_layer(2, {"type": "Flatten", "name": "x\x1b[2J"}), None, None, [r"name='x\x1b[2J'"]),
    "input_shape_null": (set_key("input_shape", None), None, None, ["`input_shape` must be a list"]),
    "input_shape_zero": (set_key("input_shape", [0, 5, 5]), None, None, ["invalid input shape"]),
    "missing_seed": (lambda config: config.pop("seed"), None, None, ["lacks the key(s) seed"]),
    "frozen_unknown": (set_key("frozen", ["zzz"]), None, None, ["`frozen` names 'zzz', which is no layer"]),
    "frozen_string": (set_key("frozen", "conv2d"), None, None, ["`frozen` must be a list"]),
    "name_newline": (set_key("name", "a\nb"), None, None, ["`name`", r"name='a\nb'"]),
    "name_a_list": (set_key("name", [["sequential"]]), None, None, ["`name`"]),
    "model_not_object": (None, None, json.dumps({"model": []}), ["not a model configuration", "received a list"]),
    "no_model": (None, None, json.dumps({"weights": 1}), ["holds no model configuration"]),
    "document_a_list": (None, None, "[1]", ["must be an object", "received list"]),
    "document_nested_deep": (None, None, '{"model": ' + "[" * DEEP + "]" * DEEP + "}", ["nested too deeply"]),
    "document_long_int": (None, None, '{"model": {"seed": %s}}' % ("9" * DEEP), ["4300 digits"]),
    "weights_int": (None, set_array(CONV_W, lambda a: a.astype(np.int64)), None, ["dtype int64, not float"]),
    "weights_complex": (None, set_array(CONV_W, lambda a: a.astype(complex)), None, ["dtype complex128"]),
    "weights_bool": (None, set_array(CONV_W, lambda a: a > 0), None, ["dtype bool"]),
    "weights_strings": (None, set_array(CONV_W, lambda a: a.astype(str)), None, ["dtype <U"]),
    "weights_object": (None, set_array(CONV_W, lambda a: a.astype(object)), None, ["not a readable model file"]),
    "weights_nan": (None, set_value(CONV_W, np.nan), None, ["holds 1 NaN or infinite value(s)"]),
    "weights_inf": (None, set_value("buffer/batch_normalization/running_var", np.inf), None,
                    ["buffer 'running_var'", "holds 1 NaN or infinite"]),
    "weights_overflow_float32": (None, lambda a: a.__setitem__(CONV_W, a[CONV_W].astype(np.float64) * 1e300),
                                 None, ["NaN or infinite value(s) as float32"]),
    "weights_shape": (None, set_array(CONV_W, lambda a: a[:1]), None, ["has shape (1, 1, 3, 3)", "needs (2, 1, 3, 3)"]),
    "weights_missing": (None, lambda a: a.pop(CONV_W), None, ["has no param 'weight' for layer 'conv2d' (Conv2D)"]),
    "weights_extra": (None, lambda a: a.__setitem__("param/ghost/weight", np.zeros(1)), None,
                      ["arrays this model lacks: 'param/ghost/weight'"]),
}


def write_variant(good_file, directory, name):
    config_change, arrays_change, raw, _ = HOSTILE_MODELS[name]
    arrays, document = load_archive(good_file)
    if config_change:
        config_change(document["model"])
    if arrays_change:
        arrays_change(arrays)
    path = directory / f"{name}.npz"
    if raw is None:
        save_archive(path, arrays, document)
    else:  # a JSON document save_archive would not write
        buffer = io.BytesIO()
        np.savez(buffer, __json__=np.array([raw]), **arrays)
        path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("name", list(HOSTILE_MODELS))
def test_hostile_model_files_give_one_checkpoint_error_naming_the_file(good_file, tmp_path, name):
    path = write_variant(good_file, tmp_path, name)
    with pytest.raises(CheckpointError) as caught:
        load_model(path, engine="refcnn")
    message = str(caught.value)
    assert str(path) in message and "\n" not in message, message
    for fragment in HOSTILE_MODELS[name][3]:
        assert fragment in message, (fragment, message)
    if name.startswith(("weights", "document_nested", "document_long")):  # what load_weights reads too
        model = Model(small_layers(), (1, 5, 5), engine="refcnn")
        before = {key: value.copy() for key, value in model.state_arrays().items()}
        with pytest.raises(CheckpointError, match=re.escape(HOSTILE_MODELS[name][3][0])):
            model.load_weights(path)
        assert all(np.array_equal(before[key], value) for key, value in model.state_arrays().items())


def test_a_model_file_of_absurd_size_names_the_file_and_the_layer(good_file, tmp_path):
    arrays, document = load_archive(good_file)
    document["model"]["layers"][3] = {"type": "Dense", "units": 10**9}
    save_archive(tmp_path / "wide.npz", arrays, document)
    with pytest.raises(SizeLimitError, match=r"wide\.npz: Model: layer 4 \(Dense 'dense'\): its weight of shape"):
        load_model(tmp_path / "wide.npz", engine="refcnn")


def test_load_model_refuses_a_bad_engine_as_the_callers_mistake(good_file):
    with pytest.raises(ValueError, match="invalid value for argument `engine`") as caught:
        load_model(good_file, engine="torch")
    assert not isinstance(caught.value, CheckpointError)
    assert load_model(good_file, engine="refcnn").seed == 3


def test_from_config_refuses_what_is_no_configuration():
    for config in (None, [], "cnn-model-1", {"format": "other"}):
        with pytest.raises(CheckpointError, match="not a model configuration"):
            Model.from_config(config)
