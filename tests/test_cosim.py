"""The co-simulation runner and the shared stream drivers, on a one-stage stream register."""

import pytest
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit_hdl.sim.runner import CosimError, available_simulators
from sim.units import simulate


class Reg(wiring.Component):
    def __init__(self, width: int, bug: bool = False):
        self._bug = bug
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.o.ready | ~self.o.valid):
            inc = 2 if self._bug else 1
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload + inc)]
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        return m


@pytest.mark.parametrize("sim", available_simulators())
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_stream_register(sim, stall):
    simulate(Reg(8), "reg", "tb_selftest", {"n": 200, "stall": stall}, sim)


def test_failure_is_reported():
    with pytest.raises(CosimError, match="failed"):
        simulate(Reg(8, bug=True), "reg_bug", "tb_selftest", {"n": 20, "stall": 0.0},
                 "icarus")  # the quicker build


def test_both_simulators_available():
    assert set(available_simulators()) == {"verilator", "icarus"}
