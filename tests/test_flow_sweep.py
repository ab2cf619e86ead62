"""`sweep`: the auto-folder's choices per target, on the Pareto front, printed and plotted
(estimates only; `--synth` is not run here)."""

import json
from pathlib import Path

import pytest
from helpers import cli

from lowbit_hdl import BIPOLAR, FC, Network, TopK
from lowbit_hdl.flow.folding import search
from lowbit_hdl.flow.sweep import format_sweep, plot_sweep, spread, sweep

NETWORKS = Path(__file__).resolve().parent.parent / "networks"


def small():
    return Network("s", (1, 8, 8), [FC("a", 256), FC("b", 128), FC("c", 10, act=None),
                                    TopK("t")], BIPOLAR)


def test_sweep_points():
    net = small()
    space = search(net)
    points = sweep(space)
    assert points and [p.design.cycles for p in points] == sorted(p.design.cycles
                                                                  for p in points)
    assert len({p.design.folding for p in points}) == len(points)
    for p in points:
        assert p.fps == pytest.approx(100e6 / p.design.cycles)
        assert p.design == space.for_target(p.design.cycles)
        assert p.fits == space.within(p.design.res)
    # a slower target never costs more (its choice may be any faster design): no point of
    # the sweep is dominated by a faster one
    costs = [space.cost(p.design.res) for p in points if p.fits]
    assert costs == sorted(costs, reverse=True) and len(set(costs)) == len(costs)
    # the fastest design is the least-cost one among the fastest the search saw
    fastest = min(d.cycles for d in space.front)
    assert points[0].design.cycles == fastest
    text = format_sweep(net, space, points)
    assert f"{len(points)} designs" in text and "fits" in text
    assert len(text.splitlines()) == len(points) + 2
    picked = spread(points, 3)
    fit = [p for p in points if p.fits]
    assert len(picked) == min(3, len(fit)) and picked[0] is fit[0] and picked[-1] is fit[-1]


def test_sweep_png(tmp_path):
    pytest.importorskip("matplotlib")
    net = small()
    space = search(net)
    points = sweep(space)
    points[0].synth = {"lut": 100, "bram36": 1.0, "ff": 1, "dsp": 0}
    path = plot_sweep(net, space, points, tmp_path / "s.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_cli(tmp_path, capsys):
    rc, out, err = cli(["sweep", str(NETWORKS / "tfc_w1a1.py"), "--json",
                        str(tmp_path / "s.json")], capsys)
    assert rc == 0, err
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["network"] == "tfc_w1a1" and data["points"]
    assert f"{len(data['points'])} designs" in out
    rc, out, err = cli(["sweep", str(NETWORKS / "tfc_w1a1.py"), "--part", "xc9"], capsys)
    assert rc == 2 and "unknown part" in err


def test_sweep_overlay(tmp_path, capsys):
    """--overlay attaches an earlier run's Yosys figures to the designs with the same
    folding (here written by hand into a --json file)."""
    net = str(NETWORKS / "tfc_w1a1.py")
    rc, _, err = cli(["sweep", net, "--json", str(tmp_path / "a.json")], capsys)
    assert rc == 0, err
    data = json.loads((tmp_path / "a.json").read_text())
    data["points"][1]["synth"] = {"lut": 1234, "ff": 5, "bram36": 2.5, "dsp": 0,
                                  "yosys": "Yosys 0.70"}
    (tmp_path / "a.json").write_text(json.dumps(data))
    rc, out, err = cli(["sweep", net, "--overlay", str(tmp_path / "a.json"), "--json",
                        str(tmp_path / "b.json")], capsys)
    assert rc == 0, err
    assert "syn LUT" in out and "1,234" in out
    again = json.loads((tmp_path / "b.json").read_text())
    assert [p.get("synth") for p in again["points"]].count(None) == len(again["points"]) - 1
    (tmp_path / "bad.json").write_text("{}")
    rc, _, err = cli(["sweep", net, "--overlay", str(tmp_path / "bad.json")], capsys)
    assert rc == 2 and "not a `sweep --json` file" in err
