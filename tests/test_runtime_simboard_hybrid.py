"""The simulated board running a hybrid design (weights in DDR) under the runtime, on the
cocotb engine and on the fast one (the C++ harness's DDR model): the DDR image the runtime
allocated is served to the RTL's read masters at its (fake) physical address, the runtime's
HybridControl talks to the RTL's own register file over AXI4-Lite, and an AXI error on the
weight reads comes back as an AcceleratorError without hanging."""

import time

import numpy as np
import pytest
from helpers import cli, images, tiny_net

from lowbit_hdl.flow.plan import plan_network
from lowbit_hdl.golden import forward
from lowbit_hdl.runtime import Accelerator, regs
from lowbit_hdl.runtime.control import AcceleratorError
from lowbit_hdl.runtime.preprocess import quantize
from lowbit_hdl.sim.board import SimBoard
from lowbit_hdl.sim.fast import fast_available
from lowbit_hdl.sim.runner import available_simulators

SIMS = available_simulators()
SIM = "icarus" if "icarus" in SIMS else (SIMS[0] if SIMS else None)
#: (engine, simulator) pairs to run the board on
ENGINES = [pytest.param("cocotb", SIM, marks=pytest.mark.skipif(SIM is None,
                                                                 reason="no HDL simulator")),
           pytest.param("fast", "verilator", marks=pytest.mark.skipif(
               not fast_available(), reason="Verilator not installed"))]


def _hybrid(**kw):
    net = tiny_net()
    plan = plan_network(net, ddr_layers=["fc0"])
    weights = {"fc0": next(i for i in plan.infos if i.name == "fc0").weight_matrix()}
    kw.setdefault("simulator", SIM or "icarus")
    board = SimBoard.from_network(net, plan=plan, **kw)
    return net, plan, board, weights


def _expected(net, imgs):
    return forward(net, quantize(imgs[:, None], "UINT8")).output


@pytest.mark.parametrize("engine,simulator", ENGINES)
def test_hybrid_runs_errs_and_recovers(engine, simulator):
    """A batch bit-exact with the counters; an AXI error on the weight reads reported (not
    hung); the next batch bit-exact again. Six simulations: the ID read and the first STATUS
    read (each with no frames), then one per batch."""
    net, plan, board, weights = _hybrid(stall=0.3, seed=2, timeout_cycles=5000,
                                        engine=engine, simulator=simulator)
    assert board.layout.ddr is not None
    acc = Accelerator(None, board.layout, board, ddr_weights=weights, timeout_s=0.5)
    assert acc.control.base == board._buffers[0].physical_address
    imgs = images(5, seed=1)
    res = acc.classify(imgs)
    np.testing.assert_array_equal(res.outputs, _expected(net, imgs))
    assert board.runs == res.timing.calls == 1
    c = res.timing.counters
    # BYTES_READ: every weight once per frame; CYCLES: START to the last output frame
    assert c["BYTES_READ"] == plan.ddr.bytes_per_frame * 5
    assert c["CYCLES"] >= plan.cycles_per_frame * 5
    assert 0 <= c["STALL_CYCLES"] < c["CYCLES"]

    # the weight image's address goes wrong: the RTL's reads hit no memory (SLVERR) and
    # complete with zero data; the run finishes with STATUS.ERROR
    board.write_control(regs.offset("WEIGHTS_BASE_LO"), 0x0100_0000)
    t0 = time.perf_counter()
    with pytest.raises(AcceleratorError, match=r"DDR read error: AXI slave error \(SLVERR\)"):
        acc.execute(np.zeros((2, 1, 4, 4), np.int64))
    assert time.perf_counter() - t0 < 120
    # the runtime soft-reset the block; with the right address the next batch is correct
    board.write_control(regs.offset("WEIGHTS_BASE_LO"), acc.control.base)
    imgs = images(3, seed=4)
    np.testing.assert_array_equal(acc.classify(imgs).outputs, _expected(net, imgs))
    assert board.runs == 3


def test_hybrid_needs_weights():
    net, plan, board, weights = _hybrid()
    with pytest.raises(ValueError, match="needs ddr_weights"):
        Accelerator(None, board.layout, board)


@pytest.mark.parametrize("engine,simulator", ENGINES)
def test_deploy_sim_hybridcli(tmp_path, capsys, engine, simulator):
    """deploy-sim of a small CNN whose conv c1 (tiled) and fc f0 (stream) read their weights
    from DDR, with random stalls on the DMA and the DDR ports: bit-exact, counters shown."""
    from helpers import small_cnn

    from lowbit_hdl import netfile

    path = netfile.save(small_cnn(), tmp_path / "small_cnn.npz")
    rc, out, err = cli(["deploy-sim", str(path), "--arch", "hybrid", "--ddr-layers", "c1,f0",
                         "--simulator", simulator, "--count", "3", "--stall", "0.2",
                         *(["--fast"] if engine == "fast" else [])], capsys)
    assert rc == 0, out + err
    assert "weights of c1, f0 read from DDR" in err
    assert "bit-exact with the golden model on all 3 images" in out
    # c1: 8×72 one-bit weights (72 bytes), f0: 10×32 (40 bytes), read once per frame
    assert "bytes read from DDR (112 per image)" in out
    assert "accelerator counters (sum over 1 batch(es))" in out


def test_deploy_sim_hybrid_refusals(tmp_path, capsys):
    from lowbit_hdl import netfile

    path = netfile.save(tiny_net(), tmp_path / "tiny.npz")
    rc, _, err = cli(["deploy-sim", "--build", str(tmp_path), "--arch", "hybrid"], capsys)
    assert rc == 2 and "a --build folder's design is already chosen" in err
    rc, _, err = cli(["deploy-sim", str(path), "--ddr-layers", "fc0"], capsys)
    assert rc == 2 and "--ddr-layers needs --arch hybrid" in err
    rc, _, err = cli(["deploy-sim", str(path), "--arch", "hybrid", "--ddr-layers", "top"],
                      capsys)
    assert rc == 2 and "'top' is not a Conv or FC layer" in err
