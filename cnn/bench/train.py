"""``cnn bench train``: training and inference images/s and peak memory of a preset (the seeds' Keras model).

The model is a netspec preset, ``keras-mnist`` unless ``--model`` names another (``resnet20-28``: a CIFAR
ResNet-20 for 1x28x28), trained with fastcnn through :class:`cnn.Model` and
:func:`cnn.train.train_step` (as :func:`cnn.fit` runs it) and, as the anchor, with its PyTorch twin
(:mod:`cnn.bench.torch_twin`). Each engine runs in a child process of its own (:mod:`cnn.bench.child`, kinds
``train`` and ``idle``) so that its peak resident memory is its own; an ``idle`` child with the same imports
gives the interpreter's floor; Keras is a third engine when installed (:mod:`cnn.bench.keras_twin`).

Every engine is timed the same way: :data:`WARMUP` untimed steps, then each step timed on its own; images/s
is the batch size over the median step (:func:`step_figures`). ``--optimizer`` takes one of
:data:`OPTIMIZERS`, built with the same hyperparameters in the three engines; ``--load N`` runs N busy
processes beside the children (:mod:`cnn.bench.load`); ``--rounds R`` runs the engines in turn R times and takes
medians (:func:`_engine_rows`, :mod:`cnn.bench.ratios`). Ratios are against each peer and against the best peer of
each column (:func:`cnn.bench.ratios.best_peer_summary`).
"""

from __future__ import annotations

import itertools
import statistics
import time

import numpy as np

from cnnbase import netspec
from cnnbase.checks import invalid
from cnnbase.limits import check_bytes, nbytes_of

from ..profiling import profile_model, render_profile
from ..threads import default_threads, set_threads
from .child import _run_child
from .load import describe_load
from .ratios import PEERS, check_rounds, median_row, round_ratios, rounds_note
from .machine import _header, environment, numba_threading_layer
from .tables import _NA, _fmt, _table
from .timing import _peak_rss_mib
from .torch_twin import _torch_train_step, torch_model

#: The benchmarked model by default: the seeds' Keras MNIST convnet, as netspec's preset.
PRESET = "keras-mnist"

#: Warm-up steps by default. Measured with fastcnn on keras-mnist (2 threads, batch 128): after 3 warm-up
#: steps the next ones still took 600, 200, 67, 141 and 64 ms before settling at ~59 ms (buffers growing,
#: pages faulted in, caches), so a mean over 30 steps read 76 ms; ten warm-ups and a median are robust.
WARMUP = 10

