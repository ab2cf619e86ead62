"""The simulated board: DMA framing and fault detection on a stand-in design (Icarus, fast),
and the runtime on the real generated design (Verilator), bit-exact with the golden model."""

import importlib.util
import os
import sys

import numpy as np
import pytest
from helpers import STANDIN_LAYOUT, hw_library, images, scores_net, standin, tiny_net

from lowbit_hdl.flow.plan import plan_network
from lowbit_hdl.golden import forward
from lowbit_hdl.runtime import Accelerator, DesignLayout, StreamLayout
from lowbit_hdl.runtime.preprocess import quantize
from lowbit_hdl.sim.board import SimBoard, SimBoardError
from lowbit_hdl.sim.runner import available_simulators

SIMS = available_simulators()
FAST = "icarus" if "icarus" in SIMS else SIMS[0]
pytestmark = pytest.mark.skipif(not SIMS, reason="no HDL simulator")

LAYOUT = STANDIN_LAYOUT


@pytest.mark.parametrize("stall,per_frame", [(0.0, False), (0.4, False), (0.0, True)])
def test_standin_framing(stall, per_frame):
    dut, v = standin()
    board = SimBoard(v, LAYOUT, toplevel="standin", simulator=FAST, stall=stall, seed=3)
    acc = Accelerator(None, LAYOUT, board, per_frame=per_frame, max_batch=7)
    frames = np.random.default_rng(int(stall * 10)).integers(0, 256, (12, 1, 4, 4))
    out, t = acc.execute(frames)
    expect = dut.reference(LAYOUT.input.pack(frames), 4, 1)
    np.testing.assert_array_equal(LAYOUT.output.pack(out), expect)
    assert board.runs == t.calls == 2  # batches of 7 and 5: one simulation each
    assert len(t.latency_cycles) == 12
    if stall == 0:
        # the stand-in takes 4 input beats, then gives 4 output beats, one per cycle
        assert t.latency_cycles == [8] * 12
        if not per_frame:
            assert t.cycles == 8 * 12
    else:
        assert t.cycles > 8 * 12 and min(t.latency_cycles) >= 8
    assert t.simulated and t.fps == pytest.approx(1e8 * 12 / t.cycles)


@pytest.mark.parametrize("fault,message", [
    ({"tlast_shift": -1}, "output frame 0: tlast after 3 bytes, layout.json says 4"),
    ({"tlast_shift": 1}, "filled before tlast"),
    ({"extra_beats": 1}, "filled before tlast"),
    ({"in_beats": 5}, "no handshake for 300 cycles: sent 12 of 12 input beats, received 2 of 3"),
])
def test_standin_faults_detected(fault, message):
    _, v = standin("standin_fault", **fault)
    board = SimBoard(v, LAYOUT, toplevel="standin_fault", simulator=FAST, timeout_cycles=300)
    acc = Accelerator(None, LAYOUT, board)
    with pytest.raises(SimBoardError, match=message):
        acc.execute(np.zeros((3, 1, 4, 4), np.int64))


def test_extra_beats_after_last_frame_detected():
    # a design that ends each frame right but sends 4 more beats after every frame: the
    # last frame's extra beats would land in the next batch
    _, v = standin("standin_tail", out_beats=4, extra_beats=4)
    board = SimBoard(v, LAYOUT, toplevel="standin_tail", simulator=FAST)
    with pytest.raises(SimBoardError):
        Accelerator(None, LAYOUT, board).execute(np.zeros((1, 1, 4, 4), np.int64))


def test_layout_not_matching_ports():
    _, v = standin()
    wide = DesignLayout("standin", StreamLayout((1, 4, 4), "UINT8", 8, 64), LAYOUT.output,
                        100.0, 8, None, "scores")
    board = SimBoard(v, wide, toplevel="standin", simulator=FAST)
    with pytest.raises(SimBoardError, match="s_axis__tdata is 32 bits wide but layout.json "
                                            "says 64 bits"):
        Accelerator(None, wide, board).execute(np.zeros((1, 1, 4, 4), np.int64))


def test_missing_ports_reported():
    v = "module noaxis(input clk, input rst, output [7:0] q); assign q = 0; endmodule\n"
    board = SimBoard(v, LAYOUT, toplevel="noaxis", simulator=FAST)
    with pytest.raises(SimBoardError, match="no port"):
        Accelerator(None, LAYOUT, board).execute(np.zeros((1, 1, 4, 4), np.int64))


