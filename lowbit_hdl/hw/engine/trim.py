"""Lane trim: drop the padded lanes at the end of a frame of neuron folds.

The engine computes ``NF = ceil(MH/PE)`` folds of ``PE`` neurons; when ``PE`` does not divide
``MH`` the last fold's upper lanes are padding. The trim passes the first ``MH`` elements of
each frame of ``NF`` input beats (``in_elems = PE`` elements each) as beats of ``out_elems``
elements (``out_elems`` divides both ``PE`` and ``MH``), dropping the rest.

Cycles per frame: ``MH / out_elems`` (one output beat per cycle; the input beat is accepted
with its last kept slice). ``o.valid`` follows ``i.valid`` (never ``o.ready``).
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_int
from ..payload import vector

__all__ = ["LaneTrim"]


class LaneTrim(wiring.Component):
    """Keep the first ``mh`` elements of every frame of ``ceil(mh/in_elems)`` beats.

    Parameters
    ----------
    elem_bits : int
        Bits per element.
    in_elems, out_elems : int
        Elements per input and output beat; ``out_elems`` divides ``in_elems`` and ``mh``.
    mh : int
        Elements kept per frame.

    Attributes
    ----------
    i : In(stream.Signature(ArrayLayout(unsigned(elem_bits), in_elems)))
    o : Out(stream.Signature(ArrayLayout(unsigned(elem_bits), out_elems)))

    Raises
    ------
    TypeError
        If a parameter is not an int.
    ValueError
        If a count is below 1 or ``out_elems`` divides neither ``in_elems`` nor ``mh``.
    """

    def __init__(self, elem_bits: int, in_elems: int, out_elems: int, mh: int) -> None:
        self.elem_bits = check_int("elem_bits", elem_bits, 1)
        self.in_elems = check_int("in_elems", in_elems, 1)
        self.out_elems = check_int("out_elems", out_elems, 1)
        self.mh = check_int("mh", mh, 1)
        if in_elems % out_elems or mh % out_elems:
            raise ValueError(f"out_elems={out_elems} must divide in_elems={in_elems} and "
                             f"mh={mh}")
        self.beats = -(-mh // in_elems)
        super().__init__({
            "i": In(stream.Signature(vector(elem_bits, in_elems))),
            "o": Out(stream.Signature(vector(elem_bits, out_elems))),
        })

    def cycles(self, frames: int = 1) -> int:
        """Cycles for ``frames`` frames without stalls."""
        return frames * self.mh // self.out_elems

    def elaborate(self, platform) -> Module:
        m = Module()
        slices = self.in_elems // self.out_elems
        tail = (self.mh - (self.beats - 1) * self.in_elems) // self.out_elems  # kept, last beat
        beat = Signal(range(max(2, self.beats)))
        j = Signal(range(max(2, slices)))
        last_beat = beat == self.beats - 1
        end = Signal()  # the slice on the output is the beat's last kept one
        m.d.comb += end.eq(j == (slices - 1) if tail == slices
                           else (j == (tail - 1) if self.beats == 1
                                 else ((j == slices - 1) & ~last_beat)
                                 | ((j == tail - 1) & last_beat)))
        with m.Switch(j):
            for k in range(slices):
                with m.Case(k):
                    m.d.comb += self.o.payload.eq(
                        self.i.payload.as_value()[k * self.out_elems * self.elem_bits:
                                                  (k + 1) * self.out_elems * self.elem_bits])
        m.d.comb += [self.o.valid.eq(self.i.valid),
                     self.i.ready.eq(self.o.ready & end)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += j.eq(j + 1)
            with m.If(end):
                m.d.sync += [j.eq(0), beat.eq(beat + 1)]
                with m.If(last_beat):
                    m.d.sync += beat.eq(0)
        return m
