"""Streaming top-k: indices of the k largest of N values, largest first, ties to the lower index
(the order of :func:`lowbit_hdl.golden.topk`).

Input: ``fold`` values per beat, value ``j`` of beat ``b`` has index ``b·fold + j``; a frame is
``N/fold`` beats. Output: ``k`` beats of one index each (``⌈log2 N⌉`` bits, at least 1).

Structure: each of the ``fold`` lanes keeps its own sorted list of its ``L = min(k, N/fold)``
best (value, index) pairs, updated by a parallel insertion (``L`` comparators per lane) in the
accepting cycle; a new value only overtakes strictly smaller values, so equal values keep
index order. At a frame's last beat the lists move to a result bank (double buffering) and
the next frame streams in while a ``fold``-way comparator tree pops the best list head, one
index per cycle.

Cycles per frame: ``max(N/fold, k)`` (a frame's last beat waits until the previous frame's
indices have left the result bank). The first index is on the output two cycles after the
frame's last beat was accepted and the k-th ``k + 1`` cycles after it, so F back-to-back
frames take ``F·max(N/fold, k) + min(N/fold, k)`` cycles from the first accepted beat to the
last index (``latency = min(N/fold, k)``).
"""

from __future__ import annotations

import math

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..cost import topk_cycles
from ..ir import LayerInfo, TopK
from ..runtime.dtypes import DataType
from .params import check_dtype, check_int
from .payload import vector
from .skid import SkidBuffer

__all__ = ["TopKUnit"]


