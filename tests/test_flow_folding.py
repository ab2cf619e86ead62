"""Folding files and the auto-folder: divisibility, targets met, least resources, balance,
unreachable targets, budgets."""

import json
import random
from pathlib import Path

import pytest

from lowbit_hdl import BIPOLAR, FC, UINT, Conv, MaxPool, Network, NetworkError, TopK
from lowbit_hdl.cost import layer_cycles, network_cost
from lowbit_hdl.errors import BudgetError, UserError
from lowbit_hdl.flow.folding import (
    Folding,
    LayerFolding,
    _candidates,
    _next_pool,
    apply_folding,
    auto_fold,
    divisors,
    fold_for_budget,
    get_folding,
    layer_options,
    load_folding,
    save_folding,
    search,
    target_cycles,
)
from lowbit_hdl.flow.resources import XC7Z020, Device, estimate_network
from lowbit_hdl.netfile import load_network

NETWORKS = Path(__file__).resolve().parent.parent / "networks"


def cnv():
    return load_network(NETWORKS / "cnv_w1a1.py", seed=None)


def test_divisors():
    assert divisors(1) == [1]
    assert divisors(12) == [1, 2, 3, 4, 6, 12]
    assert divisors(49) == [1, 7, 49]
    with pytest.raises(ValueError):
        divisors(0)


def test_target_cycles():
    assert target_cycles(100.0, 1e8 / 32768) == 32768
    assert target_cycles(100.0, 3051.76) == 32767
    assert target_cycles(100.0, 1e9) == 1
    with pytest.raises(ValueError):
        target_cycles(100.0, 0)


def test_folding_file_round_trip(tmp_path):
    net = cnv()
    f = get_folding(net)
    assert f["conv0"] == LayerFolding(16, 3) and "pool0" not in f
    path = save_folding(f, tmp_path / "f.json")
    assert load_folding(path) == f
    assert path.read_text() == save_folding(f, tmp_path / "g.json").read_text()
    # the file format: {layer: {"pe": P, "simd": S}}, sorted keys, two-space indent
    assert json.loads(path.read_text())["conv0"] == {"pe": 16, "simd": 3}
    assert path.read_text().startswith('{\n  "conv0": {\n    "pe": 16,\n    "simd": 3\n  },')
    f2 = Folding({**f, "conv0": LayerFolding(8, 3), "pool0": LayerFolding(8)})
    net2 = apply_folding(net, f2)
    assert net2["conv0"].pe == 8 and net2["pool0"].pe == 8 and net["conv0"].pe == 16
    assert get_folding(net2) == f2 and get_folding(net2) != f
    assert get_folding(net2).to_json()["pool0"] == {"pe": 8}


def test_folding_value():
    f = Folding.from_json({"a": {"pe": 2, "simd": 4}, "p": {"pe": 2}})
    assert f == Folding({"p": LayerFolding(pe=2), "a": LayerFolding(2, 4)})  # any order
    assert hash(f) == hash(Folding.from_json(f.to_json()))
    assert f.to_json() == {"a": {"pe": 2, "simd": 4}, "p": {"pe": 2}}
    assert f != {"a": {"pe": 2, "simd": 4}, "p": {"pe": 2}}  # a typed value, not a dict
    with pytest.raises(AttributeError):
        f.extra = 1
    with pytest.raises(TypeError):
        f["a"] = LayerFolding(1, 1)  # type: ignore[index]
    with pytest.raises(TypeError, match="pe must be an integer"):
        LayerFolding(pe=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="simd must be ≥ 1"):
        LayerFolding(simd=0)
    with pytest.raises(TypeError, match="expected a LayerFolding"):
        Folding({"a": {"pe": 2}})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="expected a Folding"):
        apply_folding(cnv(), {"conv0": {"pe": 8}})  # type: ignore[arg-type]


