"""Stream width converter: ``in_elems`` elements per input beat to ``out_elems`` per output beat,
any ratio, element order preserved (element 0 of a beat is the oldest).

Structure: a circular buffer of ``B`` element registers with a fill count. ``B`` is a
multiple of the larger beat size (so that side needs no multiplexer) and at least
``in + out + min(in, out) − 1`` elements, the smallest size at which both ``i.ready``
(``count + in ≤ B``) and ``o.valid`` (``count ≥ out``) can come from registers alone and the
converter still moves one beat per cycle on its busier side.

Frames: the converter is frame-agnostic; a frame of ``N`` elements maps to whole beats on both
sides only when ``N`` is a multiple of ``lcm(in, out)`` (pass ``frame_elems`` to have this
checked). Cycles per frame: ``max(N/in, N/out)``; an output beat is valid one cycle after the
input beat that completes it was accepted (``latency = 1``).
"""

from __future__ import annotations

import math

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .params import check_int
from .payload import vector

__all__ = ["WidthConverter"]


class WidthConverter(wiring.Component):
    """Repack a stream of ``in_elems × elem_bits`` beats into ``out_elems × elem_bits`` beats.

    With ``in_elems == out_elems`` the converter is a wire.

    Parameters
    ----------
    elem_bits : int
        Bits per element (an opaque bit pattern).
    in_elems, out_elems : int
        Elements per input and per output beat.
    frame_elems : int or None
        Elements per frame, if known: checked to be a multiple of ``lcm(in_elems,
        out_elems)``.

    Attributes
    ----------
    i : In(stream.Signature(ArrayLayout(unsigned(elem_bits), in_elems)))
    o : Out(stream.Signature(ArrayLayout(unsigned(elem_bits), out_elems)))
        Element 0 of a beat is the oldest.

    Raises
    ------
    TypeError
        If a parameter is not an int.
    ValueError
        If a count is below 1 or ``frame_elems`` would end a frame inside a beat.
    """

    latency = 1

    def __init__(self, elem_bits: int, in_elems: int, out_elems: int,
                 frame_elems: int | None = None) -> None:
        elem_bits = check_int("elem_bits", elem_bits)
        in_elems, out_elems = check_int("in_elems", in_elems), check_int("out_elems", out_elems)
        lcm = math.lcm(in_elems, out_elems)
        if frame_elems is not None:
            frame_elems = check_int("frame_elems", frame_elems)
        if frame_elems is not None and frame_elems % lcm:
            raise ValueError(f"frame_elems={frame_elems} is not a multiple of lcm(in_elems="
                             f"{in_elems}, out_elems={out_elems}) = {lcm}: a frame would end "
                             "inside a beat")
        self.elem_bits, self.in_elems, self.out_elems = elem_bits, in_elems, out_elems
        self.frame_elems = frame_elems
        super().__init__({"i": In(stream.Signature(vector(elem_bits, in_elems))),
                          "o": Out(stream.Signature(vector(elem_bits, out_elems)))})

    @property
    def buffer_elems(self) -> int:
        """Elements of storage ``B`` (0 for a wire)."""
        a, b = self.in_elems, self.out_elems
        if a == b:
            return 0
        need = a + b + min(a, b) - 1
        big = max(a, b)
        return -(-need // big) * big

    def cycles(self, elems: int) -> int:
        """Cycles to move ``elems`` elements in steady state: ``max(N/in, N/out)``."""
        return max(-(-elems // self.in_elems), -(-elems // self.out_elems))

    def elaborate(self, platform) -> Module:
        m = Module()
        a, b, eb = self.in_elems, self.out_elems, self.elem_bits
        if a == b:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
            return m
        size = self.buffer_elems
        buf = [Signal(eb, name=f"buf{j}") for j in range(size)]
        count = Signal(range(size + 1))
        wptr = Signal(range(size))
        rptr = Signal(range(size))

        m.d.comb += [self.i.ready.eq(count + a <= size), self.o.valid.eq(count >= b)]
        push = self.i.valid & self.i.ready
        pop = self.o.valid & self.o.ready

        # reachable pointer values: multiples of gcd(step, size)
        with m.If(push):
            with m.Switch(wptr):
                for v in range(0, size, math.gcd(a, size)):
                    with m.Case(v):
                        for j in range(a):
                            m.d.sync += buf[(v + j) % size].eq(self.i.payload[j])
                        m.d.sync += wptr.eq((v + a) % size)
        with m.Switch(rptr):
            for v in range(0, size, math.gcd(b, size)):
                with m.Case(v):
                    # element 0 in the lowest bits: Cat of the elements in order
                    m.d.comb += self.o.payload.eq(Cat(*[buf[(v + j) % size]
                                                        for j in range(b)]))
        with m.If(pop):
            with m.Switch(rptr):
                for v in range(0, size, math.gcd(b, size)):
                    with m.Case(v):
                        m.d.sync += rptr.eq((v + b) % size)
        m.d.sync += count.eq(count + push * a - pop * b)
        return m