class TopKUnit(wiring.Component):
    """Top-k selection over ``n`` values arriving ``fold`` per beat.

    Parameters
    ----------
    n : int
        Values per frame.
    fold : int
        Values per input beat (must divide ``n``).
    k : int
        Indices to output per frame, ``1 ≤ k ≤ n``.
    dtype : DataType
        Value type: ``INT(bits)`` (signed accumulators) or ``UINT(bits)``.

    Attributes
    ----------
    i : In(stream.Signature(ArrayLayout(elem_shape(dtype), fold)))
        ``fold`` values (``signed`` for INTk); value ``j`` of beat ``b`` has index
        ``b·fold + j``.
    o : Out(stream.Signature(unsigned(idx_bits)))
        One index per beat, ``idx_bits = max(1, ⌈log2 n⌉)`` (``LayerInfo.out_dtype.bits``).

    Raises
    ------
    TypeError
        If a size is not an int or ``dtype`` is not a DataType.
    ValueError
        If a value breaks a constraint (sizes, divisibility, ``k`` range, BIPOLAR ``dtype``).
    """

    def __init__(self, n: int, fold: int, k: int, dtype: DataType) -> None:
        n, fold, k = check_int("n", n), check_int("fold", fold), check_int("k", k)
        check_dtype("dtype", dtype)
        if n % fold:
            raise ValueError(f"fold={fold} does not divide n={n}")
        if k > n:
            raise ValueError(f"k={k} must be in 1..n={n}")
        if dtype.kind not in ("int", "uint"):
            raise ValueError(f"dtype={dtype} is not supported (INTk accumulators or UINTk)")
        self.n, self.fold, self.k, self.dtype = n, fold, k, dtype
        self.idx_bits = max(1, math.ceil(math.log2(n)))
        super().__init__({"i": In(stream.Signature(vector(dtype, fold))),
                          "o": Out(stream.Signature(unsigned(self.idx_bits)))})

    @classmethod
    def from_layer(cls, info: LayerInfo) -> TopKUnit:
        """The top-k of a :class:`~lowbit_hdl.ir.TopK` layer (fold = ``info.in_fold``)."""
        lay = info.layer
        if not isinstance(lay, TopK):
            raise ValueError(f"layer {info.name}: TopKUnit needs a TopK layer, got "
                             f"{type(lay).__name__}")
        c, h, w = info.in_shape
        return cls(c * h * w, info.in_fold, lay.k, info.in_dtype)

    @property
    def beats(self) -> int:
        """Input beats per frame: ``n/fold``."""
        return self.n // self.fold

    @property
    def lane_len(self) -> int:
        """Entries kept per lane: ``min(k, n/fold)``."""
        return min(self.k, self.beats)

    @property
    def cycles_per_frame(self) -> int:
        """``max(n/fold, k)`` (:func:`lowbit_hdl.cost.topk_cycles`)."""
        return topk_cycles(self.n, self.fold, self.k)

    @property
    def latency(self) -> int:
        """F frames take ``F·cycles_per_frame + latency`` cycles: ``min(n/fold, k)``."""
        return min(self.beats, self.k)

    def elaborate(self, platform) -> Module:
        m = Module()
        fold, k, ib = self.fold, self.k, self.idx_bits
        beats, depth = self.beats, self.lane_len
        vshape = self.i.payload.shape().elem_shape

        m.submodules.skid = skid = SkidBuffer(ib)
        wiring.connect(m, wiring.flipped(self.o), skid.o)

        def entries(prefix):
            return [[(Signal(name=f"{prefix}{j}_{e}_valid"),
                      Signal(vshape, name=f"{prefix}{j}_{e}_value"),
                      Signal(ib, name=f"{prefix}{j}_{e}_index")) for e in range(depth)]
                    for j in range(fold)]

        acc = entries("acc")  # lists of the frame being read
        res = entries("res")  # lists of the frame being output

        beat = Signal(range(beats))
        base = Signal(range(max(2, self.n)))  # beat · fold
        remaining = Signal(range(k + 1))  # indices of the result bank still to output
        last_beat = beat == beats - 1

        # output: pop the best head of the result bank, one index per cycle
        def better(a, b):
            (av, ax, ai), (bv, bx, bi) = a, b
            return av & (~bv | (ax > bx) | ((ax == bx) & (ai < bi)))

        tree_nodes = iter(range(1 << 20))

        def best(items):  # items: list of (lane, entry); balanced comparator tree
            if len(items) == 1:
                return items[0]
            half = len(items) // 2
            (la, a), (lb, b) = best(items[:half]), best(items[half:])
            t = next(tree_nodes)
            take_a = Signal(name=f"cmp{t}_take_a")
            lane = Signal(range(fold), name=f"cmp{t}_lane")
            ent = (Signal(name=f"cmp{t}_valid"), Signal(vshape, name=f"cmp{t}_value"),
                   Signal(ib, name=f"cmp{t}_index"))
            m.d.comb += [take_a.eq(better(a, b)), lane.eq(Mux(take_a, la, lb))]
            m.d.comb += [ent[q].eq(Mux(take_a, a[q], b[q])) for q in range(3)]
            return lane, ent

        win_lane, win = best([(j, res[j][0]) for j in range(fold)])
        pop = (remaining != 0) & skid.i.ready
        m.d.comb += [skid.i.valid.eq(remaining != 0), skid.i.payload.eq(win[2])]

        # input: a frame's last beat needs the result bank free (or freed this cycle)
        bank_free = (remaining == 0) | ((remaining == 1) & skid.i.ready)
        m.d.comb += self.i.ready.eq(~last_beat | bank_free)
        fire = self.i.valid & self.i.ready

        with m.If(pop):
            m.d.sync += remaining.eq(remaining - 1)
            for j in range(fold):
                with m.If(win_lane == j):
                    for e in range(depth):
                        nxt = res[j][e + 1] if e + 1 < depth else None
                        if nxt is None:
                            m.d.sync += res[j][e][0].eq(0)
                        else:
                            m.d.sync += [res[j][e][q].eq(nxt[q]) for q in range(3)]

        # lanes: parallel insertion of value j of the beat into lane j's sorted list
        first = beat == 0
        for j in range(fold):
            x = Signal(vshape, name=f"x{j}")
            m.d.comb += x.eq(self.i.payload[j])
            idx = base + j
            cur = [(e[0] & ~first, e[1], e[2]) for e in acc[j]]  # a new frame starts empty
            gt = [~v | (x > val) for v, val, _ in cur]
            new = []
            for e in range(depth):
                ins_here = gt[e] & (~gt[e - 1] if e else 1)
                shifted = gt[e - 1] if e else 0
                nv = Signal(name=f"n{j}_{e}_valid")
                nx = Signal(vshape, name=f"n{j}_{e}_value")
                ni = Signal(ib, name=f"n{j}_{e}_index")
                prev = cur[e - 1] if e else cur[0]
                m.d.comb += [
                    nv.eq(Mux(ins_here, 1, Mux(shifted, prev[0], cur[e][0]))),
                    nx.eq(Mux(ins_here, x, Mux(shifted, prev[1], cur[e][1]))),
                    ni.eq(Mux(ins_here, idx, Mux(shifted, prev[2], cur[e][2]))),
                ]
                new.append((nv, nx, ni))
            with m.If(fire):
                for e in range(depth):
                    with m.If(last_beat):
                        m.d.sync += [res[j][e][q].eq(new[e][q]) for q in range(3)]
                        m.d.sync += acc[j][e][0].eq(0)
                    with m.Else():
                        m.d.sync += [acc[j][e][q].eq(new[e][q]) for q in range(3)]

        with m.If(fire):
            m.d.sync += [beat.eq(Mux(last_beat, 0, beat + 1)),
                         base.eq(Mux(last_beat, 0, base + fold))]
            with m.If(last_beat):
                m.d.sync += remaining.eq(k)
        return m