def test_simboard_needs_load_and_valid_stall():
    with pytest.raises(ValueError, match="stall"):
        SimBoard("", LAYOUT, stall=1.0)
    board = SimBoard("", LAYOUT)
    from lowbit_hdl.runtime.backend import Framing
    with pytest.raises(SimBoardError, match="load"):
        board.stream(np.zeros(16, np.uint8), np.zeros(128, np.uint8), 1,
                     Framing.for_layout(LAYOUT))


# -- the real generated design ---------------------------------------------------------------


# one Verilator build for the main test (the deploy-sim default); Icarus, which compiles in
# a second, for the others
REAL_SIM = "verilator" if "verilator" in SIMS else FAST


def test_generated_design_bit_exact_through_runtime():
    net = scores_net()
    board = SimBoard.from_network(net, library=hw_library(), simulator=REAL_SIM, stall=0.0)
    acc = Accelerator(None, board.layout, board, network=net)
    assert board.layout.kind_of_output() == "scores"
    imgs = images(24, seed=11)
    res = acc.classify(imgs, k=2)
    gold = forward(net, quantize(imgs[:, None], "UINT8")).output
    np.testing.assert_array_equal(res.outputs, gold)
    np.testing.assert_array_equal(
        res.indices, np.argsort(-gold.reshape(24, 4), axis=1, kind="stable")[:, :2])
    cpf = plan_network(net).cycles_per_frame
    t = res.timing
    # steady state at the design's bottleneck (plus the pipeline's fill, spread over 24)
    assert cpf * 23 / 24 <= t.cycles_per_image <= 1.25 * cpf, (t.cycles_per_image, cpf)
    # with random DMA stalls on both sides, and in several batches: still bit-exact
    board.stall = 0.3
    res2 = acc.classify(imgs, batch=10)
    np.testing.assert_array_equal(res2.outputs, gold)
    assert res2.timing.calls == 3


@pytest.mark.skipif(importlib.util.find_spec("lowbit_hdl.hw.topk") is None,
                    reason="lowbit_hdl.hw.topk has not landed yet")
def test_generated_design_with_topk():
    net = tiny_net()
    board = SimBoard.from_network(net, library=hw_library(), simulator=FAST, stall=0.2)
    acc = Accelerator(None, board.layout, board, network=net)
    imgs = images(16, seed=5)
    res = acc.classify(imgs)
    gold = forward(net, quantize(imgs[:, None], "UINT8")).output
    np.testing.assert_array_equal(res.outputs, gold)
    assert res.labels == [net.labels[i] for i in gold[:, 0, 0, 0]]


def test_build_folder_to_bundle_on_simulated_board(tmp_path, capsys):
    """build() → layout.json + rtl → SimBoard.from_build → the bundle's run.py."""
    from lowbit_hdl.flow.build import build
    from lowbit_hdl.flow.deploy import write_deploy_bundle

    net = scores_net(seed=2)
    res = build(net, tmp_path / "b", library=hw_library(), progress=None, lint=False,
                check_tcl=False)
    lay = DesignLayout.load(tmp_path / "b" / "layout.json")  # with the build's extra keys
    assert lay == res.plan.layout()
    imgs = images(10, seed=8)
    deploy = write_deploy_bundle(tmp_path / "b", net, lay, samples=(imgs, None))
    board = SimBoard.from_build(tmp_path / "b", simulator=FAST, stall=0.25)
    sys.path.insert(0, str(deploy))
    try:
        import run as run_py
        rc = run_py.main(["--batch", "4"], backend=board)
    finally:
        sys.path.remove(str(deploy))
        sys.modules.pop("run", None)
        sys.modules.pop("lowbit_runtime", None)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "bit-exact with the golden model: 10 of 10 images" in out
    assert "cycles/image" in out
    # deploy-sim on the build folder's Verilog and weights
    from lowbit_hdl.cli import main
    rc = main(["deploy-sim", "--build", str(tmp_path / "b"), "--count", "5", "--simulator",
               FAST])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "network tinys: 5 images" in out and "bit-exact with the golden model on all 5" in out


TOPOLOGY = """
from lowbit_hdl import FC, UINT, Network

network = Network("clinet", (1, 4, 4), [FC("fc0", 8, pe=2, simd=4),
                                        FC("fc1", 4, act=None, pe=2, simd=4)],
                  UINT(8), labels=["a", "b", "c", "d"])
"""


