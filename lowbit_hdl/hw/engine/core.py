"""The engine's compute core: ``pe`` PEs of ``simd`` lanes, BIPOLAR weights × activations A.

Per step (one beat: ``simd`` activations, ``pe·simd`` weights) PE ``p`` adds its lanes in
the U domain (``acc = scale·U + offset``, the MVTU's domain): XNOR-popcount for BIPOLAR A
(:func:`..popcount.xnor_popcount`), the bit-matrix conditional negation for UINTk A
(:mod:`..bitmatrix`, ``bits`` mode). At the last beat of a pixel the PEs' U values give one
output beat: codes ``Σ_t [U ≥ T_t]`` against the tile's U-domain thresholds
(:func:`..threshold.threshold_activation`), or raw ``(U << acc_shift) + acc_offset``.

Pipeline (``LATENCY = 4`` from the issue cycle of a pixel's last beat to its output write):
issue (addresses to the memories) → operands from the memories, registered (the block
RAMs' outputs feed no logic) → lanes and the compressor trees of groups of at most
:func:`group_lanes` lanes, registered → accumulate (the groups' sums added to the
accumulator) → activation written into a credit-reserved FIFO (the issue reserves a slot on
a pixel's last beat, so the core never stalls on its output). The registers keep every
stage within the 10 ns bound of :mod:`lowbit_hdl.flow.depth` at 100 MHz.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...runtime.dtypes import BIPOLAR
from ..bitmatrix import lane_terms, sum_terms
from ..popcount import xnor_popcount
from ..threshold import threshold_activation
from .params import EngineParams, descriptor_layout

__all__ = ["EngineCore", "GROUP_BITS", "group_lanes"]

#: activation bits summed by one registered compressor tree (a power of two of lanes)
GROUP_BITS = 32


def group_lanes(act) -> int:
    """Lanes of one registered group: ``GROUP_BITS`` activation bits rounded down to a power
    of two of lanes (BIPOLAR and UINT1 32, UINT2 16, UINT3 and UINT4 8)."""
    n = GROUP_BITS // act.bits
    return 1 << (n.bit_length() - 1)


def _tree_sum(values: list[Value]) -> Value:
    """The sum of ``values`` as a balanced tree of two-input adders."""
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class EngineCore(wiring.Component):
    """Lanes, accumulators and activations of the engine (stages 1–4 of the pipeline).

    Attributes
    ----------
    cfg : In(descriptor layout)
    v1, first1, last1, bank1, tend1 : In(1)
        Stage 1: a beat's operands are on ``x``/``w`` (the cycle after its issue), first /
        last beat of a pixel, the tile's bank, last beat of the tile.
    x : In(simd·A.bits), w : In(pe·simd)
        Activation word (pad word already substituted) and weight beat.
    thr0, thr1 : In
        Threshold registers of the two banks.
    o_en : Out(1), o_data : Out(out_bits)
        An output beat (stage 4): ``pe`` codes, or ``pe`` raw elements of ``raw_bits``.
    release : Out(1), release_bank : Out(1)
        The tile's last output is done: its bank may be reloaded.
    """

    LATENCY = 4

    def __init__(self, params: EngineParams) -> None:
        if not isinstance(params, EngineParams):
            raise TypeError(f"params={params!r} must be EngineParams")
        self.params = params
        p = params
        lane_hi = 1 if p.act.is_bipolar else (1 << (p.abits + 1)) - 1
        self.u_max = p.max_sf * p.simd * lane_hi
        self.u_bits = max(1, self.u_max.bit_length())
        self.out_bits = p.pe * max(p.abits, p.raw_bits)
        tbits = max(1, 64 * p.t_words)
        super().__init__({
            "cfg": In(descriptor_layout()),
            "v1": In(1), "first1": In(1), "last1": In(1), "bank1": In(1), "tend1": In(1),
            "x": In(unsigned(p.word_bits)), "w": In(unsigned(p.pe * p.simd)),
            "thr0": In(unsigned(tbits)), "thr1": In(unsigned(tbits)),
            "o_en": Out(1), "o_data": Out(unsigned(self.out_bits)),
            "release": Out(1), "release_bank": Out(1),
        })

    def _lanes(self, m: Module, x, w, q: str):
        p = self.params
        if p.act.is_bipolar:
            return xnor_popcount(m, x, w, name=f"pc{q}")
        terms = []
        for s in range(len(w)):
            t, _ = lane_terms(x[s * p.abits:(s + 1) * p.abits], p.act, w[s], BIPOLAR)
            terms += t
        return sum_terms(m, terms, name=f"bm{q}")

    def elaborate(self, platform) -> Module:
        m = Module()
        p, c = self.params, self.cfg
        # stage 1 → 1b: the operands registered; 1b → 2: lanes + group trees into the
        # partial-sum registers
        ctl = (self.v1, self.first1, self.last1, self.bank1, self.tend1)
        ctl1b = [Signal(name=f"{n}1b") for n in ("v", "first", "last", "bank", "tend")]
        v2, first2, last2, bank2, tend2 = (Signal(name=n) for n in
                                           ("v2", "first2", "last2", "bank2", "tend2"))
        x1b, w1b = Signal.like(self.x, name="x1b"), Signal.like(self.w, name="w1b")
        m.d.sync += [a.eq(b) for a, b in zip(ctl1b, ctl, strict=True)]
        m.d.sync += [x1b.eq(self.x), w1b.eq(self.w)]
        m.d.sync += [a.eq(b) for a, b in zip((v2, first2, last2, bank2, tend2), ctl1b,
                                             strict=True)]
        accs = []
        v3, bank3, tend3 = Signal(), Signal(), Signal()
        m.d.sync += [v3.eq(v2 & last2), bank3.eq(bank2), tend3.eq(tend2 & last2)]
        group = group_lanes(p.act)
        bounds = [(lo, min(p.simd, lo + group)) for lo in range(0, p.simd, group)]
        for q in range(p.pe):
            wq = w1b[q * p.simd:(q + 1) * p.simd]
            parts = []
            for g, (lo, hi) in enumerate(bounds):
                n = hi - lo
                part = Signal(unsigned(max(1, (n * 2 ** (p.abits + 1)).bit_length())),
                              name=f"part{q}_{g}")
                m.d.sync += part.eq(self._lanes(m, x1b[lo * p.abits:hi * p.abits], wq[lo:hi],
                                                f"{q}_{g}"))
                parts.append(part)
            acc = Signal(self.u_bits, name=f"acc{q}")
            with m.If(v2):
                m.d.sync += acc.eq(Mux(first2, 0, acc) + _tree_sum(parts))
            accs.append(acc)
        # stage 3: activation or raw value
        nt, ab = p.thresholds, p.acc_bits
        thr = Mux(bank3, self.thr1, self.thr0)
        codes = [threshold_activation(acc, thr[q * nt * ab:(q + 1) * nt * ab],
                                      unsigned(ab), p.act) for q, acc in enumerate(accs)]
        outs = codes
        if p.raw_bits:
            raws = []
            for acc in accs:
                u = Cat(acc, Const(0, 1)).as_signed()
                raws.append(((u << c.acc_shift) + c.acc_offset)[:p.raw_bits])
            outs = [Mux(c.raw, r, cd) for r, cd in zip(raws, codes, strict=True)]
        w = max(p.abits, p.raw_bits)
        m.d.comb += [self.o_en.eq(v3), self.o_data.eq(Cat(*[o[:w] if len(o) >= w
                                                             else Cat(o, Const(0, w - len(o)))
                                                             for o in outs])),
                     self.release.eq(v3 & tend3), self.release_bank.eq(bank3)]
        return m
