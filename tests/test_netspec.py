"""cnnbase.netspec: layer records, summaries, the text grammar, JSON, presets (specs/netspec.md, specs/counting.md)."""

import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnbase import netspec as ns
from cnnbase.netspec import (
    Activation, AvgPool1D, AvgPool2D, BatchNorm, Conv1D, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool1D,
    GlobalAvgPool2D, GlobalMaxPool1D, GlobalMaxPool2D, MaxPool1D, MaxPool2D, NetSpecError, SpecParseError,
)

# Published totals: Keras' model.summary() example, Keras' mnist_cnn.py, TensorFlow's layers tutorial,
# LeNet-5 as commonly implemented.
PUBLISHED_TOTALS = {"keras-summary": 225_034, "keras-mnist": 1_199_882, "tf-mnist-5x5": 3_274_634, "lenet5": 61_706}


# --------------------------------------------------------------------------------------------------
# Published figures


def test_keras_summary_rows_match_the_published_table():
    summary = ns.PRESETS["keras-summary"].summary()
    keras_shapes = [(26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (1600,), (128,), (10,)]
    ours = [row.output_shape[1:] + row.output_shape[:1] if len(row.output_shape) > 1 else row.output_shape
            for row in summary.rows]
    assert ours == keras_shapes
    assert [row.params for row in summary.rows] == [320, 0, 18_496, 0, 0, 204_928, 1_290]
    assert summary.total_params == summary.trainable_params == 225_034
    assert summary.non_trainable_params == 0


@pytest.mark.parametrize("name", sorted(PUBLISHED_TOTALS))
def test_preset_totals_match_published_counts(name):
    summary = ns.PRESETS[name].summary()
    assert summary.total_params == PUBLISHED_TOTALS[name]


def test_keras_summary_macs_by_hand():
    # conv1: 26*26 positions * 32 filters * 1*3*3 = 194,688; conv2: 11*11 * 64 * 32*3*3 = 2,230,272;
    # dense: 1600*128 = 204,800; dense_1: 128*10 = 1,280 (specs/counting.md works these out).
    summary = ns.PRESETS["keras-summary"].summary()
    assert [row.macs for row in summary.rows] == [194_688, 0, 2_230_272, 0, 0, 204_800, 1_280]
    assert summary.flops == 2 * 2_631_040


def test_keras_summary_receptive_fields_by_hand():
    summary = ns.PRESETS["keras-summary"].summary()
    assert [row.receptive_field[0] for row in summary.rows] == [3, 4, 8, 10, 10, 26, 26]
    assert all(row.receptive_field[0] == row.receptive_field[1] for row in summary.rows)
    assert [row.jump[0] for row in summary.rows] == [1, 2, 2, 4, 4, 20, 20]
    assert all(row.start == (0, 0) for row in summary.rows)


# --------------------------------------------------------------------------------------------------
# Counting rules


def test_batch_norm_counts_two_trainable_and_two_running_values_per_channel():
    summary = ns.summarize([Conv2D(8, 3), BatchNorm(), Flatten(), Dense(4), BatchNorm()], (3, 6, 6))
    bn_map, bn_vec = summary.rows[1], summary.rows[4]
    assert (bn_map.trainable_params, bn_map.non_trainable_params) == (16, 16)
    assert (bn_vec.trainable_params, bn_vec.non_trainable_params) == (8, 8)
    assert summary.non_trainable_params == 24
    assert summary.total_params == (8 * 3 * 9 + 8) + 32 + (4 * 8 * 16 + 4) + 16


def test_groups_and_bias_in_conv_params_and_macs():
    row = ns.summarize([Conv2D(6, (3, 2), groups=3, use_bias=False)], (9, 5, 4)).rows[0]
    assert row.output_shape == (6, 3, 3)
    assert row.trainable_params == 6 * 3 * 3 * 2
    assert row.macs == 3 * 3 * 6 * 3 * 3 * 2


def test_pooling_activations_dropout_and_flatten_cost_no_macs():
    summary = ns.summarize([MaxPool2D(2), AvgPool2D(2), Activation("relu"), Dropout(0.5), Flatten()], (2, 8, 8))
    assert [row.macs for row in summary.rows] == [0] * 5
    assert summary.total_params == 0


def test_activation_memory_counts_output_elements_batch_and_dtype():
    summary = ns.summarize([Conv2D(4, 3), Flatten(), Dense(5)], (1, 6, 6), batch_size=3, dtype_bytes=8)
    assert [row.activation_bytes for row in summary.rows] == [4 * 4 * 4 * 3 * 8, 64 * 3 * 8, 5 * 3 * 8]
    assert summary.activation_bytes == sum(row.activation_bytes for row in summary.rows)
    assert summary.input_bytes == 36 * 3 * 8
    assert summary.param_bytes == summary.total_params * 8


def test_padding_forms_give_their_output_sizes():
    layers = [Conv2D(1, 3, padding="same"), Conv2D(1, 3, strides=2, padding="same"),
              Conv2D(1, 3, padding=((2, 0), (0, 1))), MaxPool2D(3, strides=2, ceil_mode=True)]
    summary = ns.summarize(layers, (1, 7, 8))
    assert [row.output_shape for row in summary.rows] == [(1, 7, 8), (1, 4, 4), (1, 4, 3), (1, 2, 1)]
    # The first 'same' conv pads (1, 1): start -1. The second, on 7x8 with k=3, s=2, pads H by (1, 1)
    # (total (4-1)*2 + 3 - 7 = 2) and W by (0, 1) (total 1, the odd cell at the end): start -1 - 1 and -1 - 0.
    assert summary.rows[0].start == (-1, -1)
    assert summary.rows[1].start == (-2, -1)


def test_one_dimensional_layers():
    layers = [Conv1D(4, 5, padding=2), MaxPool1D(2), AvgPool1D(3, strides=1, padding=1, count_include_pad=False),
              GlobalAvgPool1D(), Dense(3)]
    summary = ns.summarize(layers, (2, 10))
    assert [row.output_shape for row in summary.rows] == [(4, 10), (4, 5), (4, 5), (4,), (3,)]
    assert summary.rows[0].trainable_params == 4 * 2 * 5 + 4
    assert summary.rows[-1].receptive_field == (5 + 1 * 1 + 2 * 2 + 4 * 2,)


# --------------------------------------------------------------------------------------------------
# Receptive field against a brute-force count


def _windows(summary_layers, input_shape):
    """Per layer and axis the (k, s, d, p_b) of the window, resolved independently of netspec for the
    padding forms used below (ints and per-side pairs only)."""
    out = []
    for layer in summary_layers:
        if isinstance(layer, (Conv1D, Conv2D)):
            k, s, d = layer.kernel_size, layer.strides, layer.dilation
        else:
            k, s, d = layer.pool_size, layer.strides, (1,) * len(layer.pool_size)
        pad = layer.padding
        rank = len(k)
        if pad == "valid":
            begins = (0,) * rank
        elif isinstance(pad, int):
            begins = (pad,) * rank
        elif all(isinstance(p, int) for p in pad):
            begins = tuple(pad)
        else:
            begins = tuple(b for b, _ in pad)
        out.append(list(zip(k, s, d, begins)))
    return out


def _cells_seen(windows, axis, layer_count, unit):
    """Network-input coordinates unit ``unit`` of layer ``layer_count`` depends on, by plain recursion
    over the windows (padding cells extend the lattice, as in specs/counting.md)."""
    if layer_count == 0:
        return {unit}
    k, s, d, p_b = windows[layer_count - 1][axis]
    cells = set()
    for j in range(k):
        cells |= _cells_seen(windows, axis, layer_count - 1, unit * s - p_b + j * d)
    return cells


@st.composite
def windowed_stacks(draw):
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        k = tuple(draw(st.integers(1, 3)) for _ in range(2))
        s = tuple(draw(st.integers(1, 2)) for _ in range(2))
        if draw(st.booleans()):
            d = tuple(draw(st.integers(1, 2)) for _ in range(2))
            pad = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
            layers.append(Conv2D(2, k, strides=s, dilation=d, padding=pad))
        else:
            pad = draw(st.integers(0, min(k) // 2))
            pool = MaxPool2D if draw(st.booleans()) else AvgPool2D
            layers.append(pool(k, strides=s, padding=pad))
    return layers


@settings(max_examples=30)
@given(windowed_stacks())
def test_receptive_field_jump_and_start_match_brute_force(layers):
    # 40 cells per axis is enough for 3 layers of extent <= 5 and stride <= 2: valid by construction.
    summary = ns.summarize(layers, (2, 40, 40))
    windows = _windows(layers, (2, 40, 40))
    for count, row in enumerate(summary.rows, start=1):
        for axis in range(2):
            first, second = _cells_seen(windows, axis, count, 0), _cells_seen(windows, axis, count, 1)
            assert row.receptive_field[axis] == max(first) - min(first) + 1, (layers[:count], axis)
            assert row.start[axis] == min(first)
            assert row.jump[axis] == min(second) - min(first)


def test_dense_after_flatten_sees_every_position_brute_force():
    layers = [Conv2D(2, 3, strides=2), MaxPool2D(2)]
    summary = ns.summarize(layers + [Flatten(), Dense(4)], (1, 13, 11))
    windows = _windows(layers, (1, 13, 11))
    last_map = summary.rows[1].output_shape
    for axis in range(2):
        every = set().union(*(_cells_seen(windows, axis, 2, o) for o in range(last_map[1 + axis])))
        assert summary.rows[-1].receptive_field[axis] == max(every) - min(every) + 1


# --------------------------------------------------------------------------------------------------
# Layers that do not fit: one error class, one line, index, type, name and numbers


def assert_one_line_error(layers, shape, words):
    """summarize() raises a NetSpecError of one line that contains every one of ``words``."""
    with pytest.raises(NetSpecError) as info:
        ns.summarize(layers, shape)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    "layers, shape, words",
    [
        ([Conv2D(8, 3), Conv2D(8, 5, name="conv3")], (1, 6, 6),
         ["layer 2", "Conv2D 'conv3'", "axis H", "5 cells", "4 + 0 + 0 = 4"]),
        ([Conv2D(6, 3, groups=4)], (8, 5, 5), ["layer 1", "groups=4", "C_in=8", "C_out=6"]),
        ([Conv2D(4, 3), Dense(10)], (1, 5, 5), ["layer 2", "Dense 'dense'", "Flatten", "4x3x3"]),
        ([Flatten(), Conv2D(4, 3)], (1, 5, 5), ["layer 2", "Conv2D", "(C, H, W)", "25"]),
        ([MaxPool2D(2, strides=1, padding=((0, 3), (0, 0)))], (1, 4, 4), ["layer 1", "MaxPool2D", "padding only"]),
        ([Conv1D(2, 3, padding=1, padding_mode="reflect")], (1, 1), ["layer 1", "reflect", "size 1"]),
        ([GlobalAvgPool2D()], (4, 10), ["layer 1", "GlobalAvgPool2D", "(C, H, W)"]),
    ],
)
def test_a_layer_that_cannot_fit_raises_one_line(layers, shape, words):
    assert_one_line_error(layers, shape, words)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: Conv2D(0, 3), "filters"),
        (lambda: Conv2D(4, (3, 3, 3)), "kernel_size"),
        (lambda: Conv2D(4, 3, strides=0), "strides"),
        (lambda: Conv2D(4, 3, padding="full"), "padding"),
        (lambda: Conv2D(4, 3, padding=-1), "padding"),
        (lambda: Conv2D(4, 3, padding_mode="mirror"), "padding_mode"),
        (lambda: Conv2D(4, 3, activation="gelu"), "activation"),
        (lambda: MaxPool2D(0), "pool_size"),
        (lambda: AvgPool2D(2, count_include_pad="no"), "count_include_pad"),
        (lambda: Dense(-1), "units"),
        (lambda: Dropout(1.0), "rate"),
        (lambda: BatchNorm(eps=0.0), "eps"),
        (lambda: Activation("swish"), "activation"),
        (lambda: Flatten(name="2bad"), "name"),
    ],
)
def test_invalid_hyperparameters_raise_naming_the_parameter(make, name):
    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        make()


