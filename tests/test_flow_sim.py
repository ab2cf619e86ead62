"""Whole-network co-simulation: bit-exact outputs against the golden model with random stalls
at both AXI-Stream ends, measured throughput against the analytic bound, the FIFO depth rule,
and failures being reported (wrong outputs, a pipeline that stops)."""

import os
from pathlib import Path

import pytest
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from helpers import small_cnn

from lowbit_hdl import BIPOLAR, FC, Network
from lowbit_hdl.cli import main
from lowbit_hdl.flow.plan import plan_network
from lowbit_hdl.flow.top import TOP_NAME, NetworkTop, default_library, elaborate_verilog
from lowbit_hdl.netfile import load_network
from lowbit_hdl.sim.network import random_frames, simulate_network
from lowbit_hdl.sim.runner import CosimError

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
SIM = "icarus"  # compiles in a second: the fast choice for small designs


def test_small_cnn_bit_exact_with_stalls():
    net = small_cnn()
    res = simulate_network(net, frames=8, simulator=SIM, stall=0.3, seed=5)
    assert res.ok, res.summary()
    assert res.outputs.shape == (8, 1, 1, 1)
    assert set(res.total_cycles) == {"stall 0", "stall 0.3"}
    # stalls on both sides slow the run down but change nothing else
    assert res.total_cycles["stall 0.3"] >= res.total_cycles["stall 0"]
    assert res.cycles_per_frame == pytest.approx(res.analytic_cycles, rel=0.02)


def test_tfc_bit_exact_and_rate():
    net = load_network(NETWORKS / "tfc_w1a1.py", seed=1)
    res = simulate_network(net, frames=10, simulator=SIM, stall=0.25, seed=2)
    assert res.ok, res.summary()
    assert res.analytic_cycles == 64
    assert res.cycles_per_frame == pytest.approx(64, rel=0.02)


def test_fifo_rule_matters():
    """FC a (512 cycles) feeds FC b, which reads its 16-beat vector in its first of 16 neuron
    folds: with the rule's 16-beat FIFO a never waits; with 2 entries it does."""
    net = Network("fifo_rule", (1, 4, 4), [
        FC("a", 32, pe=1, simd=1), FC("b", 32, pe=2, simd=2),
        FC("c", 4, act=None, pe=4, simd=32)], BIPOLAR).randomize(1)
    good = simulate_network(net, 8, SIM, plan=plan_network(net))
    assert plan_network(net).stage("b_mvtu_fifo").depth == 16
    small = plan_network(net, fifo_depths={"b_mvtu_fifo": 2})
    bad = simulate_network(net, 8, SIM, plan=small)
    assert good.ok and bad.ok
    assert good.cycles_per_frame == 512
    assert bad.cycles_per_frame > 1.05 * 512


def test_wrong_outputs_are_reported():
    net = small_cnn(3)
    other = small_cnn(4)  # same topology, different weights
    verilog = elaborate_verilog(NetworkTop(other), TOP_NAME)
    x = random_frames(net, 6, seed=0)
    res = simulate_network(net, simulator=SIM, images=x, verilog=verilog,
                           plan=plan_network(net))
    assert not res.ok and res.mismatched_frames
    assert "MISMATCH" in res.summary()


def test_stopped_pipeline_is_reported():
    net = small_cnn()
    lib = dict(default_library())
    plan = plan_network(net)
    top = plan.stage("top_topk")
    lib["topk"] = lambda st, info: _Broken(st.in_width, st.out_width)
    with pytest.raises(CosimError, match="no AXI-Stream handshake"):
        simulate_network(net, 3, SIM, plan=plan, library=lib, timeout_cycles=5000)
    assert top.in_width > top.out_width


class _Broken(wiring.Component):
    """Right port widths, but it swallows its input and never answers."""

    def __init__(self, win: int, wout: int) -> None:
        super().__init__({"i": In(stream.Signature(win)), "o": Out(stream.Signature(wout))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.i.ready.eq(1)
        return m


def test_sim_command(capsys):
    assert main(["sim", str(NETWORKS / "tfc_w1a2.py"), "--frames", "4", "--simulator", SIM,
                 "--stall", "0", "--random-weights"]) == 0
    out = capsys.readouterr().out
    assert "all outputs bit-exact" in out and "analytic 64" in out


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("LOWBIT_SLOW"), reason="set LOWBIT_SLOW=1 (minutes)")
@pytest.mark.parametrize("name", ["cnv_w1a1", "cnv_w1a2", "cnv_w2a2", "lfc_w1a1"])
def test_big_networks_verilator(name):
    net = load_network(NETWORKS / f"{name}.py", seed=0)
    res = simulate_network(net, frames=10, simulator="verilator", stall=0.3, seed=1)
    assert res.ok, res.summary()
    assert res.cycles_per_frame == pytest.approx(res.analytic_cycles, rel=0.02)


def test_other_shapes():
    """Stride 2, a max-pool with its own PE (a converter in front of it), BIPOLAR input with
    -1 padding, and an activated FC output (scores, no top-k)."""
    from lowbit_hdl import UINT, Conv, MaxPool

    net = Network("odd", (4, 9, 9), [
        Conv("c0", 6, 3, stride=2, padding=1, pe=3, simd=2, act=UINT(2)),
        MaxPool("p0", 2, stride=1, pe=2),
        FC("f0", 4, act=UINT(2), pe=2, simd=8),
    ], BIPOLAR).randomize(2)
    plan = plan_network(net)
    assert "p0_pool_dwc" in [s.name for s in plan.stages]
    assert plan.output_kind == "scores"
    res = simulate_network(net, 6, SIM, stall=0.3, seed=3)
    assert res.ok, res.summary()
    assert res.cycles_per_frame == pytest.approx(res.analytic_cycles, rel=0.02)


def test_padded_pools():
    """"same" max-pools in a whole network: Tiny-YOLO's 2×2 stride 1 (one generated padded
    row and column per frame) after BIPOLAR activations, DoReFa's 3×3 stride 2 on an even
    size (the extra padding at the bottom/right) after UINT activations, bit-exact with stalls
    and at the analytic rate (the pools' cycle formula counts the generated positions)."""
    from lowbit_hdl import UINT, Conv, MaxPool

    net = Network("pads", (2, 6, 6), [
        Conv("c0", 4, 1, pe=4, simd=2, act=BIPOLAR),  # 36 cycles per frame
        MaxPool("p0", 2, stride=1, padding="same"),  # 7·7 steps: the bottleneck
        Conv("c1", 4, 1, pe=4, simd=4, act=UINT(2)),
        MaxPool("p1", 3, stride=2, padding="same"),
        FC("f0", 4, act=None, pe=2, simd=4),
    ], UINT(8)).randomize(4)
    infos = {i.name: i for i in net.infer()}
    assert infos["p0"].pads == (0, 1, 0, 1) and infos["p1"].pads == (0, 1, 0, 1)
    assert infos["p1"].out_shape == (4, 3, 3)
    plan = plan_network(net)
    assert plan.stage("p0_pool").cycles == plan.cycles_per_frame == 7 * 7
    res = simulate_network(net, 6, SIM, stall=0.3, seed=4)
    assert res.ok, res.summary()
    assert res.cycles_per_frame == pytest.approx(res.analytic_cycles, rel=0.02)
