"""Hybrid designs (weights of some layers in DDR): the plan, the DDR image layout, the build
options and a whole-network co-simulation against cocotbext-axi DDR models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import cli

from lowbit_hdl import BIPOLAR, FC, INT, UINT, Conv, MaxPool, Network, TopK
from lowbit_hdl.cost import (
    WindowGeometry,
    mvtu_cycles,
    replay_period,
    tiled_output_period,
    tiled_period,
    transpose_period,
    window_cycles,
)
from lowbit_hdl.flow.plan import TILED_FM_BUFFERS, TRANSPOSE_BUFFERS, StageKind, plan_network
from lowbit_hdl.flow.resources import estimate_plan
from lowbit_hdl.netfile import save
from lowbit_hdl.runtime.ddr import unpack_words, weight_beats
from lowbit_hdl.runtime.ddrimage import (
    REGION_ALIGN,
    DdrLayoutError,
    pack_image,
)
from lowbit_hdl.runtime.layout import DesignLayout


def hybrid_cnn(seed: int = 3) -> Network:
    """UINT8 pixels × INT8 weights in the first conv (padded) → pool → padded conv →
    stride-2 conv → INT8 FC → top-1; every Conv/FC layer fills whole 64-bit DDR words."""
    return Network("hyb_cnn", (3, 8, 8), [
        Conv("c0", 8, 3, padding=1, pe=4, simd=3, weight_dtype=INT(8), act=UINT(2)),
        MaxPool("p0", 2),
        Conv("c1", 16, 3, padding=1, pe=4, simd=8, act=BIPOLAR),
        Conv("c2", 16, 3, stride=2, pe=4, simd=16, act=UINT(2)),
        FC("f0", 10, act=None, pe=5, simd=16, weight_dtype=INT(8)),
        TopK("top", 1)], UINT(8)).randomize(seed)


DDR = ["c1", "c2", "f0"]
#: every layer in DDR, the INT8 first layer included (tiled, DSP products)
ALL_DDR = ["c0", "c1", "c2", "f0"]


def test_plan_stages_and_regions():
    net = hybrid_cnn()
    plan = plan_network(net, ddr_layers=DDR, hp_ports=2)
    assert plan.arch == "hybrid"
    kinds = [(s.name, s.kind, s.placement) for s in plan.stages if s.layer == "c1"
             and s.kind not in (StageKind.FIFO, StageKind.DWC)]
    assert kinds == [("c1_fm", StageKind.REPLAY, ""), ("c1_swu", StageKind.SWU, ""),
                     ("c1_mvtu", StageKind.MVTU, "tiled"), ("c1_tr", StageKind.TRANSPOSE, "")]
    assert plan.stage("f0_mvtu").placement == "stream"
    assert plan.stage("c0_mvtu").placement == ""  # on chip
    infos = {i.name: i for i in net.infer()}
    c1 = infos["c1"]
    nf, sf, p = 16 // 4, c1.mw // 8, c1.vectors
    fm = plan.stage("c1_fm")
    assert (fm.in_beats, fm.out_beats) == (4 * 4 * 8 // 8, 4 * 4 * nf)
    # c1's input comes from the on-chip c0 (and the pool) over c0's 1,152 cycles per frame:
    # the replay buffer's period is that of its input (cost.tiled_period)
    t_tile = window_cycles(WindowGeometry(4, 4, 1, 3, 1, 1))
    assert fm.cycles == max(replay_period(fm.in_beats, nf, TILED_FM_BUFFERS),
                            tiled_period(nf, t_tile, plan.stage("c0_mvtu").cycles)) == 1152
    assert plan.stage("c1_mvtu").cycles == mvtu_cycles(16, c1.mw, 4, 8, p) == nf * p * sf
    # the MVTU's next frame waits for the transpose buffer's readout (cost.tiled_output_period)
    assert plan.stage("c1_tr").cycles == max(
        transpose_period(p, nf, TRANSPOSE_BUFFERS),
        tiled_output_period(nf, t_tile, p * nf, TRANSPOSE_BUFFERS)) == 576
    swu = plan.stage("c1_swu")
    assert swu.out_beats == nf * p * sf
    assert swu.cycles == nf * window_cycles(WindowGeometry(4, 4, 1, 3, 1, 1))
    # regions: MVTU consumption order, 4 KiB aligned, masters round-robin over the HP ports
    regs = plan.ddr.regions
    assert [r.layer for r in regs] == DDR and [r.port for r in regs] == [0, 1, 2]
    assert [r.hp for r in regs] == [0, 1, 0]
    assert all(r.offset % REGION_ALIGN == 0 for r in regs)
    f0 = plan.ddr.region("f0")
    assert (f0.beat_bits, f0.beats, f0.nbytes) == (5 * 16 * 8, 2, 10 * 16)
    assert plan.ddr.bytes_per_frame == sum(i.mh * i.mw * i.layer.weight_dtype.bits // 8
                                           for i in infos.values() if i.name in DDR)
    # the busiest HP port bounds the frame: port 0 carries c1 and f0
    assert plan.ddr_port_cycles == (regs[0].nbytes + regs[2].nbytes) // 8
    assert plan.cycles_per_frame >= plan.ddr_port_cycles


def test_ddr_bound_stage_cycles():
    """A streamed layer wider than a 64-bit word per cycle is bound by its read master."""
    net = Network("wide", (1, 8, 8), [FC("fc0", 64, pe=8, simd=64),
                                      FC("fc1", 8, act=None, pe=8, simd=64)], UINT(2))
    net.randomize(0)
    plan = plan_network(net, ddr_layers=["fc0"])
    st = plan.stage("fc0_mvtu")
    assert st.cycles == 64 * 64 // 64 == max(64 * 64 // 64, mvtu_cycles(64, 64, 8, 64))
    plan2 = plan_network(net, ddr_layers=["fc0", "fc1"], hp_ports=1)
    assert plan2.ddr_port_cycles == (64 * 64 + 8 * 64) // 64


def test_plan_errors():
    net = hybrid_cnn()
    with pytest.raises(ValueError, match="'p0' is not a Conv or FC"):
        plan_network(net, ddr_layers=["p0"])
    odd = Network("odd", (3, 8, 8), [Conv("c0", 8, 3, pe=4, simd=3, weight_dtype=INT(2))],
                  UINT(8))
    with pytest.raises(DdrLayoutError, match="layer c0: 432 weight bits"):
        plan_network(odd, ddr_layers=["c0"])  # 8·27·2 bits: not whole 64-bit words
    with pytest.raises(DdrLayoutError, match="hp_ports=3"):
        plan_network(net, ddr_layers=["c1"], hp_ports=3)


def test_pack_image_regions():
    net = hybrid_cnn()
    plan = plan_network(net, ddr_layers=DDR)
    infos = {i.name: i for i in net.infer()}
    weights = {n: infos[n].weight_matrix() for n in DDR}
    image = pack_image(plan.ddr, weights)
    assert len(image) == plan.ddr.total_bytes
    for r in plan.ddr.regions:
        info = infos[r.layer]
        words = np.frombuffer(image[r.offset:r.offset + r.nbytes], "<u8")
        beats = unpack_words(words, r.beat_bits, r.beats)
        assert beats == weight_beats(weights[r.layer], info.layer.weight_dtype, r.pe, r.simd)
    gap = image[plan.ddr.regions[0].nbytes:plan.ddr.regions[1].offset]
    assert gap == bytes(len(gap))
    with pytest.raises(DdrLayoutError, match="no weights given"):
        pack_image(plan.ddr, {"c1": weights["c1"]})
    with pytest.raises(DdrLayoutError, match="shape"):
        pack_image(plan.ddr, {**weights, "f0": weights["f0"][:, :8]})


def test_layout_json_round_trip(tmp_path):
    plan = plan_network(hybrid_cnn(), ddr_layers=DDR, hp_ports=2)
    lay = plan.layout()
    assert lay.ddr == plan.ddr
    lay.save(tmp_path / "layout.json")
    back = DesignLayout.load(tmp_path / "layout.json")
    assert back == lay and back.ddr.hp_ports == 2
    d = json.loads((tmp_path / "layout.json").read_text())
    d["ddr"]["regions"][1]["offset"] = 100  # not 4 KiB aligned
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="offset 100 is not a multiple of 4096"):
        DesignLayout.load(tmp_path / "bad.json")
    # a dataflow design has no DDR section
    assert plan_network(hybrid_cnn()).layout().ddr is None


def test_estimate_drops_weight_memories():
    net = hybrid_cnn()
    flow = estimate_plan(plan_network(net))
    hyb = estimate_plan(plan_network(net, ddr_layers=DDR))
    assert {s.stage for s in hyb.stages} >= {"c1_fm", "c1_tr", "ddr"}
    assert hyb.total.lut > flow.total.lut  # read masters, converters, control


def test_build_arch_options(tmp_path, capsys):
    path = tmp_path / "hyb_cnn.npz"
    save(hybrid_cnn(), path)
    rc, out, _ = cli(["build", str(path), "--arch", "hybrid", "--ddr-layers", "c1,c2,f0",
                      "--hp-ports", "2", "--dry-run"], capsys)
    assert rc == 0
    assert "hybrid: weights of 3 layer(s) from DDR (c1 tiled, c2 tiled, f0 stream)" in out
    rc, out, err = cli(["build", str(path), "--arch", "auto", "--dry-run"], capsys)
    assert rc == 0 and "hybrid:" not in out  # fits on chip: dataflow
    rc, _, err = cli(["build", str(path), "--ddr-layers", "c1", "--dry-run"], capsys)
    assert rc and "--ddr-layers needs --arch hybrid" in err
    rc, _, err = cli(["build", str(path), "--arch", "hybrid", "--ddr-layers", "p0",
                      "--dry-run"], capsys)
    assert rc and "'p0' is not a Conv or FC layer" in err
    odd = Network("odd", (3, 8, 8), [Conv("c0", 8, 3, pe=4, simd=3, weight_dtype=INT(2))],
                  UINT(8)).randomize(0)
    save(odd, tmp_path / "odd.npz")
    rc, _, err = cli(["build", str(tmp_path / "odd.npz"), "--arch", "hybrid", "--ddr-layers",
                      "c0", "--dry-run"], capsys)
    assert rc and "layer c0: 432 weight bits are not a whole number" in err


def test_build_folding_placements(tmp_path, capsys):
    """A folding file's "placements" entry chooses the DDR layers of --arch hybrid unless
    --ddr-layers is given; its values are checked against the layers."""
    path = tmp_path / "hyb_cnn.npz"
    save(hybrid_cnn(), path)
    fold = tmp_path / "fold.json"

    def write(placements: dict) -> None:
        fold.write_text(json.dumps({"c2": {"pe": 2, "simd": 16}, "placements": placements}))

    write({"c0": "onchip", "c2": "tiled", "f0": "stream"})
    rc, out, _ = cli(["build", str(path), "--arch", "hybrid", "--folding", str(fold),
                      "--dry-run"], capsys)
    assert rc == 0, out
    assert "hybrid: weights of 2 layer(s) from DDR (c2 tiled, f0 stream)" in out
    row = next(line.split() for line in out.splitlines() if line.startswith("c2 "))
    assert row[7:9] == ["2", "16"]  # the file's folding applies too: PE, SIMD
    rc, out, _ = cli(["build", str(path), "--arch", "hybrid", "--folding", str(fold),
                      "--ddr-layers", "c1", "--dry-run"], capsys)
    assert rc == 0 and "hybrid: weights of 1 layer(s) from DDR (c1 tiled)" in out
    rc, out, _ = cli(["build", str(path), "--folding", str(fold), "--dry-run"], capsys)
    assert rc == 0 and "hybrid:" not in out  # dataflow: placements unused
    write({"f0": "tiled"})
    rc, _, err = cli(["build", str(path), "--arch", "hybrid", "--folding", str(fold),
                      "--dry-run"], capsys)
    assert rc and "placements: layer f0: a FC layer in DDR is 'stream', not 'tiled'" in err
    write({"p0": "tiled"})
    rc, _, err = cli(["build", str(path), "--arch", "hybrid", "--folding", str(fold),
                      "--dry-run"], capsys)
    assert rc and "placements: 'p0' is not a Conv or FC layer" in err
    write({"c0": "onchip"})
    rc, _, err = cli(["build", str(path), "--arch", "hybrid", "--folding", str(fold),
                      "--dry-run"], capsys)
    assert rc and "placements put no layer in DDR" in err


def test_build_writes_hybrid_layout(tmp_path):
    from lowbit_hdl.flow.build import build

    res = build(hybrid_cnn(), tmp_path / "out", arch="hybrid", ddr_layers=DDR, hp_ports=2,
                deploy=False, lint=False, progress=None)
    lay = DesignLayout.load(tmp_path / "out" / "layout.json")
    assert lay.ddr == res.plan.ddr
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["stream"]["arch"] == "hybrid"
    assert rep["stream"]["ddr"]["regions"][2]["layer"] == "f0"
    top = (tmp_path / "out" / "rtl" / "lowbit_top.v").read_text()
    for port in ("s_axil__awaddr", "m_axi0__araddr", "m_axi2__rdata"):
        assert port in top


def test_hybrid_cosim_bit_exact():
    """Every layer's weights in DDR: tiled convolutions (the UINT8×INT8 first layer, padding,
    stride 2) and an INT8 streamed FC: several frames bit-exact under random AXI-Stream
    stalls and AR/R pauses, cycles per frame as planned, and the control block's counters."""
    from lowbit_hdl.sim.network import simulate_network

    net = hybrid_cnn()
    plan = plan_network(net, ddr_layers=ALL_DDR, hp_ports=4)
    frames = 3
    res = simulate_network(net, frames=frames, stall=0.3, plan=plan, seed=5,
                           simulator="icarus")
    assert res.ok, res.summary()
    assert res.cycles_per_frame == plan.cycles_per_frame
    for regs in res.registers.values():
        assert regs["STATUS"] == 0b010  # done, not busy, no error
        assert regs["ERROR"] == 0
        assert regs["BYTES_READ"] == frames * plan.ddr.bytes_per_frame
        assert regs["CYCLES"] > frames * plan.cycles_per_frame


