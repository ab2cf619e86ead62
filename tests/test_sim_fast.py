"""The fast simulation path (Verilator + C++ stream harness) against the cocotb path: same
outputs and the same steady-state cycle counts, with and without stalls; planted mismatches
and framing faults are reported; the ``sim --images`` command and the simulated board's
``engine="fast"``."""

import numpy as np
import pytest
from helpers import STANDIN_LAYOUT, small_cnn, standin, tiny_fc_net

from lowbit_hdl.golden import forward
from lowbit_hdl.runtime import Accelerator, DesignLayout, StreamLayout
from lowbit_hdl.sim.board import SimBoard, SimBoardError
from lowbit_hdl.sim.fast import WRAPPER, fast_available, port_width, reset_wrapper, simulate_fast
from lowbit_hdl.sim.network import random_frames, simulate_network

pytestmark = pytest.mark.skipif(not fast_available(), reason="Verilator not installed")


@pytest.mark.parametrize("make,frames,stall", [(tiny_fc_net, 10, 0.3), (small_cnn, 4, 0.3)])
def test_fast_path_agrees_with_cocotb(make, frames, stall):
    net = make()
    fast = simulate_fast(net, frames, stall=stall, seed=7)
    slow = simulate_network(net, frames, "verilator", stall=stall, seed=7)
    assert fast.ok and slow.ok, (fast.summary(), slow.summary())
    np.testing.assert_array_equal(fast.outputs, slow.outputs)
    np.testing.assert_array_equal(fast.outputs, forward(net, random_frames(net, frames, 7),
                                                        keep=False).output)
    # cycle-exact in the no-stall pass: steady state, latency, the pass's last output beat
    assert fast.cycles_per_frame == slow.cycles_per_frame
    assert fast.first_frame_latency == slow.first_frame_latency
    assert fast.total_cycles["stall 0"] == slow.total_cycles["stall 0"]
    assert fast.total_cycles[f"stall {stall:g}"] > fast.total_cycles["stall 0"]
    assert fast.sim_cycles > 0 and fast.cycles_per_second > 0


def test_fast_path_chunks_and_initial_state():
    """Chunks give the same outputs and steady state as one run; random initial state
    (--x-initial unique, +verilator+rand+reset+2) changes nothing after reset."""
    net = tiny_fc_net()
    one = simulate_fast(net, 12, seed=3)
    chunked = simulate_fast(net, 12, seed=3, chunk=5)
    seen = []
    rand = simulate_fast(net, 12, seed=3, x_initial="unique", stall=0.2,
                         progress=seen.append)
    for r in (one, chunked, rand):
        assert r.ok, r.summary()
        np.testing.assert_array_equal(r.outputs, one.outputs)
    assert chunked.cycles_per_frame == one.cycles_per_frame == rand.cycles_per_frame
    assert (seen[-1].done, seen[-1].total, seen[-1].mismatches) == (24, 24, 0)  # 2 passes
    assert len(seen[-1].outputs) == 12


def test_planted_mismatch_reported():
    net = tiny_fc_net()
    x = random_frames(net, 6, 1)
    want = forward(net, x, keep=False).output.copy()
    want[4, 0, 0, 0] += 1
    res = simulate_fast(net, images=x, expected=want)
    assert not res.ok and res.mismatched_frames == [4]
    assert "MISMATCH in frames [4]" in res.summary()
    # a golden model with one altered weight (of the raw-output last layer: it shows
    # wherever its input is not 0) disagrees on some frames too
    bad = tiny_fc_net()
    w = bad.layers[-1].weights
    w[0, 0] = -w[0, 0]
    expect_bad = [i for i in range(6) if not np.array_equal(
        forward(bad, x[i:i + 1], keep=False).output, forward(net, x[i:i + 1]).output)]
    assert expect_bad
    res = simulate_fast(net, images=x, expected=forward(bad, x, keep=False).output)
    assert res.mismatched_frames == expect_bad and not res.ok


def test_sim_command_on_test_images(tmp_path, capsys):
    from lowbit_hdl.cli import main
    from lowbit_hdl.netfile import save

    net = tiny_fc_net()
    save(net, tmp_path / "tiny.npz")
    rng = np.random.default_rng(5)
    imgs = rng.integers(0, 256, (9, 4, 4), dtype=np.uint8)
    from lowbit_hdl.runtime.preprocess import to_frames

    gold = forward(net, to_frames(imgs, net.input_shape, "UINT2"), keep=False).output
    labels = gold.reshape(9, -1).argmax(1)
    labels[:3] = (labels[:3] + 1) % 4  # 5 of the first 8 right
    np.savez(tmp_path / "set.npz", images=imgs, labels=labels)
    rc = main(["sim", str(tmp_path / "tiny.npz"), "--images", str(tmp_path / "set.npz"),
               "--count", "8", "--chunk", "3"])
    cap = capsys.readouterr()
    assert rc == 0, cap.out + cap.err
    assert "on verilator-fast: 8 frames, all outputs bit-exact" in cap.out
    assert "accuracy: 62.50% on 8 images (golden model: 62.50%)" in cap.out
    assert "bit-exact with the golden model on all 8 images" in cap.out
    assert "cycles/s" in cap.out and "cycles per frame: measured 16.0" in cap.out
    assert "8/8 frames, 0 mismatch(es), accuracy 62.50% of 8" in cap.err  # progress


