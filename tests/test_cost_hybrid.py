"""The DDR architectures' cost model (lowbit_hdl.ddrcost via lowbit_hdl.cost) against
hand-computed cases, and ``info --arch hybrid|engine``."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import cli

from lowbit_hdl import BIPOLAR, FC, Conv, Network
from lowbit_hdl.cost import (
    EngineConfig,
    choose_placements,
    ddr_cycles,
    engine_cost,
    hybrid_cost,
    tiled_phases,
    weight_bytes,
)

ROOT = Path(__file__).resolve().parent.parent


def fc_net() -> Network:
    # fc0: MW 64, MH 32, PE 8, SIMD 16 → NF 4, SF 4, 16 cycles; 256 weight bytes
    # fc1: MW 32, MH 16, PE 2, SIMD 8 → NF 8, SF 4, 32 cycles; 64 weight bytes
    return Network("tfc", (64, 1, 1), [FC("fc0", 32, pe=8, simd=16),
                                       FC("fc1", 16, act=None, pe=2, simd=8)], BIPOLAR)


def conv_net() -> Network:
    # c0: 4×6×6 → 8×4×4, k3: MW 36, MH 8, P 16, PE 2, SIMD 4 → NF 4, SF 9, 576 cycles
    # c1: 8×4×4 → 16×1×1, k4: MW 128, MH 16, P 1, PE 16, SIMD 8 → NF 1, SF 16; 256 bytes
    return Network("tcnv", (4, 6, 6), [Conv("c0", 8, kernel=3, pe=2, simd=4),
                                       Conv("c1", 16, kernel=4, pe=16, simd=8)], BIPOLAR)


def test_ddr_cycles_and_bytes():
    assert [ddr_cycles(256, p) for p in (1, 2, 4)] == [32, 16, 8]
    assert ddr_cycles(36, 1) == 5 and ddr_cycles(0, 2) == 0
    infos = fc_net().infer()
    assert [weight_bytes(i) for i in infos] == [256, 64]
    with pytest.raises(ValueError):
        ddr_cycles(8, 0)
    with pytest.raises(TypeError):
        ddr_cycles(8.0, 1)


@pytest.mark.parametrize("ports", [1, 2, 4])
def test_fc_stream(ports):
    cost = hybrid_cost(fc_net(), ports, {"fc0": "stream", "fc1": "stream"})
    fc0, fc1 = cost.layers
    assert (fc0.placement, fc0.compute, fc0.ddr_bytes) == ("stream", 16, 256)
    # each DDR layer has its own 64-bit read master: 256 bytes = 32 words, whatever the ports
    assert fc0.ddr_cycles == 256 // 8
    fc0_cycles = 32
    assert (fc0.cycles, fc0.bound) == (32, "ddr")
    assert (fc1.compute, fc1.ddr_cycles, fc1.cycles, fc1.bound) == (32, 64 // 8, 32,
                                                                    "compute")
    assert cost.ddr_bytes == 320
    # shared ports: 320 bytes take 40 / 20 / 10 cycles against the slowest layer's 32
    assert cost.interval == max(32, 320 // (8 * ports))
    assert cost.bound == ("ddr (shared ports)" if ports == 1 else "ddr (fc0)")
    # one frame: input 64/16 = 4 beats; fc0 fold 0 needs the input, folds 1-3 follow:
    # s0 = max(4, 0 + T0/4), e0 = s0 + 3·T0/4; fc1 (NF 8): s1 = max(e0, s0 + 4), e1 = s1 + 28
    t0 = fc0_cycles
    s0 = max(4, t0 // 4)
    e0 = s0 + t0 - t0 // 4
    s1 = max(e0, s0 + 4)
    assert (fc0.start, fc0.end, fc1.start, fc1.end) == (s0, e0, s1, s1 + 28)
    assert cost.latency_cycles == s1 + 28


def test_fc_onchip_has_no_ddr():
    cost = hybrid_cost(fc_net(), 1)
    assert [c.placement for c in cost.layers] == ["onchip", "onchip"]
    assert cost.ddr_bytes == 0 and [c.cycles for c in cost.layers] == [16, 32]
    assert cost.interval == 32


@pytest.mark.parametrize("ports, d, bound", [(1, 32, "ddr"), (2, 32, "ddr"), (4, 32, "ddr")])
def test_conv_tiled(ports, d, bound):
    net = conv_net()
    ph = tiled_phases(net.infer()[1])
    # fill 4·4·8/8, compute NF·SF·P = 1·16·1, drain P·NF = 1
    assert (ph.fill, ph.compute, ph.drain) == (16, 16, 1)
    cost = hybrid_cost(net, ports, {"c1": "tiled"})
    c0, c1 = cost.layers
    assert (c0.placement, c0.cycles, c0.ddr_bytes, c0.bound) == ("onchip", 576, 0, "compute")
    assert (c1.placement, c1.ddr_bytes, c1.ddr_cycles, c1.bound) == ("tiled", 256, d, bound)
    assert c1.compute == 16 + 16 and c1.cycles == 16 + max(16, d)
    # one frame: input 4·6·6/4 = 36 beats; c0 starts after K/H = 3/6 of it, its last row
    # follows the input by 576/4 cycles; c1 fills with c0, then computes, then drains
    assert (c0.start, c0.end) == (18, max(36 + 144, 18 + 576))
    assert (c1.start, c1.end) == (594 + max(16, d), 594 + max(16, d) + 1)
    assert cost.interval == 576 and cost.bound == "compute (c0)"


def test_conv_tiled_rejected_for_fc_and_unknown_layer():
    with pytest.raises(ValueError, match="fc0"):
        hybrid_cost(fc_net(), 1, {"fc0": "tiled"})
    with pytest.raises(ValueError, match="nope"):
        hybrid_cost(fc_net(), 1, {"nope": "stream"})
    with pytest.raises(ValueError):
        hybrid_cost(fc_net(), 0)


def test_placement_rule():
    infos = conv_net().infer()
    bram = {("c0", "onchip"): 10, ("c0", "tiled"): 6, ("c1", "onchip"): 20,
            ("c1", "tiled"): 5}

    def bram_of(i, pl):
        return bram[i.name, pl]

    assert choose_placements(infos, 40, bram_of) == {"c0": "onchip", "c1": "onchip"}
    # 30 > 25: c1 saves most (15) → 15 ≤ 25
    assert choose_placements(infos, 25, bram_of) == {"c0": "onchip", "c1": "tiled"}
    assert choose_placements(infos, 11, bram_of) == {"c0": "tiled", "c1": "tiled"}
    # fixed BRAM counts; given placements are kept
    assert choose_placements(infos, 25, bram_of, fixed_bram36=12) == {"c0": "tiled",
                                                                       "c1": "tiled"}
    assert choose_placements(infos, 25, bram_of, given={"c1": "onchip"}) == {
        "c0": "tiled", "c1": "onchip"}
    with pytest.raises(ValueError):
        choose_placements(infos, 25, bram_of, given={"c1": "stream"})


def test_engine_conv():
    cfg = EngineConfig(pe=4, simd=8, dsp_pe=1, dsp_simd=1, act_buffer_bits=64,
                       weight_buffer_bits=1024, overhead=10)
    net = conv_net()
    i0, i1 = net.infer()
    # one BIPOLAR threshold per neuron, acc_bits wide: MH·acc/8 bytes (rounded up)
    t0, t1 = -(-8 * i0.acc_bits // 8), -(-16 * i1.acc_bits // 8)
    assert (t0, t1) == (i0.acc_bits, 2 * i1.acc_bits)
    cost = engine_cost(net, cfg, 1)
    c0, c1 = cost.layers
    # c0 (the v1 loop): K·K·ceil(C/SIMD) = 9·1, ceil(8/4) = 2, 16 pixels → 288; output 128
    # bits > 64: written to DDR (16 bytes); weights 36 bytes
    assert (c0.compute, c0.tiles, c0.act_out, c0.ddr_bytes) == (288, 1, "ddr", 52 + t0)
    assert c0.ddr_cycles == -(-(52 + t0) // 8)
    assert (c0.cycles, c0.bound) == (298, "compute")
    # c1: 4·4·ceil(8/8) = 16, ceil(16/4) = 4 → 64; 2048 weight bits = 2 tiles, so the
    # spilled input (16 bytes) is read twice: 256 + 32 bytes
    assert (c1.compute, c1.tiles, c1.act_in, c1.act_out) == (64, 2, "ddr", "out")
    assert (c1.ddr_bytes, c1.ddr_cycles, c1.cycles) == (288 + t1, -(-(288 + t1) // 8), 74)
    assert cost.latency_cycles == 372 and cost.ddr_bytes == 340 + t0 + t1
    assert engine_cost(net, cfg, 2).layers[1].ddr_cycles == -(-(288 + t1) // 16)


def test_engine_fc_ddr_bound():
    cfg = EngineConfig(pe=8, simd=16, dsp_pe=1, dsp_simd=1, overhead=0)
    net = fc_net()
    acc0 = net.infer()[0].acc_bits
    cost = engine_cost(net, cfg, 1)
    # fc0: 4·4 = 16 cycles against 256 bytes + 32 thresholds (at least 33 cycles at one
    # port); fc1 (no thresholds): 2·2 = 4 cycles against 64 bytes = 8 cycles
    d0 = -(-(256 + 32 * acc0 // 8) // 8)
    assert [(c.compute, c.ddr_cycles, c.cycles, c.bound) for c in cost.layers] == [
        (16, d0, d0, "ddr"), (2 * 2, 8, 8, "ddr")]


def test_info_arch_hybrid(capsys):
    net = str(ROOT / "networks" / "cnv_w1a1.py")
    rc, out, err = cli(["info", net, "--arch", "hybrid", "--ports", "2",
                        "--placement", "fc0=stream"], capsys)
    assert rc == 0, err
    row = next(line for line in out.splitlines() if line.startswith("fc0"))
    # fc0: 256 × 512 BIPOLAR = 16,384 bytes = 2,048 cycles of its read master; PE 1,
    # SIMD 4: 512 · 64 = 32,768 cycles → compute-bound
    cells = row.replace(" *", "").split()
    assert cells[1:3] == ["fc", "stream"] and "16,384" in cells and "2,048" in cells
    assert "compute" in cells
    assert "2 HP port(s)" in out and "DDR: 0.016 MB per frame" in out
    assert "given: fc0=stream" in out
    rc, out, err = cli(["info", net, "--arch", "engine"], capsys)
    assert rc == 0 and "one engine" in out and "latency = frame interval" in out
    rc, out, err = cli(["info", net, "--arch", "hybrid", "--placement", "fc0=tiled"], capsys)
    assert rc == 2 and "lowbit_hdl info: error: --placement" in err
    rc, out, err = cli(["info", net], capsys)  # default: today's table
    assert rc == 0 and "bottleneck" in out


def big_fc_net() -> Network:
    # fc0: 1024 × 512 BIPOLAR = 64 KiB of weights; fc1 small
    return Network("bfc", (1024, 1, 1), [FC("fc0", 512, pe=8, simd=32),
                                         FC("fc1", 16, act=None, pe=2, simd=8)], BIPOLAR)


def test_placement_resources_and_rule_with_the_estimate():
    from lowbit_hdl.flow.resources import (
        SHELL,
        Device,
        hybrid_placements,
        memory_resources,
        mvtu_resources,
        placement_resources,
    )

    net = big_fc_net()
    fc0 = net.infer()[0]
    on = placement_resources(fc0, "onchip")
    st = placement_resources(fc0, "stream", ports=2)
    assert on == mvtu_resources(fc0, 8, 32)
    # stream: no weight memories (8 PE × 32 bits × 2048 words, two BRAM36 each: 16 in all);
    # the read master's 64-word FIFO is LUT-RAM
    weights = memory_resources(32, 2048, rom=True)
    assert weights.bram36 == 2 and on.bram36 == 16
    assert st.bram36 == on.bram36 - 8 * weights.bram36
    assert st.lut > mvtu_resources(fc0, 8, 32, "stream").lut  # read master, converter
    with pytest.raises(ValueError):
        placement_resources(fc0, "tiled")
    # conv tiled: replay (4·6·6 values), weight tile and transpose buffers on top
    c1 = conv_net().infer()[1]
    assert placement_resources(c1, "tiled").lut > mvtu_resources(c1, 16, 8, "tiled").lut
    # the rule with a roomy device keeps everything on chip; with a tight one fc0 streams
    roomy = hybrid_placements(net)
    assert roomy == {"fc0": "onchip", "fc1": "onchip"}
    tight = Device("tight", 53_200, 106_400, int(SHELL.bram36) + 2, 220)
    assert hybrid_placements(net, device=tight) == {"fc0": "stream", "fc1": "onchip"}
