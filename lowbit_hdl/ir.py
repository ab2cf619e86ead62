"""Network description language: a network is an input spec plus a plain list of layers.

Tensor layout conventions (shared by the golden model, the hardware and the torch model):

* Feature maps are (C, H, W) in the user-facing API; on a stream they travel in raster order
  with channels innermost (H, W, C), channel 0 in the least significant bits of a beat.
* Convolution weights are (OC, IC, KH, KW) like torch; as a matrix for the MVTU they are
  reordered to (OC, KH·KW·IC), i.e. the im2col column order is [kh][kw][c].
* A fully connected layer flattens its input in (H, W, C) order (the stream order), so its
  weights are (out_features, H·W·C).
* Thresholds are (OC, 2**k - 1) integers, ascending per channel; activation = Σ [acc ≥ T_i].
  A BIPOLAR activation has one threshold: +1 when acc ≥ T_0 else -1.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, is_dataclass

import numpy as np

from .errors import NetworkError, NetworkTypeError
from .runtime.dtypes import BIPOLAR, DataType, signed_bits_for_range
from .runtime.layout import TASKS

__all__ = [
    "Conv",
    "FC",
    "MaxPool",
    "TopK",
    "Layer",
    "Network",
    "LayerInfo",
    "NetworkError",
    "pool_padding",
    "pool_out_size",
    "same_padding",
    "NetworkTypeError",
]


@dataclass
class Conv:
    """2-D convolution + fused multi-threshold activation, executed on an MVTU.

    ``act`` is the output data type (thresholds fused) or ``None`` for raw accumulators.
    ``simd`` must divide the input channels (the sliding window emits SIMD channels of one
    pixel per beat), ``pe`` must divide ``out_channels``. ``pad_value`` defaults to 0 for
    unsigned/signed inputs and to -1 for BIPOLAR inputs (which have no zero).
    """

    name: str
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    weight_dtype: DataType = BIPOLAR
    act: DataType | None = BIPOLAR
    pe: int = 1
    simd: int = 1
    pad_value: int | None = None
    ram_style: str = "auto"
    weights: np.ndarray | None = field(default=None, repr=False)
    thresholds: np.ndarray | None = field(default=None, repr=False)

    kind = "conv"


@dataclass
class FC:
    """Fully connected layer + fused multi-threshold activation, executed on an MVTU."""

    name: str
    out_features: int
    weight_dtype: DataType = BIPOLAR
    act: DataType | None = BIPOLAR
    pe: int = 1
    simd: int = 1
    ram_style: str = "auto"
    weights: np.ndarray | None = field(default=None, repr=False)
    thresholds: np.ndarray | None = field(default=None, repr=False)

    kind = "fc"


@dataclass
class MaxPool:
    """k×k max-pool with stride (default: kernel). ``pe`` channels are handled per cycle
    (``None``: as many as the upstream layer delivers per beat).

    ``padding`` (resolved by :func:`pool_padding` into ``LayerInfo.pads``):

    * ``0`` or ``"valid"`` (default): no padding, ``OH = (H − k)//s + 1``;
    * an int ``p``: ``p`` rows/columns on every side;
    * a 4-tuple ``(top, bottom, left, right)``;
    * ``"same"`` (TensorFlow / Darknet): ``OH = ⌈H/s⌉``, total padding
      ``max((OH − 1)·s + k − H, 0)``, top ``total//2``, bottom the rest (likewise columns).

    With explicit padding ``OH = (H + top + bottom − k)//s + 1``. Every side's padding must
    be below ``k`` (each window holds at least one real pixel). Padded positions hold the
    minimum of the input type (−1 for BIPOLAR, 0 for UINTk): padding never wins the max.
    """

    name: str
    kernel: int = 2
    stride: int | None = None
    padding: int | str | tuple = 0
    pe: int | None = None

    kind = "maxpool"


@dataclass
class TopK:
    """Select the indices of the k largest values (ties: lower index first), largest first."""

    name: str
    k: int = 1

    kind = "topk"


Layer = Conv | FC | MaxPool | TopK
#: a Conv/FC layer's weight-memory implementation (the Xilinx/Yosys ``ram_style`` attribute
#: of its weight ROMs): the tool's choice, block RAM, LUT-RAM, or LUT logic ("logic": Yosys
#: maps a ROM to LUTs; it has no LUT-RAM mapping for a ROM, see docs/build.md)
RAM_STYLES = ("auto", "block", "distributed", "logic")


@dataclass(frozen=True)
class LayerInfo:
    """Shapes and derived figures of one layer, from :meth:`Network.infer` (shared by every
    caller of the same network, hence immutable)."""

    layer: Layer
    index: int
    in_shape: tuple[int, int, int]  # (C, H, W)
    out_shape: tuple[int, int, int]
    in_dtype: DataType
    out_dtype: DataType
    in_fold: int  # elements per input beat
    out_fold: int  # elements per output beat
    mw: int = 0  # MVTU matrix width (synapses per neuron)
    mh: int = 0  # MVTU matrix height (neurons)
    vectors: int = 0  # input vectors per frame (output pixels for conv, 1 for fc)
    acc_bits: int = 0  # accumulator width
    acc_min: int = 0
    acc_max: int = 0
    pad_value: int = 0
    #: resolved padding (top, bottom, left, right) of a Conv (symmetric) or MaxPool
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def is_mvtu(self) -> bool:
        return isinstance(self.layer, (Conv, FC))

    @property
    def n_thresholds(self) -> int:
        act = getattr(self.layer, "act", None)
        if act is None:
            return 0
        return 1 if act.is_bipolar else (1 << act.bits) - 1

    @property
    def weight_shape(self) -> tuple[int, ...]:
        lay = self.layer
        if isinstance(lay, Conv):
            return (lay.out_channels, self.in_shape[0], lay.kernel, lay.kernel)
        if isinstance(lay, FC):
            return (lay.out_features, self.mw)
        return ()

    @property
    def threshold_shape(self) -> tuple[int, ...]:
        return (self.mh, self.n_thresholds) if self.n_thresholds else ()

    def weight_matrix(self) -> np.ndarray:
        """Weights as the (MH, MW) matrix the MVTU uses (im2col order [kh][kw][c])."""
        w = self.layer.weights
        if w is None:
            raise NetworkError(f"layer {self.name}: has no weights attached")
        if isinstance(self.layer, Conv):
            return np.asarray(w).transpose(0, 2, 3, 1).reshape(self.mh, self.mw)
        return np.asarray(w).reshape(self.mh, self.mw)


POOL_PADDINGS = ("valid", "same")


def same_padding(n: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow / Darknet "same" padding of one axis of ``n`` pixels: (before, after).

    ``out = ⌈n/s⌉``, ``total = max((out − 1)·s + k − n, 0)``, ``before = total//2``,
    ``after = total − before``.
    """
    out = -(-n // stride)
    total = max((out - 1) * stride + kernel - n, 0)
    return total // 2, total - total // 2


def pool_padding(padding: object, kernel: int, stride: int, h: int, w: int
                 ) -> tuple[int, int, int, int]:
    """A :class:`MaxPool` ``padding`` field as (top, bottom, left, right) for an ``h × w``
    input; ``ValueError`` for a value that is none of the accepted forms."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            return (*same_padding(h, kernel, stride), *same_padding(w, kernel, stride))
        raise ValueError(f"padding={padding!r} must be one of {POOL_PADDINGS}, an int or "
                         "(top, bottom, left, right)")
    if _is_int(padding):
        if padding < 0:
            raise ValueError(f"padding={padding} must be ≥ 0")
        return (padding,) * 4
    if isinstance(padding, (tuple, list)) and len(padding) == 4 and \
            all(_is_int(p) and p >= 0 for p in padding):
        return tuple(padding)
    raise ValueError(f"padding={padding!r} must be an int ≥ 0, 'valid', 'same' or a tuple "
                     "(top, bottom, left, right) of ints ≥ 0")


def pool_out_size(n: int, kernel: int, stride: int, before: int, after: int) -> int:
    """Pooled pixels along one axis: ``(n + before + after − k)//s + 1``."""
    return (n + before + after - kernel) // stride + 1


def _product_range(wdt: DataType, xdt: DataType) -> tuple[int, int]:
    prods = [a * b for a in (wdt.min, wdt.max) for b in (xdt.min, xdt.max)]
    return min(prods), max(prods)


#: layer fields that are parameters, not structure: changing them needs no new inference
_PARAM_FIELDS = ("weights", "thresholds")


#: what a layer field's annotation asks for (``"int | None"`` also allows ``None``)
_FIELD_TYPES: dict[str, tuple[type, str]] = {
    "int": (int, "an int"), "str": (str, "a str"), "DataType": (DataType, "a DataType")}
#: a network's name: it names files, folders and the Vivado project
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_layer_fields(i: int, lay: object) -> None:
    """Raise :class:`NetworkTypeError` when ``lay`` is not a layer or one of its fields has
    the wrong type (e.g. ``pe=2.0``: no field is ever rounded)."""
    if not isinstance(lay, (Conv, FC, MaxPool, TopK)):
        raise NetworkTypeError(f"layers[{i}]: expected a layer (Conv, FC, MaxPool or TopK), "
                               f"got {type(lay).__name__} {str(lay)[:40]!r}")
    if not isinstance(lay.name, str):
        raise NetworkTypeError(f"layers[{i}]: name must be a str, got {lay.name!r}")
    for f in fields(lay):
        if f.name in _PARAM_FIELDS:
            continue
        value = getattr(lay, f.name)
        ann = str(f.type)
        optional = ann.endswith("| None")
        want, what = _FIELD_TYPES[ann.split("|")[0].strip()]
        if value is None and optional:
            continue
        if f.name == "padding" and isinstance(lay, MaxPool):
            ok = isinstance(value, str) or _is_int(value) or (
                isinstance(value, tuple) and all(_is_int(p) for p in value))
            if not ok:
                raise NetworkTypeError(
                    f"layer {lay.name}: padding={value!r} must be an int, a str or a tuple "
                    f"(top, bottom, left, right) of ints, got {type(value).__name__}")
            continue
        if not isinstance(value, want) or (want is int and not _is_int(value)):
            raise NetworkTypeError(
                f"layer {lay.name}: {f.name}={value!r} must be {what}"
                f"{' or None' if optional else ''}, got {type(value).__name__}")


_INT64 = np.iinfo(np.int64)


def _param_array(value: object, what: str) -> np.ndarray:
    """A weight or threshold array as numbers; :class:`NetworkTypeError` for anything else
    (strings, objects, booleans, complex numbers)."""
    try:
        a = np.asarray(value)
    except Exception as e:  # ragged nested lists and the like
        raise NetworkTypeError(f"{what}: not a numeric array ({e})") from None
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer)
                                   or np.issubdtype(a.dtype, np.floating)):
        raise NetworkTypeError(f"{what}: must be an integer array, got dtype {a.dtype}")
    return a


