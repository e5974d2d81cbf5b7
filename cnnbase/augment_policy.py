"""Data augmentation's policy: the description, its random parameters and their composition (``specs/augment.md``).

Engine-free: everything here is NumPy on the parameters, never on the images. The engines' op
``augment(x, transform, pixel, erase, fill_mode, fill_value, interpolation)`` (section 1 of the spec) takes
what this module computes:

* :class:`AugmentPolicy`: the Keras-like description ``"rotation=10, shift=0.1, zoom=0.1, shear=10, hflip,
  brightness=0.2, contrast=0.2, crop=4, erase=0.25, fill=nearest"``, parsed (:meth:`AugmentPolicy.parse`),
  checked, and written back in one canonical text (:meth:`AugmentPolicy.to_text`) or dict;
* :func:`uniforms`: counter-based uniform numbers, a pure function of ``(seed, epoch, image index, slot)``
  (SplitMix64, as the dropout masks), so an image gets the same parameters whatever the batch size, the
  batch order, the thread count or an interruption and ``--resume``;
* :func:`draw`: each image's parameters (angle, zoom, shear, shift, flips, crop offset, brightness, contrast,
  erased rectangle) from those uniforms;
* :func:`compose`: the geometric ones composed into one inverse affine map per image, the op's ``(N, 6)``
  ``transform``; :func:`parameters` gives the op's three arrays at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass

import numpy as np

from .augment import FILL_MODES, INTERPOLATIONS
from .dropout import GOLDEN_GAMMA, MASK64, MIX_1, MIX_2, mix64

__all__ = [
    "AugmentPolicy", "AugmentError", "AugmentParameters", "FILL_MODES", "INTERPOLATIONS", "NAMES", "SLOTS",
    "SLOT", "ERASE_TRIES", "ERASE_SCALE", "ERASE_RATIO", "VALUE_RANGE", "MAX_CROP", "stream_seed", "uniforms",
    "draw", "compose", "parameters",
]

#: The value range brightness and contrast assume and clip to: cnn's images as floats (``cnn.data.to_float``).
VALUE_RANGE = (0.0, 1.0)
#: The largest ``crop`` padding: the integer draw ``floor(u * (2P + 1))`` stays exact far beyond it.
MAX_CROP = 65_535

#: Counters per image: image ``k``'s parameter in slot ``s`` uses counter ``k * SLOTS + s``.
SLOTS = 64
#: Each random parameter's slot, fixed whatever else the policy holds (adding contrast does not change the
#: angles). Random erasing tries up to ERASE_TRIES rectangles, 4 slots each, from ``erase_tries`` on.
SLOT = {"rotation": 0, "zoom": 1, "width_zoom": 2, "shear": 3, "height_shift": 4, "width_shift": 5, "hflip": 6,
        "vflip": 7, "crop_row": 8, "crop_col": 9, "brightness": 10, "contrast": 11, "erase": 12, "erase_tries": 13}
#: torchvision.transforms.RandomErasing's defaults: area fraction, aspect ratio (height / width), tries.
ERASE_TRIES = 10
ERASE_SCALE = (0.02, 0.33)
ERASE_RATIO = (0.3, 3.3)


class AugmentError(ValueError):
    """A description that does not parse or holds a value out of range; one line naming it and the choices."""


# --------------------------------------------------------------------------------------------------
# The description


@dataclass(frozen=True)
class _Word:
    """One name of the description: what it takes, its range, and the field(s) it sets."""

    kind: str          # "float", "int", "flag", "choice"
    expected: str      # for messages: what a valid value is
    low: float = 0.0
    high: float = math.inf
    high_open: bool = False
    choices: tuple = ()
    fields: tuple = ()


_WORDS = {
    "rotation": _Word("float", "degrees in [0, 180]", 0.0, 180.0, fields=("rotation",)),
    "shift": _Word("float", "a fraction of the size in [0, 1]", 0.0, 1.0, fields=("height_shift", "width_shift")),
    "height_shift": _Word("float", "a fraction of the height in [0, 1]", 0.0, 1.0, fields=("height_shift",)),
    "width_shift": _Word("float", "a fraction of the width in [0, 1]", 0.0, 1.0, fields=("width_shift",)),
    "zoom": _Word("float", "a fraction in [0, 1)", 0.0, 1.0, True, fields=("zoom",)),
    "height_zoom": _Word("float", "a fraction in [0, 1)", 0.0, 1.0, True, fields=("height_zoom",)),
    "width_zoom": _Word("float", "a fraction in [0, 1)", 0.0, 1.0, True, fields=("width_zoom",)),
    "shear": _Word("float", "degrees in [0, 90)", 0.0, 90.0, True, fields=("shear",)),
    "hflip": _Word("flag", "no value (a flip with probability 0.5)", fields=("hflip",)),
    "vflip": _Word("flag", "no value (a flip with probability 0.5)", fields=("vflip",)),
    "crop": _Word("int", f"a padding in pixels, an int in [0, {MAX_CROP}]", 0, MAX_CROP, fields=("crop",)),
    "brightness": _Word("float", "a fraction of the value range in [0, 1]", 0.0, 1.0, fields=("brightness",)),
    "contrast": _Word("float", "a fraction in [0, 1]", 0.0, 1.0, fields=("contrast",)),
    "erase": _Word("float", "a probability in [0, 1]", 0.0, 1.0, fields=("erase",)),
    "fill": _Word("choice", "one of " + ", ".join(FILL_MODES), choices=FILL_MODES, fields=("fill",)),
    "fill_value": _Word("float", "a finite number", -math.inf, math.inf, fields=("fill_value",)),
    "interpolation": _Word("choice", "one of " + ", ".join(INTERPOLATIONS), choices=INTERPOLATIONS,
                           fields=("interpolation",)),
}
#: Keras's names for the same things, accepted and written back as ours.
_ALIASES = {"fill_mode": "fill", "rotation_range": "rotation", "width_shift_range": "width_shift",
            "height_shift_range": "height_shift", "zoom_range": "zoom", "shear_range": "shear",
            "horizontal_flip": "hflip", "vertical_flip": "vflip"}
#: Every name the description takes, in the canonical order.
NAMES = tuple(_WORDS)


@dataclass(frozen=True)
class AugmentPolicy:
    """What to do to each training image; all zero/False is no augmentation (:attr:`active` is False).

    The ranges are Keras's: ``rotation`` and ``shear`` in degrees (the angle drawn uniformly in
    ``[-r, r]``), ``height_shift``/``width_shift`` fractions of the size, ``zoom`` a fraction (the source
    extent drawn in ``[1 - z, 1 + z]``, one factor for both axes; ``height_zoom``/``width_zoom`` draw one
    each), ``brightness`` and ``contrast`` fractions (Keras 3's RandomBrightness and RandomContrast on the
    value range [0, 1]). ``crop=P`` is a random crop after padding by P (an integer shift in [-P, P]),
    ``erase`` the probability of random erasing, ``hflip``/``vflip`` flips with probability 0.5. ``fill``,
    ``fill_value`` and ``interpolation`` are the op's ``fill_mode``, ``fill_value`` and ``interpolation``.
    """

    rotation: float = 0.0
    height_shift: float = 0.0
    width_shift: float = 0.0
    zoom: float = 0.0
    height_zoom: float = 0.0
    width_zoom: float = 0.0
    shear: float = 0.0
    hflip: bool = False
    vflip: bool = False
    crop: int = 0
    brightness: float = 0.0
    contrast: float = 0.0
    erase: float = 0.0
    fill: str = "constant"
    fill_value: float = 0.0
    interpolation: str = "bilinear"

    def __post_init__(self):
        for name, word in _WORDS.items():
            if name in ("shift",):
                continue
            for field in word.fields:
                object.__setattr__(self, field, _checked(name if field == name else field, word,
                                                         getattr(self, field), from_text=False))
        if self.zoom and (self.height_zoom or self.width_zoom):
            raise AugmentError(f"augment: give zoom (one factor for both axes) or height_zoom/width_zoom (one each), "
                               f"not both; received zoom={self.zoom}, height_zoom={self.height_zoom}, "
                               f"width_zoom={self.width_zoom}")

    # ------------------------------------------------------------------ properties
    @property
    def active(self) -> bool:
        """Whether anything changes an image (the fill and interpolation alone change nothing)."""
        return self.geometric or self.photometric or self.erase > 0

    @property
    def geometric(self) -> bool:
        return bool(self.rotation or self.height_shift or self.width_shift or self.zoom or self.height_zoom
                    or self.width_zoom or self.shear or self.hflip or self.vflip or self.crop)

    @property
    def photometric(self) -> bool:
        return bool(self.brightness or self.contrast)

    # ------------------------------------------------------------------ text and dict
    @classmethod
    def parse(cls, text: str) -> "AugmentPolicy":
        """``"rotation=10, shift=0.1, hflip"`` -> the policy; ``""`` or ``"none"`` -> no augmentation.

        Items are separated by commas, each ``name=value`` or a bare flag (``hflip``, ``vflip``); Keras's
        names (``rotation_range``, ``fill_mode``, ...) are accepted too. :class:`AugmentError` (one line:
        the item, what it takes, the valid names or choices) for anything else.
        """
        if not isinstance(text, str):
            raise AugmentError(f"augment: expected a text such as \"rotation=10, shift=0.1, hflip\"; received "
                               f"{type(text).__name__}")
        if text.strip().lower() in ("", "none"):
            return cls()
        values, seen = {}, {}
        for item in text.split(","):
            item = item.strip()
            if not item:
                raise AugmentError(f"augment: an empty item in {text!r}; items are separated by single commas")
            name, has_value, raw = (part.strip() for part in item.partition("="))
            key = _ALIASES.get(name.lower(), name.lower())
            word = _WORDS.get(key)
            if word is None:
                raise AugmentError(_unknown_message(name))
            if key in seen:
                raise AugmentError(f"augment: {key} is given twice ({seen[key]!r} and {item!r})")
            seen[key] = item
            if word.kind == "flag":
                if has_value:
                    raise AugmentError(f"augment: {key} takes {word.expected}; received {item!r}")
                value = True
            else:
                if not has_value or not raw:
                    raise AugmentError(f"augment: {key} needs a value: {key}=V with V {word.expected}; "
                                       f"received {item!r}")
                value = _checked(key, word, raw, from_text=True)
            for field in word.fields:
                if field in values:
                    raise AugmentError(f"augment: {field} is set twice (by {values[field][1]!r} and {item!r}); "
                                       "give it once")
                values[field] = (value, item)
        return cls(**{field: value for field, (value, _) in values.items()})

    def to_text(self) -> str:
        """The canonical description: the non-default items in :data:`NAMES` order (``shift`` when both
        shifts are equal); ``"none"`` when nothing is set. ``parse(p.to_text()) == p``."""
        items = []
        defaults = AugmentPolicy.__dataclass_fields__
        for name in NAMES:
            if name == "shift":
                if self.height_shift and self.height_shift == self.width_shift:
                    items.append(f"shift={_number(self.height_shift)}")
                continue
            if name in ("height_shift", "width_shift") and self.height_shift == self.width_shift:
                continue
            value = getattr(self, name)
            if value == defaults[name].default:
                continue
            items.append(name if value is True else f"{name}={_number(value)}")
        return ", ".join(items) if items else "none"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: dict) -> "AugmentPolicy":
        """What :meth:`to_dict` wrote; an unknown key is an :class:`AugmentError` naming it."""
        if not isinstance(document, dict):
            raise AugmentError(f"augment: expected a dict of {', '.join(cls.__dataclass_fields__)}; received "
                               f"{type(document).__name__}")
        unknown = [k for k in document if k not in cls.__dataclass_fields__]
        if unknown:
            raise AugmentError(_unknown_message(str(unknown[0])))
        return cls(**document)

    @classmethod
    def make(cls, value) -> "AugmentPolicy":
        """None, a text, a dict or a policy -> the policy (None: no augmentation)."""
        if value is None:
            return cls()
        if isinstance(value, AugmentPolicy):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value)
        return cls.parse(value)


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(NAMES) + list(_ALIASES), n=1)
    hint = f" (did you mean {_ALIASES.get(close[0], close[0])}?)" if close else ""
    return f"augment: unknown name {name!r}{hint}; choose among {', '.join(NAMES)}"


def _number(value) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _checked(name: str, word: _Word, value, *, from_text: bool):
    """``value`` (text from the description, or a Python value) checked against ``word``; AugmentError
    naming ``name``, what it takes and what was received."""
    def refuse():
        received = repr(value) if isinstance(value, str) else repr(value)
        return AugmentError(f"augment: {name} takes {word.expected}; received {received}")

    if word.kind == "flag":
        if not isinstance(value, (bool, np.bool_)):
            raise refuse()
        return bool(value)
    if word.kind == "choice":
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in word.choices:
            raise refuse()
        return text
    if isinstance(value, (bool, np.bool_)):
        raise refuse()
    if word.kind == "int":
        try:
            number = int(value, 10) if isinstance(value, str) else value
        except ValueError:
            raise refuse() from None
        if not isinstance(number, (int, np.integer)) or not word.low <= number <= word.high:
            raise refuse()
        return int(number)
    try:
        number = float(value) if isinstance(value, str) or isinstance(value, (int, float, np.number)) else None
    except ValueError:
        raise refuse() from None
    if number is None or not math.isfinite(number) or number < word.low or number > word.high \
            or (word.high_open and number == word.high):
        raise refuse()
    return number


# --------------------------------------------------------------------------------------------------
# Counter-based uniforms


def stream_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s draws: ``mix64((seed mod 2^64) + (epoch + 1) * GOLDEN_GAMMA)``, i.e.
    ``cnn.layers.derive_seed(seed, epoch)``."""
    return mix64((int(seed) % (1 << 64) + (int(epoch) + 1) * GOLDEN_GAMMA) & MASK64)


