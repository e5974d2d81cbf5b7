"""cnn.pictures and `cnn show`: the numbers behind the pictures against independent computations (a torch
network built here with the same weights and its autograd for Grad-CAM, refcnn's convolution for the feature
maps, scipy and the hand-worked seed matrix for Sobel), then the command line on small models."""

import numpy as np
import pytest
from click.testing import CliRunner

import refcnn
from cnn import pictures
from cnn.cli import cnn
from cnn.data import load_embedded_sample
from cnn.model import Model

torch = pytest.importorskip("torch")
F = torch.nn.functional

SPEC = "conv4k3 relu, conv5k3 relu, maxpool2, flatten, dense3 softmax"
INPUT = (2, 10, 10)


def _model():
    return Model(SPEC, INPUT, engine="refcnn", seed=3, dtype="float64")


def _torch_logits_and_maps(model, x):
    """The same network in torch (weights copied over): the logits, and every conv layer's output (after ReLU)
    with its gradient kept."""
    conv1, conv2, dense = (model.get_layer(name).params for name in ("conv2d", "conv2d_1", "dense"))
    t = {k: torch.tensor(v) for k, v in (("w1", conv1["weight"]), ("b1", conv1["bias"]), ("w2", conv2["weight"]),
                                          ("b2", conv2["bias"]), ("w3", dense["weight"]), ("b3", dense["bias"]))}
    a1 = F.relu(F.conv2d(torch.tensor(x[None], requires_grad=True), t["w1"], t["b1"]))
    a2 = F.relu(F.conv2d(a1, t["w2"], t["b2"]))
    a1.retain_grad()
    a2.retain_grad()
    logits = F.linear(F.max_pool2d(a2, 2).flatten(1), t["w3"], t["b3"])
    return logits, {"conv2d": a1, "conv2d_1": a2}


def _torch_grad_cam(model, x, class_index, layer):
    """Selvaraju et al. 2017, eq. 1-2, with torch autograd: alpha_k = mean of d logit_c / d A^k; ReLU of the
    weighted sum; bilinear upsampling (align_corners=False) to the input size."""
    logits, maps = _torch_logits_and_maps(model, x)
    logits[0, class_index].backward()
    a = maps[layer]
    alpha = a.grad[0].mean(dim=(1, 2))
    cam = F.relu((alpha[:, None, None] * a[0]).sum(0))
    up = F.interpolate(cam[None, None], size=x.shape[1:], mode="bilinear", align_corners=False)[0, 0]
    return logits.detach().numpy()[0], alpha.numpy(), cam.detach().numpy(), up.detach().numpy()