def test_invalid_input_shape_and_batch_size():
    with pytest.raises(NetSpecError, match="input shape"):
        ns.summarize([Flatten()], (1, 0, 3))
    with pytest.raises(NetSpecError, match="batch_size"):
        ns.summarize([Flatten()], (1, 3, 3), batch_size=0)


# --------------------------------------------------------------------------------------------------
# The text grammar


def test_parse_spec_examples_from_the_spec():
    text = "conv32k3 relu, maxpool2, conv64k3s2p1 relu, flatten, dense128 relu, dropout0.5, dense10 softmax"
    layers = ns.parse_spec(text)
    assert layers == [
        Conv2D(32, 3, activation="relu"), MaxPool2D(2), Conv2D(64, 3, strides=2, padding=1, activation="relu"),
        Flatten(), Dense(128, activation="relu"), Dropout(0.5), Dense(10, activation="softmax"),
    ]
    assert ns.parse_spec("conv16 k3x5 s1x2 p1:2x0:1 d2 g2 reflect nobias @c1") == [
        Conv2D(16, (3, 5), strides=(1, 2), padding=((1, 2), (0, 1)), dilation=2, groups=2,
               padding_mode="reflect", use_bias=False, name="c1")
    ]
    assert ns.parse_spec("conv1d8k3 same, avgpool1d2 ceil exclude_pad, gap1d, bn eps=0.001 momentum=0.01, tanh") == [
        Conv1D(8, 3, padding="same"), AvgPool1D(2, ceil_mode=True, count_include_pad=False), GlobalAvgPool1D(),
        BatchNorm(eps=0.001, momentum=0.01), Activation("tanh"),
    ]