def _mix64_array(z: np.ndarray) -> np.ndarray:
    """:func:`cnnbase.dropout.mix64` on a uint64 array (NumPy's uint64 arithmetic wraps modulo 2^64)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(MIX_1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(MIX_2)
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, epoch: int, index, slots) -> np.ndarray:
    """``u[k, s]`` in [0, 1) for image ``index[k]`` and slot ``slots[s]`` of epoch ``epoch``: the dropout
    mask's uniform (``specs/dropout.md``) with seed :func:`stream_seed` at flat position
    ``index * SLOTS + slot``::

        key = mix64(stream_seed(seed, epoch))
        u   = (mix64(key + (index * SLOTS + slot + 1) * GOLDEN_GAMMA) >> 11) * 2^-53

    A pure function of its arguments: the same for any batch, order or thread count.
    """
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    if index.size and index.min() < 0:
        raise AugmentError(f"augment: image indices must be >= 0; received {int(index.min())}")
    slots = np.asarray(slots, dtype=np.uint64).reshape(-1)
    key = np.uint64(mix64(stream_seed(seed, epoch)))
    counter = index.astype(np.uint64)[:, None] * np.uint64(SLOTS) + slots[None, :] + np.uint64(1)
    with np.errstate(over="ignore"):
        z = _mix64_array(key + counter * np.uint64(GOLDEN_GAMMA))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _symmetric(u: np.ndarray, r: float) -> np.ndarray:
    """Uniform in [-r, r): ``r * (2u - 1)``."""
    return r * (2.0 * u - 1.0)


def _integer(u: np.ndarray, m) -> np.ndarray:
    """Uniform over {0, ..., m-1}: ``min(floor(u * m), m - 1)`` (the min only guards float rounding)."""
    return np.minimum(np.floor(u * m), np.asarray(m) - 1).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Drawing and composing


@dataclass(frozen=True)
class AugmentParameters:
    """Each image's drawn parameters (arrays of length N); the identity where a transform is off.

    ``angle`` and ``shear`` in degrees, ``zoom_h``/``zoom_w`` the source extents (the inverse scales),
    ``shift_r``/``shift_c`` in pixels (shift plus crop offset: positive moves the content down/right),
    ``flip_h``/``flip_v`` booleans, ``contrast`` the factor, ``brightness`` the offset, ``erase`` the
    rectangle (top, left, height, width) int64, zero height and width for none.
    """

    angle: np.ndarray
    zoom_h: np.ndarray
    zoom_w: np.ndarray
    shear: np.ndarray
    shift_r: np.ndarray
    shift_c: np.ndarray
    flip_h: np.ndarray
    flip_v: np.ndarray
    contrast: np.ndarray
    brightness: np.ndarray
    erase: np.ndarray


def draw(policy: AugmentPolicy, seed: int, epoch: int, index, height: int, width: int) -> AugmentParameters:
    """Every image's parameters (``specs/augment.md``, "Drawing the parameters"), from :func:`uniforms`."""
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    used = _used_slots(policy)
    u = np.zeros((len(index), SLOTS))
    u[:, used] = uniforms(seed, epoch, index, used)   # only the slots the policy reads are computed
    n = len(index)
    zero, one = np.zeros(n), np.ones(n)
    H, W = int(height), int(width)

    def col(name):
        return u[:, SLOT[name]]

    angle = _symmetric(col("rotation"), policy.rotation) if policy.rotation else zero
    if policy.zoom:
        zoom_h = zoom_w = 1.0 + _symmetric(col("zoom"), policy.zoom)
    else:
        zoom_h = 1.0 + _symmetric(col("zoom"), policy.height_zoom) if policy.height_zoom else one
        zoom_w = 1.0 + _symmetric(col("width_zoom"), policy.width_zoom) if policy.width_zoom else one
    shear = _symmetric(col("shear"), policy.shear) if policy.shear else zero
    shift_r = _symmetric(col("height_shift"), policy.height_shift) * H if policy.height_shift else zero
    shift_c = _symmetric(col("width_shift"), policy.width_shift) * W if policy.width_shift else zero
    if policy.crop:
        m = 2 * policy.crop + 1
        shift_r = shift_r + (_integer(col("crop_row"), m) - policy.crop)
        shift_c = shift_c + (_integer(col("crop_col"), m) - policy.crop)
    flip_h = col("hflip") < 0.5 if policy.hflip else np.zeros(n, bool)
    flip_v = col("vflip") < 0.5 if policy.vflip else np.zeros(n, bool)
    contrast = 1.0 + _symmetric(col("contrast"), policy.contrast) if policy.contrast else one
    brightness = _symmetric(col("brightness"), policy.brightness) if policy.brightness else zero
    erase = _erase_rectangles(u, policy.erase, H, W) if policy.erase else np.zeros((n, 4), np.int64)
    return AugmentParameters(angle=angle, zoom_h=zoom_h, zoom_w=zoom_w, shear=shear, shift_r=shift_r,
                             shift_c=shift_c, flip_h=flip_h, flip_v=flip_v, contrast=contrast,
                             brightness=brightness, erase=erase)


