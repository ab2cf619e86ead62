"""Two-entry register buffer at a module's output (a skid buffer).

A producer that can push at most one beat per cycle, and only when ``i.ready`` (which comes
from a register) is high, never loses a beat, and the stream still moves one beat per cycle
when the consumer is ready. Used by modules whose core computes in the accepting cycle
(max-pool, top-k) so that their input ``ready`` does not depend combinationally on the
downstream ``ready``.
"""

from __future__ import annotations

from amaranth import Module, Shape, ShapeCastable, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .payload import payload_shape

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Two-entry stream buffer; ``i.ready`` and ``o.valid`` are registered, latency 1 cycle.

    Parameters
    ----------
    shape : int, Shape or ShapeCastable
        Payload: a bit count (unsigned) or a shape such as the owner's ``ArrayLayout``.

    Raises
    ------
    TypeError
        If ``shape`` is neither a bit count nor an Amaranth shape.
    ValueError
        If it is less than one bit wide.
    """

    def __init__(self, shape: int | Shape | ShapeCastable) -> None:
        shape = payload_shape(shape, "SkidBuffer")
        self.shape = shape
        self.width = Shape.cast(shape).width
        super().__init__({"i": In(stream.Signature(shape)),
                          "o": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        head = Signal(self.shape)
        tail = Signal(self.shape)
        count = Signal(range(3))
        m.d.comb += [self.i.ready.eq(count != 2), self.o.valid.eq(count != 0),
                     self.o.payload.eq(head)]
        push = self.i.valid & self.i.ready
        pop = self.o.valid & self.o.ready
        with m.Switch(count):
            with m.Case(0):
                with m.If(push):
                    m.d.sync += [head.eq(self.i.payload), count.eq(1)]
            with m.Case(1):
                with m.If(push & pop):
                    m.d.sync += head.eq(self.i.payload)
                with m.Elif(push):
                    m.d.sync += [tail.eq(self.i.payload), count.eq(2)]
                with m.Elif(pop):
                    m.d.sync += count.eq(0)
            with m.Case(2):
                with m.If(pop):
                    m.d.sync += [head.eq(tail), count.eq(1)]
        return m
