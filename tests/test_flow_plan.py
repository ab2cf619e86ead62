"""Pipeline plan: stage chain, width converters, FIFO depth rule, AXI-Stream layouts, and the
resource estimate / fit check, for hand-made networks and every example network."""

from pathlib import Path

import pytest
from helpers import small_cnn

from lowbit_hdl import BIPOLAR, FC, Network, TopK
from lowbit_hdl.cost import network_cost
from lowbit_hdl.flow.plan import (
    DMA_WIDTHS,
    FIFO_MIN_DEPTH,
    StageKind,
    axi_width,
    choose_input_elems,
    plan_network,
)
from lowbit_hdl.flow.resources import (
    XC7Z020,
    Resources,
    bram18_count,
    estimate_plan,
    fit_check,
    memory_resources,
)
from lowbit_hdl.netfile import load_network
from lowbit_hdl.runtime.layout import DesignLayout

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
EXAMPLES = sorted(p for p in NETWORKS.glob("*.py") if p.stem != "bnn_pynq")



def test_stage_chain_and_links():
    plan = plan_network(small_cnn())
    kinds = [(s.name, s.kind) for s in plan.stages]
    assert kinds == [
        ("c0_swu_dwc", "dwc"), ("c0_swu_fifo", "fifo"), ("c0_swu", "swu"), ("c0_mvtu", "mvtu"),
        ("p0_pool_fifo", "fifo"), ("p0_pool", "maxpool"),
        ("c1_swu_dwc", "dwc"), ("c1_swu_fifo", "fifo"), ("c1_swu", "swu"), ("c1_mvtu", "mvtu"),
        ("f0_mvtu_dwc", "dwc"), ("f0_mvtu_fifo", "fifo"), ("f0_mvtu", "mvtu"),
        ("top_topk_fifo", "fifo"), ("top_topk", "topk"),
        ("output_fifo", "fifo"),
    ]
    # every stage's input matches its producer's output, element bits included
    assert plan.stages[0].in_elems == plan.input.elems_per_beat
    for a, b in zip(plan.stages, plan.stages[1:], strict=False):
        assert (a.out_elems, a.out_bits) == (b.in_elems, b.in_bits), (a.name, b.name)
    assert plan.stages[-1].out_elems == plan.output.elems_per_beat
    # a converter exactly where widths differ
    c1 = plan.stage("c1_swu_dwc")
    assert (c1.in_elems, c1.out_elems, c1.in_bits) == (4, 8, 2)  # c0 PE=4 → c1 SIMD=8
    assert plan.stage("f0_mvtu_dwc").in_elems == 2 and plan.stage("f0_mvtu_dwc").out_elems == 16
    assert "p0_pool_dwc" not in [s.name for s in plan.stages]  # pool inherits PE 4


def test_stage_kinds_are_typed():
    """Stage kinds are StageKind members; reports and JSON carry their names unchanged."""
    import json

    from lowbit_hdl.flow.top import NetworkTop, default_library

    plan = plan_network(small_cnn())
    assert all(isinstance(s.kind, StageKind) for s in plan.stages)
    assert [s.name for s in plan.of_kind(StageKind.SWU)] == ["c0_swu", "c1_swu"]
    assert plan.of_kind("swu") == plan.of_kind(StageKind.SWU)
    d = plan.to_dict()
    assert [x["kind"] for x in d["stages"]][:4] == ["dwc", "fifo", "swu", "mvtu"]
    assert all(type(x["kind"]) is str for x in d["stages"])
    assert '"kind": "maxpool"' in json.dumps(d)
    est = estimate_plan(plan)
    assert {s.kind for s in est.stages} == {"dwc", "fifo", "swu", "mvtu", "maxpool", "topk",
                                            "axis"}
    assert set(default_library()) == set(StageKind)
    lib = {**default_library(), "fifo": default_library()[StageKind.FIFO]}  # names work too
    assert set(NetworkTop(small_cnn().randomize(0), library=lib).library) == set(StageKind)
    with pytest.raises(ValueError, match="'fifoo' is not a valid StageKind"):
        NetworkTop(small_cnn().randomize(0), library={"fifoo": None})


def test_topk_waits_for_its_indices():
    """A top-k emitting more indices than it reads beats takes k cycles per frame, in the
    cost model, the plan and the hardware module alike (lowbit_hdl.cost.topk_cycles)."""
    from lowbit_hdl.hw.topk import TopKUnit

    net = Network("k", (1, 2, 2), [FC("f", 8, act=None, pe=8, simd=4), TopK("t", 5)], BIPOLAR)
    info = net.infer()[1]
    assert network_cost(net).layers[1].cycles == 5
    assert plan_network(net).stage("t_topk").cycles == 5
    assert TopKUnit.from_layer(info).cycles_per_frame == 5