def _used_slots(policy: AugmentPolicy) -> np.ndarray:
    """The slots :func:`draw` reads for ``policy`` (the others are never computed)."""
    on = {"rotation": policy.rotation, "zoom": policy.zoom or policy.height_zoom, "width_zoom": policy.width_zoom,
          "shear": policy.shear, "height_shift": policy.height_shift, "width_shift": policy.width_shift,
          "hflip": policy.hflip, "vflip": policy.vflip, "crop_row": policy.crop, "crop_col": policy.crop,
          "brightness": policy.brightness, "contrast": policy.contrast, "erase": policy.erase}
    used = [SLOT[name] for name, value in on.items() if value]
    if policy.erase:
        used += range(SLOT["erase_tries"], SLOT["erase_tries"] + 4 * ERASE_TRIES)
    return np.array(sorted(used), dtype=np.int64)


def _erase_rectangles(u: np.ndarray, p: float, H: int, W: int) -> np.ndarray:
    """torchvision's RandomErasing rule, tries drawn counter-based: with probability ``p``, up to
    :data:`ERASE_TRIES` tries of an area ``H*W*uniform(ERASE_SCALE)`` and an aspect ratio
    ``exp(uniform(log ERASE_RATIO))``, ``h = rint(sqrt(area*ratio))``, ``w = rint(sqrt(area/ratio))``; the first
    try with ``h < H`` and ``w < W`` is placed at a uniform integer top in [0, H-h] and left in [0, W-w]; no
    fitting try, or an empty one (``h`` or ``w`` 0), no erasing: all four 0. (N, 4) int64 (top, left, height,
    width)."""
    n = len(u)
    base = SLOT["erase_tries"]
    tries = u[:, base:base + 4 * ERASE_TRIES].reshape(n, ERASE_TRIES, 4)
    area = H * W * (ERASE_SCALE[0] + (ERASE_SCALE[1] - ERASE_SCALE[0]) * tries[..., 0])
    low, high = math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1])
    ratio = np.exp(low + (high - low) * tries[..., 1])
    h = np.rint(np.sqrt(area * ratio)).astype(np.int64)
    w = np.rint(np.sqrt(area / ratio)).astype(np.int64)
    fits = (h < H) & (w < W)
    top = _integer(tries[..., 2], H - h + 1)
    left = _integer(tries[..., 3], W - w + 1)
    first = np.argmax(fits, axis=1)
    rows = np.arange(n)
    chosen = (u[:, SLOT["erase"]] < p) & fits[rows, first]
    chosen &= (h[rows, first] > 0) & (w[rows, first] > 0)   # an empty rectangle (tiny images) erases nothing
    out = np.stack([top[rows, first], left[rows, first], h[rows, first], w[rows, first]], axis=1)
    out[~chosen] = 0
    return out.astype(np.int64)


