"""QONNX graph → lowbit :class:`~lowbit_hdl.ir.Network` with integer weights and thresholds.

The importer walks the (cleaned-up) graph in order and keeps, for every tensor, what it is
in terms of the network being built:

* a constant (an initializer, or a quantized constant: weights),
* the graph input after element-wise scaling (``A·x + B``), until its first quantizer,
* an *activation*: integer values ``u`` of one of our layers (or of the network input), the
  graph's tensor being ``s_c·(u + o_c)`` per channel ``c``,
* an *accumulator*: the open Conv/FC layer, the graph's tensor being ``a_c·acc + b_c`` with
  ``acc`` our integer accumulator; batch norms, scales and biases update ``a_c``, ``b_c``
  exactly (:class:`~lowbit_hdl.qonnx.surd.Surd`), and the next quantizer turns the
  decision boundaries of its levels into integer thresholds on ``acc``.

Every float parameter is taken as the exact binary fraction it is; thresholds are the exact
real-number boundaries of the graph's arithmetic (``ceil`` at non-strict and ``floor + 1``
at strict boundaries). Anything without an exact equivalent raises
:class:`~lowbit_hdl.errors.UnsupportedGraphError` naming the node, its op and why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import GraphError, UnsupportedGraphError
from ..ir import FC, Conv, MaxPool, Network, TopK
from ..runtime.dtypes import BIPOLAR, INT, UINT, DataType
from .surd import Surd, exact

__all__ = ["ImportResult", "InputMapping", "LayerMap", "import_model", "load"]


# -- what the importer hands back -------------------------------------------------------------


@dataclass
class InputMapping:
    """How the graph's float input becomes the network's integer input.

    The graph computes ``code = quantizer(A·x + B)`` (``A``, ``B`` from the element-wise
    ``Mul``/``Add``/``Sub``/``Div`` before its first quantizer); the network's input is
    ``code`` (``dtype``): ±1 for ``BipolarQuant``, the integer level for ``Quant``, whose
    value in the graph is ``scale·(code − zero_point)``.
    """

    dtype: DataType
    A: float = 1.0
    B: float = 0.0
    scale: float = 1.0
    zero_point: float = 0.0
    quantizer: str = ""
    #: the codes the quantizer produces (a narrow-range one skips the lowest of ``dtype``)
    min_code: int = -1
    max_code: int = 1
    #: the graph tensor holding the quantizer's output, ``scale·(code − zero_point)``
    tensor: str = ""

    def to_float(self, codes: np.ndarray) -> np.ndarray:
        """Float32 graph inputs that the graph's own quantizer maps to exactly ``codes``
        (the midpoint of each code's interval, solved for ``x``)."""
        v = self.scale * (np.asarray(codes, np.float64) - self.zero_point)
        if self.dtype.is_bipolar:
            v = np.where(np.asarray(codes) > 0, 0.5 * abs(self.A), -0.5 * abs(self.A))
        return ((v - self.B) / self.A).astype(np.float32)


@dataclass
class LayerMap:
    """Where one of our layers' outputs is in the graph: tensor ``tensor`` equals
    ``scale·(ours + offset)`` per channel (``layout`` is that tensor's layout)."""

    tensor: str
    scale: np.ndarray
    offset: np.ndarray
    layout: str


@dataclass
class ImportResult:
    """A network imported from a QONNX graph, with how it lines up with the graph."""

    network: Network
    input: InputMapping
    layers: dict[str, LayerMap] = field(default_factory=dict)
    #: graph output = output_scale·(ours + output_offset) (per class)
    output_scale: np.ndarray | None = None
    output_offset: np.ndarray | None = None
    #: thresholds whose exact boundary is within float32 rounding of an integer accumulator
    near_ties: int = 0
    #: what the import had to change in the structure (e.g. an output bias carried by one
    #: more neuron)
    notes: list[str] = field(default_factory=list)
    #: the graph as read (qonnx ``ModelWrapper`` after shape inference and constant folding):
    #: the tensor names of :attr:`layers` are its names
    model: object = None


# -- values of tensors -----------------------------------------------------------------------


@dataclass
class _Const:
    value: np.ndarray


@dataclass
class _QConst:
    """Quantized constant: value = scale·ints (scale per output channel)."""

    ints: np.ndarray
    scale: np.ndarray
    dtype: DataType


@dataclass
class _Input:
    """The graph input after element-wise scaling A·x + B (scalars)."""

    A: Fraction
    B: Fraction
    layout: str  # nchw | nhwc | flat_chw | flat_hwc
    shape: tuple[int, int, int]


@dataclass
class _Act:
    dtype: DataType
    s: list[Fraction]  # per channel (length C, or 1 for all)
    o: list[Fraction]
    layout: str
    shape: tuple[int, int, int]  # (C, H, W) of the feature map
    pad: tuple[int, int] | None = None  # a Pad node's (padding, level) for the next Conv


@dataclass
class _Acc:
    layer: Conv | FC
    a: list[Surd]
    b: list[Surd]
    layout: str
    shape: tuple[int, int, int]
    in_dtype: DataType
    mw: int


@dataclass
class _Indices:
    pass


def _name(text: str, used: set[str], prefix: str) -> str:
    base = re.sub(r"\W", "_", text).strip("_") or prefix
    if not base[0].isalpha():
        base = f"{prefix}_{base}"
    name, i = base, 1
    while name in used:
        i += 1
        name = f"{base}_{i}"
    used.add(name)
    return name


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _qonnx_dtype(name: str) -> DataType | None:
    """Our data type for a QONNX data type name (BIPOLAR, INTk, UINTk), else None."""
    if name == "BIPOLAR":
        return BIPOLAR
    m = re.fullmatch(r"(U?)INT(\d+)", name)
    if m and 1 <= int(m.group(2)) <= 32:
        return UINT(int(m.group(2))) if m.group(1) else INT(int(m.group(2)))
    return None


class _Importer:
    def __init__(self, model) -> None:
        self.m = model
        self.vals: dict[str, object] = {}
        self.layers: list = []
        self.used: set[str] = set()
        self.input: InputMapping | None = None
        self.layer_map: dict[str, LayerMap] = {}
        self.near_ties = 0
        self.notes: list[str] = []
        self.acc_range: dict[str, tuple[int, int]] = {}
        self.counts = {"conv": 0, "fc": 0, "pool": 0}
        for init in model.graph.initializer:
            from onnx import numpy_helper

            self.vals[init.name] = _Const(numpy_helper.to_array(init))

    # helpers ---------------------------------------------------------------------------------

    def err(self, node, why: str) -> UnsupportedGraphError:
        return UnsupportedGraphError(node.name or node.output[0], node.op_type, why)

    def const(self, node, name: str) -> np.ndarray:
        v = self.vals.get(name)
        if isinstance(v, _Const):
            return v.value
        raise self.err(node, f"input {name!r} must be a constant")

    def shape_of(self, name: str) -> tuple[int, ...]:
        return tuple(self.m.get_tensor_shape(name) or ())

    def per_channel(self, node, c: np.ndarray, layout: str, shape: tuple[int, int, int],
                    what: str) -> list[Fraction]:
        """A constant that broadcasts over a tensor as one value per channel (or one for
        all): its exact values, one per channel (length C, or 1)."""
        c = np.asarray(c, dtype=np.float64)
        if c.size == 1:
            return [exact(float(c.reshape(-1)[0]))]
        C, H, W = shape
        dims = {"nchw": (C, H, W), "nhwc": (H, W, C)}.get(layout, (C * H * W,))
        cax = {"nchw": 0, "nhwc": 2}.get(layout, 0)
        try:
            full = np.broadcast_to(c, (1, *dims))[0]
        except ValueError:
            raise self.err(node, f"{what} of shape {c.shape} does not broadcast over the "
                                 f"tensor") from None
        if layout.startswith("flat"):
            if H * W != 1 and not np.all(full == full[0]):
                raise self.err(node, f"{what} differs inside a channel's pixels (only one "
                                     "value per channel can be folded)")
            return [exact(float(v)) for v in (full if H * W == 1 else full[:1])]
        moved = np.moveaxis(full, cax, 0).reshape(C, -1)
        if not np.all(moved == moved[:, :1]):
            raise self.err(node, f"{what} differs inside a channel (only one value per "
                                 "channel can be folded)")
        return [exact(float(v)) for v in moved[:, 0]]

    # the walk --------------------------------------------------------------------------------

    def run(self) -> ImportResult:
        g = self.m.graph
        if len(g.input) != 1:
            raise GraphError(f"the graph has {len(g.input)} inputs; one is supported")
        if len(g.output) != 1:
            raise GraphError(f"the graph has {len(g.output)} outputs; one is supported")
        gin = g.input[0].name
        shp = self.shape_of(gin)
        if len(shp) == 4:
            in_shape, layout = (shp[1], shp[2], shp[3]), "nchw"
        elif len(shp) == 2:
            in_shape, layout = (shp[1], 1, 1), "flat_chw"
        else:
            raise GraphError(f"graph input {gin!r} has shape {shp}; expected N×C×H×W or N×F")
        ann = self.m.get_tensor_datatype(gin)
        dt = _qonnx_dtype(ann.name) if ann is not None else None
        if dt is not None and ann.name != "FLOAT32":
            # an integer input annotated as such (FINN-ONNX, our own export)
            self.vals[gin] = _Act(dt, [Fraction(1)], [Fraction(0)], layout, in_shape)
            self.input = InputMapping(dt, quantizer="datatype annotation", min_code=dt.min,
                                      max_code=dt.max)
        else:
            self.vals[gin] = _Input(Fraction(1), Fraction(0), layout, in_shape)
        self.in_shape = in_shape
        for node in g.node:
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None:
                raise self.err(node, "this op type has no equivalent in a lowbit network")
            ins = [self.vals.get(i) if i else None for i in node.input]
            for i, v in zip(node.input, ins, strict=True):
                if i and v is None:
                    raise self.err(node, f"input {i!r} comes from nowhere (not an initializer,"
                                         " not computed before)")
            out = handler(node, ins)
            for o, v in zip(node.output, out if isinstance(out, tuple) else (out,),
                            strict=False):
                self.vals[o] = v
        return self.finish(g.output[0].name)

    def finish(self, out_name: str) -> ImportResult:
        v = self.vals[out_name]
        scale = offset = None
        if isinstance(v, _Acc):
            lay = v.layer
            if any(x.sign() == 0 for x in v.a):
                raise UnsupportedGraphError(out_name, "output", "an output's scale is zero")
            neg = [x.sign() < 0 for x in v.a]
            if any(neg) and not all(neg):
                raise UnsupportedGraphError(out_name, "output", "the outputs' scales differ "
                                            "in sign (class decisions would change)")
            if all(neg):
                self.negate(None, v, list(range(len(v.a))))
            if len({(x.p, x.r, x.d) for x in v.a}) > 1:
                raise UnsupportedGraphError(
                    out_name, "output", "the outputs are scaled differently per class: raw "
                    "accumulators would not rank the classes like the graph does")
            if len({(x.p, x.r, x.d) for x in v.b}) > 1:
                self.output_bias(out_name, v)
            lay.act = None
            scale = np.array([float(x) for x in v.a])
            offset = np.array([float(y / x) for x, y in zip(v.a, v.b, strict=True)])
            self.layers.append(lay)
        elif isinstance(v, _Act):
            scale = np.array([float(x) for x in v.s])
            offset = np.array([float(x) for x in v.o])
        elif not isinstance(v, _Indices):
            raise UnsupportedGraphError(out_name, "output", "the graph output is not computed "
                                        "by a layer")
        if self.input is None:
            raise GraphError("the graph input is never quantized (no Quant/BipolarQuant on it)")
        if not any(isinstance(x, (Conv, FC)) for x in self.layers):
            raise GraphError("the graph has no Conv, Gemm or MatMul layer")
        net = Network(_name(Path(str(self.m.graph.name or "imported")).stem, set(), "net")
                      .replace("_", "-") or "imported",
                      self.in_shape, self.layers, self.input.dtype,
                      description="imported from QONNX")
        net.check_params()
        return ImportResult(net, self.input, self.layer_map, scale, offset, self.near_ties,
                            self.notes, self.m)

    def output_bias(self, out_name: str, v: _Acc) -> None:
        """Per-class output offsets ``b_c``: a network has no output bias, so they become an
        extra input of the last FC that the layer before it holds at level 1 (one more
        neuron, its thresholds always passed), with weights ``(b_c − b_0)/a`` (whole numbers,
        else an error). With signed 2-bit activations, ``b_c`` is ``−a·Σ_j w_cj`` (their
        level 0 is the value −1)."""
        why = ("the outputs have a different offset per class (a bias, or the −Σw of inputs "
               "whose level 0 is not the value 0)")
        lay = v.layer
        prev = next((x for x in reversed(self.layers) if isinstance(x, (Conv, FC))), None)
        if not isinstance(lay, FC) or not isinstance(prev, FC) or \
                self.layers[-1] is not prev or prev.act is None:
            raise UnsupportedGraphError(out_name, "output", why + ", and the last layer is not "
                                        "an FC right after a thresholded FC, which could carry "
                                        "it")
        e = [(b - v.b[0]) / v.a[0] for b in v.b]
        if any(x.r != 0 or x.p.denominator != 1 for x in e):
            raise UnsupportedGraphError(out_name, "output", why + " that is no whole multiple "
                                        "of the output scale")
        extra = np.array([int(x.p) for x in e], dtype=np.int64)
        # the layer before: one more neuron whose activation is always level 1 (BIPOLAR: +1)
        wdt = prev.weight_dtype
        row = np.ones((1, prev.weights.shape[1]), np.int64) if wdt.is_bipolar else \
            np.zeros((1, prev.weights.shape[1]), np.int64)
        prev.weights = np.concatenate([prev.weights, row])
        t = prev.thresholds
        amin, amax = self.acc_range[prev.name]
        const = np.full((1, t.shape[1]), amax + 1, np.int64)  # never reached
        const[0, 0] = amin  # every accumulator reaches it
        prev.thresholds = np.concatenate([t, const])
        prev.out_features += 1
        # the last layer: one more input column carrying the offsets, weights wide enough
        w = np.concatenate([lay.weights, extra[:, None]], axis=1)
        from ..runtime.dtypes import signed_bits_for_range

        lo_w, hi_w = int(min(w.min(), -1)), int(max(w.max(), 1))
        lay.weight_dtype = lay.weight_dtype if lay.weight_dtype.allowed(w) else \
            INT(max(2, signed_bits_for_range(lo_w, hi_w)))
        lay.weights = w
        v.b = [v.b[0]] * len(v.b)
        self.notes.append(
            f"per-class output offsets folded into layer {lay.name}: layer {prev.name} has one "
            f"more neuron (always level 1) and {lay.name} one more input column, weights now "
            f"{lay.weight_dtype}")

    # element-wise ----------------------------------------------------------------------------

    def _affine(self, node, ins, mul: bool, sign: int = 1, divide: bool = False):
        consts = [isinstance(v, _Const) for v in ins]
        if all(consts):
            a, b = (v.value for v in ins)
            op = {"Mul": np.multiply, "Div": np.divide, "Add": np.add, "Sub": np.subtract}
            return _Const(op[node.op_type](a, b))
        if not any(consts):
            raise self.err(node, "both inputs are computed tensors (a residual or "
                                 "element-wise product): not supported")
        if consts[0] and (divide or sign < 0):
            if divide:
                raise self.err(node, "a constant divided by a tensor is not supported")
        x, c = (ins[1], ins[0].value) if consts[0] else (ins[0], ins[1].value)
        flip = consts[0] and sign < 0  # c - x
        if isinstance(x, _Input):
            cv = np.asarray(c, np.float64)
            if cv.size != 1:
                raise self.err(node, "per-channel scaling of the input is not supported")
            k = exact(float(cv.reshape(-1)[0]))
            if mul:
                if divide:
                    if k == 0:
                        raise self.err(node, "division by zero")
                    k = 1 / k
                return _Input(x.A * k, x.B * k, x.layout, x.shape)
            if flip:
                return _Input(-x.A, k - x.B, x.layout, x.shape)
            return _Input(x.A, x.B + sign * k, x.layout, x.shape)
        if isinstance(x, _Acc):
            k = self.per_channel(node, c, x.layout, x.shape, "the constant")
            k = k * len(x.a) if len(k) == 1 else k
            if mul:
                if divide and any(v == 0 for v in k):
                    raise self.err(node, "division by zero")
                f = [1 / v if divide else v for v in k]
                return _Acc(x.layer, [a * v for a, v in zip(x.a, f, strict=True)],
                            [b * v for b, v in zip(x.b, f, strict=True)], x.layout, x.shape,
                            x.in_dtype, x.mw)
            if flip:
                return _Acc(x.layer, [-a for a in x.a], [v - b for b, v in
                                                         zip(x.b, k, strict=True)],
                            x.layout, x.shape, x.in_dtype, x.mw)
            return _Acc(x.layer, x.a, [b + sign * v for b, v in zip(x.b, k, strict=True)],
                        x.layout, x.shape, x.in_dtype, x.mw)
        if isinstance(x, _Act):
            k = self.per_channel(node, c, x.layout, x.shape, "the constant")
            n = max(len(k), len(x.s))
            s = x.s * n if len(x.s) == 1 else x.s
            o = x.o * n if len(x.o) == 1 else x.o
            k = k * n if len(k) == 1 else k
            if mul:
                if any(v <= 0 for v in k):
                    raise self.err(node, "scaling quantized values by a constant ≤ 0 is not "
                                         "supported")
                return _Act(x.dtype, [si * (1 / v if divide else v) for si, v in
                                      zip(s, k, strict=True)], o, x.layout, x.shape)
            if flip:
                raise self.err(node, "negating quantized values is not supported")
            return _Act(x.dtype, s, [oi + sign * v / si for si, oi, v in zip(s, o, k,
                                                                             strict=True)],
                        x.layout, x.shape)
        raise self.err(node, "unsupported input")

    def op_Mul(self, node, ins):  # noqa: N802
        return self._affine(node, ins, True)

    def op_Div(self, node, ins):  # noqa: N802
        return self._affine(node, ins, True, divide=True)

    def op_Add(self, node, ins):  # noqa: N802
        return self._affine(node, ins, False, 1)

    def op_Sub(self, node, ins):  # noqa: N802
        return self._affine(node, ins, False, -1)

    def op_Identity(self, node, ins):  # noqa: N802
        return ins[0]

    def op_Dropout(self, node, ins):  # noqa: N802
        return ins[0]

    def op_BatchNormalization(self, node, ins):  # noqa: N802
        x = ins[0]
        if not isinstance(x, _Acc):
            raise self.err(node, "batch norm must follow a Conv, Gemm or MatMul (it is folded "
                                 "into that layer's thresholds)")
        eps = exact(float(_attrs(node).get("epsilon", 1e-5)))
        n = len(x.a)
        params = []
        for i in node.input[1:5]:
            v = np.asarray(self.const(node, i), np.float64).reshape(-1)
            if v.size not in (1, n):
                raise self.err(node, f"batch-norm parameter {i!r} has {v.size} values for {n} "
                                     "channels")
            params.append([exact(float(e)) for e in np.broadcast_to(v, (n,))])
        gamma, beta, mean, var = params
        a, b = [], []
        for c in range(n):
            if var[c] + eps <= 0:
                raise self.err(node, f"channel {c}: variance + epsilon ≤ 0")
            k = gamma[c] / Surd.sqrt(var[c] + eps)
            a.append(x.a[c] * k)
            b.append((x.b[c] - mean[c]) * k + beta[c])
        return _Acc(x.layer, a, b, x.layout, x.shape, x.in_dtype, x.mw)

    # shapes ----------------------------------------------------------------------------------

    def _flatten(self, node, x, out_shape):
        if isinstance(x, (_Const, _QConst)):
            raise self.err(node, "reshaping constants is not supported (run qonnx cleanup)")
        C, H, W = x.shape
        if len(out_shape) == 2 and out_shape[1] == C * H * W:
            lay = {"nchw": "flat_chw", "nhwc": "flat_hwc"}.get(x.layout, x.layout)
        elif tuple(out_shape[1:]) in ((C, H, W),) and x.layout in ("nchw", "flat_chw"):
            lay = "nchw"
        else:
            raise self.err(node, f"reshape of a {x.layout} {x.shape} tensor to {out_shape} "
                                 "is not a flatten")
        return _replace(x, layout=lay)

    def op_Reshape(self, node, ins):  # noqa: N802
        if all(isinstance(v, _Const) for v in ins):
            return _Const(ins[0].value.reshape(ins[1].value.astype(np.int64)))
        return self._flatten(node, ins[0], self.shape_of(node.output[0]))

    def op_Flatten(self, node, ins):  # noqa: N802
        return self._flatten(node, ins[0], self.shape_of(node.output[0]))

    def op_Pad(self, node, ins):  # noqa: N802
        x = ins[0]
        at = _attrs(node)
        if not isinstance(x, _Act) or x.layout != "nchw" or x.pad is not None:
            raise self.err(node, "only padding the height and width of quantized NCHW maps "
                                 "before a Conv is supported")
        if at.get("mode", "constant") != "constant":
            raise self.err(node, f"mode {at.get('mode')} is not supported (constant only)")
        pads = [int(v) for v in self.const(node, node.input[1]).reshape(-1)]
        value = float(self.const(node, node.input[2]).reshape(-1)[0]) \
            if len(node.input) > 2 and node.input[2] else 0.0
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or len(set(pads[2:4] +
                                                                             pads[6:8])) != 1:
            raise self.err(node, f"pads {pads}: only the same padding on every side of H and W")
        if len(set(x.s)) != 1 or len(set(x.o)) != 1:
            raise self.err(node, "padding a map with per-channel scales is not supported")
        level = exact(value) / x.s[0] - x.o[0]
        if level != int(level) or not x.dtype.allowed(np.array([int(level)])):
            raise self.err(node, f"the pad value {value} is no {x.dtype} level")
        C, H, W = x.shape
        p = pads[2]
        return _replace(x, pad=(p, int(level)), shape=(C, H + 2 * p, W + 2 * p))

    def op_Transpose(self, node, ins):  # noqa: N802
        x = ins[0]
        perm = tuple(_attrs(node).get("perm", ()))
        if isinstance(x, _Const):
            return _Const(np.transpose(x.value, perm or None))
        if isinstance(x, (_Act, _Acc, _Input)):
            C, H, W = x.shape
            if perm == (0, 2, 3, 1) and x.layout == "nchw":
                return _replace(x, layout="nhwc")
            if perm == (0, 3, 1, 2) and x.layout == "nhwc":
                return _replace(x, layout="nchw")
        raise self.err(node, f"only NCHW↔NHWC transposes of feature maps are supported, got "
                             f"perm={perm}")

    # quantizers ------------------------------------------------------------------------------

    def _quant_params(self, node):
        scale, zp, bits = (self.const(node, i) for i in node.input[1:4])
        at = _attrs(node)
        signed, narrow = bool(at.get("signed", 1)), bool(at.get("narrow", 0))
        mode = str(at.get("rounding_mode", "ROUND")).upper()
        if np.asarray(bits).size != 1 or float(bits) != int(bits) or int(bits) < 1:
            raise self.err(node, f"bit width {bits} must be one whole number ≥ 1")
        b = int(bits)
        if signed:
            lo = -(2 ** (b - 1)) + (1 if narrow else 0)
            hi = 2 ** (b - 1) - 1
        else:
            lo, hi = 0, 2 ** b - 1 - (1 if narrow else 0)
        return scale, zp, b, signed, narrow, mode, lo, hi

    def op_BipolarQuant(self, node, ins):  # noqa: N802
        x = ins[0]
        scale = self.const(node, node.input[1])
        if isinstance(x, _Const):
            ints = np.where(x.value >= 0, 1, -1).astype(np.int64)
            return _QConst(ints, np.asarray(scale, np.float64), BIPOLAR)
        s = self.per_channel(node, scale, getattr(x, "layout", "nchw"),
                             getattr(x, "shape", (1, 1, 1)), "the scale")
        if any(v <= 0 for v in s):
            raise self.err(node, "the scale must be > 0")
        if isinstance(x, _Input):
            return self._input_quant(node, x, BIPOLAR, s, 0.0, "BipolarQuant")
        if isinstance(x, _Acc):
            # +1 when x ≥ 0
            return self._close(node, x, [[(Surd(0), False)]] * len(x.a), BIPOLAR, s,
                               [Fraction(0)])
        raise self.err(node, "a quantizer on already quantized values is not supported")

    def op_Quant(self, node, ins):  # noqa: N802
        x = ins[0]
        scale, zp, b, signed, narrow, mode, lo, hi = self._quant_params(node)
        if isinstance(x, _Const):
            y = x.value / scale + zp
            if b == 1 and signed:
                return _QConst(np.where(y >= 0, 1, -1).astype(np.int64),
                               np.asarray(scale, np.float64), BIPOLAR)
            y = np.clip(y, lo, hi)
            q = _ROUND.get(mode)
            if q is None:
                raise self.err(node, f"rounding mode {mode} is not supported")
            ints = q[0](y)
            zpv = np.asarray(zp, np.float64)
            if np.any(zpv != 0):
                raise self.err(node, "quantized weights with a zero point ≠ 0 are not supported")
            wdt = INT(b) if signed else INT(b + 1)
            return _QConst(ints.astype(np.int64), np.asarray(scale, np.float64), wdt)
        layout, shape = getattr(x, "layout", "nchw"), getattr(x, "shape", (1, 1, 1))
        s = self.per_channel(node, scale, layout, shape, "the scale")
        z = self.per_channel(node, zp, layout, shape, "the zero point")
        if any(v <= 0 for v in s):
            raise self.err(node, "the scale must be > 0")
        if isinstance(x, _Input):
            if len(s) != 1 or len(z) != 1:
                raise self.err(node, "the input quantizer must have one scale and zero point")
            if b == 1 and signed:
                return self._input_quant(node, x, BIPOLAR, s, float(z[0]), "Quant", -1, 1)
            if z[0] != int(z[0]):
                raise self.err(node, "a zero point that is not a whole number")
            dt = INT(b) if signed else UINT(b)
            if narrow and not signed:
                raise self.err(node, "an unsigned narrow-range input quantizer is not "
                                     "supported")
            return self._input_quant(node, x, dt, s, float(z[0]), f"Quant {b} bits", lo, hi)
        if not isinstance(x, _Acc):
            raise self.err(node, "a quantizer on already quantized values is not supported")
        n = len(x.a)
        s = s * n if len(s) == 1 else s
        z = z * n if len(z) == 1 else z
        if b == 1 and signed:
            # 1-bit signed Quant is bipolar: +1 when x/s + z ≥ 0
            bounds = [[(-zc * sc, False)] for sc, zc in zip(s, z, strict=True)]
            return self._close(node, x, bounds, BIPOLAR, s, [Fraction(0)] * n)
        if mode not in _ROUND:
            raise self.err(node, f"rounding mode {mode} is not supported")
        strict_of = _ROUND[mode][1]
        bounds = []
        for c in range(n):
            ch = []
            for k in range(lo, hi):  # boundary between level k and k + 1
                v, strict = strict_of(k)
                ch.append(((v - z[c]) * s[c], strict))
            bounds.append(ch)
        levels = hi - lo + 1
        bits = max(1, math.ceil(math.log2(levels)))
        offs = [Fraction(lo) - zc for zc in z]
        return self._close(node, x, bounds, UINT(bits), s, offs)

    def op_MultiThreshold(self, node, ins):  # noqa: N802
        x = ins[0]
        at = _attrs(node)
        t = np.asarray(self.const(node, node.input[1]), np.float64)
        if not isinstance(x, _Acc):
            raise self.err(node, "MultiThreshold must follow a Conv, Gemm or MatMul (possibly "
                                 "with scales and biases)")
        layout = at.get("data_layout", "") or ""
        if (layout.upper() == "NHWC") != (x.layout == "nhwc") and not x.layout.startswith("flat"):
            raise self.err(node, f"data_layout {layout or 'NCHW'} does not match the "
                                 f"{x.layout.upper()} tensor")
        n = len(x.a)
        if t.ndim != 2 or t.shape[0] not in (1, n):
            raise self.err(node, f"thresholds of shape {t.shape}; expected ({n}, T) or (1, T)")
        if t.shape[0] == 1:
            t = np.repeat(t, n, axis=0)
        t = np.sort(t, axis=1)
        out_scale = exact(float(at.get("out_scale", 1.0)))
        out_bias = exact(float(at.get("out_bias", 0.0)))
        if out_scale <= 0:
            raise self.err(node, "out_scale must be > 0")
        steps = t.shape[1]
        bounds = [[(exact(float(v)), False) for v in row] for row in t]
        if str(at.get("out_dtype", "")) == "BIPOLAR":
            if steps != 1:
                raise self.err(node, "a BIPOLAR output needs exactly one threshold per channel")
            s = out_scale / 2
            return self._close(node, x, bounds, BIPOLAR, [s], [(s + out_bias) / s])
        bits = max(1, math.ceil(math.log2(steps + 1)))
        return self._close(node, x, bounds, UINT(bits), [out_scale], [out_bias / out_scale])

    def _input_quant(self, node, x: _Input, dt: DataType, s: list[Fraction], zp: float,
                     what: str, lo: int = -1, hi: int = 1) -> _Act:
        if self.input is not None:
            raise self.err(node, "a second quantizer on the graph input")
        if x.A == 0:
            raise self.err(node, "the input is scaled by 0")
        self.input = InputMapping(dt, float(x.A), float(x.B), float(s[0]), zp, what, lo, hi,
                                  node.output[0])
        o = Fraction(0) if dt.is_bipolar else -exact(zp)
        return _Act(dt, [s[0]], [o], x.layout, x.shape)

    def negate(self, node, acc: _Acc, chans: list[int]) -> None:
        """Negate the weights (and scales) of output channels ``chans`` of ``acc``."""
        lay = acc.layer
        w = lay.weights
        wdt = lay.weight_dtype
        sel = w[chans]
        if not wdt.is_bipolar and np.any(sel == wdt.min):
            where = node.name if node is not None else "the output"
            raise UnsupportedGraphError(
                where, node.op_type if node is not None else "output",
                f"layer {lay.name}: channels with a negative scale need negated weights, but "
                f"{wdt} weights include {wdt.min}, whose negation does not fit")
        w[chans] = -sel
        for c in chans:
            acc.a[c] = -acc.a[c]

    def _close(self, node, x: _Acc, bounds: list[list[tuple[Surd, bool]]], act: DataType,
               s: list[Fraction], o: list[Fraction]) -> _Act:
        """Turn the decision boundaries (per channel: ascending (value, strict) pairs, level
        ≥ i+1 when the graph value ≥ value, or > value when strict) into thresholds."""
        lay = x.layer
        n = len(x.a)
        prods = [p * q for p in (lay.weight_dtype.min, lay.weight_dtype.max)
                 for q in (x.in_dtype.min, x.in_dtype.max)]
        amin, amax = min(prods) * x.mw, max(prods) * x.mw
        neg = [c for c in range(n) if x.a[c].sign() < 0]
        if neg:
            self.negate(node, x, neg)
        want = 1 if act.is_bipolar else (1 << act.bits) - 1
        th = np.full((n, want), amax + 1, dtype=np.int64)
        for c in range(n):
            a, b = x.a[c], x.b[c]
            for i, (v, strict) in enumerate(bounds[c]):
                if a.sign() == 0:
                    d = (b - v).sign()
                    t = amin if (d > 0 or (d == 0 and not strict)) else amax + 1
                else:
                    z = (Surd.of(v) - b) / a
                    t = z.floor() + 1 if strict else z.ceil()
                    zf = float(z)
                    if abs(zf - round(zf)) <= 2.5e-7 * max(1.0, abs(zf)):  # a few float32 ulps
                        self.near_ties += 1
                th[c, i] = min(max(t, amin), amax + 1)
        th = np.maximum.accumulate(th, axis=1)
        self.acc_range[lay.name] = (amin, amax)
        lay.act = act
        lay.thresholds = th
        self.layers.append(lay)
        self.layer_map[lay.name] = LayerMap(
            node.output[0], np.array([float(v) for v in s]), np.array([float(v) for v in o]),
            x.layout)
        return _Act(act, s, o, x.layout, x.shape)

    # layers ----------------------------------------------------------------------------------

    def _weights(self, node, name: str) -> _QConst:
        v = self.vals.get(name)
        if isinstance(v, _QConst):
            return v
        if isinstance(v, _Const):
            ann = self.m.get_tensor_datatype(name)
            dt = _qonnx_dtype(ann.name) if ann is not None else None
            if dt is not None and np.all(np.mod(v.value, 1) == 0):
                if dt.kind == "uint":
                    dt = INT(dt.bits + 1)
                return _QConst(v.value.astype(np.int64), np.ones(1), dt)
            raise self.err(node, "its weights are float (no Quant/BipolarQuant and no integer "
                                 "datatype annotation): nothing to map to integer weights")
        raise self.err(node, "its weights are computed, not constant")

    def _input_act(self, node, x) -> _Act:
        if isinstance(x, _Act):
            return x
        if isinstance(x, _Acc):
            raise self.err(node, "its input is not quantized (no quantizer after the previous "
                                 "layer)")
        raise self.err(node, "its input is not quantized (a float Conv/Gemm with no quantizer "
                             "before it)")

    def _scales(self, node, x: _Act, wq: _QConst, oc: int) -> tuple[Fraction, list[Fraction]]:
        if len(set(x.s)) != 1:
            raise self.err(node, "its input has a different scale per channel")
        ws = np.asarray(wq.scale, np.float64)
        if ws.size == 1:
            wsc = [exact(float(ws.reshape(-1)[0]))] * oc
        else:
            flat = ws.reshape(ws.shape[0], -1) if ws.shape[0] == oc else None
            if flat is None or not np.all(flat == flat[:, :1]):
                raise self.err(node, "weight scales must be per tensor or per output channel")
            wsc = [exact(float(v)) for v in flat[:, 0]]
        return x.s[0], wsc

    def op_Conv(self, node, ins):  # noqa: N802
        x = self._input_act(node, ins[0])
        wq = self._weights(node, node.input[1])
        at = _attrs(node)
        if at.get("group", 1) != 1:
            raise self.err(node, "grouped/depthwise convolution is not supported")
        if any(d != 1 for d in at.get("dilations", [1, 1])):
            raise self.err(node, "dilated convolution is not supported")
        if at.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
            raise self.err(node, "auto_pad is not supported (use explicit pads)")
        strides = list(at.get("strides", [1, 1]))
        pads = list(at.get("pads", [0, 0, 0, 0]))
        w = wq.ints
        if w.ndim != 4 or w.shape[2] != w.shape[3]:
            raise self.err(node, f"weights of shape {w.shape}: only square 2-D kernels")
        if len(set(strides)) != 1 or len(set(pads)) != 1:
            raise self.err(node, f"strides {strides} and pads {pads} must be the same on "
                                 "every side")
        if x.layout != "nchw":
            raise self.err(node, f"its input is {x.layout}, expected NCHW")
        oc, ic, k, _ = w.shape
        if ic != x.shape[0]:
            raise self.err(node, f"weights for {ic} input channels, input has {x.shape[0]}")
        s_in, wsc = self._scales(node, x, wq, oc)
        offs = x.o * ic if len(x.o) == 1 else x.o
        pad_value = None
        if x.pad is not None:
            if pads[0]:
                raise self.err(node, "a Pad node and the Conv's own pads together")
            C, H, W = x.shape
            p = x.pad[0]
            pads = [p] * 4
            pad_value = x.pad[1]
            x = _replace(x, pad=None, shape=(C, H - 2 * p, W - 2 * p))
            if any(o != 0 for o in offs):
                raise self.err(node, "a Pad before a Conv whose input level 0 is not the "
                                     "value 0")
        elif pads[0]:
            if len(set(offs)) != 1 or offs[0] != int(offs[0]):
                raise self.err(node, "padding needs the input's zero to be one integer level")
            pad_value = -int(offs[0])
            if not x.dtype.allowed(np.array([pad_value])):
                raise self.err(node, f"padding with the graph's 0 is level {pad_value}, not a "
                                     f"{x.dtype} value")
        name = _name(f"conv{self.counts['conv']}", self.used, "conv")
        self.counts["conv"] += 1
        lay = Conv(name, oc, k, strides[0], pads[0], wq.dtype, None,
                   weights=w.astype(np.int64).copy(), pad_value=pad_value)
        wsum = [sum(Fraction(int(v)) * offs[j] for j, v in
                    enumerate(w[c].sum(axis=(1, 2)))) for c in range(oc)]
        a = [Surd(s_in * wsc[c]) for c in range(oc)]
        b = [Surd(s_in * wsc[c] * wsum[c]) for c in range(oc)]
        if len(node.input) > 2 and node.input[2]:
            bias = self.const(node, node.input[2]).reshape(-1)
            b = [bc + exact(float(v)) for bc, v in zip(b, bias, strict=True)]
        C, H, W = x.shape
        oh = (H + 2 * pads[0] - k) // strides[0] + 1
        ow = (W + 2 * pads[0] - k) // strides[0] + 1
        return _Acc(lay, a, b, "nchw", (oc, oh, ow), x.dtype, k * k * ic)

    def _fc(self, node, x, wmat: np.ndarray, wq: _QConst, alpha: Fraction, bias):
        x = self._input_act(node, x)
        if not x.layout.startswith("flat"):
            C, H, W = x.shape
            if H * W != 1:
                raise self.err(node, f"its input is a {x.layout} feature map; flatten it first")
        C, H, W = x.shape
        out, f = wmat.shape
        if f != C * H * W:
            raise self.err(node, f"weights for {f} inputs, input has {C * H * W}")
        w = wmat
        if x.layout == "flat_chw" and (H, W) != (1, 1) and C != 1:
            # ONNX flattens (C, H, W); our FC reads (H, W, C)
            w = wmat.reshape(out, C, H, W).transpose(0, 2, 3, 1).reshape(out, f)
        s_in, wsc = self._scales(node, x, wq, out)
        offs = x.o * C if len(x.o) == 1 else x.o
        per_in = np.repeat(np.arange(C), H * W).reshape(C, H, W).transpose(1, 2, 0).reshape(-1)
        name = _name(f"fc{self.counts['fc']}", self.used, "fc")
        self.counts["fc"] += 1
        lay = FC(name, out, wq.dtype, None, weights=w.astype(np.int64).copy())
        if len(set(offs)) == 1:
            wsum = [Fraction(int(v)) * offs[0] for v in w.sum(axis=1)]
        else:
            wsum = [sum(Fraction(int(v)) * offs[per_in[j]] for j, v in enumerate(w[c]) if v)
                    for c in range(out)]
        a = [Surd(alpha * s_in * wsc[c]) for c in range(out)]
        b = [Surd(alpha * s_in * wsc[c] * wsum[c]) for c in range(out)]
        if bias is not None:
            bv = np.broadcast_to(np.asarray(bias, np.float64).reshape(-1), (out,))
            b = [bc + exact(float(v)) for bc, v in zip(b, bv, strict=True)]
        return _Acc(lay, a, b, "flat_chw", (out, 1, 1), x.dtype, f)

    def op_Gemm(self, node, ins):  # noqa: N802
        at = _attrs(node)
        if at.get("transA", 0):
            raise self.err(node, "transA=1 is not supported")
        wq = self._weights(node, node.input[1])
        wmat = wq.ints if at.get("transB", 0) else wq.ints.T
        if wq.scale.size != 1 and not at.get("transB", 0):
            wq = _QConst(wq.ints, np.asarray(wq.scale).T, wq.dtype)
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = self.const(node, node.input[2]) * float(at.get("beta", 1.0))
        return self._fc(node, ins[0], wmat, wq, exact(float(at.get("alpha", 1.0))), bias)

    def op_MatMul(self, node, ins):  # noqa: N802
        wq = self._weights(node, node.input[1])
        if wq.ints.ndim != 2:
            raise self.err(node, "only 2-D weight matrices are supported")
        if wq.scale.size != 1:
            wq = _QConst(wq.ints, np.asarray(wq.scale).T, wq.dtype)
        return self._fc(node, ins[0], wq.ints.T, wq, Fraction(1), None)

    def op_MaxPool(self, node, ins):  # noqa: N802
        x = ins[0]
        at = _attrs(node)
        if not isinstance(x, _Act):
            raise self.err(node, "max-pooling unquantized values is not supported (pool after "
                                 "the quantizer)")
        ks = list(at.get("kernel_shape", []))
        st = list(at.get("strides", ks))
        if len(set(ks)) != 1 or len(set(st)) != 1:
            raise self.err(node, f"kernel {ks} and strides {st} must be square")
        if any(at.get("pads", [0])) or at.get("ceil_mode", 0) or \
                any(d != 1 for d in at.get("dilations", [1])):
            raise self.err(node, "padding, ceil_mode and dilation are not supported")
        if x.layout != "nchw":
            raise self.err(node, f"its input is {x.layout}, expected NCHW")
        if x.dtype.kind == "int":
            raise self.err(node, "max-pooling signed values is not supported")
        if any(v <= 0 for v in x.s):
            raise self.err(node, "max-pooling needs a positive scale")
        name = _name(f"pool{self.counts['pool']}", self.used, "pool")
        self.counts["pool"] += 1
        self.layers.append(MaxPool(name, ks[0], st[0]))
        C, H, W = x.shape
        out = _Act(x.dtype, x.s, x.o, x.layout,
                   (C, (H - ks[0]) // st[0] + 1, (W - ks[0]) // st[0] + 1))
        self.layer_map[name] = LayerMap(node.output[0], np.array([float(v) for v in x.s]),
                                        np.array([float(v) for v in x.o]), x.layout)
        return out

    def op_TopK(self, node, ins):  # noqa: N802
        x = ins[0]
        k = self.const(node, node.input[1])
        at = _attrs(node)
        if not at.get("largest", 1) or not at.get("sorted", 1):
            raise self.err(node, "only largest=1, sorted=1 is supported")
        if isinstance(x, _Acc):
            self.finish_acc_for_topk(node, x)
        elif not isinstance(x, _Act):
            raise self.err(node, "unsupported input")
        self.layers.append(TopK(_name("topk", self.used, "topk"), int(np.asarray(k).item())))
        return (None, _Indices())

    def finish_acc_for_topk(self, node, x: _Acc) -> None:
        if len({(v.p, v.r, v.d) for v in x.a}) > 1 or len({(v.p, v.r, v.d) for v in x.b}) > 1 \
                or x.a[0].sign() <= 0:
            raise self.err(node, "the scores are scaled differently per class")
        x.layer.act = None
        self.layers.append(x.layer)


def _replace(x, **kw):
    from dataclasses import replace

    return replace(x, **kw)


def _half_even(k: int) -> tuple[Fraction, bool]:
    # round(v) ≥ k+1 ⇔ v > k + ½ (k even: a tie rounds down to k) or ≥ (k odd)
    return Fraction(2 * k + 1, 2), k % 2 == 0


#: rounding mode → (numpy rounding, boundary between levels k and k+1 as (value, strict))
_ROUND = {
    "ROUND": (np.round, _half_even),
    "HALF_EVEN": (np.round, _half_even),
    "FLOOR": (np.floor, lambda k: (Fraction(k + 1), False)),
    "CEIL": (np.ceil, lambda k: (Fraction(k), True)),
    # away from zero on ties: a tie at k + ½ goes to k + 1 when k + ½ > 0
    "HALF_UP": (lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),
                lambda k: (Fraction(2 * k + 1, 2), k < 0)),
}


def _model(path_or_model):
    """A cleaned-up qonnx ModelWrapper of a path, an onnx ModelProto or a ModelWrapper."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import RemoveUnusedTensors
    from qonnx.transformation.infer_shapes import InferShapes

    if isinstance(path_or_model, (str, Path)):
        p = Path(path_or_model)
        if not p.exists():
            raise FileNotFoundError(f"model file {p} does not exist")
        try:
            proto = onnx.load(str(p))
        except Exception as e:  # protobuf's DecodeError and friends
            raise GraphError(f"{p}: not an ONNX model ({type(e).__name__}: {e})") from None
        name = p.stem
    elif isinstance(path_or_model, ModelWrapper):
        proto, name = path_or_model.model, path_or_model.graph.name
    elif isinstance(path_or_model, onnx.ModelProto):
        proto, name = path_or_model, path_or_model.graph.name
    else:
        raise TypeError(f"expected a path, an onnx.ModelProto or a qonnx ModelWrapper, got "
                        f"{type(path_or_model).__name__}")
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    for i, node in enumerate(proto.graph.node):
        node.name = node.name or f"{node.op_type}_{i}"  # errors name the user's nodes
    try:
        m = ModelWrapper(proto)
        for t in (InferShapes(), FoldConstants(), RemoveUnusedTensors()):
            m = m.transform(t)
    except Exception as e:
        raise GraphError(f"qonnx shape inference failed on the model ({type(e).__name__}: {e})") \
            from None
    m.graph.name = name or "imported"
    return m


def import_model(path_or_model) -> ImportResult:
    """Import a QONNX model (a ``.onnx`` path, an ``onnx.ModelProto`` or a qonnx
    ``ModelWrapper``): the network and how its input and layers line up with the graph.

    The graph first goes through qonnx's shape inference and constant folding (node names
    are kept, for the error messages), so raw Brevitas exports and graphs after qonnx's
    cleanup are read the same way.
    Raises :class:`~lowbit_hdl.errors.UnsupportedGraphError` for a node that has no exact
    equivalent and :class:`~lowbit_hdl.errors.GraphError` for a graph that is not one.
    """
    return _Importer(_model(path_or_model)).run()


def load(path_or_model) -> Network:
    """The :class:`~lowbit_hdl.ir.Network` of a QONNX model (see :func:`import_model`)."""
    return import_model(path_or_model).network