@pytest.mark.parametrize(
    "text, words",
    [
        ("conv32k3 relu, maxpol2", ["layer 2", "'maxpol2'", "column 16"]),
        ("conv32 relu", ["layer 1", "kernel size"]),
        ("conv32k3 k5", ["layer 1", "'k5'", "twice"]),
        ("maxpool2 g2", ["'g2'", "MaxPool2D takes no groups"]),
        ("dense10 same", ["'same'", "Dense takes no padding"]),
        ("conv8k3 p1x0:1", ["'p1x0:1'", "mixes"]),
        ("conv8k3x3x3", ["kernel_size"]),
        ("dropout1.5", ["rate", "1.5"]),
        ("conv8k3,, flatten", ["layer 2 is empty"]),
        ("", ["empty"]),
        ("conv8k3 bogus", ["'bogus'", "column 9"]),
    ],
)
def test_parse_errors_name_the_word_and_its_position(text, words):
    with pytest.raises(SpecParseError) as info:
        ns.parse_spec(text)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


names = st.one_of(st.none(), st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True))


def ints_or_tuples(rank, low, high):
    return st.one_of(st.integers(low, high), st.tuples(*[st.integers(low, high)] * rank))


def paddings(rank):
    return st.one_of(
        st.sampled_from(["valid", "same", "same_lower"]),
        ints_or_tuples(rank, 0, 3),
        st.tuples(*[st.tuples(st.integers(0, 3), st.integers(0, 3))] * rank),
    )


