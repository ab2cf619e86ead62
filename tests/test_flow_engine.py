"""Engine designs (``build --arch engine``): the cut into front, engine and tail, the plan's
engine stage, the DDR image with the engine's region, the report, the build options, and a
whole-network co-simulation (front conv on UINT8 pixels, engine layers with padding, an
overlapping pool, FC-as-conv, an INT8 tail layer streamed from DDR, top-1) bit-exact under
random stalls, several frames, cycles against the plan; the simulated board runs it under
the runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import QUICK_SIM as SIM
from helpers import cli

from lowbit_hdl import FC, INT, UINT, Conv, MaxPool, Network, TopK
from lowbit_hdl.cost import EngineConfig, engine_figures, engine_format, engine_infos, engine_split
from lowbit_hdl.flow.deploy import ddr_parameters
from lowbit_hdl.flow.plan import StageKind, plan_network
from lowbit_hdl.flow.resources import estimate_plan
from lowbit_hdl.netfile import load_network, save
from lowbit_hdl.runtime.control import split_ddr_parameters
from lowbit_hdl.runtime.ddrimage import DdrLayoutError, pack_image
from lowbit_hdl.runtime.engine import engine_image, read_descriptors
from lowbit_hdl.runtime.layout import DesignLayout

CFG = EngineConfig(pe=8, simd=16)


def engine_cnn(seed: int = 3) -> Network:
    """UINT8 × INT8 first conv + pool (front); padded stride-2 conv + overlapping padded pool,
    a 2×2 conv, an FC (engine, UINT2); INT8 FC streamed from DDR + top-1 (tail)."""
    return Network("eng_cnn", (3, 12, 12), [
        Conv("c0", 8, 3, padding=1, pe=8, simd=3, weight_dtype=INT(8), act=UINT(2)),
        MaxPool("p0", 2),
        Conv("c1", 16, 3, stride=2, padding=1, act=UINT(2)),
        MaxPool("p1", 3, 2, padding=1),
        Conv("c2", 32, 2, act=UINT(2)),
        FC("f0", 16, act=UINT(2)),
        FC("f1", 10, act=None, pe=5, simd=16, weight_dtype=INT(8)),
        TopK("top", 1)], UINT(8)).randomize(seed)


def test_split_of_the_example_networks():
    cases = {  # network: (lanes, front, engine layers, tail)
        "cnv_w1a1": ((32, 32), ["conv0"], ["conv1", "pool0", "conv2", "conv3", "pool1",
                                           "conv4", "conv5", "fc0", "fc1", "fc2"], ["top"]),
        "dorefa_alexnet_w1a2": ((64, 32), ["conv0"],
                                ["conv1", "pool0", "conv2", "pool1", "conv3", "conv4", "pool2",
                                 "fc0", "fc1"], ["fc2", "top5"]),
        "tiny_yolo_w1a3": ((32, 64), ["conv0", "pool0", "conv1", "pool1", "conv2", "pool2"],
                           ["conv3", "pool3", "conv4", "pool4", "conv5", "pool5", "conv6",
                            "conv7"], ["conv8"]),
    }
    for name, ((pe, simd), front, engine, tail) in cases.items():
        net = load_network(f"networks/{name}.py")
        cfg = EngineConfig(pe=pe, simd=simd)
        s = engine_split(net.infer(), cfg.simd, cfg.act_buffer_bits)
        assert [i.name for i in s.front] == front, name
        assert s.names == engine, name
        assert [i.name for i in s.tail] == tail, name
    with pytest.raises(ValueError, match="no Conv/FC layer"):
        engine_split(Network("n", (3, 4, 4), [Conv("c", 8, 3, pe=8, simd=3,
                                                   weight_dtype=INT(8), act=None)],
                             UINT(8)).infer(), 16, 1 << 20)


def test_plan_and_image():
    net = engine_cnn()
    plan = plan_network(net, engine=CFG, ddr_layers=["f1"])
    assert plan.arch == "engine" and plan.uses_ddr
    kinds = [s.kind for s in plan.stages if s.kind not in (StageKind.FIFO, StageKind.DWC)]
    assert kinds == [StageKind.SWU, StageKind.MVTU, StageKind.POOL, StageKind.ENGINE,
                     StageKind.MVTU, StageKind.TOPK]
    eng = plan.ddr.engine
    assert eng.port == 1 and plan.ddr.master_hps == (0, 0)
    fmt = engine_format(plan.split, CFG)
    words = engine_image(engine_infos(plan.split), fmt)
    assert words.size * 8 == eng.nbytes
    assert [d for d in read_descriptors(words)] == [lay["descriptor"] for lay in eng.layers]
    # the runtime packs the same image from the bundle's parameters (weights, thresholds)
    params = ddr_parameters(plan.ddr, net.infer())
    assert set(params) == {"f1", "c1", "c2", "f0", "c1.thresholds", "c2.thresholds",
                           "f0.thresholds"}
    image = pack_image(plan.ddr, *split_ddr_parameters(params))
    assert image[eng.offset:eng.offset + eng.nbytes] == words.astype("<u8").tobytes()
    w, t = split_ddr_parameters(params)
    with pytest.raises(DdrLayoutError, match="engine: layer c2: no thresholds"):
        pack_image(plan.ddr, w, {k: v for k, v in t.items() if k != "c2"})
    with pytest.raises(DdrLayoutError, match=r"engine: no weights given for layers \['f0'\]"):
        pack_image(plan.ddr, {k: v for k, v in w.items() if k != "f0"}, t)
    # bytes read per frame: the table and the tiles, not the alignment gaps
    rows = engine_figures(plan.split, CFG)
    assert eng.read_bytes == 8 * (1 + 4 * len(rows)) + sum(r["tile_bytes"] for r in rows)
    assert plan.ddr.bytes_per_frame == eng.read_bytes + plan.ddr.regions[0].nbytes
    # layout.json round trip keeps what the runtime needs
    lay = plan.layout()
    back = DesignLayout.from_json(json.loads(json.dumps(lay.to_json())))
    assert back.ddr == lay.ddr
    est = estimate_plan(plan)
    assert any(s.kind == "engine" and s.res.bram36 > 0 for s in est.stages)


def test_ddr_layers_must_be_tail_layers():
    with pytest.raises(ValueError, match=r"\['c1'\] run on the engine or in its front"):
        plan_network(engine_cnn(), engine=CFG, ddr_layers=["c1"])


def test_build_engine_options(tmp_path, capsys):
    path = tmp_path / "eng_cnn.npz"
    save(engine_cnn(), path)
    rc, out, _ = cli(["build", str(path), "--arch", "engine", "--engine-lanes", "8", "16",
                      "--dry-run"], capsys)
    assert rc == 0
    assert "engine: 3 layers on 8×16 lanes (UINT2 activations; front c0, p0, tail f1, top)" \
        in out
    rc, _, err = cli(["build", str(path), "--engine-lanes", "8", "16", "--dry-run"], capsys)
    assert rc and "--engine-lanes needs --arch engine" in err
    rc, _, err = cli(["build", str(path), "--arch", "engine", "--engine-lanes", "8", "12",
                      "--dry-run"], capsys)
    assert rc and "engine design:" in err and "must divide the other" in err
    rc, _, err = cli(["build", str(path), "--arch", "engine", "--engine-lanes", "8", "16",
                      "--ddr-layers", "c2", "--dry-run"], capsys)
    assert rc and "engine design: ddr_layers: ['c2'] run on the engine" in err


@pytest.mark.skipif(SIM is None, reason="no HDL simulator")
def test_engine_cosim():
    """Three frames bit-exact, with and without random stalls (AXI-Stream and the DDR
    model); without stalls, cycles per frame within 2 % of the plan (the front's: the FIFO
    before the engine holds the beats it makes while the engine ends a frame) and the first
    frame within 2 % of the plan's latency."""
    from lowbit_hdl.sim.network import simulate_network

    net = engine_cnn()
    plan = plan_network(net, engine=CFG, ddr_layers=["f1"])
    assert plan.stage("engine_fifo").depth > 2  # deepened for the front
    assert plan.cycles_per_frame == plan.stage("c0_mvtu").cycles < plan.engine_latency
    res = simulate_network(net, frames=3, simulator=SIM, plan=plan, stall=0.3)
    assert res.ok, res.summary()
    assert abs(res.cycles_per_frame - plan.cycles_per_frame) <= 0.02 * plan.cycles_per_frame
    tail = max(s.cycles for s in plan.stages if s.layer in {i.name for i in plan.split.tail})
    latency = plan.engine_latency + tail
    assert abs(res.first_frame_latency - latency) <= 0.02 * latency


