"""The fast path (Verilator + C++ harness) on hybrid designs (weights in DDR): the harness's
AXI4 read-slave DDR model and AXI4-Lite control master against the cocotb bench's
cocotbext-axi models (same outputs, cycles and registers without stalls; bit-exact with
random AXI-Stream stalls and AR/R pauses), the registers summed over chunks, an AXI error
range reported without a hang, and the port discovery."""

import numpy as np
import pytest
from test_flow_hybrid import ALL_DDR, hybrid_cnn

from lowbit_hdl.flow.plan import plan_network
from lowbit_hdl.golden import forward
from lowbit_hdl.runtime import regs
from lowbit_hdl.sim.fast import AxiPorts, axi_ports, fast_available, ports_header, simulate_fast
from lowbit_hdl.sim.network import SIM_DDR_BASE, random_frames, simulate_network
from lowbit_hdl.sim.runner import available_simulators

pytestmark = pytest.mark.skipif(not fast_available(), reason="Verilator not installed")


def _plan():
    net = hybrid_cnn()
    return net, plan_network(net, ddr_layers=ALL_DDR, hp_ports=4)


@pytest.mark.skipif("icarus" not in available_simulators(), reason="Icarus not installed")
def test_hybrid_fast_agrees_with_cocotb():
    """Every layer's weights in DDR (tiled convolutions, a streamed FC; the DDR-bound stages
    starve the pipeline hundreds of cycles per frame): the fast path gives the cocotb path's
    outputs, steady state, latency, pass length and registers, STALL_CYCLES included, without
    stalls, and the same outputs with stalls."""
    net, plan = _plan()
    frames, stall = 3, 0.3
    fast = simulate_fast(net, frames, stall=stall, seed=5, plan=plan)
    slow = simulate_network(net, frames, "icarus", stall=stall, seed=5, plan=plan)
    assert fast.ok and slow.ok, (fast.summary(), slow.summary())
    np.testing.assert_array_equal(fast.outputs, slow.outputs)
    np.testing.assert_array_equal(fast.outputs, forward(net, random_frames(net, frames, 5),
                                                        keep=False).output)
    assert fast.cycles_per_frame == slow.cycles_per_frame == plan.cycles_per_frame
    assert fast.first_frame_latency == slow.first_frame_latency
    assert fast.total_cycles["stall 0"] == slow.total_cycles["stall 0"]
    assert fast.registers["stall 0"] == slow.registers["stall 0"]
    assert fast.registers["stall 0"]["STALL_CYCLES"] > 100  # the DDR model's timing counts
    for name in ("stall 0", "stall 0.3"):
        r = fast.registers[name]
        assert r["STATUS"] == regs.STATUS_DONE and r["ERROR"] == 0
        assert r["ID"] == regs.ID_VALUE
        assert r["BYTES_READ"] == frames * plan.ddr.bytes_per_frame
        assert r["CYCLES"] > frames * plan.cycles_per_frame
    assert fast.total_cycles["stall 0.3"] > fast.total_cycles["stall 0"]


def test_hybrid_fast_chunks_and_pauses():
    """Chunks of 2 frames (each from reset, its own START): the same outputs, the counters
    add up; a slower, deeper DDR model (latency 20, 8 outstanding bursts) changes cycles
    but not outputs."""
    net, plan = _plan()
    one = simulate_fast(net, 5, seed=2, plan=plan)
    chunked = simulate_fast(net, 5, seed=2, plan=plan, chunk=2, stall=0.4)
    slow_ddr = simulate_fast(net, 5, seed=2, plan=plan, ddr_latency=20, ddr_outstanding=8)
    for r in (one, chunked, slow_ddr):
        assert r.ok, r.summary()
        np.testing.assert_array_equal(r.outputs, one.outputs)
    for r in (*chunked.registers.values(), one.registers["stall 0"]):
        assert r["BYTES_READ"] == 5 * plan.ddr.bytes_per_frame
        assert r["STATUS"] == regs.STATUS_DONE
    # three chunks, three pipeline fills: more cycles from START to DONE than one run
    assert chunked.registers["stall 0"]["CYCLES"] > one.registers["stall 0"]["CYCLES"]
    assert slow_ddr.registers["stall 0"]["CYCLES"] != one.registers["stall 0"]["CYCLES"]


@pytest.mark.parametrize("resp,code", [(2, regs.ERROR_AXI_SLVERR), (3, regs.ERROR_AXI_DECERR)])
def test_hybrid_fast_axi_error_reported(resp, code):
    """Reads of one word of the last region answer SLVERR/DECERR: the run ends (no hang),
    STATUS.ERROR and the error code come back, the result is not ok."""
    net, plan = _plan()
    last = plan.ddr.regions[-1]
    lo = SIM_DDR_BASE + last.offset
    res = simulate_fast(net, 2, seed=1, plan=plan, ddr_errors=[(lo, lo + 8, resp)],
                        timeout_cycles=20_000)
    assert not res.ok
    r = res.registers["stall 0"]
    assert r["STATUS"] & regs.STATUS_ERROR and r["ERROR"] == code
    assert any("DDR read error" in e and regs.ERROR_CODES[code] in e
               for e in res.framing_errors), res.framing_errors


def test_axi_ports_and_header():
    """Port discovery on the generated top: m_axi<k> read masters (64-bit data, IDs) and the
    AXI4-Lite slave; the header binds them; a port set missing a member is refused."""
    from lowbit_hdl.flow.top import TOP_NAME, NetworkTop, elaborate_verilog

    net, plan = _plan()
    v = elaborate_verilog(NetworkTop(net, plan), TOP_NAME)
    ports = axi_ports(v, TOP_NAME)
    assert ports == AxiPorts(tuple((k, 8, True) for k in range(len(plan.ddr.regions))), True)
    h = ports_header(ports)
    assert f"constexpr int kAxiPorts = {len(plan.ddr.regions)};" in h
    assert "io[0].araddr = ref(top.m_axi0___05Faraddr);" in h
    assert "io.wstrb = ref(top.s_axil___05Fwstrb);" in h
    assert "kAxiLite = true" in h
    with pytest.raises(ValueError, match="m_axi1__rready must be an output"):
        axi_ports(v.replace("output m_axi1__rready;", "input m_axi1__rready;"), TOP_NAME)
    with pytest.raises(ValueError, match="s_axil__bvalid must be an output"):
        axi_ports(v.replace("output s_axil__bvalid;", ""), TOP_NAME)
    dataflow = elaborate_verilog(NetworkTop(net, plan_network(net)), TOP_NAME)
    assert axi_ports(dataflow, TOP_NAME) == AxiPorts()
    assert "kAxiPorts = 0" in ports_header(AxiPorts())
