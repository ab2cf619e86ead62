"""Pieces shared by the synthesis benchmarks (``synth_mvtu.py``, ``synth_stream.py``): one
Yosys ``synth_xilinx`` run with its cell counts, LUT / LUTRAM / flip-flop totals, and the
Markdown table they print."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lowbit_hdl.flow.depth import stage_depths  # noqa: E402
from lowbit_hdl.flow.synth import LUTRAM_LUTS  # noqa: E402

__all__ = ["synth", "lut_ff_counts", "print_table"]


def synth(verilog: str, top: str, yosys: str, flatten: bool = True,
          depth: dict | None = None) -> dict[str, int]:
    """Cell counts after ``synth_xilinx -family xc7 [-flatten] -top <top>; stat``
    (synth_xilinx flattens either way; the option changes ABC's input order slightly).

    With a dict ``depth``, the slowest register-to-register path of each stage
    (:func:`lowbit_hdl.flow.depth.stage_depths`) is stored into it."""
    with tempfile.TemporaryDirectory(prefix=f"synth_{top}_") as tmp:
        (Path(tmp) / f"{top}.v").write_text(verilog)
        # relative paths: YoWASP's Yosys only sees its working directory
        opt = " -flatten" if flatten else ""
        script = (f"read_verilog {top}.v; synth_xilinx -family xc7{opt} -top {top}; "
                  "tee -o stat.txt stat"
                  + ("; flatten; write_json net.json" if depth is not None else ""))
        proc = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True,
                              cwd=tmp)
        stat = Path(tmp) / "stat.txt"
        if proc.returncode != 0 or not stat.exists():
            raise RuntimeError(f"{yosys} failed (rc={proc.returncode}, no statistics written; "
                               f"a YoWASP build whose ABC exits early shows this):\n"
                               f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        text = stat.read_text()
        if depth is not None:
            depth.update(stage_depths(json.loads((Path(tmp) / "net.json").read_text()), top))
    cells: dict[str, int] = {}
    # Yosys ≥ 0.4x prints "<count> <cell>", older releases "<cell> <count>"
    for a, b in re.findall(r"^\s+(\S+)\s+(\S+)\s*$", text, re.M):
        if a.isdigit() and not b.isdigit():
            cells[b] = int(a)
        elif b.isdigit() and not a.isdigit():
            cells[a] = int(b)
    return cells


def lut_ff_counts(cells: dict[str, int]) -> tuple[int, int, int]:
    """(logic LUTs, LUTs used as RAM or shift registers, flip-flops) of a cell count."""
    luts = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    lutram = sum(v * LUTRAM_LUTS[k] for k, v in cells.items() if k in LUTRAM_LUTS)
    ffs = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
    return luts, lutram, ffs


def print_table(rows: list[dict[str, object]]) -> None:
    """``rows`` as a Markdown table, columns in the first row's key order."""
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("| " + " | ".join("---" for _ in keys) + " |")
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")