@pytest.mark.skipif(SIM is None, reason="no HDL simulator")
def test_engine_on_the_simulated_board():
    """The runtime packs the engine image from the bundle's parameters, runs a batch through
    the RTL under its control block, and reads the counters: bit-exact, every byte of the
    image's per-frame reads counted; an AXI error is reported, and the next batch is
    bit-exact."""
    from lowbit_hdl.golden import forward
    from lowbit_hdl.runtime import Accelerator
    from lowbit_hdl.sim.board import SimBoard

    net = engine_cnn()
    plan = plan_network(net, engine=CFG, ddr_layers=["f1"])
    board = SimBoard.from_network(net, plan=plan, simulator=SIM, stall=0.2, seed=1)
    acc = Accelerator(None, board.layout, board,
                      ddr_weights=ddr_parameters(plan.ddr, net.infer()))
    x = np.random.default_rng(0).integers(0, 256, size=(4, 3, 12, 12))
    out, timing = acc.execute(x)
    np.testing.assert_array_equal(out, forward(net, x).output)
    assert timing.counters["BYTES_READ"] == 4 * plan.ddr.bytes_per_frame
    # the image's address goes wrong: the sequencer's reads fail (SLVERR), the run ends with
    # STATUS.ERROR and the runtime says so instead of hanging
    from lowbit_hdl.runtime import regs
    from lowbit_hdl.runtime.control import AcceleratorError

    board.write_control(regs.offset("WEIGHTS_BASE_LO"), 0x0100_0000)
    with pytest.raises(AcceleratorError, match="SLVERR"):
        acc.execute(x[:2])
    # the runtime recovers: with the right address the next batch is bit-exact (the
    # simulated board starts each batch's simulation from reset)
    board.write_control(regs.offset("WEIGHTS_BASE_LO"), acc.control.base)
    out, _ = acc.execute(x[1:])
    np.testing.assert_array_equal(out, forward(net, x[1:]).output)


