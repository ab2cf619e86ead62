"""Shared helpers of the flow tests: small networks, and behavioural stand-ins for the stream
FIFO and width converter (the contract of docs/architecture.md: flat payloads, ready/valid) to
check that the stitcher takes any module library that keeps the contract."""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out


class FakeFIFO(wiring.Component):
    """Amaranth's SyncFIFOBuffered behind stream ports (depth ≥ 2)."""

    def __init__(self, width: int, depth: int, ram_style: str = "auto") -> None:
        self.width, self.depth = width, depth
        super().__init__({"i": In(stream.Signature(unsigned(width))),
                          "o": Out(stream.Signature(unsigned(width)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.q = q = fifo.SyncFIFOBuffered(width=self.width, depth=max(2, self.depth))
        m.d.comb += [q.w_data.eq(self.i.payload), q.w_en.eq(self.i.valid),
                     self.i.ready.eq(q.w_rdy),
                     self.o.payload.eq(q.r_data), self.o.valid.eq(q.r_rdy),
                     q.r_en.eq(self.o.ready)]
        return m


class FakeDWC(wiring.Component):
    """General a→b element gearbox with a buffer of a+b elements."""

    def __init__(self, elem_bits: int, in_elems: int, out_elems: int) -> None:
        self.w, self.a, self.b = elem_bits, in_elems, out_elems
        super().__init__({"i": In(stream.Signature(unsigned(elem_bits * in_elems))),
                          "o": Out(stream.Signature(unsigned(elem_bits * out_elems)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        w, a, b = self.w, self.a, self.b
        cap = a + b
        buf = Signal(cap * w)
        n = Signal(range(cap + 1))
        take = self.i.valid & self.i.ready
        give = self.o.valid & self.o.ready
        m.d.comb += [self.o.valid.eq(n >= b), self.o.payload.eq(buf[:b * w]),
                     self.i.ready.eq((n - b * give) + a <= cap)]
        after = Signal.like(buf)
        n_after = Signal.like(n)
        m.d.comb += [after.eq(buf), n_after.eq(n)]
        with m.If(give):
            m.d.comb += [after.eq(buf >> (b * w)), n_after.eq(n - b)]
        with m.If(take):
            m.d.sync += buf.eq(after | (self.i.payload << (n_after * w)))
        with m.Else():
            m.d.sync += buf.eq(after)
        m.d.sync += n.eq(n_after + a * take)
        return m


def fake_library(base: dict) -> dict:
    """``base`` (a stage-kind → constructor map) with the FIFO and DWC replaced by fakes."""
    out = dict(base)
    out["fifo"] = lambda st, info: FakeFIFO(st.in_width, st.depth, st.ram_style)
    out["dwc"] = lambda st, info: FakeDWC(st.in_bits, st.in_elems, st.out_elems)
    return out


def tiny_fc_net():
    """A small FC network (8-bit input, one FC→FC link with PE ≠ SIMD, raw output)."""
    from lowbit_hdl import BIPOLAR, FC, UINT, Network

    return Network("tiny_fc", (1, 4, 4), [
        FC("fc0", 8, act=BIPOLAR, pe=2, simd=4),
        FC("fc1", 12, act=UINT(2), pe=3, simd=2),
        FC("fc2", 4, act=None, pe=2, simd=6),
    ], UINT(2)).randomize(1)


def small_cnn(seed: int = 3):
    """conv (padding, INT2 weights, UINT2 act) → pool → conv → fc → top-1; widths differ
    between every pair of stages."""
    from lowbit_hdl import BIPOLAR, FC, INT, UINT, Conv, MaxPool, Network, TopK

    return Network("small_cnn", (3, 8, 8), [
        Conv("c0", 8, 3, padding=1, pe=4, simd=3, weight_dtype=INT(2), act=UINT(2)),
        MaxPool("p0", 2),
        Conv("c1", 8, 3, pe=2, simd=8, act=BIPOLAR),
        FC("f0", 10, act=None, pe=5, simd=16),
        TopK("top", 1),
    ], UINT(8)).randomize(seed)
