"""Numpy-only imports of the runtime and of the deployment bundle, the bundle's files, and
its run.py / validate.py against the fake PYNQ in a process where only numpy can be
imported."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import images, tiny_layout, tiny_net

from lowbit_hdl.flow.deploy import PACKAGE, RUNTIME_FILES, write_deploy_bundle
from lowbit_hdl.golden import forward
from lowbit_hdl.runtime.preprocess import quantize
from lowbit_hdl.sim.fakepynq import write_test_hwh

ROOT = Path(__file__).resolve().parent.parent

BLOCKER = """
import importlib.abc, sys
BLOCK = {block!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCK:
            raise ImportError("blocked in this test: " + name)
sys.meta_path.insert(0, Blocker())
"""
HEAVY = ["amaranth", "cocotb", "cocotb_tools", "torch", "pynq", "PIL", "hypothesis", "pytest"]


def _run(code: str, block: list[str], cwd: Path = ROOT, preload: str = ""
         ) -> subprocess.CompletedProcess:
    """Run ``code`` with the packages in ``block`` unimportable (``preload`` runs before the
    blocker is installed)."""
    return subprocess.run([sys.executable, "-c", preload + BLOCKER.format(block=block) + code],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


# the fake PYNQ is development-side: load it, then forget every lowbit_hdl module so that the
# bundle's own code cannot reach them
FAKE_PYNQ = """
import sys
from lowbit_hdl.sim.fakepynq import FakeDevice, FakePynq
for _m in [m for m in sys.modules if m.split(".")[0] == "lowbit_hdl"]:
    del sys.modules[_m]
"""


def test_blocker_works():
    r = _run("import amaranth", HEAVY)
    assert r.returncode != 0 and "blocked in this test: amaranth" in r.stderr


def test_runtime_imports_with_numpy_only():
    code = """
import lowbit_hdl.runtime as rt
from lowbit_hdl.runtime import accelerator, backend, hwh, layout, preprocess
assert rt.Accelerator and rt.PynqBackend
heavy = [m for m in sys.modules if m.split(".")[0] in BLOCK]
assert not heavy, heavy
print("ok", sorted(m for m in sys.modules if m.startswith("lowbit_hdl")))
"""
    r = _run(code, HEAVY)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout and "lowbit_hdl.sim.board" not in r.stdout


def _bundle(tmp_path, with_labels=True):
    net = tiny_net()
    lay = tiny_layout(net)
    imgs = images(12, seed=9)
    gold = forward(net, quantize(imgs[:, None], "UINT8")).output
    labels = gold[:, 0, 0, 0].copy()
    labels[:3] = (labels[:3] + 1) % 4  # 9 of 12 right
    d = write_deploy_bundle(tmp_path / "build", net, lay,
                            samples=(imgs, labels if with_labels else None))
    (d / "tiny.bit").write_bytes(b"\0")
    write_test_hwh(d / "tiny.hwh", mm2s_tdata_bits=32, s2mm_tdata_bits=8)
    return net, lay, d


def test_bundle_files(tmp_path):
    net, lay, d = _bundle(tmp_path)
    assert d == tmp_path / "build" / "deploy"
    assert sorted(p.name for p in (d / PACKAGE).glob("*.py")) == sorted(RUNTIME_FILES)
    for f in ("tiny.npz", "layout.json", "labels.txt", "samples.npz", "run.py", "validate.py",
              "deploy.ipynb", "README.md"):
        assert (d / f).is_file(), f
    assert (d / "labels.txt").read_text().split() == ["a", "b", "c", "d"]
    with np.load(d / "samples.npz") as z:
        assert z["images"].shape == (12, 1, 4, 4) and z["images"].dtype == np.uint8
        assert z["expected"].shape == (12, 2, 1, 1)
    nb = json.loads((d / "deploy.ipynb").read_text())
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 4
    assert nb["metadata"]["kernelspec"]["language"] == "python"
    ids = set()
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        assert isinstance(cell["source"], list) and isinstance(cell["metadata"], dict)
        ids.add(cell["id"])
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            compile("".join(cell["source"]), "cell", "exec")
    assert len(ids) == len(nb["cells"])
    for script in ("run.py", "validate.py"):
        compile((d / script).read_text(), script, "exec")
    with pytest.raises(ValueError, match="layout is for"):
        write_deploy_bundle(tmp_path / "x", net, tiny_layout(net, network="other"))


# the board side: lowbit_hdl itself is blocked too, the device is a lookup of the samples'
# golden outputs (this exercises run.py's plumbing; the simulated-board test runs the real
# design)
BOARD = """
sys.path.insert(0, {deploy!r})
import numpy as np
import lowbit_runtime as rt
import {script} as script
lay = rt.DesignLayout.load({deploy!r} + "/layout.json")
with np.load({table!r}) as z:
    table = {{lay.input.pack(rt.to_frames(im, lay.input.shape, "UINT8"))[0].tobytes():
             lay.output.pack(e[None])[0] for im, e in zip(z["images"], z["expected"])}}
dev = FakeDevice(lay.input.frame_bytes, lay.output.frame_bytes,
                    lambda x: np.stack([table[r.tobytes()] for r in x]))
fake = FakePynq(dev, rails={{"VCCINT": 0.3}})
rc = script.main({argv!r}, backend=rt.PynqBackend(fake))
assert not [m for m in sys.modules if m.split(".")[0] in BLOCK]
assert fake.names().count("allocate") == 2
sys.exit(rc)
"""


def test_bundle_run_py_numpy_only(tmp_path):
    _, _, d = _bundle(tmp_path)
    r = _run(BOARD.format(deploy=str(d), table=str(d / "samples.npz"), script="run",
                      argv=["--batch", "5"]),
             HEAVY + ["lowbit_hdl"], cwd=tmp_path, preload=FAKE_PYNQ)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "network tiny: 12 images" in out
    assert "accuracy: 75.00% (12 images)" in out
    assert "bit-exact with the golden model: 12 of 12 images" in out
    assert "12 images in 3 batch(es)" in out
    assert "power: 0.300 W (VCCINT 0.300 W)" in out


def test_bundle_run_py_reports_mismatch(tmp_path):
    _, _, d = _bundle(tmp_path, with_labels=False)
    with np.load(d / "samples.npz") as z:
        arrays = dict(z)
    np.savez(tmp_path / "device.npz", **arrays)  # what the (fake) hardware computes
    arrays["expected"][4] = (arrays["expected"][4] + 1) % 4  # pretend the golden differs
    np.savez(d / "samples.npz", **arrays)
    r = _run(BOARD.format(deploy=str(d), table=str(tmp_path / "device.npz"), script="run",
                          argv=[]), HEAVY + ["lowbit_hdl"], cwd=tmp_path, preload=FAKE_PYNQ)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "MISMATCH on images [4]" in r.stdout and "accuracy" not in r.stdout


def test_bundle_validate_py_numpy_only(tmp_path):
    _, _, d = _bundle(tmp_path)
    with np.load(d / "samples.npz") as z:
        np.savez(tmp_path / "test.npz", images=z["images"], labels=z["labels"])
    r = _run(BOARD.format(deploy=str(d), table=str(d / "samples.npz"), script="validate",
                          argv=["--dataset", str(tmp_path / "test.npz"), "--batch", "4"]),
             HEAVY + ["lowbit_hdl"], cwd=tmp_path, preload=FAKE_PYNQ)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "batch 2: 12/12 images" in r.stdout
    assert "accuracy: 9/12 = 75.00%" in r.stdout
