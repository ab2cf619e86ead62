"""The engine's compute core: ``pe`` PEs of ``simd`` lanes, BIPOLAR weights × activations A.

Per step (one beat: ``simd`` activations, ``pe·simd`` weights) PE ``p`` adds its lanes in
the U domain (``acc = scale·U + offset``, the MVTU's domain): XNOR-popcount for BIPOLAR A
(:func:`..popcount.xnor_popcount`), the bit-matrix conditional negation for UINTk A
(:mod:`..bitmatrix`, ``bits`` mode). At the last beat of a pixel the PEs' U values give one
output beat: codes ``Σ_t [U ≥ T_t]`` against the tile's U-domain thresholds
(:func:`..threshold.threshold_activation`), or raw ``(U << acc_shift) + acc_offset``.

Pipeline (``LATENCY = 3`` from the issue cycle of a pixel's last beat to its output write):
issue (addresses to the memories) → operands from the memories, lanes and compressor tree →
accumulate → activation written into a credit-reserved FIFO (the issue reserves a slot on a
pixel's last beat, so the core never stalls on its output).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...runtime.dtypes import BIPOLAR
from ..bitmatrix import lane_terms, sum_terms
from ..popcount import xnor_popcount
from ..threshold import threshold_activation
from .params import EngineParams, descriptor_layout

__all__ = ["EngineCore"]


class EngineCore(wiring.Component):
    """Lanes, accumulators and activations of the engine (stages 1–3 of the pipeline).

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
        An output beat (stage 3): ``pe`` codes, or ``pe`` raw elements of ``raw_bits``.
    release : Out(1), release_bank : Out(1)
        The tile's last output is done: its bank may be reloaded.
    """

    LATENCY = 3

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

    def _lanes(self, m: Module, x, w, q: int):
        p = self.params
        if p.act.is_bipolar:
            return xnor_popcount(m, x, w, name=f"pc{q}")
        terms = []
        for s in range(p.simd):
            t, _ = lane_terms(x[s * p.abits:(s + 1) * p.abits], p.act, w[s], BIPOLAR)
            terms += t
        return sum_terms(m, terms, name=f"bm{q}")

    def elaborate(self, platform) -> Module:
        m = Module()
        p, c = self.params, self.cfg
        # stage 1 → 2: lanes + tree into the partial-sum registers
        v2, first2, last2, bank2, tend2 = (Signal(name=n) for n in
                                           ("v2", "first2", "last2", "bank2", "tend2"))
        m.d.sync += [v2.eq(self.v1), first2.eq(self.first1), last2.eq(self.last1),
                     bank2.eq(self.bank1), tend2.eq(self.tend1)]
        accs = []
        v3, bank3, tend3 = Signal(), Signal(), Signal()
        m.d.sync += [v3.eq(v2 & last2), bank3.eq(bank2), tend3.eq(tend2 & last2)]
        for q in range(p.pe):
            part = Signal(unsigned(max(1, (p.simd * 2 ** (p.abits + 1)).bit_length())),
                          name=f"part{q}")
            m.d.sync += part.eq(self._lanes(m, self.x, self.w[q * p.simd:(q + 1) * p.simd],
                                            q))
            acc = Signal(self.u_bits, name=f"acc{q}")
            with m.If(v2):
                m.d.sync += acc.eq(Mux(first2, 0, acc) + part)
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