@pytest.mark.parametrize("folding,message", [
    ({"convX": {"pe": 1}}, "has no layer 'convX'"),
    ({"conv0": {"pe": 3}}, "layer conv0: MH=64 is not a multiple of PE=3"),
    ({"conv1": {"simd": 3}}, "layer conv1: SIMD=3 does not divide the 64 input channels"),
    ({"pool0": {"simd": 2}}, r"layer pool0 \(maxpool\) has no 'simd'"),
    ({"top": {"pe": 2}}, r"layer top \(topk\) has no 'pe' \(allowed: none\)"),
    ({"conv0": {"pe": "4"}}, "layer conv0: pe must be an integer"),
    ({"conv0": {"pe": 0}}, "layer conv0: pe must be ≥ 1"),
    ({"conv0": {"pe": True}}, "layer conv0: pe must be an integer"),
    ({"conv0": {"lanes": 4}},
     "layer conv0: unknown key 'lanes' \\(allowed: pe, simd, ram_style\\)"),
    ({"conv0": {"ram_style": "ultra"}}, "layer conv0: ram_style='ultra' must be one of"),
    ({"conv0": {"ram_style": 1}}, "layer conv0: ram_style must be a string"),
    ({"pool0": {"ram_style": "block"}}, r"layer pool0 \(maxpool\) has no 'ram_style'"),
])
def test_folding_errors(folding, message):
    with pytest.raises(NetworkError, match=message):
        apply_folding(cnv(), Folding.from_json(folding))