# --- the simulated board on the fast engine (stand-in design, see test_runtime_simboard) ---

LAYOUT = STANDIN_LAYOUT


@pytest.mark.parametrize("stall,per_frame", [(0.0, False), (0.4, False), (0.3, True)])
def test_board_fast_engine_framing(stall, per_frame):
    dut, v = standin()
    board = SimBoard(v, LAYOUT, toplevel="standin", stall=stall, seed=3, engine="fast")
    acc = Accelerator(None, LAYOUT, board, per_frame=per_frame, max_batch=7)
    frames = np.random.default_rng(int(stall * 10)).integers(0, 256, (12, 1, 4, 4))
    out, t = acc.execute(frames)
    np.testing.assert_array_equal(LAYOUT.output.pack(out),
                                  dut.reference(LAYOUT.input.pack(frames), 4, 1))
    assert board.runs == t.calls == 2
    assert len(t.latency_cycles) == 12
    if stall == 0:  # 4 input beats, then 4 output beats, one per cycle (as under cocotb)
        assert t.latency_cycles == [8] * 12 and t.cycles == 8 * 12
    else:
        assert t.cycles > 8 * 12 and min(t.latency_cycles) >= 8


@pytest.mark.parametrize("fault,message", [
    ({"tlast_shift": -1}, "output frame 0: tlast after 3 bytes, layout.json says 4"),
    ({"tlast_shift": 1}, "filled before tlast"),
    ({"in_beats": 5}, "no handshake for 300 cycles: sent 3 input frame"),
    ({"extra_beats": 4}, "4 output beat\\(s\\) more than 1 frames"),
])
def test_board_fast_engine_faults(fault, message):
    _, v = standin("standin_fault", **fault)
    board = SimBoard(v, LAYOUT, toplevel="standin_fault", timeout_cycles=300, engine="fast")
    n = 1 if "extra_beats" in fault else 3
    with pytest.raises(SimBoardError, match=message):
        Accelerator(None, LAYOUT, board).execute(np.zeros((n, 1, 4, 4), np.int64))


def test_board_fast_engine_checks_ports():
    _, v = standin()
    assert port_width(v, "standin", "s_axis__tdata") == 32
    assert port_width(v, "standin", "s_axis__tvalid") == 1
    wide = DesignLayout("standin", StreamLayout((1, 4, 4), "UINT8", 8, 64), LAYOUT.output,
                        100.0, 8, None, "scores")
    board = SimBoard(v, wide, toplevel="standin", engine="fast")
    with pytest.raises(SimBoardError, match="s_axis__tdata is 32 bits wide but layout.json "
                                            "says 64 bits"):
        Accelerator(None, wide, board).execute(np.zeros((1, 1, 4, 4), np.int64))
    with pytest.raises(ValueError, match="Verilator only"):
        SimBoard(v, LAYOUT, simulator="icarus", engine="fast")


def test_reset_wrapper():
    """The fast build's top: the design's ports passed through, rst through a register that
    starts at 1; a design without clk/rst inputs is refused."""
    _, v = standin()
    w = reset_wrapper(v, "standin")
    assert w.startswith(f"module {WRAPPER}(")
    assert "  input [31:0] s_axis__tdata;\n" in w and "  output s_axis__tready;\n" in w
    assert "reg rst_q = 1'b1;" in w and "always @(posedge clk) rst_q <= rst;" in w
    assert ".rst(rst_q)" in w and ".s_axis__tdata(s_axis__tdata)" in w
    with pytest.raises(ValueError, match="no module nothere"):
        reset_wrapper(v, "nothere")
    with pytest.raises(ValueError, match="no 1-bit clk and rst"):
        reset_wrapper(v.replace("input rst;", "input rst_n;"), "standin")


def test_default_chunks_are_balanced():
    """The default chunks are near-equal and a multiple of the workers in number, each at
    most CHUNK_CYCLES worth of frames, so no harness process idles while another works."""
    from lowbit_hdl.sim.fast import CHUNK_CYCLES, _even_chunk

    for frames, workers, cpf in [(400, 2, 32_768), (10_000, 2, 32_768), (2_000, 2, 32_768),
                                 (3, 2, 32_768), (1, 4, 100), (7, 3, 10**7), (1000, 1, 64)]:
        chunk = _even_chunk(frames, workers, cpf)
        sizes = [min(chunk, frames - s) for s in range(0, frames, chunk)]
        assert chunk * cpf <= CHUNK_CYCLES or chunk == 1
        assert len(sizes) % workers == 0 or len(sizes) < workers or chunk == 1
        assert max(sizes) - min(sizes) <= max(1, len(sizes) // workers), (frames, sizes)
    assert _even_chunk(400, 2, 32_768) == 100  # was 128: chunks of 128, 128, 128 and 16
