"""Multi-threshold activation: the comparator logic shared by the MVTU and the stand-alone
:class:`ThresholdUnit`.

``out = Σ_i [acc ≥ T_i]`` for a ``UINTk`` activation (``2**k − 1`` ascending thresholds), or
the bit ``[acc ≥ T_0]`` for BIPOLAR (1 = +1). Because the thresholds ascend, the comparison
bits form a thermometer code and the count is read off it with XORs instead of an adder:
bit ``b`` of the count is the XOR of the comparisons ``j = 2**b, 2·2**b, …`` (1-based).

Thresholds are clipped at build time to ``[lo, hi + 1]`` of the compared value's range,
which changes no comparison and keeps the comparators narrow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Cat, Module, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..runtime.dtypes import INT, DataType, signed_bits_for_range
from .credit import CreditFIFO
from .params import check_dtype, check_int
from .payload import vector
from .rom import rom_read

__all__ = [
    "check_act",
    "check_thresholds",
    "threshold_shape",
    "clip_thresholds",
    "threshold_layout",
    "pack_thresholds",
    "threshold_activation",
    "ThresholdUnit",
]


def check_act(act: DataType | None, what: str = "act") -> None:
    """Check an activation type: BIPOLAR, UINTk with k ≤ 8, or ``None`` (raw outputs).

    Raises
    ------
    TypeError
        If ``act`` is neither a DataType nor ``None``.
    ValueError
        If it is INTk or wider than 8 bits.
    """
    if act is None:
        return
    check_dtype(what, act)
    if act.kind == "int":
        raise ValueError(f"{what}={act} is not supported (activations are BIPOLAR or UINTk)")
    if act.kind == "uint" and act.bits > 8:
        raise ValueError(f"{what}={act}: at most 8 activation bits (255 thresholds)")


def n_thresholds(act: DataType) -> int:
    return 1 if act.is_bipolar else (1 << act.bits) - 1


def check_thresholds(thresholds, channels: int, act: DataType, what: str) -> np.ndarray:
    """Validate a (channels, T) integer threshold table ascending per channel."""
    t = np.asarray(thresholds)
    nt = n_thresholds(act)
    if t.shape != (channels, nt):
        raise ValueError(f"{what}: thresholds have shape {t.shape}, expected ({channels}, {nt})"
                         f" for act={act}")
    if t.size and not np.issubdtype(t.dtype, np.integer):
        if not np.all(np.equal(np.mod(t, 1), 0)):
            raise ValueError(f"{what}: thresholds must be integers")
    t = t.astype(np.int64)
    if nt > 1 and np.any(np.diff(t, axis=1) < 0):
        raise ValueError(f"{what}: thresholds must ascend within each channel")
    return t


def threshold_shape(lo: int, hi: int) -> Shape:
    """Shape of clipped thresholds for values in [lo, hi] (thresholds in [lo, hi + 1])."""
    if lo >= 0:
        return unsigned(max(1, (hi + 1).bit_length()))
    return signed(signed_bits_for_range(lo, hi + 1))


def clip_thresholds(t: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Clip to [lo, hi + 1]: for every value in [lo, hi] each comparison is unchanged."""
    return np.clip(np.asarray(t, dtype=np.int64), lo, hi + 1)


def threshold_layout(shape: Shape, count: int) -> data.ArrayLayout:
    """Layout of one channel's threshold word: ``count`` thresholds of ``shape``, ``T_0`` in
    the lowest bits."""
    return vector(shape, count)


def pack_thresholds(row: Sequence[int], shape: Shape) -> int:
    """Thresholds of one channel (clipped to ``shape``, see :func:`clip_thresholds`) packed
    into one word of :func:`threshold_layout`."""
    return threshold_layout(shape, len(row)).const([int(v) for v in row]).as_bits()


def threshold_activation(value: Value, word: Value, shape: Shape, act: DataType) -> Value:
    """Activation bits (``act.bits`` wide) of ``value`` against the packed ``word`` of
    ascending thresholds of ``shape`` (see :func:`pack_thresholds`)."""
    nt = n_thresholds(act)
    ts = threshold_layout(shape, nt)(word)
    cmp = [value >= ts[i] for i in range(nt)]
    if act.is_bipolar:
        return cmp[0]
    bits = []
    for b in range(act.bits):
        step = 1 << b
        sel = [cmp[j - 1] for j in range(step, nt + 1, step)]
        bit = sel[0]
        for s in sel[1:]:
            bit = bit ^ s
        bits.append(bit)
    return Cat(*bits)