def _allowed_mask(values: np.ndarray, dtype: DataType) -> np.ndarray:
    """Which elements are values of ``dtype`` (whole numbers in its range; ±1 for BIPOLAR)."""
    v = np.asarray(values)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(v) & (np.mod(v, 1) == 0) if v.dtype.kind == "f" else \
            np.ones(v.shape, bool)
        if dtype.is_bipolar:
            return whole & ((v == 1) | (v == -1))
        return whole & (v >= dtype.min) & (v <= dtype.max)


def _structure(lay: object) -> tuple:
    """What shape inference reads of a layer: the layer object and its non-parameter fields."""
    if not is_dataclass(lay):
        return (id(lay), type(lay))
    return (id(lay), type(lay),
            *(getattr(lay, f.name) for f in fields(lay) if f.name not in _PARAM_FIELDS))


class Network:
    """A network: name, input spec (C, H, W) with its data type, and a list of layers.

    :attr:`random_weights` (``{layer: seed}``) records the layers whose parameters
    :meth:`randomize` made; it is saved with the network and reported by the build.
    """

    def __init__(
        self,
        name: str,
        input_shape: tuple[int, int, int],
        layers: list[Layer],
        input_dtype: DataType | None = None,
        input_fold: int | None = None,
        description: str = "",
        labels: list[str] | None = None,
        task: str | None = None,
    ) -> None:
        from .runtime.dtypes import UINT

        self.name = name
        # numpy integers become ints; anything else is kept for infer() to reject (never
        # rounded: (1, 28.5, 28) is an error, not a 28-pixel image)
        self.input_shape = tuple(int(d) if isinstance(d, np.integer) else d
                                 for d in input_shape) \
            if isinstance(input_shape, (tuple, list)) else input_shape
        self.input_dtype = input_dtype if input_dtype is not None else UINT(8)
        self.input_fold = input_fold
        self.layers = list(layers)
        self.description = description
        self.labels = labels
        #: what the network is for (``lowbit_hdl.runtime.layout.TASKS``: "imagenet",
        #: "yolo-voc") or None; it picks the board's pre- and post-processing
        self.task = task
        #: layers whose weights and thresholds :meth:`randomize` made: name → seed
        self.random_weights: dict[str, int] = {}
        #: real value of the raw integer output ``q`` (last layer with act=None, e.g. a
        #: detector's region grid): ``output_scale[c]·q + output_offset[c]`` per output
        #: channel ``c``; tuples of floats set by the training export, or None
        self.output_scale: tuple[float, ...] | None = None
        self.output_offset: tuple[float, ...] | None = None
        self._inferred: tuple[tuple, tuple[LayerInfo, ...]] | None = None

    def __getstate__(self) -> dict:
        # copies and pickles infer again (the cached infos refer to this network's layers)
        return {**self.__dict__, "_inferred": None}

    def __repr__(self) -> str:
        return f"Network({self.name!r}, input={self.input_shape} {self.input_dtype}, " \
            f"{len(self.layers)} layers)"

    def __getitem__(self, name: str) -> Layer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)

    # -- shape inference and validation ------------------------------------------------------

    def infer(self, check_params: bool = False) -> list[LayerInfo]:
        """Infer shapes, data types and MVTU dimensions; validate every rule.

        With ``check_params`` the attached weights and thresholds are checked too (every
        call: they may have been replaced). Raises :class:`NetworkError` naming the layer and
        the broken rule.

        The inference is done once and shared by every later call until the network
        changes: its input spec, its list of layers, or any layer field other than
        ``weights``/``thresholds`` (e.g. a new folding). The :class:`LayerInfo` s are
        immutable; the list is the caller's.
        """
        key = (self.input_shape, self.input_dtype, self.input_fold,
               tuple(_structure(lay) for lay in self.layers))
        cached = getattr(self, "_inferred", None)
        if cached is None or cached[0] != key:
            cached = (key, tuple(self._infer_all()))
            self._inferred = cached
        infos = cached[1]
        if check_params:
            for info in infos:
                self._check_params(info)
        return list(infos)

    def _infer_all(self) -> list[LayerInfo]:
        """The inference behind :meth:`infer` (not cached)."""
        self._check_network_fields()
        if not self.layers:
            raise NetworkError(f"network {self.name}: has no layers")
        for i, lay in enumerate(self.layers):
            _check_layer_fields(i, lay)
        names = [lay.name for lay in self.layers]
        for n in names:
            if not isinstance(n, str) or not n.isidentifier():
                raise NetworkError(f"layer {n!r}: name must be a Python identifier")
            if names.count(n) > 1:
                raise NetworkError(f"layer {n}: name used more than once")
        shape = self.input_shape
        dtype = self.input_dtype
        fold = self.input_fold
        infos: list[LayerInfo] = []
        for i, lay in enumerate(self.layers):
            info = self._infer_layer(i, lay, shape, dtype, fold)
            infos.append(info)
            shape, dtype, fold = info.out_shape, info.out_dtype, info.out_fold
        for info in infos[:-1]:
            if isinstance(info.layer, TopK):
                raise NetworkError(f"layer {info.name}: TopK must be the last layer")
            if info.is_mvtu and info.layer.act is None:
                nxt = infos[info.index + 1].layer
                if not isinstance(nxt, TopK):
                    raise NetworkError(
                        f"layer {info.name}: act=None (raw accumulators) is only allowed on "
                        f"the last MVTU layer, before TopK or at the network output")
        sc, off = getattr(self, "output_scale", None), getattr(self, "output_offset", None)
        if sc is not None:
            last = infos[-1]
            if not (last.is_mvtu and last.layer.act is None):
                raise NetworkError(f"network {self.name}: output_scale needs raw "
                                   f"accumulators (act=None) at the output, not layer "
                                   f"{last.name}")
            if len(sc) != last.out_shape[0] or len(off) != last.out_shape[0]:
                raise NetworkError(f"network {self.name}: output_scale/output_offset have "
                                   f"{len(sc)}/{len(off)} values; the output has "
                                   f"{last.out_shape[0]} channels")
        return infos

    def _check_network_fields(self) -> None:
        """The network's own fields: name, input spec, labels (types and ranges)."""
        name = self.name
        if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS \
                or not name[0].isalpha():
            raise NetworkError(f"network name {name!r}: must be a str of letters, digits, "
                               "'_' and '-' starting with a letter (it names files)")
        shape = self.input_shape
        if not isinstance(shape, tuple) or len(shape) != 3 or \
                not all(_is_int(d) and d >= 1 for d in shape):
            raise NetworkError(f"network {name}: input_shape must be (C, H, W), three ints "
                               f"≥ 1, got {shape!r}")
        if not isinstance(self.input_dtype, DataType):
            raise NetworkTypeError(f"network {name}: input_dtype must be a DataType, got "
                                   f"{self.input_dtype!r}")
        fold = self.input_fold
        if fold is not None and not (_is_int(fold) and fold >= 1):
            raise NetworkError(f"network {name}: input_fold must be an int ≥ 1 or None, got "
                               f"{fold!r}")
        if not isinstance(self.layers, list):
            raise NetworkTypeError(f"network {name}: layers must be a list, got "
                                   f"{type(self.layers).__name__}")
        if self.labels is not None and (not isinstance(self.labels, (list, tuple)) or
                                        not all(isinstance(x, str) for x in self.labels)):
            raise NetworkTypeError(f"network {name}: labels must be a list of str or None")
        if not isinstance(self.description, str):
            raise NetworkTypeError(f"network {name}: description must be a str")
        if self.task is not None and self.task not in TASKS:
            raise NetworkError(f"network {name}: task={self.task!r} must be one of {TASKS} "
                               "or None")
        sc, off = getattr(self, "output_scale", None), getattr(self, "output_offset", None)
        if (sc is None) != (off is None):
            raise NetworkError(f"network {name}: output_scale and output_offset go together")
        for what, v in (("output_scale", sc), ("output_offset", off)):
            if v is not None and not (
                    isinstance(v, (tuple, list)) and v and all(
                        isinstance(x, (float, int)) and not isinstance(x, bool)
                        and math.isfinite(x) for x in v)):
                raise NetworkTypeError(f"network {name}: {what} must be a non-empty list of "
                                       "finite numbers (one per output channel) or None")

    def _infer_layer(self, i: int, lay: Layer, shape, dtype: DataType,
                     fold: int | None) -> LayerInfo:
        c, h, w = shape
        err = lambda msg: NetworkError(f"layer {lay.name}: {msg}")  # noqa: E731
        if isinstance(lay, (Conv, FC)):
            if lay.pe < 1 or lay.simd < 1:
                raise err(f"PE={lay.pe} and SIMD={lay.simd} must be ≥ 1")
            if lay.ram_style not in RAM_STYLES:
                raise err(f"ram_style={lay.ram_style!r} must be one of {RAM_STYLES}")
            if lay.weight_dtype.kind == "uint":
                raise err(f"weight_dtype={lay.weight_dtype} is not supported "
                          "(weights are BIPOLAR or INTk)")
            if lay.act is not None and lay.act.kind == "int":
                raise err(f"act={lay.act} is not supported (activations are BIPOLAR or UINTk)")
            if lay.act is not None and not lay.act.is_bipolar and lay.act.bits > 8:
                raise err(f"act={lay.act}: at most 8 activation bits (255 thresholds)")
        if isinstance(lay, Conv):
            k, s, p = lay.kernel, lay.stride, lay.padding
            if k < 1 or s < 1 or p < 0:
                raise err(f"kernel={k}, stride={s} must be ≥ 1 and padding={p} ≥ 0")
            if k > h + 2 * p or k > w + 2 * p:
                raise err(f"kernel {k}×{k} is larger than the padded input {h + 2 * p}×"
                          f"{w + 2 * p}")
            if lay.out_channels < 1:
                raise err(f"out_channels={lay.out_channels} must be ≥ 1")
            oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            mw, mh = k * k * c, lay.out_channels
            if c % lay.simd:
                raise err(f"SIMD={lay.simd} does not divide the {c} input channels "
                          f"(MW={mw} is {k}×{k}×{c}; the sliding window emits SIMD channels "
                          "of one pixel per beat)")
            pad_value = lay.pad_value
            if pad_value is None:
                pad_value = -1 if dtype.is_bipolar else 0
            if p and not dtype.allowed(np.array([pad_value])):
                raise err(f"pad_value={pad_value} is not a {dtype} value")
            info = self._mvtu_info(i, lay, shape, (mh, oh, ow), dtype, fold, mw, mh, oh * ow,
                                   pad_value, err)
            return dataclasses.replace(info, pads=(p, p, p, p))
        if isinstance(lay, FC):
            mw, mh = c * h * w, lay.out_features
            if mh < 1:
                raise err(f"out_features={mh} must be ≥ 1")
            return self._mvtu_info(i, lay, shape, (mh, 1, 1), dtype, fold, mw, mh, 1, 0, err)
        if isinstance(lay, MaxPool):
            k = lay.kernel
            s = lay.stride if lay.stride is not None else k
            if k < 1 or s < 1:
                raise err(f"kernel={k} and stride={s} must be ≥ 1")
            try:
                pads = pool_padding(lay.padding, k, s, h, w)
            except ValueError as e:
                raise err(str(e)) from None
            pt, pb, pl, pr = pads
            if max(pads) >= k:
                raise err(f"padding (top, bottom, left, right)={pads}: each side must be "
                          f"below the kernel {k} (a window must hold a real pixel)")
            if k > h + pt + pb or k > w + pl + pr:
                raise err(f"kernel {k}×{k} is larger than the "
                          f"{'padded ' if any(pads) else ''}input {h + pt + pb}×{w + pl + pr}")
            if dtype.kind not in ("bipolar", "uint"):
                raise err(f"input type {dtype} not supported (BIPOLAR or UINTk)")
            pe = lay.pe if lay.pe is not None else (fold or c)
            if pe < 1 or c % pe:
                raise err(f"PE={pe} does not divide the {c} channels")
            oh, ow = pool_out_size(h, k, s, pt, pb), pool_out_size(w, k, s, pl, pr)
            return LayerInfo(lay, i, shape, (c, oh, ow), dtype, dtype, pe, pe,
                             pad_value=dtype.min, pads=pads)
        if isinstance(lay, TopK):
            n = c * h * w
            if not 1 <= lay.k <= n:
                raise err(f"k={lay.k} must be in 1..{n} (the number of inputs)")
            if dtype.is_bipolar:
                raise err("TopK needs numeric inputs (raw accumulators or UINT), got BIPOLAR")
            from .runtime.dtypes import UINT

            idx_bits = max(1, math.ceil(math.log2(n)))
            f = fold or n
            if n % f:
                raise err(f"input fold {f} does not divide the {n} inputs")
            return LayerInfo(lay, i, shape, (lay.k, 1, 1), dtype, UINT(idx_bits), f, 1)
        raise NetworkError(f"layer {getattr(lay, 'name', lay)!r}: unknown layer type "
                           f"{type(lay).__name__}")

    def _mvtu_info(self, i, lay, shape, out_shape, dtype, fold, mw, mh, vectors, pad_value,
                   err) -> LayerInfo:
        if mw % lay.simd:
            raise err(f"MW={mw} is not a multiple of SIMD={lay.simd}")
        if mh % lay.pe:
            raise err(f"MH={mh} is not a multiple of PE={lay.pe}")
        lo, hi = _product_range(lay.weight_dtype, dtype)
        acc_min, acc_max = lo * mw, hi * mw
        acc_bits = signed_bits_for_range(acc_min, acc_max)
        if lay.act is None:
            from .runtime.dtypes import INT

            out_dtype = INT(acc_bits)
        else:
            out_dtype = lay.act
        return LayerInfo(lay, i, shape, out_shape, dtype, out_dtype, lay.simd, lay.pe, mw=mw,
                         mh=mh, vectors=vectors, acc_bits=acc_bits, acc_min=acc_min,
                         acc_max=acc_max, pad_value=pad_value)

    def _check_params(self, info: LayerInfo, allow_missing: bool = False) -> bool:
        """Check one layer's attached weights and thresholds against its shapes and types;
        False when it has none at all and ``allow_missing``."""
        lay = info.layer
        if not info.is_mvtu:
            return True
        err = lambda msg: NetworkError(f"layer {lay.name}: {msg}")  # noqa: E731
        if lay.weights is None:
            if allow_missing and lay.thresholds is None:
                return False
            raise err("no weights attached" + ("" if lay.thresholds is None else
                                               " (only thresholds)"))
        w = _param_array(lay.weights, f"layer {lay.name}: weights")
        if w.shape != info.weight_shape:
            raise err(f"weights have shape {w.shape}, expected {info.weight_shape}")
        ok = _allowed_mask(w, lay.weight_dtype)
        if not ok.all():
            wdt = lay.weight_dtype
            bad = np.unique(w[~ok])[:3]
            raise err(f"weights must be {wdt.name} values "
                      f"({'±1' if wdt.is_bipolar else f'whole numbers {wdt.min}..{wdt.max}'})"
                      f", got {', '.join(f'{v:g}' for v in bad)}"
                      f"{' …' if np.unique(w[~ok]).size > 3 else ''}")
        if lay.act is None:
            if lay.thresholds is not None:
                raise err("act=None but thresholds attached")
            return True
        if lay.thresholds is None:
            raise err("no thresholds attached")
        t = _param_array(lay.thresholds, f"layer {lay.name}: thresholds")
        if t.shape != info.threshold_shape:
            raise err(f"thresholds have shape {t.shape}, expected {info.threshold_shape}")
        if not np.issubdtype(t.dtype, np.integer):
            raise NetworkTypeError(f"layer {lay.name}: thresholds must be integers, got "
                                   f"{t.dtype}")
        if t.size and (t.min() < _INT64.min or t.max() > _INT64.max):
            raise err("thresholds must fit 64-bit signed integers")
        if t.shape[1] > 1 and np.any(t[:, 1:] < t[:, :-1]):
            raise err("thresholds must ascend within each channel")
        return True

    def check_params(self, allow_missing: bool = False) -> list[str]:
        """Check every attached weight and threshold array (shape, type, values, order)
        and return the names of the MVTU layers that have none (an error unless
        ``allow_missing``). Raises :class:`NetworkError` naming the layer and the rule."""
        return [info.name for info in self.infer()
                if not self._check_params(info, allow_missing)]

    # -- parameters ---------------------------------------------------------------------------

    def randomize(self, seed: int = 0, layers: Iterable[str] | None = None) -> Network:
        """Attach random weights and thresholds that give well-spread activations, to the
        MVTU layers named in ``layers`` (default: all of them), and record them in
        :attr:`random_weights`. A layer gets the same values whichever others are chosen.
        """
        if not _is_int(seed):
            raise TypeError(f"randomize: seed must be an int, got {seed!r}")
        chosen = None if layers is None else set(layers)
        rng = np.random.default_rng(seed)
        for info in self.infer():
            lay = info.layer
            if not info.is_mvtu:
                continue
            if chosen is not None and lay.name not in chosen:
                self._random_params(info, rng)  # keep every layer's draw the same
                continue
            lay.weights, lay.thresholds = self._random_params(info, rng)
            self.random_weights[lay.name] = seed
        return self

    @staticmethod
    def _random_params(info: LayerInfo, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray | None]:
        """Random (weights, thresholds) of one MVTU layer."""
        lay = info.layer
        wdt = lay.weight_dtype
        if wdt.is_bipolar:
            w = rng.choice(np.array([-1, 1]), size=info.weight_shape)
        else:
            w = rng.integers(wdt.min, wdt.max + 1, size=info.weight_shape)
        w = w.astype(np.int64)
        if lay.act is None:
            return w, None
        # centre thresholds on the typical accumulator spread
        xdt = info.in_dtype
        xmean = 0.0 if xdt.is_bipolar else (xdt.min + xdt.max) / 2
        xvar = 1.0 if xdt.is_bipolar else ((xdt.max - xdt.min + 1) ** 2 - 1) / 12
        wvar = float(np.mean(w.astype(np.float64) ** 2))
        centre = float(np.mean(w)) * xmean * info.mw
        sd = math.sqrt(max(1.0, info.mw * wvar * (xvar + xmean ** 2) - centre ** 2 / info.mw))
        t = rng.normal(centre, sd, size=(info.mh, info.n_thresholds))
        t = np.clip(np.sort(np.round(t), axis=1), info.acc_min, info.acc_max + 1)
        return w, t.astype(np.int64)

    def copy(self) -> Network:
        import copy

        return copy.deepcopy(self)

    # -- summaries ----------------------------------------------------------------------------

    @property
    def output_info(self) -> LayerInfo:
        return self.infer()[-1]

    def weight_bits(self) -> int:
        return sum(i.mh * i.mw * i.layer.weight_dtype.bits for i in self.infer() if i.is_mvtu)

    def ops_per_frame(self) -> int:
        """Multiply-accumulates counted as 2 ops each."""
        return sum(2 * i.mh * i.mw * i.vectors for i in self.infer() if i.is_mvtu)