def test_fifo_depth_rule():
    plan = plan_network(small_cnn())
    # before a sliding window: two input rows in consumer beats (W·C/SIMD per row)
    assert plan.stage("c0_swu_fifo").depth == 2 * 8 * 3 // 3
    assert plan.stage("c1_swu_fifo").depth == 2 * 4 * 8 // 8
    # before an FC MVTU: one input vector, SF beats
    f0 = plan.stage("f0_mvtu_fifo")
    assert f0.depth == max(FIFO_MIN_DEPTH, 32 // 16)
    # streaming consumers: 2
    assert plan.stage("p0_pool_fifo").depth == FIFO_MIN_DEPTH
    assert plan.stage("top_topk_fifo").depth == FIFO_MIN_DEPTH
    # output FIFO holds one output frame
    assert plan.stage("output_fifo").depth == max(FIFO_MIN_DEPTH, plan.output.beats_per_frame)
    assert all(s.rule for s in plan.of_kind("fifo"))


def test_fifo_depth_rule_vector():
    net = Network("v", (1, 4, 4), [FC("a", 32, pe=1, simd=1), FC("b", 32, pe=2, simd=2),
                                   FC("c", 4, act=None, pe=4, simd=32)], BIPOLAR)
    plan = plan_network(net)
    assert plan.stage("b_mvtu_fifo").depth == 32 // 2  # SF of b
    assert plan.stage("c_mvtu_fifo").depth == FIFO_MIN_DEPTH  # SF = 1
    over = plan_network(net, fifo_depths={"b_mvtu_fifo": 3})
    assert over.stage("b_mvtu_fifo").depth == 3 and over.stage("b_mvtu_fifo").rule == "override"
    with pytest.raises(KeyError, match="nope"):
        plan_network(net, fifo_depths={"nope": 3})


def test_axi_widths():
    assert axi_width(1) == 8 and axi_width(8) == 8 and axi_width(9) == 16
    assert axi_width(392) == 512
    with pytest.raises(ValueError, match="1024"):
        axi_width(1025)
    # exact first fold when it is a legal width and fast enough
    assert choose_input_elems(784, 8, 8, 1000) == (8, "")
    # TFC: 49·8 bits is not a DMA width; 16 elements per beat (49 beats ≤ 64 cycles)
    assert choose_input_elems(784, 8, 49, 64) == (16, "")
    # CNV: SIMD=3; one byte per beat is compatible (3 % 1 == 0) and fast enough
    assert choose_input_elems(3072, 8, 3, 32768) == (1, "")
    # no exact width keeps up with 10 cycles: 98 elements zero-padded to 1024 bits (8 beats)
    assert choose_input_elems(784, 8, 49, 10) == (98, "")
    e, note = choose_input_elems(784, 8, 49, 5)  # 112 per beat is the most that fits
    assert e == 112 and "input-bound: 7 input beats" in note
    # 324 one-bit elements: no power-of-two count divides them, so beats are padded
    assert choose_input_elems(324, 1, 2, 1000) == (1, "")  # 324 one-bit beats ≤ 1000 / 2
    assert choose_input_elems(324, 1, 4, 100) == (12, "")  # 27 beats; 4 per beat: 81 > 50


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_plans(path):
    net = load_network(path, seed=None)
    plan = plan_network(net)
    cost = network_cost(net)
    for sl in (plan.input, plan.output):
        assert sl.tdata_bits in DMA_WIDTHS
        assert sl.frame_elems % sl.elems_per_beat == 0
    # the AXI-Stream ends and every added stage are never slower than the slowest layer
    assert plan.cycles_per_frame == cost.cycles_per_frame, plan.notes
    assert not plan.notes
    for s in plan.stages:
        assert s.cycles <= cost.cycles_per_frame, s.name
    lay = plan.layout()
    assert isinstance(lay, DesignLayout)
    assert DesignLayout.from_json(lay.to_json()) == lay
    assert lay.output_kind == ("indices" if isinstance(net.layers[-1], TopK) else "raw")


def test_bram_packing():
    assert bram18_count(36, 512) == 1
    assert bram18_count(72, 512) == 2
    assert bram18_count(1, 16384) == 1
    assert bram18_count(32, 18432) == 36  # 512×36 stacked 36 deep
    assert bram18_count(9, 2048) == 1
    assert memory_resources(64, 1) == Resources()  # constants
    # RAMs: LUT-RAM up to 64 words (RAM64M: 3 bits in 4 LUTs; RAM32M: 6 bits), else BRAM
    assert memory_resources(8, 64) == Resources(lut=12, ff=8)
    assert memory_resources(12, 32) == Resources(lut=8, ff=12)
    assert memory_resources(8, 65) == Resources(bram36=0.5)
    assert memory_resources(64, 1024).bram36 == 2.0
    assert memory_resources(64, 1024, "distributed").bram36 == 0
    # ROMs: logic when small or shallow (about one LUT per bit per 16 words), else BRAM
    assert memory_resources(32, 144, rom=True) == Resources(lut=32 * 9, ff=32)
    assert memory_resources(32, 288, rom=True) == Resources(bram36=0.5)
    assert memory_resources(1, 1024, rom=True) == Resources(lut=64, ff=1)
    assert memory_resources(32, 144, "block", rom=True) == Resources(bram36=0.5)


def test_fit_check_reserves_shell():
    ok = fit_check(Resources(lut=XC7Z020.lut - 5_000, bram36=134))
    assert ok["fits"]
    bad = fit_check(Resources(lut=XC7Z020.lut - 4_999))
    assert not bad["fits"] and bad["resources"]["lut"]["total"] > XC7Z020.lut
    assert not fit_check(Resources(bram36=135))["fits"]


@pytest.mark.parametrize("name,fits", [("cnv_w1a1", True), ("tfc_w1a1", True),
                                       ("dorefa_alexnet_w1a2", False),
                                       ("tiny_yolo_w1a3", False)])
def test_estimate_fit(name, fits):
    net = load_network(NETWORKS / f"{name}.py", seed=None)
    est = estimate_plan(plan_network(net))
    assert fit_check(est.total)["fits"] == fits
    # per-layer sums add up to the total
    by = est.by_layer()
    assert sum(r.lut for r in by.values()) == est.total.lut
    assert set(by) - {"(io)"} == {lay.name for lay in net.layers}
