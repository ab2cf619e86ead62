"""The fast path (Verilator + C++ harness) on hybrid designs (weights in DDR): the harness's
AXI4 read-slave DDR model and AXI4-Lite control master against the cocotb bench's
cocotbext-axi models (same outputs, cycles and registers without stalls; bit-exact with
random AXI-Stream stalls and AR/R pauses), the registers summed over chunks, an AXI error
range reported without a hang, and the port discovery."""

import re

import numpy as np
import pytest
from test_flow_hybrid import ALL_DDR, hybrid_cnn

from lowbit_hdl.flow.plan import plan_network
from lowbit_hdl.golden import forward
from lowbit_hdl.runtime import regs
from lowbit_hdl.sim.fast import (
    AxiPorts,
    axi_ports,
    build_harness,
    fast_available,
    ports_header,
    run_harness,
    simulate_fast,
)
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


#: a probe of the harness's DDR model: each 64-bit input beat is a read command (address
#: bits 31:0, ARLEN 39:32, ARSIZE 42:40, ARBURST 45:44) issued on m_axi0 the cycle after it
#: is taken; each R beat goes out as one 72-bit output beat {RRESP, RDATA}, tlast = RLAST
PROBE = """\
module ddr_probe(clk, rst, s_axis__tdata, s_axis__tvalid, s_axis__tready, s_axis__tlast,
                 m_axis__tdata, m_axis__tvalid, m_axis__tready, m_axis__tlast,
                 m_axi0__araddr, m_axi0__arlen, m_axi0__arsize, m_axi0__arburst,
                 m_axi0__arvalid, m_axi0__arready, m_axi0__rdata, m_axi0__rresp,
                 m_axi0__rlast, m_axi0__rvalid, m_axi0__rready);
  input clk;
  input rst;
  input [63:0] s_axis__tdata;
  input s_axis__tvalid;
  output s_axis__tready;
  input s_axis__tlast;
  output [71:0] m_axis__tdata;
  output m_axis__tvalid;
  input m_axis__tready;
  output m_axis__tlast;
  output [31:0] m_axi0__araddr;
  output [7:0] m_axi0__arlen;
  output [2:0] m_axi0__arsize;
  output [1:0] m_axi0__arburst;
  output m_axi0__arvalid;
  input m_axi0__arready;
  input [63:0] m_axi0__rdata;
  input [1:0] m_axi0__rresp;
  input m_axi0__rlast;
  input m_axi0__rvalid;
  output m_axi0__rready;
  reg [1:0] state = 2'd0;
  reg [63:0] cmd = 64'd0;
  assign s_axis__tready = state == 2'd0;
  assign m_axi0__araddr = cmd[31:0];
  assign m_axi0__arlen = cmd[39:32];
  assign m_axi0__arsize = cmd[42:40];
  assign m_axi0__arburst = cmd[45:44];
  assign m_axi0__arvalid = state == 2'd1;
  assign m_axis__tdata = {6'd0, m_axi0__rresp, m_axi0__rdata};
  assign m_axis__tvalid = state == 2'd2 && m_axi0__rvalid;
  assign m_axis__tlast = m_axi0__rlast;
  assign m_axi0__rready = state == 2'd2 && m_axis__tready;
  always @(posedge clk) begin
    if (rst) state <= 2'd0;
    else if (state == 2'd0 && s_axis__tvalid) begin cmd <= s_axis__tdata; state <= 2'd1; end
    else if (state == 2'd1 && m_axi0__arready) state <= 2'd2;
    else if (state == 2'd2 && m_axi0__rvalid && m_axis__tready && m_axi0__rlast) state <= 2'd0;
  end
endmodule
"""


def _probe(cmds, **kw):
    """Run the probe on ``cmds`` (address, beats[, arsize, arburst]); returns the run and its
    output beats as (data, rresp) pairs."""
    exe = build_harness(PROBE, "ddr_probe")
    words = [a | (n - 1) << 32 | (rest[0] if rest else 3) << 40 | (rest[1] if len(rest) > 1
                                                                     else 1) << 44
             for a, n, *rest in cmds]
    stream = np.array(words, "<u8").view(np.uint8)
    sends = np.array([(i, 1, 0) for i in range(len(cmds))], np.int64)
    run = run_harness(exe, stream, 8, 9, 1, sends, recvs=len(cmds), recv_beats=256,
                      timeout_cycles=500, **kw)
    beats = [(int.from_bytes(b[:8].tobytes(), "little"), int(b[8])) for b in run.out_data]
    return run, beats


@pytest.mark.parametrize("latency,stall", [(2, 0.0), (7, 0.0), (2, 0.5)])
def test_ddr_model_probe(tmp_path, latency, stall):
    """The DDR model alone: INCR bursts read the right words from two regions; a beat past a
    region's end answers SLVERR with zero data, one in an error range its response; the
    first beat comes ``latency`` cycles after the AR handshake, the rest back to back
    (no stalls); with AR/R pauses the same beats come later."""
    rng = np.random.default_rng(4)
    r0, r1 = np.arange(64, dtype=np.uint8), rng.integers(0, 256, 256, dtype=np.uint8)
    r0.tofile(tmp_path / "r0.bin")
    r1.tofile(tmp_path / "r1.bin")
    cmds = [(0x1000, 4), (0x8008, 3), (0x1038, 2), (0x8020, 3), (0x1010, 1)]
    run, beats = _probe(cmds, ddr=[(0x1000, tmp_path / "r0.bin"), (0x8000, tmp_path / "r1.bin")],
                        ddr_errors=[(0x8028, 0x8030, 3)], ddr_latency=latency, stall=stall)
    assert run.status == "ok", run.error

    def word(mem, off):
        return int.from_bytes(mem[off:off + 8].tobytes(), "little")

    want = [(word(r0, 8 * i), 0) for i in range(4)] + \
        [(word(r1, 8 + 8 * i), 0) for i in range(3)] + \
        [(word(r0, 0x38), 0), (0, 2)] + \
        [(word(r1, 0x20), 0), (0, 3), (word(r1, 0x30), 0)] + [(word(r0, 0x10), 0)]
    assert beats == want
    ends = np.cumsum([n for _, n in cmds]) - 1
    assert np.flatnonzero(run.out_last).tolist() == ends.tolist()
    assert run.ddr_beats == len(want) and run.ddr_error_beats == 2
    first = np.concatenate([[0], ends[:-1] + 1])
    if stall == 0:
        # command taken at c, AR handshake at c + 1, first R beat at c + 1 + latency
        assert (run.out_cycles[first] - run.in_first).tolist() == [1 + latency] * len(cmds)
        assert all(np.diff(run.out_cycles[f:e + 1]).tolist() == [1] * (e - f)
                   for f, e in zip(first, ends, strict=True))
    else:
        assert (run.out_cycles[first] - run.in_first > 1 + latency).any()


@pytest.mark.parametrize("cmd,message", [
    ((0x1FF8, 2), "burst at 0x1FF8 of 2 beats crosses a 4 KiB boundary"),
    ((0x1000, 2, 3, 2), "ARBURST 2 \\(only INCR is modelled\\)"),
    ((0x1000, 2, 4), "ARSIZE 4, wider than the 8-byte data bus"),
])
def test_ddr_model_refuses_bad_bursts(tmp_path, cmd, message):
    run, _ = _probe([cmd])
    assert run.status == "protocol"
    assert re.search(message, run.error), run.error