@pytest.mark.parametrize("layer", [None, "conv2d"])
@pytest.mark.parametrize("class_index", [None, 0, 2])
def test_grad_cam_equals_torch_autograd(layer, class_index):
    model = _model()
    x = np.random.default_rng(7).uniform(0, 1, INPUT)
    result = pictures.grad_cam(model, x, class_index, layer)
    expected_class = class_index
    logits, _ = _torch_logits_and_maps(model, x)
    if expected_class is None:  # the default: the predicted class
        expected_class = int(logits.detach().numpy()[0].argmax())
    logits, alpha, cam, up = _torch_grad_cam(model, x, expected_class, layer or "conv2d_1")
    assert result.class_index == expected_class
    assert result.layer.name == (layer or "conv2d_1")  # the default: the last convolution
    assert result.score == pytest.approx(logits[expected_class], rel=1e-12)
    np.testing.assert_allclose(result.probabilities, np.exp(logits) / np.exp(logits).sum(), rtol=1e-12)
    np.testing.assert_allclose(result.weights, alpha, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(result.cam, cam, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(result.heatmap, up, rtol=1e-10, atol=1e-14)
    assert result.heatmap.shape == INPUT[1:] and cam.max() > 0  # a non-trivial map was compared


def test_upsample_is_torch_bilinear_without_corner_alignment():
    cam = np.random.default_rng(1).normal(size=(3, 5))
    expected = F.interpolate(torch.tensor(cam)[None, None], size=(11, 7), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(pictures.upsample(cam, 11, 7), expected[0, 0].numpy(), rtol=1e-12, atol=1e-14)


def test_feature_maps_are_the_relu_convolutions_computed_by_refcnn():
    model = _model()
    x = np.random.default_rng(5).uniform(0, 1, INPUT)
    (first, maps1), (second, maps2) = pictures.feature_maps(model, x)
    assert (first.name, second.name) == ("conv2d", "conv2d_1")
    p1, p2 = first.params, second.params
    expected1 = np.maximum(refcnn.conv2d(x[None], p1["weight"], p1["bias"]), 0)[0]
    expected2 = np.maximum(refcnn.conv2d(expected1[None], p2["weight"], p2["bias"]), 0)[0]
    np.testing.assert_allclose(maps1, expected1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(maps2, expected2, rtol=1e-12, atol=1e-15)
    (pool, pooled), = pictures.feature_maps(model, x, ["max_pooling2d"])  # any layer with 2-D maps
    np.testing.assert_allclose(pooled, refcnn.max_pool2d(expected2[None], 2, 2)[0], rtol=1e-12)


def test_feature_maps_take_uint8_images_as_the_data_sets_give_them():
    model = Model("conv3k3 relu, flatten, dense2", (1, 5, 5), engine="refcnn", dtype="float64")
    image = np.arange(25, dtype=np.uint8).reshape(1, 5, 5) * 10
    (_, maps), = pictures.feature_maps(model, image)
    p = model.get_layer("conv2d").params
    expected = np.maximum(refcnn.conv2d(image[None] / 255.0, p["weight"], p["bias"]), 0)[0]
    np.testing.assert_allclose(maps, expected, rtol=1e-6)  # x / 255 is made in float32, as cnn.data.to_float


def test_kernels_are_the_layer_weights_in_pytorch_layout_and_the_grid_draws_them_in_order():
    model = _model()
    layer, weights = pictures.kernels(model)
    assert layer.name == "conv2d" and weights.shape == (4, 2, 3, 3)
    np.testing.assert_array_equal(weights, model.get_layer("conv2d").params["weight"])
    layer, weights = pictures.kernels(model, "conv2d_1")
    assert weights.shape == (5, 4, 3, 3)
    figure = pictures.filter_grid(model, "conv2d_1")
    tiles = [axes for axes in figure.axes if axes.images]
    assert len(tiles) == 5 * 4  # one per (filter, input channel)
    for index, axes in enumerate(tiles):  # row = filter, column = input channel
        np.testing.assert_array_equal(axes.images[0].get_array(), weights[index // 4, index % 4])
    limits = {axes.images[0].get_clim() for axes in tiles}
    assert limits == {(-np.abs(weights).max(), np.abs(weights).max())}  # one scale, centred on 0


def test_a_one_channel_layer_draws_one_tile_per_filter():
    model = Model("conv6k3, flatten, dense2", (1, 6, 6), engine="refcnn", dtype="float64")
    weights = model.get_layer("conv2d").params["weight"]
    tiles = [axes for axes in pictures.filter_grid(model).axes if axes.images]
    assert [axes.get_title() for axes in tiles] == [str(f) for f in range(6)]
    for f, axes in enumerate(tiles):
        np.testing.assert_array_equal(axes.images[0].get_array(), weights[f, 0])


def test_a_connection_table_draws_the_weights_the_layer_convolves_with():
    model = Model("conv3k3 table=0/1/0.1, flatten, dense2", (2, 5, 5), engine="refcnn", dtype="float64")
    _, weights = pictures.kernels(model)
    assert np.all(weights[0, 1] == 0) and np.all(weights[1, 0] == 0)  # unconnected pairs
    assert np.all(weights[2] != 0)


def test_the_sobel_output_is_the_hand_worked_matrix():
    # specs/conv.md "Sobel edge": output (i, j) = 4 * (x[., j] - x[., j+2]) on the 0 | 255 image.
    example = pictures.sobel_example()
    np.testing.assert_array_equal(example.output, [[0, -1020, -1020, 0]] * 4)
    signal = pytest.importorskip("scipy.signal")
    np.testing.assert_allclose(example.vertical, signal.correlate2d(example.photo, pictures.SOBEL_VERTICAL, "valid"),
                               atol=1e-12)
    np.testing.assert_allclose(example.horizontal,
                               signal.correlate2d(example.photo, pictures.SOBEL_VERTICAL.T, "valid"), atol=1e-12)
    sample = load_embedded_sample()
    np.testing.assert_allclose(example.photo, sample.x_test[7, 0] / 255.0)


def test_unknown_and_wrong_kind_layers_are_explained():
    model = _model()
    with pytest.raises(pictures.LayerChoiceError, match=r"no layer named 'nope'.*conv2d .*dense"):
        pictures.kernels(model, "nope")
    with pytest.raises(pictures.LayerChoiceError, match=r"'dense' \(Dense\).*layers that are: conv2d, conv2d_1$"):
        pictures.kernels(model, "dense")
    with pytest.raises(pictures.LayerChoiceError, match="'flatten'.*conv2d, conv2d_1, max_pooling2d"):
        pictures.grad_cam(model, np.zeros(INPUT), layer="flatten")
    with pytest.raises(ValueError, match="class index 3"):
        pictures.grad_cam(model, np.zeros(INPUT), class_index=3)


# ------------------------------------------------------------------------------------------------ cnn show


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("show") / "model.npz"
    Model("conv4k3 relu, conv4k3 relu, maxpool2, flatten, dense10 softmax", (1, 28, 28), engine="refcnn",
          seed=1).save(path)
    return path


def _run(*args):
    return CliRunner().invoke(cnn, [str(a) for a in args])


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_writes_every_picture(model_file, tmp_path):
    from PIL import Image

    image = tmp_path / "boot.png"
    Image.fromarray(load_embedded_sample().x_test[7, 0]).save(image)
    commands = {
        "filters.png": ("filters", model_file),
        "maps.png": ("activations", model_file, "--data", "fashion-mnist-small", "--index", 7),
        "cam.png": ("gradcam", model_file, image, "--class", 9),
        "sobel.png": ("sobel",),
    }
    for name, args in commands.items():
        result = _run("show", *args, "--engine", "refcnn", "--out", tmp_path / name) if name != "sobel.png" else \
            _run("show", *args, "--out", tmp_path / name)
        assert result.exit_code == 0, result.output
        assert f"wrote {tmp_path / name}" in result.output
        assert _is_png(tmp_path / name)


@pytest.mark.parametrize("args, words", [
    (("filters", "--layer", "nope"), ["no layer named 'nope'", "conv2d (Conv2D -> 4x26x26)", "dense"]),
    (("filters", "--layer", "dense"),
     ["'dense' (Dense) is not a 2-D convolution layer; layers that are", "conv2d, conv2d_1"]),
    (("activations", "--data", "fashion-mnist-small", "--index", 0, "--layer", "nope"), ["no layer named"]),
    (("gradcam", "--data", "fashion-mnist-small", "--index", 0, "--layer", "flatten"),
     ["'flatten' (Flatten) is not a layer with 2-D feature maps", "conv2d, conv2d_1, max_pooling2d"]),
    (("gradcam", "--data", "fashion-mnist-small", "--index", 0, "--class", 10), ["--class 10", "0 to 9"]),
    (("gradcam", "--data", "fashion-mnist-small", "--index", 2000), ["--index 2000", "2,000 test images"]),
    (("gradcam", "--data", "fashion-mnist-small"), ["--data needs --index"]),
    (("activations",), ["give an image file or --data"]),
])
def test_show_usage_errors_exit_2_with_one_line(model_file, tmp_path, args, words):
    command, *rest = args
    result = _run("show", command, model_file, *rest, "--engine", "refcnn", "--out", tmp_path / "x.png")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnn: error: ")
    for word in words:
        assert word in lines[0]
    assert not (tmp_path / "x.png").exists()
