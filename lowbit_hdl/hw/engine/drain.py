"""The drain: the engine's final map read out of its buffer pixel-major.

Build-time geometry ``drain_shape = (H, W, C)``: ``H·W·CF`` buffer words from word 0, one
word (``simd`` elements of A, lanes of channels ≥ C hold 0) per beat. One beat per cycle
while the consumer is ready (the buffer's read register is the output register).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..payload import vector
from .params import EngineParams

__all__ = ["Drain"]


class Drain(wiring.Component):
    """Reads ``drain_shape`` out of a buffer read port onto the ``o`` stream.

    Attributes
    ----------
    start : In(1)
        Begin a map.
    o : Out(stream.Signature(ArrayLayout(A, simd)))
    rd_addr, rd_en : Out, rd_data : In
        The buffer's read port (owned while ``busy``).
    busy : Out(1)
    done : Out(1)
        Pulse when the last beat was taken.
    """

    def __init__(self, params: EngineParams) -> None:
        if not isinstance(params, EngineParams) or params.drain_shape is None:
            raise TypeError("Drain needs EngineParams with a drain_shape")
        self.params = params
        self.aw = params.addr_bits
        self.words = params.map_words(params.drain_shape)
        super().__init__({
            "start": In(1), "o": Out(stream.Signature(vector(params.act, params.simd))),
            "rd_addr": Out(unsigned(self.aw)), "rd_en": Out(1),
            "rd_data": In(unsigned(params.word_bits)), "busy": Out(1), "done": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        active, dvalid = Signal(), Signal()
        addr = Signal(self.aw)
        advance = ~dvalid | self.o.ready
        issue = active & advance
        m.d.comb += [self.rd_addr.eq(addr), self.rd_en.eq(advance),
                     self.o.valid.eq(dvalid), self.o.payload.eq(self.rd_data),
                     self.busy.eq(active | dvalid)]
        m.d.sync += self.done.eq(0)
        with m.If(advance):
            m.d.sync += dvalid.eq(issue)
        with m.If(issue):
            m.d.sync += addr.eq(addr + 1)
            with m.If(addr == self.words - 1):
                m.d.sync += active.eq(0)
        with m.If(dvalid & self.o.ready & ~active):
            m.d.sync += self.done.eq(1)
        with m.If(self.start):
            m.d.sync += [active.eq(1), addr.eq(0)]
        return m