@st.composite
def any_layer(draw):
    rank = draw(st.sampled_from([1, 2]))
    kind = draw(st.sampled_from(["conv", "maxpool", "avgpool", "global", "flatten", "dense", "dropout", "bn", "act"]))
    name = draw(names)
    if kind == "conv":
        return (Conv1D if rank == 1 else Conv2D)(
            draw(st.integers(1, 64)), draw(ints_or_tuples(rank, 1, 7)), strides=draw(ints_or_tuples(rank, 1, 3)),
            padding=draw(paddings(rank)),
            padding_mode=draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])),
            dilation=draw(ints_or_tuples(rank, 1, 3)), groups=draw(st.integers(1, 4)), use_bias=draw(st.booleans()),
            activation=draw(st.sampled_from((None,) + ns.ACTIVATIONS)), name=name,
        )
    if kind in ("maxpool", "avgpool"):
        classes = {("maxpool", 1): MaxPool1D, ("maxpool", 2): MaxPool2D, ("avgpool", 1): AvgPool1D,
                   ("avgpool", 2): AvgPool2D}
        cls = classes[kind, rank]
        extra = {"count_include_pad": draw(st.booleans())} if kind == "avgpool" else {}
        return cls(draw(ints_or_tuples(rank, 1, 4)), strides=draw(st.one_of(st.none(), ints_or_tuples(rank, 1, 4))),
                   padding=draw(paddings(rank)), ceil_mode=draw(st.booleans()), name=name, **extra)
    if kind == "global":
        return draw(st.sampled_from([GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D, GlobalMaxPool2D]))(name=name)
    if kind == "flatten":
        return Flatten(name=name)
    if kind == "dense":
        return Dense(draw(st.integers(1, 4096)), use_bias=draw(st.booleans()),
                     activation=draw(st.sampled_from((None,) + ns.ACTIVATIONS)), name=name)
    if kind == "dropout":
        return Dropout(draw(st.floats(0, 0.99)), name=name)
    if kind == "bn":
        return BatchNorm(eps=draw(st.floats(1e-8, 1.0)), momentum=draw(st.floats(0, 1)), name=name)
    return Activation(draw(st.sampled_from(ns.ACTIVATIONS)), name=name)


@settings(max_examples=60)
@given(st.lists(any_layer(), min_size=1, max_size=5))
def test_text_round_trip(layers):
    text = ns.to_spec(layers)
    assert ns.parse_spec(text) == layers, text


@settings(max_examples=60)
@given(st.lists(any_layer(), min_size=1, max_size=5))
def test_json_round_trip(layers):
    network = ns.Network((3, 16, 16), tuple(layers))
    assert ns.Network.from_dict(json.loads(json.dumps(network.to_dict()))) == network


def test_equal_meanings_compare_equal():
    assert Conv2D(8, 3, padding=((1, 1), (1, 1))) == Conv2D(8, (3, 3), padding=1)
    assert Conv2D(8, 3, padding=0) == Conv2D(8, 3)  # 0 everywhere is 'valid'
    assert MaxPool2D(2, strides=2) == MaxPool2D(2)
    assert Conv2D(8, 3).to_dict() == {"type": "Conv2D", "filters": 8, "kernel_size": 3}


def test_layer_from_dict_accepts_keras_class_names_and_refuses_unknown_keys():
    assert ns.layer_from_dict({"type": "MaxPooling2D", "pool_size": [2, 2]}) == MaxPool2D(2)
    assert ns.layer_from_dict({"type": "BatchNormalization"}) == BatchNorm()
    with pytest.raises(SpecParseError, match="'kernel'"):
        ns.layer_from_dict({"type": "Conv2D", "filters": 3, "kernel": 3})
    with pytest.raises(SpecParseError, match="kernel_size"):
        ns.layer_from_dict({"type": "Conv2D", "filters": 3})
    with pytest.raises(SpecParseError, match="unknown layer type"):
        ns.layer_from_dict({"type": "Conv3D"})


