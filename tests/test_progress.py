"""Progress lines (lowbit_hdl.progress), waveforms (``--wave``) and harness processes that
stop with their parent."""

from __future__ import annotations

import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import tiny_fc_net

from lowbit_hdl.cli import main
from lowbit_hdl.netfile import save
from lowbit_hdl.progress import Reporter


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_are_throttled_to_every_n_seconds():
    out, clock = io.StringIO(), FakeClock()
    rep = Reporter("[sim]", out, every=10.0, clock=clock)
    assert not rep.live  # a StringIO is no terminal
    assert rep.update("a")  # the first line is written at once
    clock.t = 5.0
    assert not rep.update("b")
    clock.t = 10.5
    assert rep.update("c")
    clock.t = 11.0
    assert rep.update("d", force=True)
    rep.finish("end")
    assert out.getvalue() == "[sim] a\n[sim] c\n[sim] d\n[sim] end\n"


def test_live_line_is_rewritten_and_ended():
    out, clock = io.StringIO(), FakeClock()
    rep = Reporter("[x]", out, live=True, clock=clock, live_every=0.5)
    rep.update("long line")
    clock.t = 0.1
    assert not rep.update("skipped")
    clock.t = 1.0
    rep.update("short")
    rep.finish("ok")
    assert out.getvalue() == "\r[x] long line\r[x] short    \r[x] ok   \n"


def test_ticking_reports_elapsed_time_and_detail():
    out = io.StringIO()
    rep = Reporter("[build]", out, every=0.01)
    with rep.ticking("Yosys of top", lambda: "pass ABC", interval=0.01):
        time.sleep(0.2)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[build] Yosys of top…"
    assert any(ln.startswith("[build] Yosys of top (") and "s, pass ABC)" in ln
               for ln in lines[1:-1]), lines
    assert lines[-1].startswith("[build] Yosys of top: done after ")
    with pytest.raises(KeyError), rep.ticking("failing", lambda: 1 / 0):  # type: ignore
        raise KeyError("x")
    assert out.getvalue().splitlines()[-1].startswith("[build] failing: stopped after ")


def test_yosys_current_pass_is_read_from_the_log(tmp_path):
    from lowbit_hdl.flow.synth import current_pass

    log = tmp_path / "yosys.log"
    log.write_text("\n1. Executing Verilog-2005 frontend: a.v\n...\n"
                   "2.3. Executing PROC pass (convert processes to netlists).\nwork\n")
    assert current_pass(log) == "PROC pass (convert processes to netlists)"
    log.write_text("nothing yet\n")
    assert current_pass(log) == ""


# -- waveforms ----------------------------------------------------------------------------------


def fst_times(path: Path) -> tuple[int, int]:
    """Start and end time from an FST file's header block (type 0, 329 bytes, then the
    big-endian start and end times and the endianness test double e)."""
    data = path.read_bytes()
    assert data[0] == 0 and int.from_bytes(data[1:9], "big") == 329, data[:16]
    start, end = (int.from_bytes(data[k:k + 8], "big") for k in (9, 17))
    (e,) = struct.unpack("<d", data[25:33])
    assert abs(e - 2.718281828459045) < 1e-9
    return start, end


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
def test_sim_wave_writes_an_fst_file(tmp_path, capsys):
    save(tiny_fc_net(), tmp_path / "tiny_fc.npz")
    wave = tmp_path / "run.fst"
    rc = main(["sim", str(tmp_path / "tiny_fc.npz"), "--frames", "2", "--stall", "0",
               "--simulator", "icarus", "--wave", str(wave)])
    err = capsys.readouterr().err
    assert rc == 0
    start, end = fst_times(wave)
    assert end > start
    assert "simulating lowbit_top on icarus" in err and f"waveform written to {wave}" in err


@pytest.mark.parametrize("cmd, extra, message", [
    ("sim", ["--fast"], "use --cocotb"),
    ("sim", ["--simulator", "icarus", "--wave-name", "w.vcd"], "icarus writes FST"),
    ("deploy-sim", ["--fast"], "run without --fast"),
    ("deploy-sim", ["--wave-name", "w.fst"], "verilator writes VCD"),
])
def test_wave_option_mistakes_are_named_errors(tmp_path, capsys, cmd, extra, message):
    save(tiny_fc_net(), tmp_path / "tiny_fc.npz")
    if "--wave-name" in extra:
        i = extra.index("--wave-name")
        extra = [*extra[:i], "--wave", str(tmp_path / extra[i + 1]), *extra[i + 2:]]
    else:
        extra = [*extra, "--wave", str(tmp_path / "w.vcd")]
    rc = main([cmd, str(tmp_path / "tiny_fc.npz"), *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"lowbit_hdl {cmd}: error: --wave") and message in last, err


# -- harness processes stop with their parent ------------------------------------------------


def _state(pid: int) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except FileNotFoundError:
        return None
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_children_get_sigterm_when_the_parent_is_killed():
    script = textwrap.dedent("""
        import subprocess, sys, time
        from lowbit_hdl.sim.fast import _die_with_parent
        p = subprocess.Popen(["sleep", "60"], preexec_fn=_die_with_parent)
        print(p.pid, flush=True)
        time.sleep(60)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              text=True, env=env)
    child = int(parent.stdout.readline())
    assert _state(child) not in (None, "Z")
    parent.send_signal(signal.SIGTERM)
    parent.wait(10)
    for _ in range(100):
        if _state(child) in (None, "Z"):
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")


def test_harness_runs_die_with_their_parent(monkeypatch, tmp_path):
    import numpy as np

    from lowbit_hdl.sim import fast

    seen = {}

    def popen(args, **kw):
        seen.update(kw)
        raise RuntimeError("stop here")

    monkeypatch.setattr(fast.subprocess, "Popen", popen)
    with pytest.raises(RuntimeError, match="stop here"):
        fast.run_harness(tmp_path / "Vharness", np.zeros(4, np.uint8), 1, 1, 4,
                         np.zeros((1, 3), np.int64), 1, 1)
    assert seen.get("preexec_fn") is fast._die_with_parent


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
def test_deploy_sim_wave_per_batch(tmp_path, capsys):
    save(tiny_fc_net(), tmp_path / "tiny_fc.npz")
    wave = tmp_path / "board.fst"
    rc = main(["deploy-sim", str(tmp_path / "tiny_fc.npz"), "--simulator", "icarus",
               "--count", "2", "--batch", "1", "--wave", str(wave)])
    err = capsys.readouterr().err
    assert rc == 0, err
    for f in (wave, tmp_path / "board.batch1.fst"):
        start, end = fst_times(f)
        assert end > start
    assert "[deploy-sim] batch 2/2: 1 frame(s)" in err