def test_engine_ports_plan():
    """``--hp-ports 2``: the engine gets two read masters (ports 1 and 2 after the tail's
    region, on HP ports 1 and 0), the m_axi ports of the top, the image with interleaved
    sub-regions; the engine layers' cycles drop where tiles bound them."""
    from lowbit_hdl.flow.build import engine_ports

    net = engine_cnn()
    assert engine_ports(4, 8, 16) == 2 and engine_ports(2, 8, 16) == 2
    assert engine_ports(4, 16, 16) == 4 and engine_ports(1, 16, 16) == 1
    cfg2 = EngineConfig(pe=8, simd=16, ports=2)
    one = plan_network(net, engine=CFG, ddr_layers=["f1"], hp_ports=2)
    plan = plan_network(net, engine=cfg2, ddr_layers=["f1"], hp_ports=2)
    eng = plan.ddr.engine
    assert (eng.port, eng.masters, eng.hps) == (1, 2, (1, 0))
    assert plan.ddr.master_hps == (0, 1, 0)
    assert eng.format["ports"] == 2
    assert eng.read_bytes == one.ddr.engine.read_bytes  # thresholds already whole beats
    assert sum(eng.master_words()) == eng.words
    rows1, rows2 = engine_figures(one.split, CFG), engine_figures(plan.split, cfg2)
    assert all(b["cycles"] <= a["cycles"] for a, b in zip(rows1, rows2, strict=True))
    assert plan.engine_latency < one.engine_latency
    back = DesignLayout.from_json(json.loads(json.dumps(plan.layout().to_json())))
    assert back.ddr == plan.layout().ddr
    params = ddr_parameters(plan.ddr, net.infer())
    image = pack_image(plan.ddr, *split_ddr_parameters(params))
    words = engine_image(engine_infos(plan.split), engine_format(plan.split, cfg2))
    assert image[eng.offset:eng.offset + eng.nbytes] == words.astype("<u8").tobytes()
    est1, est2 = estimate_plan(one), estimate_plan(plan)
    assert est2.total.lut > est1.total.lut