#: ``--optimizer``: the same rule with the same hyperparameters in the three engines, written once here as
#: ``name -> (hyperparameters in this project's names (specs/optim.md), what the notes say)``. The seeds'
#: model is Keras's mnist_cnn.py example, compiled with ``keras.optimizers.Adadelta()`` of the Keras 2 API,
#: whose defaults were ``lr=1.0, rho=0.95, epsilon=K.epsilon()=1e-7`` (specs/optim.md, "How Keras differs");
#: the others take Keras's defaults (keras.io/api/optimizers), Adam keeping the lr 1e-3 the benchmark always
#: used. Where the engines place epsilon differently (Adam, RMSprop: specs/optim.md) the rule differs by that
#: placement only, which changes no speed.
OPTIMIZERS = {
    "adam": ({"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7}, "Adam lr 1e-3, betas (0.9, 0.999), eps 1e-7"),
    "adadelta": ({"lr": 1.0, "rho": 0.95, "eps": 1e-7},
                 "Adadelta lr 1.0, rho 0.95, eps 1e-7 (the seeds' mnist_cnn.py: Keras 2's Adadelta())"),
    "sgd": ({"lr": 0.01, "momentum": 0.0}, "SGD lr 0.01, no momentum (Keras's defaults)"),
    "rmsprop": ({"lr": 1e-3, "alpha": 0.9, "eps": 1e-7}, "RMSprop lr 1e-3, rho 0.9, eps 1e-7 (Keras's defaults)"),
}
#: The optimizer by default: Adam, which every earlier figure of this benchmark used.
OPTIMIZER = "adam"


def check_optimizer(name: str) -> str:
    """``--optimizer`` must be a key of :data:`OPTIMIZERS`: ValueError through :func:`invalid` otherwise."""
    if name not in OPTIMIZERS:
        raise ValueError(invalid("cnn bench train", "optimizer", f"one of {', '.join(OPTIMIZERS)}", name))
    return name


def fastcnn_optimizer(name: str):
    """The :class:`cnn.Optimizer` of :data:`OPTIMIZERS` ``[name]``."""
    from ..optimizers import Optimizer

    hyper = dict(OPTIMIZERS[name][0])
    return Optimizer(name, hyper.pop("lr"), **hyper)


def torch_optimizer(torch, parameters, name: str):
    """The ``torch.optim`` optimizer of :data:`OPTIMIZERS` ``[name]`` (this project's names are PyTorch's)."""
    classes = {"adam": torch.optim.Adam, "adadelta": torch.optim.Adadelta, "sgd": torch.optim.SGD,
               "rmsprop": torch.optim.RMSprop}
    return classes[name](parameters, **OPTIMIZERS[name][0])


def keras_optimizer(keras, name: str):
    """The ``keras.optimizers`` optimizer of :data:`OPTIMIZERS` ``[name]``, in Keras's argument names."""
    hyper = OPTIMIZERS[name][0]
    if name == "adam":
        beta_1, beta_2 = hyper["betas"]
        return keras.optimizers.Adam(hyper["lr"], beta_1=beta_1, beta_2=beta_2, epsilon=hyper["eps"])
    if name == "adadelta":
        return keras.optimizers.Adadelta(hyper["lr"], rho=hyper["rho"], epsilon=hyper["eps"])
    if name == "sgd":
        return keras.optimizers.SGD(hyper["lr"], momentum=hyper["momentum"])
    return keras.optimizers.RMSprop(hyper["lr"], rho=hyper["alpha"], epsilon=hyper["eps"])


#: ``--data random[:CxHxW[:CLASSES]]``: synthetic images instead of a data set (e.g. the CIFAR ResNets at
#: their own 3x32x32, for which no data set ships).
SYNTHETIC = "random"
#: The seed of the synthetic batches: every engine's child draws the same ones.
SYNTHETIC_SEED = 0


def is_synthetic(data_name: str) -> bool:
    return data_name == SYNTHETIC or data_name.startswith(SYNTHETIC + ":")


def _preset_classes(preset: str) -> int | None:
    """The number of scores the preset's last layer gives (None when that is not one vector)."""
    network = netspec.PRESETS[preset]
    output = network.summary().rows[-1].output_shape
    return output[0] if len(output) == 1 else None


def parse_synthetic(data_name: str, preset: str = PRESET) -> tuple[tuple[int, ...], int]:
    """``random[:CxHxW[:CLASSES]]`` -> ``(image shape, classes)``; what is left out is the preset's (its input
    shape, its class count). ValueError through :func:`cnnbase.checks.invalid` for any other text."""
    expected = "random, random:CxHxW or random:CxHxW:CLASSES (e.g. random:3x32x32:10)"
    parts = data_name.split(":")
    if parts[0] != SYNTHETIC or len(parts) > 3:
        raise ValueError(invalid("cnn bench train", "data", expected, data_name))
    network = netspec.PRESETS.get(preset)
    shape = tuple(network.input_shape) if network is not None else None
    classes = _preset_classes(preset) if network is not None else None
    try:
        if len(parts) > 1:
            shape = netspec.parse_shape(parts[1])
        if len(parts) > 2:
            classes = int(parts[2]) if parts[2].isdigit() else -1
    except netspec.NetSpecError as error:
        raise ValueError(invalid("cnn bench train", "data", expected, data_name, extra=str(error))) from None
    if shape is not None and len(shape) != 3:
        raise ValueError(invalid("cnn bench train", "data", expected + " (images: CxHxW)", data_name))
    if shape is None or classes is None:
        raise ValueError(invalid("cnn bench train", "data", expected + " (the preset gives no default)", data_name))
    if not 2 <= classes <= 100_000:
        raise ValueError(invalid("cnn bench train", "data", expected + ", CLASSES from 2 to 100,000", data_name))
    return tuple(shape), classes


def synthetic_text(data_name: str, preset: str = PRESET) -> str:
    """The full form ``random:CxHxW:CLASSES`` of a synthetic ``--data``, as the children receive it."""
    shape, classes = parse_synthetic(data_name, preset)
    return f"{SYNTHETIC}:{'x'.join(map(str, shape))}:{classes}"


def _synthetic_batches(data_name: str, batch_size: int, count: int) -> tuple[list, str]:
    """``count`` batches of uniform [0, 1) float32 images and uniform labels from a generator seeded with
    :data:`SYNTHETIC_SEED`: the same batches in every engine's child (a speed benchmark needs the shapes,
    not the pictures)."""
    shape, classes = parse_synthetic(data_name)
    rng = np.random.default_rng(SYNTHETIC_SEED)
    out = [(rng.random((batch_size, *shape), dtype=np.float32), rng.integers(0, classes, batch_size, dtype=np.int64))
           for _ in range(count)]
    described = (f"synthetic: uniform [0, 1) float32 images of {'x'.join(map(str, shape))}, {classes} classes, "
                 f"seed {SYNTHETIC_SEED}")
    return out, described


def _training_batches(data_name: str, batch_size: int, count: int) -> tuple[list, str]:
    """``count`` batches of (float32 images, int64 labels) from the training set, in order, wrapping around
    a set smaller than ``count * batch_size``; only these images are converted to float. A synthetic
    ``data_name`` (:func:`is_synthetic`, in its full form) gives seeded random batches instead."""
    from .. import data

    if is_synthetic(data_name):
        return _synthetic_batches(data_name, batch_size, count)
    ds = data.load_dataset(data_name)
    n = len(ds.y_train)
    out = []
    for b in range(count):
        index = np.arange(b * batch_size, (b + 1) * batch_size) % n
        out.append((data.to_float(ds.x_train[index]), ds.y_train[index].astype(np.int64)))
    return out, ds.describe()


def check_train_sizes(image_shape, batches: int, batch_size: int, warmup: int) -> None:
    """The float32 batches a child converts up front, against ``CNN_MAX_ARRAY_BYTES``: ``SizeLimitError``
    naming the options rather than a child that runs out of memory."""
    images = (warmup + batches) * batch_size
    check_bytes(nbytes_of((images, *image_shape), 4),
                what=f"cnn bench train: (--warmup {warmup} + --batches {batches}) x --batch-size {batch_size} "
                     "float32 images")


def check_train_model(preset: str, image_shape, classes: int | None = None) -> None:
    """``--model`` must be a preset whose input is the data's images (and, given ``classes``, that scores at
    least that many classes): SpecParseError naming the closest presets, or ValueError naming both shapes,
    rather than two child processes that fail."""
    if preset not in netspec.PRESETS:
        netspec.load_network(preset)  # SpecParseError: "unknown preset ...; did you mean ..."
        raise ValueError(f"cnn bench train: --model takes a preset name (cnn shape --list); received {preset!r}")
    wanted = tuple(netspec.PRESETS[preset].input_shape)
    if wanted != tuple(image_shape):
        raise ValueError(f"cnn bench train: --model {preset} takes {'x'.join(map(str, wanted))} images; the data's "
                         f"are {'x'.join(map(str, image_shape))} (choose --data or a preset that fits; "
                         f"--data random:{'x'.join(map(str, wanted))} gives synthetic images of its size)")
    scores = _preset_classes(preset)
    if classes is not None and scores is not None and classes > scores:
        raise ValueError(f"cnn bench train: --model {preset} scores {scores} classes; the data has {classes}")


#: The optional engines: a row each when installed, skipped with a note when not.
OPTIONAL_ENGINES = ("torch", "keras")
#: What a user installs for the Keras row (never a requirement of this project).
KERAS_INSTALL = "pip install tensorflow-cpu (Keras 3 with its TensorFlow backend)"


def _import_engine(engine: str):
    """What a child imports for its engine; the idle child imports exactly this and stops. Keras runs on
    TensorFlow unless ``KERAS_BACKEND`` names another backend."""
    if engine == "torch":
        import torch

        return torch
    if engine == "keras":
        import os

        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        return keras
    import fastcnn

    return fastcnn


def _timed_loop(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def _step_times(fn, items) -> list[float]:
    """Seconds of each call ``fn(item)``, one timer per step, so that a slow step (a page-fault burst, a
    time slice lost to another process) moves the median by one place instead of the whole mean."""
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return times


def step_figures(kind: str, times: list[float], batch_size: int) -> dict:
    """A row's figures for ``kind`` (``train`` or ``inference``) from per-step seconds: images/s from the
    median step (the headline), from the mean (for comparison with runs before per-step timing), and the
    median, fastest and slowest step in ms."""
    median = statistics.median(times)
    return {f"{kind}_images_per_s": batch_size / median,
            f"{kind}_mean_images_per_s": batch_size * len(times) / sum(times),
            f"{kind}_step_ms_median": 1e3 * median, f"{kind}_step_ms_min": 1e3 * min(times),
            f"{kind}_step_ms_max": 1e3 * max(times)}


def _time_torch(torch, threads: int, warm: list, timed: list, preset: str = PRESET,
                optimizer: str = OPTIMIZER) -> tuple[list, list]:
    """Seconds of each timed training step and of each timed inference pass, PyTorch."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    network = netspec.PRESETS[preset]
    model = torch_model(torch, network.layers, network.input_shape)
    updater = torch_optimizer(torch, model.parameters(), optimizer)
    warm, timed = ([(torch.from_numpy(x), torch.from_numpy(y)) for x, y in part] for part in (warm, timed))

    def step(batch):
        return _torch_train_step(torch, model, updater, *batch)

    model.train()
    _timed_loop(step, warm)
    train_s = _step_times(step, timed)
    model.eval()
    with torch.inference_mode():
        _timed_loop(lambda b: model(b[0]), warm[:1])
        infer_s = _step_times(lambda b: model(b[0]), timed)
    return train_s, infer_s


def _keras_threads(keras, threads: int) -> None:
    """TensorFlow's op kernels on ``threads`` threads and one op at a time (``inter_op`` 1), so that ``--threads``
    means the same for the three engines; before TensorFlow runs its first op (later it cannot change)."""
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started: it keeps its own counts
        pass


def _time_keras(keras, threads: int, warm: list, timed: list, preset: str = PRESET,
                optimizer: str = OPTIMIZER) -> tuple[list, list, dict]:
    """Seconds of each timed training step and of each timed inference pass, Keras 3 (the compiled
    ``train_on_batch`` and ``predict_on_batch``, as ``model.fit`` and ``model.predict`` run them), on
    channels-last copies of the batches; and what the row says of the twin (backend, XLA)."""
    from .keras_twin import keras_model, keras_train_step

    _keras_threads(keras, threads)
    keras.utils.set_random_seed(0)
    network = netspec.PRESETS[preset]
    model = keras_model(keras, network.layers, network.input_shape)
    model.compile(optimizer=keras_optimizer(keras, optimizer),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    warm, timed = ([(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), y) for x, y in part] for part in (warm, timed))
    _timed_loop(lambda b: keras_train_step(model, *b), warm)
    train_s = _step_times(lambda b: keras_train_step(model, *b), timed)
    _timed_loop(lambda b: model.predict_on_batch(b[0]), warm[:1])
    infer_s = _step_times(lambda b: model.predict_on_batch(b[0]), timed)
    details = {"backend": keras.backend.backend(), "jit_compile": bool(getattr(model, "jit_compile", False)),
               "keras_params": int(model.count_params())}
    return train_s, infer_s, details


def _time_fastcnn(threads: int, warm: list, timed: list, preset: str = PRESET, profile: bool = False,
                  augment: str | None = None, optimizer: str = OPTIMIZER) -> tuple[list, list, list | None, dict]:
    """Seconds of each timed training step and of each timed inference pass, fastcnn through cnn.Model;
    with ``profile``, the timed steps once more with every layer timed (:mod:`cnn.profiling`), after
    and apart from the figures above so that the timers do not slow them; with ``augment`` (a description),
    the augmentation alone and the training steps with it (:func:`_time_augment`), after those too."""
    from ..model import Model
    from ..train import train_step

    set_threads(threads)
    network = netspec.PRESETS[preset]
    model = Model(network.layers, network.input_shape, engine="fastcnn", seed=0, dtype="float32")
    optimizer = fastcnn_optimizer(optimizer)
    steps = itertools.count()  # the global step seeds dropout, as in fit

    def step(batch):
        return train_step(model, optimizer, batch[0], batch[1], step=next(steps), lr=optimizer.lr)

    _timed_loop(step, warm)
    train_s = _step_times(step, timed)
    _timed_loop(lambda b: model.forward(b[0], training=False, backward=False), warm[:1])
    infer_s = _step_times(lambda b: model.forward(b[0], training=False, backward=False), timed)
    rows = None
    if profile:
        layers = profile_model(model, optimizer)
        layers.add_steps(len(timed), _timed_loop(step, timed))
        rows = layers.rows()
        layers.detach()  # the augmented steps below run unwrapped
    augmented = {} if not augment else _time_augment(step, augment, warm, timed, statistics.median(train_s))
    return train_s, infer_s, rows, augmented


def _time_augment(step, augment: str, warm: list, timed: list, step_s: float) -> dict:
    """The batches augmented as ``cnn.train.fit`` does (:func:`cnn.augment.augment_batch`, epoch 0, the
    images numbered by their position in the stream of batches): the median seconds of the augmentation
    alone and of a training step on augmented batches, as a row's fields (``step_s``: the median plain step)."""
    import fastcnn

    from ..augment import augment_batch, make_policy

    policy = make_policy(augment)
    size = len(timed[0][0]) if timed else 0
    numbered = [(x, y, np.arange(b * size, (b + 1) * size)) for b, (x, y) in enumerate(warm + timed)]
    warm_n, timed_n = numbered[:len(warm)], numbered[len(warm):]

    def augmented(batch):
        return augment_batch(fastcnn, batch[0], policy, seed=0, epoch=0, index=batch[2])

    _timed_loop(augmented, warm_n)
    alone_s = statistics.median(_step_times(augmented, timed_n))
    _timed_loop(lambda b: step((augmented(b), b[1])), warm_n[:1])
    with_s = statistics.median(_step_times(lambda b: step((augmented(b), b[1])), timed_n))
    return {"augment": policy.to_text(), "augment_ms_per_batch": 1e3 * alone_s,
            "augment_share_of_step": alone_s / step_s, "train_augmented_images_per_s": size / with_s}


def _child_train(spec: dict) -> dict:
    """Warm-up, then timed training steps, then timed inference; runs in the engine's own process."""
    engine_name, threads = spec["engine"], spec["threads"]
    try:
        module = _import_engine(engine_name)
    except ImportError as error:
        return {"engine": engine_name, "error": f"cannot import {engine_name}: {error}"}
    batches, described = _training_batches(spec["data"], spec["batch_size"], spec["warmup"] + spec["batches"])
    warm, timed = batches[:spec["warmup"]], batches[spec["warmup"]:]
    extra, version = {}, getattr(module, "__version__", "")
    optimizer = spec.get("optimizer", OPTIMIZER)
    if engine_name == "torch":
        train_s, infer_s = _time_torch(module, threads, warm, timed, spec["model"], optimizer)
    elif engine_name == "keras":
        from .keras_twin import KerasTwinError

        try:
            train_s, infer_s, extra = _time_keras(module, threads, warm, timed, spec["model"], optimizer)
        except KerasTwinError as error:
            return {"engine": engine_name, "skipped": f"no Keras twin of --model {spec['model']}: {error}"}
        version = f"{version} ({extra['backend']}{', XLA' if extra['jit_compile'] else ''})"
    else:
        train_s, infer_s, profile, augmented = _time_fastcnn(threads, warm, timed, spec["model"], spec["profile"],
                                                             spec.get("augment"), optimizer)
        extra = {**augmented, **({} if profile is None else {"profile": profile})}
    return {**extra, "engine": engine_name, "version": version, "data": described,
            **step_figures("train", train_s, spec["batch_size"]),
            **step_figures("inference", infer_s, spec["batch_size"]),
            "peak_rss_mib": _peak_rss_mib(), "numba_threading_layer": numba_threading_layer()}


def _child_idle(spec: dict) -> dict:
    """The engine's imports and nothing else: the floor its training child's peak memory stands on."""
    try:
        _import_engine(spec["engine"])
    except ImportError as error:
        return {"engine": spec["engine"], "error": f"cannot import {spec['engine']}: {error}"}
    return {"engine": spec["engine"], "peak_rss_mib": _peak_rss_mib()}


KERAS_NOTE = ("keras: the same layers through Keras 3's functional API (cnn/bench/keras_twin.py; residual blocks "
              "joined by layers.Add), channels-last images, the same optimizer (keras.optimizers, the same "
              "hyperparameters in Keras's names), sparse cross-entropy from logits with the "
              "accuracy metric; train_on_batch and predict_on_batch (Keras's compiled step; 'XLA' when Keras chose "
              "jit_compile); TensorFlow on --threads intra-op threads, one op at a time.")


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (a Keras import takes seconds)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def measure_train(batches: int = 50, batch_size: int = 128, threads: int | None = None, data: str = "default",
                  warmup: int = WARMUP, model: str = PRESET, profile: bool = False, keras: bool = True,
                  augment: str | None = None, optimizer: str = OPTIMIZER, load: int = 0, rounds: int = 1) -> dict:
    """Train and infer with each engine in its own child process; rows of images/s and peak memory, and with
    ``profile`` fastcnn's time per layer type (``result["profile"]``). With ``keras`` (the default) a Keras
    row too when Keras is installed (:mod:`cnn.bench.keras_twin`); when it is not, or the model has no Keras
    twin, a note says that the row was skipped. With ``augment`` (a description, ``specs/augment.md``),
    fastcnn's training steps on augmented batches and the augmentation's own time. ``optimizer``: a key of
    :data:`OPTIMIZERS`, the same rule in every engine. ``load``: that many busy processes
    (:mod:`cnn.bench.load`) run from before the first child starts until after the last one ends. ``rounds``: the
    engines run in turn that many times, each time in a fresh child (:func:`_engine_rows`); each figure is then
    the median over the rounds, and each ratio the median of the rounds' own ratios (:func:`round_ratios`)."""
    from .load import background_load

    check_optimizer(optimizer)
    check_rounds(rounds)
    threads = default_threads() if threads is None else threads
    if is_synthetic(data):
        data = synthetic_text(data, model)
    spec = {"kind": "train", "threads": threads, "batches": batches, "batch_size": batch_size, "warmup": warmup,
            "data": data, "model": model, "optimizer": optimizer}
    with background_load(load):
        rows, notes, per_round = _engine_rows(spec, keras, profile, augment, rounds)
    has_keras = any(r["engine"] == "keras" and not r.get("error") for r in rows)
    data_line = next((r["data"] for r in rows if r.get("data")), data)
    notes += [
        f"model: preset {model} ({netspec.to_spec(netspec.PRESETS[model].layers)}), {OPTIMIZERS[optimizer][1]}, "
        f"cross-entropy, float32, batch {batch_size}; data: {data_line}.",
        f"train: {batches} steps timed one by one after {warmup} warm-up steps; images/s is the batch size over "
        "the MEDIAN step (a step slowed by a page-fault burst or a lost time slice moves the median by one "
        "place; --json also gives the mean-based figure, *_mean_images_per_s, and the median, fastest and "
        "slowest step in ms); one step = forward, loss, backward, optimizer update, accuracy count (fastcnn: "
        "cnn.Model as cnn.train.fit runs it; torch: an equivalent nn.Sequential and torch.optim). Inference: "
        "forward only, eval mode, nothing kept for a backward (torch.inference_mode; fastcnn: Model.forward(..., "
        "training=False, backward=False), as cnn.train.predict runs it), the same batches, timed the same way.",
        "memory: peak resident set (ru_maxrss) of each engine's own child process; 'idle MiB' is an interpreter "
        "with the same imports that does nothing. Ratios fastcnn/peer: above 1 faster (images/s), below 1 "
        "smaller (memory); 'fastcnn/best peer' divides by the best peer of each column (the faster for images/s, "
        "the smaller for memory).",
    ] + ([KERAS_NOTE] if has_keras else [])
    env = environment(threads)
    env.update(batches=batches, batch_size=batch_size, warmup=warmup, data=data, model=model, optimizer=optimizer,
               load=load)
    env["numba_threading_layer"] = next((r["numba_threading_layer"] for r in rows if r.get("engine") == "fastcnn"
                                         and "numba_threading_layer" in r), env["numba_threading_layer"])
    env["rounds"] = rounds
    ratios = round_ratios(per_round, has_keras)
    if rounds > 1:
        notes.append(rounds_note(rounds, ratios["per_round"]))
    result = {"environment": env, "rows": rows, "ratios": ratios, "notes": notes}
    if augment:
        notes += _augment_notes(rows)
    profiled = next((r.pop("profile") for r in rows if "profile" in r), None)
    if profile:
        result["profile"] = profiled
        notes.append("profile: fastcnn's timed steps run once more with every layer's forward and backward timed "
                      "(perf_counter); a layer type's time is its own (a block's without its inner layers: a "
                      "Residual's is the add and its activation); '(optimizer update)' is the optimizer's step; "
                      "shares are of the whole profiled step.")
    return result


def _engine_rows(spec: dict, keras: bool, profile: bool, augment: str | None,
                 rounds: int = 1) -> tuple[list, list, list]:
    """Each engine's idle child, then the engines' training children one after the other, ``rounds`` times in
    turn (fastcnn, torch, keras, fastcnn, torch, keras, ...: a drift of the machine's speed then reaches every
    engine alike, where one engine's children run back to back could catch a quiet or a busy spell alone).
    Returns the rows (each figure the median over the rounds, :func:`median_row`), their notes, and each
    round's rows; the profile and the augmented steps are measured in the first round only."""
    engines, notes, idle = [], [], {}
    for engine in ("fastcnn",) + PEERS[:1] + (PEERS[1:] if keras else ()):
        if engine == "keras" and not _installed("keras"):
            notes.append(f"keras: not installed, row skipped (optional: {KERAS_INSTALL}).")
            continue
        engines.append(engine)
    per_round: list[list[dict]] = []
    skipped: set[str] = set()
    for round_index in range(rounds):
        this_round = []
        for engine in engines:
            if engine in skipped:
                continue
            if engine not in idle:
                idle[engine] = _run_child({"kind": "idle", "engine": engine})
            first = round_index == 0
            row = _run_child({**spec, "engine": engine, "profile": profile and engine == "fastcnn" and first,
                              "augment": augment if engine == "fastcnn" and first else None})
            row.setdefault("engine", engine)
            if row.get("skipped"):
                notes.append(f"{engine}: {row['skipped']}; row skipped.")
                skipped.add(engine)
                continue
            row["idle_rss_mib"] = idle[engine].get("peak_rss_mib")
            if row.get("error"):
                notes.append(f"{engine}: {row['error']}" + (f" (round {round_index + 1})" if rounds > 1 else ""))
            this_round.append(row)
        per_round.append(this_round)
    rows = [median_row([r for rnd in per_round for r in rnd if r["engine"] == engine])
            for engine in engines if engine not in skipped]
    return rows, notes, per_round


def _augment_notes(rows: list[dict]) -> list[str]:
    """What the augmented row measures, and the torchvision comparison's line."""
    fast = next((r for r in rows if r.get("engine") == "fastcnn" and "augment" in r), None)
    notes = []
    if fast is not None:
        notes.append(f"augment: {fast['augment']}; 'fastcnn + augment' trains on batches augmented as cnn.train.fit "
                     f"does (parameters drawn, one fastcnn.augment call, clipping); the augmentation alone takes "
                     f"{fast['augment_ms_per_batch']:.2f} ms per batch, {100 * fast['augment_share_of_step']:.1f}% "
                     "of a training step without it (issue 12's goal: under 10%).")
    try:
        import torchvision  # noqa: F401  (only whether it is there)
    except ImportError:
        notes.append("torchvision is not installed: the comparison with torchvision.transforms.v2 on the same "
                     "batch is skipped.")
    else:
        notes.append("torchvision is installed, but the comparison with torchvision.transforms.v2 is not "
                     "implemented yet: skipped.")
    return notes


def render_train(result: dict) -> str:
    """The rows of :func:`measure_train` and their ratio row as a table under the header, then the notes."""
    headers = ["engine", "version", "train images/s", "inference images/s", "peak MiB", "idle MiB"]
    lines = [[r["engine"], r.get("version") or _NA, _fmt(r.get("train_images_per_s"), ",.0f"),
              _fmt(r.get("inference_images_per_s"), ",.0f"), _fmt(r.get("peak_rss_mib"), ",.0f"),
              _fmt(r.get("idle_rss_mib"), ",.0f")] for r in result["rows"]]
    lines += [["fastcnn + augment", r.get("version") or _NA, _fmt(r.get("train_augmented_images_per_s"), ",.0f"),
               "", "", ""] for r in result["rows"] if r.get("augment")]
    q = result["ratios"]
    for anchor in PEERS:
        if f"train_fastcnn_over_{anchor}" in q:
            lines.append([f"fastcnn/{anchor}", "", _fmt(q[f"train_fastcnn_over_{anchor}"], ".2f"),
                          _fmt(q[f"inference_fastcnn_over_{anchor}"], ".2f"),
                          _fmt(q[f"peak_rss_fastcnn_over_{anchor}"], ".2f"), ""])
    if sum(f"train_fastcnn_over_{anchor}" in q for anchor in PEERS) > 1:  # with one peer it is that row again
        lines.append(["fastcnn/best peer", _best_peers(q), _fmt(q.get("train_fastcnn_over_best_peer"), ".2f"),
                      _fmt(q.get("inference_fastcnn_over_best_peer"), ".2f"),
                      _fmt(q.get("peak_rss_fastcnn_over_best_peer"), ".2f"), ""])
    env = result["environment"]
    rounds = env.get("rounds") or 1
    head = ["cnn bench train"] + _header(env) + [describe_load(env.get("load") or 0)
                                                 + (f"   rounds: {rounds}, the engines in turn" if rounds > 1 else "")]
    return "\n".join(head + ["", _table(headers, lines, "llrrrr"), ""] + _render_profile(result.get("profile"))
                     + [f"* {n}" for n in result["notes"]])


def _best_peers(ratios: dict) -> str:
    """The version cell of the best-peer row: which peer each column was divided by (train/inference/memory)."""
    return "/".join(ratios.get(f"{k}_best_peer") or _NA for k in ("train", "inference", "peak_rss"))


def _render_profile(rows) -> list[str]:
    """fastcnn's time per layer type as a table of ms and % of the step, or nothing without ``--profile``."""
    return render_profile(rows) + [""] if rows else []
