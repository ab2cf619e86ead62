"""``python -m lowbit_hdl sweep NET [--png FILE] [--json FILE] [--synth N [--synth-fps LO:HI]]
[--overlay FILE] [--out DIR] [--clock-mhz F] [--part PART]``: the auto-folder's design space
of a network.

Prints the designs the auto-folder chooses for every reachable frame rate (its least-cost
design per target, :meth:`lowbit_hdl.flow.folding.DesignSpace.for_target`; each is on the
Pareto front of cycles, LUT, BRAM36 and DSP), and plots the whole front (frame rate against
LUT and against BRAM36) with the chosen designs marked, as a PNG (``--png``, needs
matplotlib). ``--synth N`` builds ``N`` of the chosen designs, spread over the frame-rate
range, runs Yosys on each and overlays its figures on the plot (a CNV-sized design takes
about a quarter of an hour per point); ``--overlay FILE`` shows those of an earlier run.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError, positive_float, positive_int
from ..ir import Network
from .folding import Design, DesignSpace, search
from .resources import device_for_part

__all__ = ["SweepPoint", "sweep", "format_sweep", "spread", "plot_sweep", "add_arguments",
           "run"]


@dataclass
class SweepPoint:
    """One chosen design: frame rate, its exact estimate, whether it fits the part and,
    after ``--synth``, Yosys's counts."""

    design: Design
    fps: float
    fits: bool
    synth: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"fps": round(self.fps, 3), "fits": self.fits, **self.design.to_dict(),
                **({"synth": self.synth} if self.synth else {})}


def sweep(space: DesignSpace, clock_mhz: float = 100.0) -> list[SweepPoint]:
    """The auto-folder's design for every cycle count on the front, fastest first, each
    design once (a slower target whose choice is a design already listed, or costs no less
    than a faster listed design that fits, adds nothing)."""
    out: list[SweepPoint] = []
    seen = set()
    low = math.inf
    for target in sorted({d.cycles for d in space.front}):
        d = space.for_target(target)
        if d.folding in seen or (space.cost(d.res) >= low and space.within(d.res)):
            continue  # listed already, or a faster listed design is no dearer
        seen.add(d.folding)
        if space.within(d.res):
            low = space.cost(d.res)
        out.append(SweepPoint(d, clock_mhz * 1e6 / d.cycles, space.within(d.res)))
    return out


def spread(points: list[SweepPoint], n: int) -> list[SweepPoint]:
    """``n`` of the points that fit the part, evenly spread over log frame rate (fastest and
    slowest included)."""
    fit = [p for p in points if p.fits]
    if n >= len(fit):
        return fit
    if n == 1:
        return [fit[0]]
    lo, hi = math.log(fit[-1].fps), math.log(fit[0].fps)
    out: list[SweepPoint] = []
    for k in range(n):
        want = hi - (hi - lo) * k / (n - 1)
        best = min((p for p in fit if p not in out), key=lambda p: abs(math.log(p.fps) - want))
        out.append(best)
    return sorted(out, key=lambda p: -p.fps)


def format_sweep(net: Network, space: DesignSpace, points: list[SweepPoint]) -> str:
    """The table of chosen designs."""
    head = f"{'fps':>10}  {'cycles':>10}  {'LUT':>9}  {'BRAM36':>6}  {'DSP':>4}  fits"
    syn = any(p.synth for p in points)
    if syn:
        head += f"  {'syn LUT':>9}  {'syn BRAM':>8}"
    lines = [f"network {net.name}: {len(space.front):,} designs on the Pareto front of "
             f"(cycles, LUT, BRAM36, DSP), {len(space.designs):,} kept by the search; the "
             f"auto-folder's choice per target ({len(points)} designs, least cost = "
             f"LUT/{space.device.lut:,} + BRAM36/{space.device.bram36} + "
             f"DSP/{space.device.dsp} on {space.device.part}):", head]
    for p in points:
        r = p.design.res
        row = (f"{p.fps:>10,.1f}  {p.design.cycles:>10,}  {r.lut:>9,}  {r.bram36:>6g}  "
               f"{r.dsp:>4}  {'yes' if p.fits else 'no'}")
        if syn:
            row += (f"  {p.synth['lut']:>9,}  {p.synth['bram36']:>8g}" if "lut" in p.synth
                    else f"  {p.synth.get('error', '-')[:20]:>9}")
        lines.append(row)
    return "\n".join(lines)


