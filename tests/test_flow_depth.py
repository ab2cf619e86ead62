"""The logic-depth walk over a mapped netlist (flow/depth.py) on hand-made netlists."""

from __future__ import annotations

import pytest

from lowbit_hdl.flow.depth import BOUND_NS, DELAY_NS, over_bound, stage_depths


def cell(t: str, **conns: tuple[str, list]) -> dict:
    return {"type": t, "port_directions": {p: d for p, (d, _) in conns.items()},
            "connections": {p: bits for p, (_, bits) in conns.items()}}


def ff(d: int, q: int) -> dict:
    return cell("FDRE", C=("input", [1]), D=("input", [d]), Q=("output", [q]),
                CE=("input", ["1"]), R=("input", ["0"]))


def lut(ins: list[int], out: int) -> dict:
    return cell(f"LUT{len(ins)}", **{f"I{i}": ("input", [b]) for i, b in enumerate(ins)},
                O=("output", [out]))


def netlist(cells: dict, outputs: dict | None = None) -> dict:
    ports = {"clk": {"direction": "input", "bits": [1]},
             "a": {"direction": "input", "bits": [2]}}
    for name, bits in (outputs or {}).items():
        ports[name] = {"direction": "output", "bits": bits}
    return {"modules": {"top": {"attributes": {"top": 1}, "ports": ports, "cells": cells}}}


def test_lut_levels_and_carry_chain():
    # u.r0 -> LUT -> LUT -> CARRY4 -> CARRY4 (CO[3] -> CI) -> u.r1;  v.r2 -> LUT -> v.r3
    cells = {
        "u.r0": ff(2, 10), "u.l0": lut([10], 11), "u.l1": lut([11, 10], 12),
        "u.c0": cell("CARRY4", CI=("input", ["0"]), CYINIT=("input", ["0"]),
                     DI=("input", [12, "0", "0", "0"]), S=("input", [12, "0", "0", "0"]),
                     O=("output", [13, 14, 15, 16]), CO=("output", [17, 18, 19, 20])),
        "u.c1": cell("CARRY4", CI=("input", [20]), CYINIT=("input", ["0"]),
                     DI=("input", ["0"] * 4), S=("input", ["0"] * 4),
                     O=("output", [21, 22, 23, 24]), CO=("output", [25, 26, 27, 28])),
        "u.r1": ff(21, 29),
        "v.r2": ff(2, 30), "v.l2": lut([30], 31), "v.r3": ff(31, 32),
    }
    got = stage_depths(netlist(cells), stages={"u", "v"})
    d = DELAY_NS
    assert (got["u"].lut_levels, got["u"].carry4, got["u"].start) == (2, 2, "ff")
    assert got["u"].est_ns == pytest.approx(d["ff_clk_to_q"] + 2 * d["lut"]
                                            + d["carry_entry"] + d["carry_per"] + d["setup"])
    assert got["u"].end == "u.r1" and got["u"].path[0].startswith("FDRE:u.r0")
    assert (got["v"].lut_levels, got["v"].carry4) == (1, 0)
    # without stage names everything belongs to the top
    assert set(stage_depths(netlist(cells))) == {"(top)"}


def test_bram_start_lutram_read_and_bound():
    cells = {
        "s.m": cell("RAMB36E1", CLKARDCLK=("input", [1]), ADDRARDADDR=("input", [2]),
                    DOADO=("output", [40])),
        # a LUT-RAM read: the stored bit through the read address, one level
        "s.q": cell("RAM32M", ADDRA=("input", [41]), ADDRD=("input", [2]),
                    DIA=("input", [2]), WE=("input", [2]), WCLK=("input", [1]),
                    DOA=("output", [42])),
        "s.r": ff(2, 41),
        "s.r2": ff(42, 43),
    }
    chain = [40]
    for i in range(8):  # eight LUT levels after the block RAM: over 10 ns
        cells[f"s.l{i}"] = lut([chain[-1]], 50 + i)
        chain.append(50 + i)
    cells["s.end"] = ff(chain[-1], 60)
    got = stage_depths(netlist(cells), stages={"s"})["s"]
    assert (got.lut_levels, got.start) == (8, "bram")
    assert got.est_ns == pytest.approx(DELAY_NS["bram_clk_to_q"] + 8 * DELAY_NS["lut"]
                                       + DELAY_NS["setup"])
    assert got.est_ns > BOUND_NS and over_bound({"s": got}) == ["s"]
    # the LUT-RAM path alone: flip-flop -> read address -> data -> flip-flop, one level
    only = {k: v for k, v in cells.items() if k in ("s.q", "s.r", "s.r2")}
    q = stage_depths(netlist(only), stages={"s"})["s"]
    assert q.lut_levels == 1 and q.est_ns == pytest.approx(
        DELAY_NS["ff_clk_to_q"] + DELAY_NS["lut"] + DELAY_NS["setup"])


def test_top_outputs():
    cells = {"r": ff(2, 10), "l": lut([10, 2], 11)}
    got = stage_depths(netlist(cells, {"y": [11]}))
    assert got["(top)"].lut_levels == 1 and got["(top)"].end == "y"


def test_newer_yosys_names():
    cells = {"$flatten\\u.r0": ff(2, 10), "$flatten\\u.l0": lut([10], 11),
             "$flatten\\u.r1": ff(11, 12)}
    assert set(stage_depths(netlist(cells), stages={"u"})) == {"u"}