def test_load_network_from_json_file(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"input_shape": [1, 28, 28], "layers": [
        {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPool2D", "pool_size": 2}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]}))
    network = ns.load_network(str(path))
    assert network.summary().total_params == 320 + 32 * 13 * 13 * 10 + 10
    with pytest.raises(SpecParseError, match="layer 2 of the JSON file"):
        path.write_text(json.dumps({"input_shape": [1, 8, 8], "layers": [{"type": "Flatten"}, {"type": "Dense"}]}))
        ns.load_network(str(path))


def test_parse_shape():
    assert ns.parse_shape("1x28x28") == (1, 28, 28)
    assert ns.parse_shape("784") == (784,)
    for bad in ("1x0", "axb", "1x2x3x4", ""):
        with pytest.raises(SpecParseError, match="input shape"):
            ns.parse_shape(bad)


# --------------------------------------------------------------------------------------------------
# Rendering


def test_render_keras_matches_the_classic_layout():
    lines = ns.render_keras(ns.PRESETS["keras-summary"].summary()).splitlines()
    assert lines[2].rstrip() == "Layer (type)                 Output Shape              Param #"
    assert lines[4].rstrip() == "conv2d (Conv2D)              (None, 26, 26, 32)        320"
    # Keras cuts the first column at 29 characters
    assert lines[10].rstrip() == "max_pooling2d_1 (MaxPooling2 (None, 5, 5, 64)          0"
    assert lines[-4:-1] == ["Total params: 225,034", "Trainable params: 225,034", "Non-trainable params: 0"]
    assert all(len(line) <= 65 for line in lines)


def test_render_csv_and_json_parse_back():
    summary = ns.summarize([Conv2D(4, 3), BatchNorm(), Flatten(), Dense(2)], (1, 5, 5), batch_size=2)
    rows = list(csv.DictReader(io.StringIO(ns.render_csv(summary))))
    assert [r["output_shape"] for r in rows] == ["4x3x3", "4x3x3", "36", "2"]
    assert [int(r["params"]) for r in rows] == [row.params for row in summary.rows]
    data = json.loads(ns.render_json(summary))
    assert data["totals"]["total_params"] == summary.total_params
    assert data["totals"]["non_trainable_params"] == 8
    assert [tuple(r["output_shape"]) for r in data["rows"]] == [row.output_shape for row in summary.rows]


def test_render_table_shows_totals_with_separators():
    text = ns.render_table(ns.PRESETS["keras-mnist"].summary(batch_size=32))
    assert "Total params: 1,199,882" in text
    assert "MACs for the batch of 32" in text
    assert ns.format_bytes(900_136) == "879.04 KiB"


# --------------------------------------------------------------------------------------------------
# Cross-checks with PyTorch: parameter counts and output shapes


def _torch_layer(layer, x, nn):
    """A torch module doing what ``layer`` does to a batch shaped like ``x`` (shapes and parameters)."""
    if isinstance(layer, ns.Block):
        return _torch_block(layer, x, nn)
    if isinstance(layer, (Conv1D, Conv2D)):
        conv = nn.Conv1d if layer.rank == 1 else nn.Conv2d
        pad_module, padding = None, layer.padding
        if isinstance(padding, tuple) and isinstance(padding[0], tuple):
            flat = [v for b, e in reversed(padding) for v in (b, e)]  # torch pads the last axis first
            pad_module, padding = (nn.ConstantPad1d if layer.rank == 1 else nn.ConstantPad2d)(tuple(flat), 0.0), 0
        module = conv(x.shape[1], layer.filters, layer.kernel_size, stride=layer.strides, padding=padding,
                      dilation=layer.dilation, groups=layer.groups, bias=layer.use_bias)
        return module if pad_module is None else nn.Sequential(pad_module, module)
    if isinstance(layer, (MaxPool1D, MaxPool2D)):
        pool = nn.MaxPool1d if layer.rank == 1 else nn.MaxPool2d
        padding = 0 if layer.padding == "valid" else layer.padding
        return pool(layer.pool_size, layer.strides, padding, ceil_mode=layer.ceil_mode)
    if isinstance(layer, (AvgPool1D, AvgPool2D)):
        pool = nn.AvgPool1d if layer.rank == 1 else nn.AvgPool2d
        return pool(layer.pool_size, layer.strides, 0 if layer.padding == "valid" else layer.padding,
                    ceil_mode=layer.ceil_mode, count_include_pad=layer.count_include_pad)
    if isinstance(layer, (GlobalAvgPool1D, GlobalAvgPool2D)):
        return nn.Sequential(nn.AdaptiveAvgPool2d(1) if x.dim() == 4 else nn.AdaptiveAvgPool1d(1), nn.Flatten())
    if isinstance(layer, (GlobalMaxPool1D, GlobalMaxPool2D)):
        return nn.Sequential(nn.AdaptiveMaxPool2d(1) if x.dim() == 4 else nn.AdaptiveMaxPool1d(1), nn.Flatten())
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, Dense):
        return nn.Linear(x.shape[1], layer.units, bias=layer.use_bias)
    if isinstance(layer, BatchNorm):
        return nn.BatchNorm2d(x.shape[1]) if x.dim() == 4 else nn.BatchNorm1d(x.shape[1])
    return nn.Identity()


def _torch_rows(layers, input_shape):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    x = torch.zeros((2,) + tuple(input_shape))
    rows = []
    with torch.no_grad():
        for layer in layers:
            module = _torch_layer(layer, x, nn).eval()
            x = module(x)
            trainable = sum(p.numel() for p in module.parameters())
            running = sum(b.numel() for name, b in module.named_buffers()
                          if name.endswith(("running_mean", "running_var")))
            rows.append((tuple(x.shape[1:]), trainable, running))
    return rows


def _ours(summary):
    return [(row.output_shape, row.trainable_params, row.non_trainable_params) for row in summary.rows]


@pytest.mark.parametrize("name", sorted(PUBLISHED_TOTALS))  # the block presets: tests/test_presets.py
def test_presets_against_torch(name):
    network = ns.PRESETS[name]
    torch_rows = _torch_rows(network.layers, network.input_shape)
    assert _ours(network.summary()) == torch_rows
    assert sum(t + r for _, t, r in torch_rows) == PUBLISHED_TOTALS[name]


def test_mixed_network_against_torch():
    layers = ns.parse_spec(
        "conv8k3s2p1:2x0:1 d2 relu, bn, maxpool3s2p1 ceil, conv12k1g4 nobias, avgpool2 exclude_pad, gap, dense7, bn, "
        "dense3"
    )
    assert _ours(ns.summarize(layers, (4, 23, 19))) == _torch_rows(layers, (4, 23, 19))
    layers_1d = ns.parse_spec("conv1d6k5s2p2, bn, maxpool1d2, conv1d4k3d2 nobias, gap1d, dense2")
    assert _ours(ns.summarize(layers_1d, (3, 40))) == _torch_rows(layers_1d, (3, 40))


@st.composite
def single_windowed_layer(draw):
    """One conv or pool layer and an input size valid by construction (hyperparameters drawn first)."""
    rank = draw(st.sampled_from([1, 2]))
    k = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    if draw(st.booleans()):
        d = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        groups = draw(st.integers(1, 3))
        pad = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
        layer = (Conv1D if rank == 1 else Conv2D)(groups * draw(st.integers(1, 3)), k, strides=s, dilation=d,
                                                  groups=groups, padding=pad, use_bias=draw(st.booleans()))
        channels, extent = groups * draw(st.integers(1, 2)), [di * (ki - 1) + 1 for di, ki in zip(d, k)]
        need = [max(1, e - b - en) for e, (b, en) in zip(extent, pad)]
    else:
        pad = tuple(draw(st.integers(0, ki // 2)) for ki in k)  # PyTorch's pooling limit
        pool = draw(st.sampled_from([MaxPool1D, AvgPool1D] if rank == 1 else [MaxPool2D, AvgPool2D]))
        layer = pool(k, strides=s, padding=pad, ceil_mode=draw(st.booleans()))
        channels, need = draw(st.integers(1, 3)), [max(1, ki - 2 * p) for ki, p in zip(k, pad)]
    sizes = tuple(n + draw(st.integers(0, 5)) for n in need)
    return layer, (channels,) + sizes


@settings(max_examples=40)
@given(single_windowed_layer())
def test_single_layers_against_torch(case):
    layer, input_shape = case
    assert _ours(ns.summarize([layer], input_shape)) == _torch_rows([layer], input_shape), (layer, input_shape)


# --------------------------------------------------------------------------------------------------
# Blocks: Residual and Concat (specs/netspec.md "Blocks", specs/counting.md "Blocks")

from cnnbase.netspec import Concat, Residual  # noqa: E402


def basic_block(channels, stride=1, project=False):
    """ResNet's basic block (He et al. 2016) in the usual conv-bn-relu form, without biases."""
    body = [Conv2D(channels, 3, strides=stride, padding=1, use_bias=False), BatchNorm(), Activation("relu"),
            Conv2D(channels, 3, padding=1, use_bias=False), BatchNorm()]
    shortcut = [Conv2D(channels, 1, strides=stride, use_bias=False), BatchNorm()] if project else []
    return Residual(body, shortcut, activation="relu")


def inception(c1, c3, c5, cp):
    """A GoogLeNet Inception module (Szegedy et al. 2015) with its four branches."""
    return Concat([
        [Conv2D(c1, 1, activation="relu")],
        [Conv2D(c3 // 2, 1, activation="relu"), Conv2D(c3, 3, padding=1, activation="relu")],
        [Conv2D(c5 // 4, 1, activation="relu"), Conv2D(c5, 5, padding=2, activation="relu")],
        [MaxPool2D(3, strides=1, padding=1), Conv2D(cp, 1, activation="relu")],
    ])


def small_resnet():
    return [Conv2D(8, 3, padding=1, use_bias=False), BatchNorm(), Activation("relu"), basic_block(8),
            basic_block(16, stride=2, project=True), inception(4, 8, 8, 4), GlobalAvgPool2D(), Dense(10)]


def test_residual_block_row_by_hand():
    block = basic_block(8, stride=2, project=True)
    row = ns.summarize([block], (3, 8, 8)).rows[0]
    assert (row.index, row.name, row.type, row.output_shape) == (1, "residual", "Residual", (8, 4, 4))
    # body: 8*3*9 + bn 2*8 + 8*8*9 + bn 2*8; shortcut: 8*3 + bn 2*8; running statistics 3 * 2*8
    assert row.trainable_params == 216 + 16 + 576 + 16 + 24 + 16
    assert row.non_trainable_params == 3 * 16
    # MACs: 4*4 positions * 8 filters * (3*9 + 8*9 + 3); the addition itself is free
    assert row.macs == 16 * 8 * (27 + 72 + 3)
    # body: k3 s2 p1 then k3 p1 -> rf 7, jump 2, start -3; shortcut k1 s2 -> rf 1, start 0; union: the body's
    assert (row.receptive_field, row.jump, row.start) == ((7, 7), (2, 2), (-3, -3))
    # the block's output plus every output inside it (5 in the body, 2 in the shortcut), 4 bytes each
    assert row.activation_bytes == 4 * 128 * (1 + 5 + 2)


def test_block_children_are_the_sums_of_their_branch_summaries():
    block = inception(4, 8, 8, 4)
    row = ns.summarize([block], (6, 7, 7)).rows[0]
    assert row.output_shape == (4 + 8 + 8 + 4, 7, 7)
    inner = block.branch_summaries((6, 7, 7))
    assert list(inner) == ["branch0", "branch1", "branch2", "branch3"]
    assert row.trainable_params == sum(s.trainable_params for s in inner.values())
    assert row.macs == sum(s.macs for s in inner.values())
    assert [r.name for r in inner["branch1"].rows] == ["conv2d", "conv2d_1"]
    assert row.receptive_field == (5, 5) and row.start == (-2, -2)  # the 5x5 branch is the widest


def test_blocks_get_keras_like_default_names():
    layers = [Residual([Conv2D(2, 1)]), Residual([Conv2D(2, 1)], name="res"), Concat([[Conv2D(1, 1)], []]),
              Residual([Conv2D(3, 1)]), Conv2D(2, 1)]
    assert ns.default_names(layers) == ["residual", "res", "concat", "residual_1", "conv2d"]
    assert [row.name for row in ns.summarize(layers, (2, 3, 3)).rows] == ns.default_names(layers)
    assert ns.default_names(layers[:1], prefix="m/") == ["m/residual"]


def test_concat_with_an_identity_branch_and_nested_blocks():
    nested = Residual([Concat([[Conv2D(2, 3, padding=1)], [Conv2D(2, 1)]]), Conv2D(4, 1)])
    assert ns.summarize([Concat([[], [Conv2D(3, 1)]])], (4, 5, 5)).rows[0].output_shape == (7, 5, 5)
    with pytest.raises(NetSpecError, match=r"layer 2 \(Residual 'residual'\).*4x5x5.*7x5x5"):
        ns.summarize([Concat([[], [Conv2D(3, 1)]]), nested], (4, 5, 5))
    summary = ns.summarize([nested], (4, 5, 5))
    assert summary.rows[0].trainable_params == (2 * 4 * 9 + 2) + (2 * 4 + 2) + (4 * 4 + 4)
    assert summary.rows[0].receptive_field == (3, 3) and summary.rows[0].start == (-1, -1)


# Receptive field of blocks against a brute-force count: the union over every path of the input cells
# each unit depends on, found by following every window tap back to the input.

def _stack(layers):
    """Each layer as ("window", per-axis (k, s, d, p_b)) or ("paths", [stacks]); element-wise layers dropped."""
    out = []
    for layer in layers:
        if isinstance(layer, ns.Block):
            out.append(("paths", [_stack(path) for path in layer.named_branches().values()]))
        elif isinstance(layer, (ns.BaseConv, ns.BasePool)):
            out.append(("window", _windows([layer], None)[0]))
    return out


def _cells_of(stack, axis, unit):
    cells = {unit}
    for kind, item in reversed(stack):
        if kind == "window":
            k, s, d, p_b = item[axis]
            cells = {c * s - p_b + j * d for c in cells for j in range(k)}
        else:
            cells = set().union(*(_cells_of(path, axis, c) for path in item for c in cells))
    return cells


@pytest.mark.parametrize("layers", [
    [Conv2D(4, 3, strides=2, padding=1), basic_block(4), basic_block(8, stride=2, project=True), MaxPool2D(2)],
    [Concat([[Conv2D(1, 3, padding=((0, 2), (0, 2)))], [Conv2D(1, 3, padding=((2, 0), (2, 0)))]]), Conv2D(2, 3)],
    [MaxPool2D(2), inception(2, 4, 4, 2), Conv2D(3, 3, strides=2), inception(2, 2, 4, 2)],
    [Residual([Concat([[Conv2D(2, 3, dilation=2, padding=2)], [MaxPool2D(3, strides=1, padding=1)]]),
               Conv2D(3, 1)]), AvgPool2D(3, strides=2)],
])
def test_block_receptive_field_matches_brute_force(layers):
    summary = ns.summarize(layers, (3, 16, 16))
    for count, row in enumerate(summary.rows, start=1):
        stack = _stack(layers[:count])
        for axis in range(2):
            first, second = _cells_of(stack, axis, 0), _cells_of(stack, axis, 1)
            assert row.receptive_field[axis] == max(first) - min(first) + 1, (count, axis)
            assert row.start[axis] == min(first)
            assert row.jump[axis] == min(second) - min(first)


def test_block_after_flatten_and_dense_inside_a_block_see_everything():
    summary = ns.summarize([Conv2D(2, 3), Flatten(), Residual([Dense(18)])], (1, 5, 5))
    assert summary.rows[-1].receptive_field == (5, 5)
    summary = ns.summarize([Residual([GlobalAvgPool2D(), Dense(8)], [GlobalMaxPool2D(), Dense(8)]), Dense(2)],
                           (3, 6, 4))
    assert summary.rows[0].output_shape == (8,) and summary.rows[0].receptive_field == (6, 4)
    assert summary.rows[0].trainable_params == 2 * (3 * 8 + 8)


@pytest.mark.parametrize("layers, shape, words", [
    ([Conv2D(4, 1), Residual([Conv2D(8, 3, padding=1)], name="res2")], (2, 6, 6),
     ["layer 2 (Residual 'res2')", "body's output 8x6x6", "identity shortcut's 4x6x6", "input shape 4x6x6"]),
    ([Residual([Conv2D(4, 3, strides=2, padding=1)], [Conv2D(4, 1)])], (4, 6, 6),
     ["layer 1 (Residual 'residual')", "4x3x3", "4x6x6", "projection"]),
    ([Concat([[Conv2D(1, 1)], [Conv2D(1, 3)]])], (1, 5, 5),
     ["layer 1 (Concat 'concat')", "branch0 1x5x5", "branch1 1x3x3", "one spatial size"]),
    ([Concat([[Flatten()], [Flatten()]])], (1, 5, 5), ["layer 1 (Concat 'concat')", "branch0 25"]),
    ([Residual([Conv2D(2, 3), Conv2D(2, 5, name="big")])], (2, 5, 5),
     ["layer 1 (Residual 'residual')", "body: layer 2 (Conv2D 'big')", "axis H"]),
    ([Residual([Conv2D(2, 1, strides=2)], [Conv2D(2, 5)])], (2, 8, 8),
     ["layer 1 (Residual 'residual')", "axis H", "body 2, shortcut 1", "same total stride"]),
])
def test_blocks_that_do_not_fit_raise_one_line(layers, shape, words):
    assert_one_line_error(layers, shape, words)


def test_block_arguments_are_checked():
    with pytest.raises(TypeError, match="`body`"):
        Residual([1, 2])
    with pytest.raises(ValueError, match="`body`"):
        Residual([])
    with pytest.raises(ValueError, match="`activation`"):
        Residual([Conv2D(1, 1)], activation="gelu")
    with pytest.raises(ValueError, match="`branches`"):
        Concat([[Conv2D(1, 1)]])
    with pytest.raises(TypeError, match="`branches`"):
        Concat([[Conv2D(1, 1)], "conv"])
    assert Residual([Conv2D(1, 1)]) == Residual((Conv2D(1, (1, 1)),), [])


def test_blocks_round_trip_through_json():
    network = ns.Network((3, 16, 16), tuple(small_resnet()), "small resnet")
    text = json.dumps(network.to_dict())
    assert ns.Network.from_dict(json.loads(text)) == network
    data = basic_block(4, project=True).to_dict()
    assert set(data) == {"type", "body", "shortcut", "activation"}
    assert data["shortcut"][0] == {"type": "Conv2D", "filters": 4, "kernel_size": 1, "use_bias": False}
    assert Residual.from_dict(data) == basic_block(4, project=True)
    concat = Concat([[Conv2D(1, 1)], []], name="mix")
    assert concat.to_dict() == {"type": "Concat", "branches": [[{"type": "Conv2D", "filters": 1, "kernel_size": 1}],
                                                                []], "name": "mix"}
    assert Concat.from_dict(concat.to_dict()) == concat
    with pytest.raises(SpecParseError, match="expected a Concat"):
        Concat.from_dict(data)


@pytest.mark.parametrize("data, words", [
    ({"type": "Residual"}, ["needs the key body"]),
    ({"type": "Residual", "body": [], "skip": []}, ["unknown key(s) 'skip'", "allowed keys"]),
    ({"type": "Residual", "body": {"type": "Flatten"}}, ["`body` must be a list"]),
    ({"type": "Residual", "body": [{"type": "Flatten"}, {"type": "Dense"}]}, ["body layer 2", "Dense", "units"]),
    ({"type": "Concat", "branches": [[{"type": "Conv2D", "filters": 1, "kernel_size": 1}], [{"type": "Conv3D"}]]},
     ["branch1 layer 1", "Conv3D"]),
    ({"type": "Concat"}, ["needs the key branches"]),
])
def test_block_json_errors_name_the_place(data, words):
    with pytest.raises((SpecParseError, ValueError, TypeError)) as info:
        ns.layer_from_dict(data)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_blocks_have_a_text_form():
    """More in tests/test_netspec_blocks.py."""
    layers = [Conv2D(2, 1), Residual([Conv2D(2, 1)])]
    assert ns.to_spec(layers) == "conv2k1, residual(conv2k1)"
    assert ns.parse_spec(ns.to_spec(small_resnet())) == small_resnet()
    with pytest.raises(SpecParseError, match="writes its paths in parentheses"):
        ns.parse_spec("residual")


def test_cnn_shape_reads_a_json_file_with_a_residual_block(tmp_path):
    from click.testing import CliRunner

    from cli import cnn

    network = ns.Network((3, 32, 32), (Conv2D(16, 3, padding=1, use_bias=False), BatchNorm(), Activation("relu"),
                                       basic_block(16), basic_block(32, stride=2, project=True), GlobalAvgPool2D(),
                                       Dense(10)))
    path = tmp_path / "resnet.json"
    path.write_text(json.dumps(network.to_dict(), indent=2))
    runner = CliRunner()
    result = runner.invoke(cnn, ["shape", str(path)])
    assert result.exit_code == 0, result.output
    total = network.summary().total_params
    assert f"Total params: {ns.format_count(total)}" in result.output
    assert "residual (Residual)" in result.output and "residual_1 (Residual)" in result.output
    assert "32x16x16" in result.output
    result = runner.invoke(cnn, ["shape", str(path), "--format", "json"])
    rows = json.loads(result.output)["rows"]
    assert [r["type"] for r in rows].count("Residual") == 2
    keras = runner.invoke(cnn, ["shape", str(path), "--format", "keras"]).output
    assert "residual_1 (Residual)        (None, 16, 16, 32)" in keras
    path.write_text(json.dumps({"input_shape": [8, 32, 32], "layers": [basic_block(16).to_dict()]}))
    result = runner.invoke(cnn, ["shape", str(path)])
    assert result.exit_code == 2
    assert "layer 1 (Residual 'residual')" in result.output and "16x32x32" in result.output


# Cross-check with PyTorch modules: blocks built from the same torch layers as above.

def _torch_block(layer, x, nn):
    torch = pytest.importorskip("torch")

    def path(layers, x):
        modules = []
        for inner in layers:
            module = _torch_layer(inner, x, nn).eval()
            x = module(x)
            modules.append(module)
        return nn.Sequential(*modules)  # an empty Sequential is the identity

    class Join(nn.Module):
        def __init__(self, paths, add):
            super().__init__()
            self.paths, self.add = nn.ModuleList(paths), add

        def forward(self, x):
            outs = [p(x) for p in self.paths]
            return sum(outs[1:], outs[0]) if self.add else torch.cat(outs, dim=1)

    paths = [path(layers, x) for layers in layer.named_branches().values()]
    return Join(paths, isinstance(layer, Residual))


def test_blocks_against_torch():
    pytest.importorskip("torch")
    layers = small_resnet() + [Dense(4)]
    nested = [Residual([Concat([[Conv2D(2, 3, padding=1)], [MaxPool2D(3, strides=1, padding=1)]]), Conv2D(5, 1)],
                       [Conv2D(5, 1, use_bias=False), BatchNorm()]), Flatten(), Dense(3)]
    for net, shape in ((layers, (3, 16, 16)), (nested, (3, 9, 7))):
        assert _ours(ns.summarize(net, shape)) == _torch_rows(net, shape)