def plot_sweep(net: Network, space: DesignSpace, points: list[SweepPoint], path: Path,
               clock_mhz: float = 100.0) -> Path:
    """Frame rate against LUT and against BRAM36: the front (the search's estimate), the
    chosen designs (exact estimate) and Yosys's figures where measured. Raises
    :class:`UsageError` without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--png needs matplotlib (pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    lim = space.limits
    front_fps = [clock_mhz * 1e6 / d.cycles for d in space.front]
    for ax, key, label, limit in ((axes[0], "lut", "LUT", lim.lut),
                                  (axes[1], "bram36", "BRAM36", lim.bram36)):
        ax.scatter([getattr(d.res, key) for d in space.front], front_fps, s=4, c="0.75",
                   label="Pareto front (search estimate)")
        ax.plot([getattr(p.design.res, key) for p in points], [p.fps for p in points],
                "o-", ms=3, lw=1, c="tab:blue", label="auto-folder's choice (estimate)")
        syn = [p for p in points if "lut" in p.synth]
        if syn:
            ax.scatter([p.synth[key] for p in syn], [p.fps for p in syn], marker="x", s=60,
                       c="tab:red", zorder=3, label="Yosys synth_xilinx")
        ax.axvline(limit, ls="--", c="tab:gray", lw=1)
        ax.text(limit, max(front_fps), " part − shell", va="top", fontsize=8, c="tab:gray")
        ax.set_xlabel(label)
        ax.set_ylabel(f"frames/s at {clock_mhz:g} MHz")
        ax.set_yscale("log")
        if key == "lut":
            ax.set_xscale("log")
        ax.grid(True, which="both", lw=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{net.name} on {space.device.part}: frame rate against LUT and BRAM36")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def synth_points(net: Network, points: list[SweepPoint], out_dir: Path,
                 clock_mhz: float, part: str) -> None:
    """Build each point's design (no lint, Tcl check or deployment bundle) with Yosys and
    store its counts in :attr:`SweepPoint.synth`."""
    from .build import build

    for k, p in enumerate(points):
        res = build(net, out_dir / f"p{k}_{p.design.cycles}", clock_mhz=clock_mhz, part=part,
                    folding=p.design.folding, synth=True, lint=False, check_tcl=False,
                    deploy=False)
        syn = res.report.get("synth") or {}
        p.synth = {k2: syn[k2] for k2 in ("lut", "ff", "bram36", "dsp", "yosys", "error")
                   if k2 in syn}


def fps_range(text: str) -> tuple[float, float]:
    """``LO:HI`` frames/s (either side may be empty) as ``(lo, hi)``."""
    lo, sep, hi = text.partition(":")
    try:
        out = (float(lo) if lo.strip() else 0.0, float(hi) if hi.strip() else math.inf)
    except ValueError:
        out = (-1.0, -1.0)
    if not sep or out[0] < 0 or out[1] < out[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LO:HI frames/s, 0 ≤ LO ≤ HI")
    return out


def overlay(points: list[SweepPoint], path: Path) -> int:
    """Attach the Yosys figures of a ``sweep --json`` file to the points with the same
    folding; returns how many matched. Raises :class:`UsageError` for an unreadable file."""
    try:
        data = json.loads(Path(path).read_text())
        done = {json.dumps(q["folding"], sort_keys=True): q["synth"]
                for q in data["points"] if q.get("synth")}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--overlay {path}: not a `sweep --json` file ({e})") from None
    n = 0
    for p in points:
        syn = done.get(json.dumps(p.design.folding.to_json(), sort_keys=True))
        if syn:
            p.synth, n = dict(syn), n + 1
    return n


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="networks/<net>.py topology or saved .npz network")
    p.add_argument("--png", type=Path, default=None, help="plot the front into this PNG file")
    p.add_argument("--json", type=Path, default=None, help="write the chosen designs as JSON")
    p.add_argument("--synth", type=positive_int, default=None, metavar="N",
                   help="synthesize N chosen designs with Yosys and overlay their figures "
                        "(builds into --out; about 15 min per CNV-sized design)")
    p.add_argument("--synth-fps", type=fps_range, default=None, metavar="LO:HI",
                   help="--synth: pick the points among those from LO to HI frames/s")
    p.add_argument("--overlay", type=Path, action="append", default=None, metavar="FILE",
                   help="overlay the Yosys figures of an earlier `sweep --synth --json FILE` "
                        "run (no synthesis now); may be given more than once")
    p.add_argument("--out", type=Path, default=None,
                   help="folder of the --synth builds (build/sweep_<net>)")
    p.add_argument("--clock-mhz", type=positive_float, default=100.0,
                   help="clock (FCLK_CLK0) in MHz (default 100)")
    p.add_argument("--part", default="xc7z020clg400-1", help="FPGA part (PYNQ-Z2 default)")
    p.add_argument("--seed", type=int, default=0,
                   help="--synth: seed of random weights for layers without trained ones")


def run(args: argparse.Namespace) -> int:
    from ..netfile import load_network

    try:
        device = device_for_part(args.part)
    except ValueError as e:
        raise UsageError(str(e)) from None
    net = load_network(args.network, seed=args.seed if args.synth else None)
    space = search(net, device=device)
    points = sweep(space, args.clock_mhz)
    if args.synth:
        out = args.out if args.out is not None else Path("build") / f"sweep_{net.name}"
        lo, hi = args.synth_fps or (0.0, math.inf)
        chosen = spread([p for p in points if lo <= p.fps <= hi], args.synth)
        if not chosen:
            raise UsageError(f"--synth-fps {lo:g}:{hi:g}: no design that fits the part there")
        synth_points(net, chosen, out, args.clock_mhz, args.part)
    for path in args.overlay or ():
        overlay(points, path)
    print(format_sweep(net, space, points))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"network": net.name, "part": args.part,
                                         "clock_mhz": args.clock_mhz,
                                         "front": len(space.front),
                                         "points": [p.to_dict() for p in points]},
                                        indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.png:
        print(f"wrote {plot_sweep(net, space, points, args.png, args.clock_mhz)}")
    return 0
