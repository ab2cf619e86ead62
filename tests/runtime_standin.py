"""A small stand-in DUT with the generated top level's AXI-Stream ports, for exercising the
simulated board's DMA framing independently of the hardware library.

Per input frame of ``in_beats`` beats it emits ``out_beats`` beats: beat ``j`` is
``(Σ of the frame's input beats mod 2**out_width) + j`` (mod ``2**out_width``), ``tlast`` on
the last one. It does not overlap frames (input is refused while a frame goes out). Knobs
for faults: ``tlast_shift`` moves ``tlast``, ``extra_beats`` appends beats to every frame.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def axis(width: int) -> wiring.Signature:
    return wiring.Signature({"tdata": Out(width), "tvalid": Out(1), "tready": In(1),
                             "tlast": Out(1)})


class SumStandIn(wiring.Component):
    def __init__(self, in_width: int, out_width: int, in_beats: int, out_beats: int,
                 tlast_shift: int = 0, extra_beats: int = 0) -> None:
        self.in_width, self.out_width = in_width, out_width
        self.in_beats, self.out_beats = in_beats, out_beats
        self.tlast_shift, self.extra_beats = tlast_shift, extra_beats
        super().__init__({"s_axis": In(axis(in_width)), "m_axis": Out(axis(out_width))})

    def elaborate(self, platform) -> Module:
        m = Module()
        acc = Signal(self.out_width)
        icount = Signal(range(self.in_beats + 1))
        total = self.out_beats + self.extra_beats
        ocount = Signal(range(total + 1))
        with m.FSM():
            with m.State("IN"):
                m.d.comb += self.s_axis.tready.eq(1)
                with m.If(self.s_axis.tvalid):
                    m.d.sync += [acc.eq(acc + self.s_axis.tdata[:self.out_width]),
                                 icount.eq(icount + 1)]
                    with m.If(icount == self.in_beats - 1):
                        m.d.sync += [icount.eq(0), ocount.eq(0)]
                        m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [self.m_axis.tvalid.eq(1),
                             self.m_axis.tdata.eq(acc + ocount),
                             self.m_axis.tlast.eq(
                                 ocount == self.out_beats - 1 + self.tlast_shift)]
                with m.If(self.m_axis.tready):
                    m.d.sync += ocount.eq(ocount + 1)
                    with m.If(ocount == total - 1):
                        m.d.sync += acc.eq(0)
                        m.next = "IN"
        return m

    def reference(self, packed: np.ndarray, in_beat_bytes: int, out_beat_bytes: int
                  ) -> np.ndarray:
        """Expected output bytes (N, out_beats·out_beat_bytes) for packed input frames."""
        mask = (1 << self.out_width) - 1
        out = []
        for frame in np.asarray(packed, np.uint8):
            beats = [int.from_bytes(frame[i:i + in_beat_bytes].tobytes(), "little")
                     for i in range(0, frame.size, in_beat_bytes)]
            acc = sum(b & mask for b in beats) & mask
            out.append(b"".join(((acc + j) & mask).to_bytes(out_beat_bytes, "little")
                                for j in range(self.out_beats)))
        return np.frombuffer(b"".join(out), np.uint8).reshape(len(out), -1)