class ThresholdUnit(wiring.Component):
    """Stand-alone multi-threshold unit for ``channels`` channels, ``pe`` per beat.

    Beat ``f`` of each group of ``channels/pe`` beats holds channels ``f·pe … f·pe + pe − 1``.
    Throughput one beat per cycle; with no stalls the last output of ``B`` beats leaves
    ``B + LATENCY`` cycles after the first input was accepted (``LATENCY = 1``).

    Parameters
    ----------
    channels, pe : int
        Channels, and channels per beat (must divide ``channels``).
    in_dtype : DataType or int
        Accumulator type: ``INT(acc_bits)``, or an ``int`` meaning exactly that; ``UINTk``
        also works.
    thresholds : array_like
        (channels, T) integers ascending per channel.
    act : DataType
        BIPOLAR or UINTk with k ≤ 8.

    Attributes
    ----------
    i : In(stream.Signature(ArrayLayout(elem_shape(in_dtype), pe)))
        ``pe`` accumulators (``signed`` for INTk).
    o : Out(stream.Signature(ArrayLayout(unsigned(act.bits), pe)))
        ``pe`` activations (BIPOLAR: 1 bit, 1 = +1).

    Raises
    ------
    TypeError
        If a size is not an int, or ``in_dtype``/``act`` has the wrong type.
    ValueError
        If a value breaks a constraint (sizes, divisibility, types, threshold table).
    """

    LATENCY = 1

    def __init__(self, channels: int, pe: int, in_dtype: DataType | int, thresholds,
                 act: DataType) -> None:
        if isinstance(in_dtype, int) and not isinstance(in_dtype, bool):
            in_dtype = INT(in_dtype)
        if check_dtype("in_dtype", in_dtype).is_bipolar:
            raise ValueError(f"in_dtype={in_dtype!r} must be INT(acc_bits) or UINTk")
        channels, pe = check_int("channels", channels), check_int("PE", pe)
        if channels % pe:
            raise ValueError(f"channels={channels} is not a multiple of PE={pe}")
        if act is None:
            raise ValueError("act must be BIPOLAR or UINTk (a threshold unit needs thresholds)")
        check_act(act)
        t = check_thresholds(thresholds, channels, act, "ThresholdUnit")
        self.channels = channels
        self.pe = pe
        self.nf = channels // pe
        self.in_dtype = in_dtype
        self.act = act
        self.thresholds = t
        self.in_bits = in_dtype.bits
        self.out_bits = act.bits
        super().__init__({
            "i": In(stream.Signature(vector(in_dtype, pe))),
            "o": Out(stream.Signature(vector(act, pe))),
        })

    def cycles(self, beats: int) -> int:
        """Cycles from the first accepted input to the last output for ``beats`` beats."""
        return beats + self.LATENCY

    def elaborate(self, platform) -> Module:
        m = Module()
        pe, nf = self.pe, self.nf
        lo, hi = self.in_dtype.min, self.in_dtype.max
        tshape = threshold_shape(lo, hi)
        t = clip_thresholds(self.thresholds, lo, hi)
        buf = m.submodules.buf = CreditFIFO(self.o.payload.shape(),
                                            CreditFIFO.depth_for(self.LATENCY, 1))
        wiring.connect(m, wiring.flipped(self.o), buf.o)

        fold = Signal(range(nf))
        step = self.i.valid & self.i.ready
        m.d.comb += [self.i.ready.eq(buf.can_reserve), buf.reserve.eq(step)]
        with m.If(step):
            m.d.sync += fold.eq(fold + 1)
            if nf > 1:
                with m.If(fold == nf - 1):
                    m.d.sync += fold.eq(0)

        acc = Signal(self.i.payload.shape())
        v1 = Signal()
        m.d.sync += v1.eq(step)
        with m.If(step):
            m.d.sync += acc.eq(self.i.payload)
        outs = []
        for p in range(pe):
            word = rom_read(m, f"thr{p}", [pack_thresholds(t[f * pe + p], tshape)
                                           for f in range(nf)],
                            tshape.width * t.shape[1], fold)
            outs.append(threshold_activation(acc[p], word, tshape, self.act))
        m.d.comb += [buf.w_en.eq(v1), buf.w_data.eq(Cat(*outs))]
        return m
