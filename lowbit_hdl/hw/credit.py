"""Credit-based output buffer: a small FIFO in front of an output stream whose slots are
reserved when work enters a fixed-latency pipeline.

A pipeline that reserves a slot (``reserve``) only while ``can_reserve`` is high can never
overflow the FIFO, so it never has to stall on the output: its valid bits simply travel
down the pipeline. ``can_reserve`` depends on registers only (never on ``o.ready``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, ShapeCastable, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .params import check_int
from .payload import payload_shape

__all__ = ["CreditFIFO"]


class CreditFIFO(wiring.Component):
    """FIFO of ``depth`` words of shape ``shape`` with slot reservation.

    With a pipeline of ``L`` cycles from reservation to write and one reservation every
    ``interval`` cycles, ``depth = ceil((L + 1) / interval) + 1`` keeps it from ever
    throttling a sink that is always ready (see :func:`depth_for`).

    Parameters
    ----------
    shape : int, Shape or ShapeCastable
        Word shape: a bit count (unsigned), or e.g. the ``ArrayLayout`` of the owner's output
        payload (then ``o`` can be connected to it directly).
    depth : int
        Words, ≥ 1.

    Attributes
    ----------
    reserve : In(1)
        Reserve one slot this cycle.
    can_reserve : Out(1)
        A slot is free (registered state, never depends on ``o.ready``).
    w_en, w_data : In(1), In(shape)
        Write a word; a write must follow a reservation.
    o : Out(stream.Signature(shape))
        Output stream; a written word is valid on ``o`` the next cycle.

    Raises
    ------
    TypeError
        If ``shape`` or ``depth`` has the wrong type.
    ValueError
        If the width or ``depth`` is below 1.
    """

    def __init__(self, shape: int | Shape | ShapeCastable, depth: int) -> None:
        shape = payload_shape(shape, "CreditFIFO")
        depth = check_int("CreditFIFO: depth", depth)
        self.width = Shape.cast(shape).width
        self.depth = depth
        super().__init__({
            "reserve": In(1),
            "can_reserve": Out(1),
            "w_en": In(1),
            "w_data": In(shape),
            "o": Out(stream.Signature(shape)),
        })

    @staticmethod
    def depth_for(latency: int, interval: int) -> int:
        """Smallest depth that sustains one word per ``interval`` cycles when words are
        written ``latency`` cycles after their reservation."""
        return -(-(latency + 1) // max(1, interval)) + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        fifo = m.submodules.fifo = SyncFIFO(width=self.width, depth=self.depth)
        outstanding = Signal(range(self.depth + 1))
        take = self.o.valid & self.o.ready
        m.d.comb += [
            fifo.w_en.eq(self.w_en),
            fifo.w_data.eq(self.w_data),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
            self.can_reserve.eq(outstanding != self.depth),
        ]
        with m.If(self.reserve & ~take):
            m.d.sync += outstanding.eq(outstanding + 1)
        with m.Elif(take & ~self.reserve):
            m.d.sync += outstanding.eq(outstanding - 1)
        return m