@pytest.fixture
def flow_library(monkeypatch):
    """deploy-sim elaborates with the flow's default library: give it the fakes for modules
    that have not landed yet."""
    import lowbit_hdl.flow.top as top

    lib = hw_library()
    monkeypatch.setattr(top, "default_library", lambda: dict(lib))


def test_deploy_sim_command(tmp_path, capsys, flow_library):
    from lowbit_hdl.cli import main
    from lowbit_hdl.netfile import load_network

    (tmp_path / "clinet.py").write_text(TOPOLOGY)
    net = load_network(tmp_path / "clinet.py", seed=0)  # what --random-weights gives
    imgs = images(7, seed=21)[:, None]
    gold = forward(net, imgs.astype(np.int64)).output.reshape(7, 4)
    labels = np.argmax(gold, axis=1)
    labels[:2] = (labels[:2] + 1) % 4  # 5 of 7 right
    np.savez(tmp_path / "samples.npz", images=imgs, labels=labels)
    rc = main(["deploy-sim", str(tmp_path / "clinet.py"), "--images",
               str(tmp_path / "samples.npz"), "--count", "6", "--simulator", FAST,
               "--stall", "0.2", "--batch", "4", "--random-weights"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "network clinet: 6 images through the simulated board" in out
    assert "accuracy: 66.67% (6 images)" in out  # first 6: 2 wrong
    assert "bit-exact with the golden model on all 6 images" in out
    assert "cycles/image" in out


def test_deploy_sim_reports_golden_mismatch(tmp_path, capsys, flow_library, monkeypatch):
    from lowbit_hdl import golden
    from lowbit_hdl.cli import main

    (tmp_path / "clinet.py").write_text(TOPOLOGY)
    real = golden.forward

    def off_by_one(net, x, *a, **k):  # a golden model that disagrees on image 1
        r = real(net, x, *a, **k)
        r.output[1] += 1
        return r
    monkeypatch.setattr(golden, "forward", off_by_one)
    rc = main(["deploy-sim", str(tmp_path / "clinet.py"), "--count", "3", "--simulator",
               FAST, "--random-weights"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "MISMATCH with the golden model on 1 of 3 images: [1]" in out
    assert "≠ GOLDEN" in out


@pytest.mark.skipif(importlib.util.find_spec("lowbit_hdl.hw.topk") is None,
                    reason="lowbit_hdl.hw.topk has not landed yet")
def test_trained_mnist_network_on_simulated_board(capsys, flow_library):
    """The shipped trained TFC-W1A1 on the shipped MNIST samples, through deploy-sim."""
    from pathlib import Path

    from lowbit_hdl.cli import main
    from lowbit_hdl.netfile import load_network

    root = Path(__file__).resolve().parent.parent
    topo, data = root / "networks" / "tfc_w1a1_mnist.py", root / "networks" / "data" / \
        "mnist_samples.npz"
    with np.load(data) as z:
        x, y = z["images"][:20], z["labels"][:20]
    gold = forward(load_network(topo), x.astype(np.int64)).output[:, 0, 0, 0]
    rc = main(["deploy-sim", str(topo), "--images", str(data), "--count", "20",
               "--simulator", FAST, "--batch", "10"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"accuracy: {np.mean(gold == y):.2%} (20 images)" in out
    assert np.mean(gold == y) >= 0.85  # a trained network, not random weights
    assert "bit-exact with the golden model on all 20 images" in out


@pytest.mark.skipif(not os.environ.get("LOWBIT_SLOW") or "verilator" not in SIMS,
                    reason="set LOWBIT_SLOW=1 (minutes; needs Verilator)")
def test_trained_cnv_on_simulated_board(capsys):
    """The shipped trained CNV-W1A1 on 10 of the shipped CIFAR-10 samples, through the
    Verilator harness (about 2 min; the 100 samples: 86 % right, bit-exact)."""
    from pathlib import Path

    from lowbit_hdl.cli import main
    from lowbit_hdl.netfile import load_network

    root = Path(__file__).resolve().parent.parent
    topo = root / "networks" / "cnv_w1a1_cifar10.py"
    data = root / "networks" / "data" / "cifar10_samples.npz"
    with np.load(data) as z:
        x, y = z["images"][:10], z["labels"][:10]
    gold = forward(load_network(topo), x.astype(np.int64)).output[:, 0, 0, 0]
    rc = main(["deploy-sim", str(topo), "--images", str(data), "--count", "10", "--fast"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"accuracy: {np.mean(gold == y):.2%} (10 images)" in out
    assert "bit-exact with the golden model on all 10 images" in out