def test_load_folding_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_folding(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(NetworkError, match="expected"):
        load_folding(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text("{")
    with pytest.raises(NetworkError, match="not valid JSON"):
        load_folding(tmp_path / "bad2.json")
    (tmp_path / "bad3.json").write_text('{"conv0": {"pe": 1.5}}')
    with pytest.raises(NetworkError, match="bad3.json: layer conv0: pe must be an integer"):
        load_folding(tmp_path / "bad3.json")


def _check_valid(net: Network, res, target: int) -> None:
    infos = res.network.infer()  # the rules of lowbit_hdl.ir hold
    for info in infos:
        if not info.is_mvtu:
            continue
        lay = info.layer
        assert info.mh % lay.pe == 0 and info.mw % lay.simd == 0
        if isinstance(lay, Conv):
            assert info.in_shape[0] % lay.simd == 0
    cost = network_cost(res.network)
    assert res.cycles_per_frame == cost.cycles_per_frame
    if res.met:
        assert all(c.cycles <= target for c in cost.layers), [
            (c.name, c.cycles) for c in cost.layers]


@pytest.mark.parametrize("target", [32768, 8192, 200_000, 8100])
def test_auto_fold_cnv_meets_target(target):
    net = cnv()
    res = auto_fold(net, target)
    assert res.met and not res.unmet_layers
    _check_valid(net, res, target)
    assert res.cycles_per_frame <= target


def test_auto_fold_least_resources():
    """At the BNN-PYNQ design point the auto-folding needs no more (estimated) LUTs and BRAM
    than the hand folding, and no random folding that meets the target is cheaper."""
    net = cnv()
    target = 32768
    res = auto_fold(net, target)
    auto_est = estimate_network(res.network).total
    hand_est = estimate_network(net).total
    score = lambda r: r.lut / XC7Z020.lut + r.bram36 / XC7Z020.bram36  # noqa: E731
    assert score(auto_est) <= score(hand_est) + 1e-9
    infos = net.infer()
    rng = random.Random(3)
    for _ in range(30):  # random feasible foldings
        f = {}
        for info in infos:
            if info.is_mvtu:
                ok = [ps for ps in _candidates(info) if layer_cycles(info, *ps) <= target]
                pe, simd = rng.choice(ok)
                f[info.name] = LayerFolding(pe, simd)
        try:
            other = apply_folding(net, Folding(f))
        except NetworkError:
            continue
        if network_cost(other).cycles_per_frame > target:
            continue  # a pool after a too-narrow PE
        assert score(estimate_network(other).total) >= score(auto_est) - 1e-9


def test_auto_fold_balanced():
    """Every layer meets the target, the pipeline does not overshoot it (the slowest layer
    needs more than half of it), and each layer's option (PE, SIMD, weight-memory style) is
    the cheapest of those that meet the target (the design fits the part, so the cost, a sum
    over layers, is minimised layer by layer)."""
    net = cnv()
    target = 16384
    res = auto_fold(net, target)
    assert res.fits_part
    cost = network_cost(res.network)
    assert all(c.cycles <= target for c in cost.layers)
    assert cost.cycles_per_frame > target / 2
    frac = lambda r: r.lut / XC7Z020.lut + r.bram36 / XC7Z020.bram36  # noqa: E731
    infos = net.infer()
    for i, (info, orig) in enumerate(zip(res.network.infer(), infos, strict=True)):
        if not info.is_mvtu:
            continue
        lay = info.layer
        opts = layer_options(orig, _next_pool(infos, i))
        style = lay.ram_style if lay.ram_style != "auto" else "auto"
        mine = [o for o in opts if (o.pe, o.simd, o.ram_style) == (lay.pe, lay.simd, style)]
        assert len(mine) == 1, (info.name, lay.pe, lay.simd, style)
        feas = [o for o in opts if o.cycles <= target]
        assert frac(mine[0].res) <= min(frac(o.res) for o in feas) + 1e-12, info.name


def test_auto_fold_pool_constraint():
    """A max-pool inherits its producer's PE, so the producer gets enough PE for the pool."""
    net = Network("p", (1, 16, 16), [
        Conv("c", 64, 3, padding=1, pe=1, simd=1), MaxPool("p", 2),
        FC("f", 10, act=None), TopK("t")], UINT(8))
    target = 4096  # the pool reads 16·16·64/PE beats: PE ≥ 4
    res = auto_fold(net, target)
    assert res.met
    assert res.network["c"].pe >= 4
    assert network_cost(res.network).cycles_per_frame <= target


def test_auto_fold_cnv_limit():
    """conv0 has 3 input channels, so SIMD ≤ 3 and it needs at least 9·900 = 8,100 cycles
    (conv1 fully parallel needs 9·784 = 7,056)."""
    res = auto_fold(cnv(), 2048)
    assert not res.met and res.unmet_layers == ["conv0", "conv1"]
    assert (res.folding["conv0"].pe, res.folding["conv0"].simd) == (64, 3)
    assert res.cycles_per_frame == 8100


def test_auto_fold_no_mvtu():
    """A network without Conv/FC layers has one design, its own."""
    net = Network("x", (2, 4, 4), [MaxPool("p", 2), TopK("t")], UINT(4))
    res = auto_fold(net, 100)
    assert res.met and res.folding == Folding({}) and res.cycles_per_frame == 16
    assert res.estimate == estimate_network(net).total


def test_auto_fold_unreachable():
    net = Network("u", (3, 8, 8), [Conv("c", 8, 3, pe=1, simd=1), FC("f", 4, act=None)],
                  UINT(8))
    res = auto_fold(net, 10)  # the conv reads 8·8·3/SIMD ≥ 64 input beats
    assert not res.met and "c" in res.unmet_layers
    assert res.folding["c"].simd == 3  # fastest possible
    assert res.network["f"].pe * res.network["f"].simd >= 1
    with pytest.raises(ValueError):
        auto_fold(net, 0)


def test_fold_for_budget():
    net = Network("b", (1, 8, 8), [FC("a", 256, pe=1, simd=1), FC("b", 128, act=BIPOLAR),
                                   FC("c", 10, act=None), TopK("t")], BIPOLAR)
    budget = 4000
    space = search(net)
    res = fold_for_budget(net, lut_budget=budget, space=space)
    est = estimate_network(res.network).total
    assert est.lut <= budget and res.estimate == est
    # no faster design the search saw fits the budget
    faster = [d for d in space.front if d.cycles < res.cycles_per_frame]
    assert all(space.exact(d).res.lut > budget for d in faster)
    with pytest.raises(BudgetError, match="no folding fits 10 LUT .* the cheapest design "
                                          "needs") as e:
        fold_for_budget(net, lut_budget=10)
    assert e.value.cheapest == space.cheapest().to_dict()
    assert isinstance(e.value, UserError)
    with pytest.raises(ValueError):
        fold_for_budget(net)


def test_build_with_target_fps(tmp_path):
    from lowbit_hdl.flow.build import choose_folding

    net = cnv()
    folded, source, info = choose_folding(net, target_fps=6000, clock_mhz=100)
    assert source.startswith("auto") and info["met"]
    assert network_cost(folded).fps >= 6000
    json.dumps(info)  # JSON-able for the report


def test_auto_fold_device():
    """Resources are weighed as fractions of the given device: twice the LUTs weigh LUTs half
    (the default device is the xc7z020)."""
    net = cnv()
    big = Device("xc_test", 2 * XC7Z020.lut, XC7Z020.ff, XC7Z020.bram36, XC7Z020.dsp)
    for target in (16384, 32768):
        half = auto_fold(net, target, lut_weight=0.5).folding
        assert auto_fold(net, target, device=big).folding == half
        assert auto_fold(net, target, device=XC7Z020).folding == auto_fold(net, target).folding
    assert any(auto_fold(net, t, lut_weight=0.5).folding != auto_fold(net, t).folding
               for t in (16384, 32768))


def test_folding_file_placements(tmp_path):
    from lowbit_hdl.flow.folding import load_placements

    path = tmp_path / "f.json"
    path.write_text(json.dumps({"conv0": {"pe": 2}, "placements": {"conv0": "onchip",
                                                                   "fc0": "stream"}}))
    assert load_folding(path) == Folding({"conv0": LayerFolding(pe=2)})
    assert load_placements(path) == {"conv0": "onchip", "fc0": "stream"}
    path.write_text(json.dumps({"conv0": {"pe": 2}}))
    assert load_placements(path) == {}
    path.write_text(json.dumps({"placements": {"fc0": "ddr"}}))
    with pytest.raises(NetworkError, match="placements: layer fc0: 'ddr' is not a placement"):
        load_placements(path)
    path.write_text(json.dumps({"placements": ["fc0"]}))
    with pytest.raises(NetworkError, match="placements: expected"):
        load_placements(path)


# -- issue 19: the search of foldings and memory styles, budgets as its constraints -----------

@pytest.fixture(scope="module")
def cnv_space():
    net = cnv()
    return net, search(net)


def _model(space, folding):
    """The search's own figures of a design it saw (by folding)."""
    found = [d for d in space.designs if d.folding == folding]
    assert found, folding
    return found[0]


def test_budget_bram_alone_fits_part(cnv_space):
    """--bram-budget 52 alone used to pick the fully parallel folding (988,984 LUT, 1,868 %
    of the part): the part's limits are constraints of the same search."""
    net, space = cnv_space
    res = fold_for_budget(net, bram36_budget=52, space=space)
    est = estimate_network(res.network).total
    assert est == res.estimate and est.bram36 <= 52
    assert est.lut <= XC7Z020.lut - 5_000 and res.fits_part
    assert res.cycles_per_frame == 8100  # conv0 cannot go faster (SIMD ≤ 3 channels)


def test_budget_bram45(cnv_space):
    """--bram-budget 45 used to fail ("even the slowest folding needs 51.5 BRAM36") although
    foldings with 44 BRAM36 exist at 3,543–7,086 frames/s."""
    net, space = cnv_space
    res = fold_for_budget(net, bram36_budget=45, space=space)
    est = estimate_network(res.network).total
    assert est.bram36 <= 45 and est.lut <= space.limits.lut
    assert res.cycles_per_frame <= 14112  # at least 7,086 frames/s


def test_budget_lut_no_waste(cnv_space):
    """--lut-budget 48200 used to end at 8,100 cycles with 47,376 LUT where asking for 8,100
    cycles directly gave 43,530: the budget's design is the target's least-cost one."""
    net, space = cnv_space
    res = fold_for_budget(net, lut_budget=48200, space=space)
    direct = auto_fold(net, res.cycles_per_frame, space=space)
    assert res.cycles_per_frame == 8100
    assert res.estimate.lut <= 48200
    assert space.cost(res.estimate) <= space.cost(direct.estimate) + 1e-12
    assert res.estimate.lut < 47_376


@pytest.mark.parametrize("lut,bram", [(48200, None), (None, 52), (None, 45), (30000, None),
                                      (20000, 60), (15000, None), (None, 30), (10000, 70)])
def test_budget_modes_meet_and_not_dominated(cnv_space, lut, bram):
    """Every budget mode's design meets the budget (exact estimate) and no design the search
    saw dominates it (cycles, LUT, BRAM36, DSP by the search's figures); no faster design
    the search saw meets the budget."""
    net, space = cnv_space
    res = fold_for_budget(net, lut, bram, space=space)
    est = estimate_network(res.network).total
    assert est == res.estimate
    assert lut is None or est.lut <= lut
    assert bram is None or est.bram36 <= bram
    assert space.within(est)
    mine = _model(space, res.folding)
    assert not any(d.dominates(mine) for d in space.designs)
    for d in space.front:
        if d.cycles < res.cycles_per_frame and space.within(d.res, lut, bram):
            assert not space.within(space.exact(d).res, lut, bram)


def test_budget_error_names_cheapest(cnv_space):
    """A budget no design meets (the weights alone need about 1.5 Mbit: in BRAM or in LUTs)
    is a user error naming the cheapest design there is."""
    net, space = cnv_space
    with pytest.raises(BudgetError, match=r"no folding fits 20 BRAM36 .* the cheapest design "
                                          r"needs [\d,]+ LUT, [\d.]+ BRAM36") as e:
        fold_for_budget(net, bram36_budget=20, space=space)
    cheap = space.cheapest()
    assert e.value.cheapest["lut"] == cheap.res.lut
    assert all(space.cost(cheap.res) <= space.cost(d.res) + 1e-3 for d in space.front)


@pytest.mark.parametrize("target", [8100, 14112, 28224, 28800, 32768, 100_000])
def test_target_not_dominated(cnv_space, target):
    net, space = cnv_space
    res = auto_fold(net, target, space=space)
    assert res.met and res.cycles_per_frame <= target
    mine = _model(space, res.folding)
    assert not any(d.dominates(mine) for d in space.designs)


def test_no_cliff(cnv_space):
    """Going from 3,472 to 3,543 frames/s used to raise the LUTs by 57 % (conv3's weights
    became logic at 144 words although block RAM was cheaper by the folder's own cost).
    Along a sweep in 2 % frame-rate steps, no step costs more than 15 % LUT when a design the
    search saw avoids it (within 15 % LUT of the slower step, within the part) at a lower
    cost. Steps that remain are trades the cost prefers (fewer BRAM36 for more LUT)."""
    net, space = cnv_space
    assert auto_fold(net, 28224, space=space).estimate.lut <= \
        1.15 * auto_fold(net, 28800, space=space).estimate.lut
    fps, prev, steps = 400.0, None, 0
    while fps < 12_000:
        t = target_cycles(100, fps)
        cur = _model(space, space.for_target(t).folding)
        if prev is not None and cur.res.lut > 1.15 * prev.res.lut:
            avoid = [d for d in space.designs if d.cycles <= t and space.within(d.res)
                     and d.res.lut <= 1.15 * prev.res.lut
                     and space.cost(d.res) < space.cost(cur.res)]
            assert not avoid, (fps, prev.res, cur.res, avoid[0].res)
        prev, fps, steps = cur, fps * 1.02, steps + 1
    assert steps > 150


def test_memory_choice_and_override(cnv_space, tmp_path):
    """At 3,543 frames/s conv3 (144 words per PE) gets block RAM; --memory / a folding file's
    ram_style fix a layer's style, and the search respects it."""
    from lowbit_hdl.flow.build import choose_folding

    net, space = cnv_space
    res = auto_fold(net, 28224, space=space)
    assert res.network["conv3"].ram_style == "block"
    assert res.to_dict()["memory"]["conv3"] == "block"
    forced = auto_fold(net, 28224, memory={"conv3": "logic"})
    assert forced.network["conv3"].ram_style == "logic"
    assert forced.estimate.lut > res.estimate.lut
    assert forced.estimate.bram36 < res.estimate.bram36
    folded, _, _ = choose_folding(net, folding=res.folding, memory={"conv3": "logic"})
    assert folded["conv3"].ram_style == "logic" and folded["conv3"].pe == res.network["conv3"].pe
    path = save_folding(res.folding, tmp_path / "f.json")
    assert json.loads(path.read_text())["conv3"]["ram_style"] == "block"
    assert apply_folding(net, load_folding(path))["conv3"].ram_style == "block"
    with pytest.raises(UserError, match="--memory: 'pool0' is not a Conv or FC layer"):
        choose_folding(net, target_fps=100, memory={"pool0": "block"})
    with pytest.raises(UserError, match="'ultra' is not a style"):
        choose_folding(net, target_fps=100, memory={"conv3": "ultra"})