def test_stream_region_masters():
    """``stream_ports=2``: the tail FC's region (640-bit beats) is read by two masters
    (ports 0, 1 on HP ports 0, 1; the engine's after them), stored as two interleaved
    sub-regions, its MVTU stage's DDR bound halved; a 4-master request falls back to 2
    (640 bits is not a multiple of 256)."""
    from lowbit_hdl.runtime.ddr import deinterleave_region, layer_weight_words
    from lowbit_hdl.runtime.ddrimage import region_masters

    assert [region_masters(640, p) for p in (1, 2, 4)] == [1, 2, 2]
    assert region_masters(64, 4) == region_masters(32, 4) == 1 and region_masters(2048, 4) == 4
    net = engine_cnn()
    cfg2 = EngineConfig(pe=8, simd=16, ports=2)
    one = plan_network(net, engine=cfg2, ddr_layers=["f1"], hp_ports=2)
    plan = plan_network(net, engine=cfg2, ddr_layers=["f1"], hp_ports=4, stream_ports=4)
    r = plan.ddr.regions[0]
    assert (r.port, r.masters, r.hps) == (0, 2, (0, 1))
    assert (plan.ddr.engine.port, plan.ddr.engine.hps) == (2, (2, 3))
    assert plan.ddr.master_hps == (0, 1, 2, 3)
    # 10×16 INT8 weights: 20 words, NF·SF = 2 beats: DDR-bound, 20 → 10 cycles
    assert (one.stage("f1_mvtu").cycles, plan.stage("f1_mvtu").cycles) == (20, 10)
    params = ddr_parameters(plan.ddr, net.infer())
    w, t = split_ddr_parameters(params)
    image = np.frombuffer(pack_image(plan.ddr, w, t), dtype="<u8")
    stored = image[r.offset // 8:(r.offset + r.nbytes) // 8]
    f1 = next(i for i in net.infer() if i.name == "f1")
    want = layer_weight_words(w["f1"], f1.layer.weight_dtype, f1.layer.pe, f1.layer.simd)
    np.testing.assert_array_equal(deinterleave_region(stored, 2), want)
    back = DesignLayout.from_json(json.loads(json.dumps(plan.layout().to_json())))
    assert back.ddr == plan.layout().ddr
    assert estimate_plan(plan).total.lut > estimate_plan(one).total.lut


@pytest.mark.skipif(SIM is None, reason="no HDL simulator")
def test_engine_cosim_two_ports():
    """The engine's tile stream over two read masters and the tail FC's weights over two
    more (HP ports 0, 1 each): two frames bit-exact under random stalls, cycles within
    the plan's bound."""
    from lowbit_hdl.sim.network import simulate_network

    net = engine_cnn()
    plan = plan_network(net, engine=EngineConfig(pe=8, simd=16, ports=2), ddr_layers=["f1"],
                        hp_ports=2, stream_ports=2)
    assert plan.ddr.master_hps == (0, 1, 0, 1)
    res = simulate_network(net, frames=2, simulator=SIM, plan=plan, stall=0.3)
    assert res.ok, res.summary()
    assert plan.stage("c0_mvtu").cycles <= res.cycles_per_frame <= plan.cycles_per_frame
