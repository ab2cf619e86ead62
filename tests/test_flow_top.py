"""The stitcher: top-level ports, module library injection, and clear errors when a module does
not match the stage it is used for."""

import pytest
from amaranth import Module
from amaranth.lib import wiring
from helpers import FakeDWC, fake_library, small_cnn, tiny_fc_net

from lowbit_hdl.flow.plan import plan_network
from lowbit_hdl.flow.top import NetworkTop, StitchError, default_library, elaborate_verilog
from lowbit_hdl.sim.network import simulate_network

# modules built for a stitch that then fails (on purpose) are never elaborated
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def test_signature():
    top = NetworkTop(small_cnn())
    sig = top.signature.members
    assert set(sig) == {"s_axis", "m_axis"}
    assert set(sig["s_axis"].signature.members) == {"tdata", "tvalid", "tready", "tlast"}
    assert len(top.s_axis.tdata) == top.plan.input.tdata_bits == 8
    assert len(top.m_axis.tdata) == top.plan.output.tdata_bits == 8
    assert top.plan.layout().output.beats_per_frame == 1


def test_other_module_library_keeps_the_contract():
    """Stand-in FIFOs and converters (same contract, other implementation) stitch and run
    bit-exactly: the stitcher relies on the contract only."""
    net = small_cnn()
    res = simulate_network(net, 4, "icarus", stall=0.2,
                           library=fake_library(default_library()))
    assert res.ok, res.summary()


def test_width_mismatch_is_reported():
    lib = dict(default_library())
    lib["dwc"] = lambda st, info: FakeDWC(st.in_bits, st.in_elems, st.out_elems + 1)
    top = NetworkTop(tiny_fc_net(), library=lib)
    with pytest.raises(StitchError, match=r"stage fc2_mvtu_dwc: FakeDWC has 6-bit input and "
                                          r"14-bit output payloads, the plan needs 6 \(3×2\) "
                                          r"and 12 \(6×2\)"):
        elaborate_verilog(top)


class _NoPorts(wiring.Component):
    def __init__(self):
        super().__init__({})

    def elaborate(self, platform):
        return Module()


def test_missing_port_is_reported():
    lib = dict(default_library())
    lib["maxpool"] = lambda st, info: _NoPorts()
    with pytest.raises(StitchError, match="stage p0_pool: _NoPorts has no stream port `i`"):
        NetworkTop(small_cnn(), library=lib).build_stages()
    lib = dict(default_library())
    del lib["topk"]
    with pytest.raises(StitchError, match="no module for kind 'topk'"):
        NetworkTop(small_cnn(), library=lib).build_stages()


def test_parameters_required():
    net = small_cnn()
    net.layers[0].weights = None
    with pytest.raises(ValueError, match="no weights attached"):
        NetworkTop(net)


def test_plan_is_used():
    net = tiny_fc_net()
    plan = plan_network(net, fifo_depths={"fc1_mvtu_fifo": 7})
    top = NetworkTop(net, plan)
    stages = dict(top.build_stages())
    fifo = next(mod for st, mod in stages.items() if st.name == "fc1_mvtu_fifo")
    assert fifo.depth == 7