def test_tiled_period():
    from lowbit_hdl.cost import tiled_period

    # double-buffered: the slower of the replays and the input
    assert tiled_period(4, 144, 100) == 4 * 144
    assert tiled_period(4, 144, 700) == 700
    # single-buffered (an upper bound): a slow input overlaps only the last replay of the
    # previous frame and the first of its own
    assert tiled_period(4, 144, 250, 1) == 4 * 144
    assert tiled_period(4, 144, 576, 1) == 576 + 2 * 144
    assert tiled_period(1, 144, 576, 1) == 576 and tiled_period(2, 144, 576, 1) == 576
    with pytest.raises(ValueError):
        tiled_period(0, 1, 1)
    with pytest.raises(ValueError):
        tiled_period(2, 1, 1, 3)


def test_tiled_output_period():
    from lowbit_hdl.cost import tiled_output_period

    # AlexNet conv3 (NF 128, one tile 5,292 cycles, 196·128 output beats), single-buffered
    # transpose: the last tile's readout delays the next frame's first write (measured
    # 696,997 cycles per frame in bench/seed_layers.py)
    assert tiled_output_period(128, 5292, 25_088) == 127 * 5292 + 25_088 == 697_172
    assert tiled_output_period(128, 5292, 25_088, 2) == 128 * 5292
    assert tiled_output_period(4, 144, 64) == 4 * 144
    with pytest.raises(ValueError):
        tiled_output_period(1, 1, 1, 0)


def slow_input_tiled() -> Network:
    """One tiled conv whose input (one element per beat) takes longer than two replays."""
    return Network("slow_tiled", (16, 6, 6), [
        Conv("c0", 16, 3, pe=4, simd=16, act=UINT(2))], UINT(2)).randomize(7)


def test_plan_slow_input_tiled():
    plan = plan_network(slow_input_tiled(), input_elems=1, ddr_layers=["c0"])
    # NF 4, one replay = 4·4 pixels × 9 beats = 144 cycles; the input's 576 beats are
    # written while the previous frame is replayed
    assert plan.stage("c0_fm").cycles == 576 == plan.cycles_per_frame


def test_hybrid_cosim_slow_input_tiled():
    """The tiled layer's period when its input is slow (tiled_period), measured."""
    from lowbit_hdl.sim.network import simulate_network

    net = slow_input_tiled()
    plan = plan_network(net, input_elems=1, ddr_layers=["c0"])
    res = simulate_network(net, frames=4, stall=0.0, plan=plan, seed=2, simulator="icarus")
    assert res.ok, res.summary()
    assert res.cycles_per_frame == plan.cycles_per_frame
