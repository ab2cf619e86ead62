"""Logic depth of a mapped netlist: the longest register-to-register path of each stage in
LUT levels and carry-chain (CARRY4) cells, with a rough delay for xc7z020-1.

The input is the netlist Yosys writes with ``write_json`` after ``synth_xilinx`` and
``flatten`` (one module; a cell inside submodule instance ``u`` is named ``u.<name>``, or
``$flatten\\u.<name>`` by newer Yosys).
Paths start at flip-flops, block RAM / DSP outputs, LUT-RAM contents and top-level inputs and
end at their inputs (and top-level outputs). A path belongs to the stage (top-level instance)
of its end point. The delay model (:data:`DELAY_NS`) and the bound (:data:`BOUND_NS`) are
explained in docs/hardware.md ("Logic depth").
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

__all__ = ["DELAY_NS", "BOUND_NS", "PathDepth", "stage_depths", "over_bound"]

#: rough delays in ns for a -1 xc7z020 (Artix-7 fabric); "lut" is one LUT with the net
#: that leaves it (T_ILO ≈ 0.12 ns plus a typical 0.6–0.9 ns route)
DELAY_NS = {
    "ff_clk_to_q": 0.5,   # T_CKO plus its net
    "bram_clk_to_q": 2.5,  # RAMB36 without output register, T_RCKO_DO
    "dsp_clk_to_q": 0.7,
    "lut": 1.0,
    "muxf": 0.3,          # MUXF7/MUXF8
    "carry_entry": 0.5,   # S/DI into the first CARRY4 of a chain, out through O/CO
    "carry_per": 0.12,    # each further CARRY4 of the chain (T_BYP)
    "setup": 0.4,         # setup time plus clock uncertainty
}
#: clock period the paths must fit (100 MHz)
BOUND_NS = 10.0

_FF = re.compile(r"^(FD[A-Z]*|LD[A-Z]*)$")
_LUT = re.compile(r"^LUT[1-6]$")
_LUTRAM = re.compile(r"^(RAM\d+X\d+[SD]|RAM\d+M\d*)$")
_SRL = re.compile(r"^SRLC?\d+E$")
_BRAM = ("RAMB18E1", "RAMB36E1")
_DSP = ("DSP48E1",)


@dataclass(frozen=True)
class PathDepth:
    """The slowest path (by the delay model) ending in one stage."""

    lut_levels: int
    carry4: int
    est_ns: float
    start: str  # kind of start point: "ff", "bram", "dsp", "lutram", "input"
    end: str = ""  # the cell (or output port) where it ends
    path: tuple[str, ...] = ()  # the cells on the way, from the start

    def to_dict(self) -> dict:
        return {"lut_levels": self.lut_levels, "carry4": self.carry4,
                "est_ns": round(self.est_ns, 2), "start": self.start, "end": self.end}


# an arrival: (delay, lut levels, carry4 cells, start kind, carry4 cells in the current chain)
_Arr = tuple[float, int, int, str, int]
_ZERO: _Arr = (0.0, 0, 0, "input", 0)


def _later(a: _Arr, b: _Arr) -> _Arr:
    return a if a[:3] >= b[:3] else b


def stage_depths(netlist: dict, top: str | None = None,
                 stages: set[str] | None = None) -> dict[str, PathDepth]:
    """Slowest path ending in each top-level instance of a flattened Yosys JSON netlist:
    ``stages`` names them (a cell ``u.<name>`` belongs to ``u``); ``"(top)"`` gets the top's
    own cells, the outputs and every cell when ``stages`` is not given."""
    modules = netlist["modules"]
    if top is None:
        top = next(iter(modules)) if len(modules) == 1 else next(
            n for n, mod in modules.items() if mod.get("attributes", {}).get("top"))
    mod = modules[top]
    cells = mod["cells"]
    d = DELAY_NS
    # driver of every net bit: (cell name, output port) or ("", port name) for top inputs
    driver: dict[int, tuple[str, str]] = {}
    for pname, port in mod["ports"].items():
        if port["direction"] == "input":
            for b in port["bits"]:
                if isinstance(b, int):
                    driver[b] = ("", pname)
    for cname, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for p, bits in cell["connections"].items():
            if dirs.get(p) == "output":
                for b in bits:
                    if isinstance(b, int):
                        driver[b] = (cname, p)

    memo: dict[int, _Arr] = {}
    via: dict[int, int] = {}  # bit -> the input bit its arrival came through
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 100000))

    def inputs_of(cell: dict, ports: tuple[str, ...] | None = None) -> list[int]:
        dirs = cell.get("port_directions", {})
        return [b for p, bits in cell["connections"].items()
                if dirs.get(p) == "input" and (ports is None or p.rstrip("0123456789") in ports)
                for b in bits if isinstance(b, int)]

    def arrival(bit: int) -> _Arr:
        if bit in memo:
            return memo[bit]
        memo[bit] = _ZERO  # breaks combinational loops (none expected)
        src = driver.get(bit)
        if src is None or src[0] == "":
            res = _ZERO
        else:
            cname, port = src
            cell = cells[cname]
            t = cell["type"]
            if _FF.match(t) or (_SRL.match(t) and port != "Q") or t in _BRAM:
                res = ((d["bram_clk_to_q"], 0, 0, "bram", 0) if t in _BRAM
                       else (d["ff_clk_to_q"], 0, 0, "ff", 0))
            elif t in _DSP:
                res = (d["dsp_clk_to_q"], 0, 0, "dsp", 0)
            elif _LUT.match(t) or t == "INV" or _LUTRAM.match(t) or _SRL.match(t):
                # LUT-RAM / SRL read: the stored bit through the read address (a LUT level)
                base: _Arr = (d["ff_clk_to_q"], 0, 0, "lutram", 0) \
                    if _LUTRAM.match(t) or _SRL.match(t) else _ZERO
                ports = ("ADDRA", "ADDRB", "ADDRC", "ADDRD", "A", "DPRA") \
                    if _LUTRAM.match(t) or _SRL.match(t) else None
                for b in inputs_of(cell, ports):
                    a = arrival(b)
                    if _later(base, a) is a and a is not base:
                        base, via[bit] = a, b
                if t == "INV":  # absorbed into the next LUT
                    res = base
                else:
                    res = (base[0] + d["lut"], base[1] + 1, base[2], base[3], 0)
            elif t in ("MUXF7", "MUXF8"):
                base = _ZERO
                for b in inputs_of(cell):
                    a = arrival(b)
                    if _later(base, a) is a and a is not base:
                        base, via[bit] = a, b
                res = (base[0] + d["muxf"], base[1], base[2], base[3], 0)
            elif t == "CARRY4":
                # through S/DI: enter a chain; through CI: one more CARRY4 of the same chain
                res = _ZERO
                for b in inputs_of(cell, ("S", "DI", "CYINIT")):
                    a = arrival(b)
                    r = (a[0] + d["carry_entry"], a[1], a[2] + 1, a[3], 1)
                    if _later(res, r) is r:
                        res, via[bit] = r, b
                for b in inputs_of(cell, ("CI",)):
                    a = arrival(b)
                    r = (a[0] + d["carry_per"], a[1], a[2] + 1, a[3], a[4] + 1)
                    if _later(res, r) is r:
                        res, via[bit] = r, b
            else:  # unknown cell: a start point
                res = (d["ff_clk_to_q"], 0, 0, t, 0)
        memo[bit] = res
        return res

    def owner(cname: str) -> str:
        # Yosys ≥ 0.3x names a flattened cell "$flatten\\u.<name>", older ones "u.<name>"
        head = cname.removeprefix("$flatten").lstrip("\\").split(".", 1)[0]
        return head if stages and head in stages else "(top)"

    worst: dict[str, tuple[_Arr, str, int]] = {}

    def end(stage: str, bits: list[int], where: str) -> None:
        for b in bits:
            a = arrival(b)
            if a[1] == 0 and a[2] == 0:
                continue
            if stage not in worst or _later(worst[stage][0], a) is a:
                worst[stage] = (a, where, b)

    def trace(bit: int) -> tuple[str, ...]:
        out = []
        while bit in driver and driver[bit][0]:
            out.append(f"{cells[driver[bit][0]]['type']}:{driver[bit][0]}")
            if bit not in via:
                break
            bit = via[bit]
        return tuple(reversed(out))

    for cname, cell in cells.items():
        t = cell["type"]
        if _FF.match(t) or t in _BRAM or t in _DSP or _LUTRAM.match(t) or _SRL.match(t):
            ports = None
            if _LUTRAM.match(t) or _SRL.match(t):  # the write side
                ports = ("D", "DI", "DIA", "DIB", "DIC", "DID", "WE", "CE", "ADDRD", "A",
                         "WCLK")
            end(owner(cname), inputs_of(cell, ports), cname)
    for pname, port in mod["ports"].items():
        if port["direction"] == "output":
            end("(top)", [b for b in port["bits"] if isinstance(b, int)], pname)
    return {k: PathDepth(a[1], a[2], a[0] + d["setup"], a[3], where, trace(b))
            for k, (a, where, b) in sorted(worst.items())}


def over_bound(depths: dict[str, PathDepth], bound_ns: float = BOUND_NS) -> list[str]:
    """Stages whose slowest path exceeds ``bound_ns``."""
    return [k for k, p in depths.items() if p.est_ns > bound_ns]