def compose(params: AugmentParameters, height: int, width: int) -> np.ndarray:
    """The inverse affine map of each image, the op's ``transform`` (N, 6) float64: with ``c`` the centre
    ``((H-1)/2, (W-1)/2)``, ``t = (shift_r, shift_c)`` and ``A = F Z S R`` (flip, zoom, shear, rotation, all
    inverse, in (row, column) coordinates)::

        R = [[cos a, sin a], [-sin a, cos a]]     S = [[1, 0], [tan s, 1]]
        Z = [[zoom_h, 0], [0, zoom_w]]           F = [[-1 if flip_v else 1, 0], [0, -1 if flip_h else 1]]
        source = A (out - c - t) + c  =  A out + (c - A (c + t))

    so the image is flipped, zoomed, sheared, rotated about the centre and then shifted. Identity
    parameters give exactly ``(1, 0, 0, 0, 1, 0)``.
    """
    a = np.deg2rad(params.angle)
    cos, sin, tan = np.cos(a), np.sin(a), np.tan(np.deg2rad(params.shear))
    n = len(a)
    R = np.empty((n, 2, 2))
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1] = cos, sin, -sin, cos
    S = np.zeros((n, 2, 2))
    S[:, 0, 0], S[:, 1, 0], S[:, 1, 1] = 1.0, tan, 1.0
    FZ = np.zeros((n, 2, 2))
    FZ[:, 0, 0] = np.where(params.flip_v, -1.0, 1.0) * params.zoom_h
    FZ[:, 1, 1] = np.where(params.flip_h, -1.0, 1.0) * params.zoom_w
    A = FZ @ S @ R
    centre = np.array([(height - 1) / 2.0, (width - 1) / 2.0])
    moved = np.stack([centre[0] + params.shift_r, centre[1] + params.shift_c], axis=1)   # c + t
    offset = centre[None, :] - np.einsum("nij,nj->ni", A, moved)
    return np.stack([A[:, 0, 0], A[:, 0, 1], offset[:, 0], A[:, 1, 0], A[:, 1, 1], offset[:, 1]], axis=1)


def parameters(policy: AugmentPolicy, seed: int, epoch: int, index, height: int, width: int):
    """The op's ``(transform (N, 6), pixel (N, 2) or None, erase (N, 4) or None)`` for the images ``index``
    of epoch ``epoch``: pixel is ``(contrast, brightness)`` when either is on, erase when ``erase > 0``."""
    drawn = draw(policy, seed, epoch, index, height, width)
    transform = compose(drawn, height, width)
    pixel = np.stack([drawn.contrast, drawn.brightness], axis=1) if policy.photometric else None
    erase = drawn.erase if policy.erase else None
    return transform, pixel, erase
