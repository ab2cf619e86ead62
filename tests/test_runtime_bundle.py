"""Numpy-only imports of the runtime (a scan of its source and a blocked-import process), the
deployment bundle's files (the runtime shipped whole, the scripts copied unchanged, the
notebook made from its source), and its run.py / validate.py / deploy.ipynb against the fake
PYNQ in a process where only numpy can be imported."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import images, tiny_layout, tiny_net

from lowbit_hdl.flow.deploy import (
    DEPLOY_FILES,
    NOTEBOOK_SOURCE,
    PACKAGE,
    RUNTIME_FILES,
    SCRIPTS,
    notebook_from_source,
    write_deploy_bundle,
)
from lowbit_hdl.golden import forward
from lowbit_hdl.runtime.preprocess import quantize
from lowbit_hdl.sim.fakepynq import write_test_hwh

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "lowbit_hdl" / "runtime"

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


# --------------------------------------------------------------------------------------------
# what the runtime imports, read from its source
# --------------------------------------------------------------------------------------------

#: optional packages a runtime module may import, only lazily (inside a function) and only
#: within the named class or function: ``pynq`` when PynqBackend loads the overlay, Pillow
#: when load_image reads an image file that is not .npy and when a test set of JPEG scans is
#: decoded
LAZY = {"pynq": ("PynqBackend",), "PIL": ("load_image", "_decode_jpeg_split")}
IMPORT_FUNCS = {"import_module", "__import__"}


def runtime_import_problems(source: str, modules: set[str]) -> list[str]:
    """Imports of ``source`` (a runtime module) that the board cannot satisfy: anything but
    the standard library, numpy, the runtime's own ``modules`` (relatively, as the bundle
    renames the package) and the :data:`LAZY` exceptions. ``importlib.import_module`` and
    ``__import__`` count as imports; their argument must be a string literal."""
    problems: list[str] = []

    def check_absolute(name: str, scope: list[tuple[str, str]], line: int) -> None:
        top = name.split(".")[0]
        if top == "numpy" or top in sys.stdlib_module_names:
            return
        in_function = any(kind == "def" for _, kind in scope)
        if top in LAZY and in_function and set(LAZY[top]) & {n for n, _ in scope}:
            return
        where = ".".join(n for n, _ in scope) or "module level"
        problems.append(f"line {line}: imports {name} ({where})")

    def visit(node: ast.AST, scope: list[tuple[str, str]]) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = [*scope, (child.name, "def")]
            elif isinstance(child, ast.ClassDef):
                inner = [*scope, (child.name, "class")]
            if isinstance(child, ast.Import):
                for alias in child.names:
                    check_absolute(alias.name, scope, child.lineno)
            elif isinstance(child, ast.ImportFrom):
                if child.level == 0:
                    check_absolute(child.module or "", scope, child.lineno)
                elif child.level > 1:
                    problems.append(f"line {child.lineno}: relative import beyond the runtime")
                else:
                    targets = [child.module.split(".")[0]] if child.module else \
                        [a.name for a in child.names]
                    problems.extend(f"line {child.lineno}: .{t} is not a runtime module"
                                    for t in targets if t not in modules)
            elif isinstance(child, ast.Call):
                f = child.func
                fname = f.attr if isinstance(f, ast.Attribute) else \
                    f.id if isinstance(f, ast.Name) else None
                if fname in IMPORT_FUNCS:
                    arg = child.args[0] if child.args else None
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        check_absolute(arg.value, scope, child.lineno)
                    else:
                        problems.append(f"line {child.lineno}: {fname} of a computed name")
            visit(child, inner)

    visit(ast.parse(source), [])
    return problems


def test_runtime_imports_only_numpy_stdlib_and_itself():
    modules = {p.stem for p in RUNTIME.glob("*.py")}
    assert {"layout", "accelerator", "backend", "words"} <= modules
    found_lazy = set()
    for path in sorted(RUNTIME.glob("*.py")):
        source = path.read_text()
        assert runtime_import_problems(source, modules) == [], path.name
        found_lazy |= {name for name in LAZY if f'"{name}"' in source or f"from {name} "
                       in source}
    assert found_lazy == set(LAZY)  # the exceptions are real, not stale


def test_runtime_import_scan_catches_what_the_board_lacks():
    bad = """
import amaranth
from lowbit_hdl import ir
from ..flow import plan
from .nothere import x
import pynq
import importlib
importlib.import_module(name)
def load_image(path):
    import pynq
class PynqBackend:
    import pynq
    def load(self):
        from PIL import Image
        importlib.import_module("torch")
"""
    problems = runtime_import_problems(bad, {"layout"})
    assert len(problems) == 10, problems
    for word in ("amaranth", "lowbit_hdl", "beyond", ".nothere", "computed", "torch"):
        assert any(word in p for p in problems), word
    # pynq at module level, in load_image and in PynqBackend's class body; PIL in the backend
    assert sum("imports pynq" in p for p in problems) == 3
    assert sum("imports PIL" in p for p in problems) == 1
    ok = """
from __future__ import annotations
import gzip, json, xml.etree.ElementTree as ET
import numpy as np
from .layout import DesignLayout
from . import layout
class PynqBackend:
    def pynq(self):
        return importlib.import_module("pynq")
def load_image(path):
    from PIL import Image
"""
    assert runtime_import_problems(ok, {"layout"}) == []


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
    # the runtime package ships whole and unchanged
    shipped = [p for p in RUNTIME.iterdir() if p.name != "__pycache__"]
    assert all(p.suffix in (".py", ".txt") for p in shipped)
    # its data files ship too, in the bundle and in the wheel (package data)
    data = sorted(p.name for p in shipped if p.suffix != ".py")
    assert data == ["imagenet_classes.txt"]
    import tomllib

    pkg_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["lowbit_hdl.runtime"]
    assert sorted(pkg_data) == data
    assert sorted(p.name for p in shipped) == sorted(RUNTIME_FILES)
    assert sorted(p.name for p in (d / PACKAGE).iterdir()) == sorted(RUNTIME_FILES)
    for p in shipped:
        assert (d / PACKAGE / p.name).read_bytes() == p.read_bytes(), p.name
    # the scripts are copies of the real files, nothing substituted per network
    for script in SCRIPTS:
        assert (d / script).read_bytes() == (DEPLOY_FILES / script).read_bytes(), script
    assert "tiny" not in (DEPLOY_FILES / "run.py").read_text()
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
    assert nb == notebook_from_source((DEPLOY_FILES / NOTEBOOK_SOURCE).read_text())
    for script in ("run.py", "validate.py"):
        compile((d / script).read_text(), script, "exec")
    assert json.loads((d / "layout.json").read_text())["ip_names"]["dma"] == "axi_dma_0"
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
{fault}
rc = script.guarded(script.main, {argv!r}, backend=rt.PynqBackend(fake))
assert not [m for m in sys.modules if m.split(".")[0] in BLOCK]
assert fake.names().count("allocate") == 2
sys.exit(rc)
"""


def test_bundle_run_py_numpy_only(tmp_path):
    _, _, d = _bundle(tmp_path)
    r = _run(BOARD.format(deploy=str(d), table=str(d / "samples.npz"), script="run",
                      argv=["--batch", "5"], fault=""),
             HEAVY + ["lowbit_hdl"], cwd=tmp_path, preload=FAKE_PYNQ)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "NOTE: layers fc0, fc1 have RANDOM weights and thresholds" in out
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
                          argv=[], fault=""), HEAVY + ["lowbit_hdl"], cwd=tmp_path,
             preload=FAKE_PYNQ)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "MISMATCH on images [4]" in r.stdout and "accuracy" not in r.stdout


def test_bundle_run_py_reports_a_dma_fault_in_one_line(tmp_path):
    """A board fault (here a DMA decode error on the receive side) ends run.py with one
    named line and status 1, not a traceback."""
    _, _, d = _bundle(tmp_path)
    r = _run(BOARD.format(deploy=str(d), table=str(d / "samples.npz"), script="run", argv=[],
                          fault='fake.inject_error("S2MM", "DMADecErr")'),
             HEAVY + ["lowbit_hdl"], cwd=tmp_path, preload=FAKE_PYNQ)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("-c: error: ") and "DMADecErr" in lines[0]


def test_bundle_validate_py_numpy_only(tmp_path):
    _, _, d = _bundle(tmp_path)
    with np.load(d / "samples.npz") as z:
        np.savez(tmp_path / "test.npz", images=z["images"], labels=z["labels"])
    r = _run(BOARD.format(deploy=str(d), table=str(d / "samples.npz"), script="validate",
                          argv=["--dataset", str(tmp_path / "test.npz"), "--batch", "4"], fault=""),
             HEAVY + ["lowbit_hdl"], cwd=tmp_path, preload=FAKE_PYNQ)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "batch 2: 12/12 images" in r.stdout
    assert "accuracy: 9/12 = 75.00%" in r.stdout


# deploy.ipynb's code cells, run in order as Jupyter would (in the bundle folder, `import pynq`
# finding the fake PYNQ)
NOTEBOOK = """
import json, os
os.chdir({deploy!r})
sys.path.insert(0, "")
import numpy as np
import lowbit_runtime as rt
lay = rt.DesignLayout.load("layout.json")
with np.load("samples.npz") as z:
    table = {{lay.input.pack(rt.to_frames(im, lay.input.shape, "UINT8"))[0].tobytes():
             lay.output.pack(e[None])[0] for im, e in zip(z["images"], z["expected"])}}
dev = FakeDevice(lay.input.frame_bytes, lay.output.frame_bytes,
                 lambda x: np.stack([table[r.tobytes()] for r in x]))
fake = FakePynq(dev)
sys.modules["pynq"] = fake
ns = {{}}
for cell in json.loads(open("deploy.ipynb").read())["cells"]:
    if cell["cell_type"] == "code":
        exec("".join(cell["source"]), ns)
assert ns["status"] == 0
assert not [m for m in sys.modules if m.split(".")[0] in BLOCK and m != "pynq"]
assert fake.names().count("Overlay") == 1
"""


def test_bundle_notebook_numpy_only(tmp_path):
    _, _, d = _bundle(tmp_path)
    r = _run(NOTEBOOK.format(deploy=str(d)), HEAVY + ["lowbit_hdl"], cwd=tmp_path,
             preload=FAKE_PYNQ)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert out.startswith("tiny\n")
    assert "accuracy: 75.00% (12 images)" in out
    assert "bit-exact with the golden model: 12 of 12 images" in out
    assert "12 images in 1 batch(es)" in out and "12 images in 12 batch(es)" in out


def test_notebook_from_source():
    nb = notebook_from_source("# header, not a cell\n\n# %% [markdown]\n# # Title\n#\n# text\n"
                              "\n# %%\nimport run\n\nx = 1\n\n\n# %%\nprint(x)\n")
    cells = nb["cells"]
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code"]
    assert cells[0]["source"] == ["# Title\n", "\n", "text"]
    assert cells[1]["source"] == ["import run\n", "\n", "x = 1"]
    assert cells[1]["outputs"] == [] and cells[1]["execution_count"] is None
    assert [c["id"] for c in cells] == ["cell-0", "cell-1", "cell-2"]
    with pytest.raises(ValueError, match="no cells"):
        notebook_from_source("print(1)\n")
    with pytest.raises(ValueError, match="not a comment"):
        notebook_from_source("# %% [markdown]\ntext\n")
    with pytest.raises(ValueError, match="empty code cell"):
        notebook_from_source("# %%\n\n# %%\nx = 1\n")
    with pytest.raises(TypeError):
        notebook_from_source(b"# %%\n")


def _hybrid_bundle(tmp_path):
    from lowbit_hdl.flow.plan import plan_network

    net = tiny_net()
    lay = plan_network(net, ddr_layers=["fc0"]).layout()
    imgs = images(6, seed=9)
    d = write_deploy_bundle(tmp_path / "build", net, lay, samples=(imgs, None))
    (d / "tiny.bit").write_bytes(b"\0")
    write_test_hwh(d / "tiny.hwh", mm2s_tdata_bits=32, s2mm_tdata_bits=8,
                   accelerator=lay.ip_names.accelerator)
    return net, lay, d


def test_bundle_ddr_weights(tmp_path):
    from lowbit_hdl.runtime.control import DDR_WEIGHTS_FILE, load_ddr_weights
    from lowbit_hdl.runtime.ddrimage import DdrLayoutError

    net, lay, d = _hybrid_bundle(tmp_path)
    w = load_ddr_weights(d / DDR_WEIGHTS_FILE)
    info = {i.name: i for i in net.infer()}
    assert sorted(w) == ["fc0"]
    np.testing.assert_array_equal(w["fc0"], info["fc0"].weight_matrix())
    assert w["fc0"].shape == (8, 16)
    assert "reads the weights of fc0 from DDR" in (d / "README.md").read_text()
    # a dataflow bundle has none
    _, _, d2 = _bundle(tmp_path / "df")
    assert not (d2 / DDR_WEIGHTS_FILE).exists()
    # a layout whose region does not match the network is refused
    from dataclasses import replace

    from lowbit_hdl.flow.deploy import write_ddr_weights

    bad = replace(lay.ddr, regions=(replace(lay.ddr.regions[0], mh=16, mw=8),))
    with pytest.raises(DdrLayoutError, match=r"weights of shape \(8, 16\)"):
        write_ddr_weights(tmp_path / "x.npz", net, replace(lay, ddr=bad))


HYBRID_BOARD = """
sys.path.insert(0, {deploy!r})
import numpy as np
import lowbit_runtime as rt
import run as script
lay = rt.DesignLayout.load({deploy!r} + "/layout.json")
with np.load({deploy!r} + "/samples.npz") as z:
    table = {{lay.input.pack(rt.to_frames(im, lay.input.shape, "UINT8"))[0].tobytes():
             lay.output.pack(e[None])[0] for im, e in zip(z["images"], z["expected"])}}
dev = FakeDevice(lay.input.frame_bytes, lay.output.frame_bytes,
                 lambda x: np.stack([table[r.tobytes()] for r in x]))
fake = FakePynq(dev, accelerator=FakeAccelerator(lay.ddr, fail={fail}))
rc = script.guarded(script.main, ["--batch", "4"], backend=rt.PynqBackend(fake))
assert not [m for m in sys.modules if m.split(".")[0] in BLOCK]
assert fake.names().count("allocate") == 3
if rc == 0:
    w = rt.control.load_ddr_weights({deploy!r} + "/ddr_weights.npz")
    assert fake.accelerator.image == rt.ddrimage.pack_image(lay.ddr, w)
    assert fake.accelerator.runs == 2
sys.exit(rc)
"""
FAKE_PYNQ_ACCEL = FAKE_PYNQ.replace("import FakeDevice, FakePynq",
                                    "import FakeAccelerator, FakeDevice, FakePynq")


@pytest.mark.parametrize("fail", [None, 2])
def test_bundle_run_py_hybrid(tmp_path, fail):
    """run.py of a hybrid bundle finds ddr_weights.npz, the DDR image reaches the
    accelerator; an AXI error ends run.py with one named line and status 1."""
    _, _, d = _hybrid_bundle(tmp_path)
    r = _run(HYBRID_BOARD.format(deploy=str(d), fail=fail), HEAVY + ["lowbit_hdl"],
             cwd=tmp_path, preload=FAKE_PYNQ_ACCEL)
    if fail is None:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "bit-exact with the golden model: 6 of 6 images" in r.stdout
    else:
        assert r.returncode == 1, r.stdout + r.stderr
        assert "Traceback" not in r.stderr, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "DDR read error" in lines[0] and "SLVERR" in lines[0]
# the task-specific run.py: an ImageNet-style classifier prints named top-5 classes, a
# Tiny-YOLO-style detector prints boxes and saves the images with their boxes drawn


def _task_bundle(tmp_path, net):
    from lowbit_hdl.flow.plan import plan_network

    lay = plan_network(net).layout()
    assert lay.task == net.task
    d = write_deploy_bundle(tmp_path / "build", net, lay, sample_count=3)
    assert json.loads((d / "layout.json").read_text())["task"] == net.task
    assert (d / PACKAGE / "imagenet_classes.txt").is_file()
    (d / f"{net.name}.bit").write_bytes(b"\0")
    write_test_hwh(d / f"{net.name}.hwh", mm2s_tdata_bits=lay.input.tdata_bits,
                   s2mm_tdata_bits=lay.output.tdata_bits)
    return d


def test_bundle_run_py_imagenet_top5(tmp_path):
    from lowbit_hdl import FC, INT, UINT, Conv, Network
    from lowbit_hdl.runtime.imagenet import top_k_classes

    net = Network("inet", (3, 32, 32), [
        Conv("c0", 4, kernel=8, stride=8, weight_dtype=INT(8), act=UINT(2), pe=4, simd=3),
        FC("fc", 1000, weight_dtype=INT(8), act=None, pe=8, simd=8)],
        UINT(8), task="imagenet").randomize(4)
    d = _task_bundle(tmp_path, net)
    r = _run(BOARD.format(deploy=str(d), table=str(d / "samples.npz"), script="run",
                          argv=[], fault=""), HEAVY + ["lowbit_hdl"], cwd=tmp_path,
             preload=FAKE_PYNQ)
    assert r.returncode == 0, r.stdout + r.stderr
    with np.load(d / "samples.npz") as z:
        expected = z["expected"]
    top = top_k_classes(expected, 1)  # one image's classes per row: [(index, name, score)]
    out = r.stdout
    assert "network inet: 3 images" in out
    for i in range(3):
        idx, name, score = top[i][0]
        assert f"  image {i}:\n    1. {name} (class {idx})  score {score}\n" in out
    assert out.count("    5. ") == 3
    assert "bit-exact with the golden model: 3 of 3 images" in out


def test_bundle_run_py_yolo_boxes(tmp_path):
    from lowbit_hdl import INT, UINT, Conv, Network

    net = Network("det", (3, 64, 64), [
        Conv("c0", 125, kernel=32, stride=32, weight_dtype=INT(8), act=None, pe=5, simd=3)],
        UINT(8), task="yolo-voc").randomize(2)
    d = _task_bundle(tmp_path, net)
    with np.load(d / "samples.npz") as z:
        first = z["images"][0].transpose(1, 2, 0)
    np.save(tmp_path / "mine.npy", first)  # the input size: letterboxing leaves it alone
    out_dir = tmp_path / "pictures"
    r = _run(BOARD.format(deploy=str(d), table=str(d / "samples.npz"), script="run",
                          argv=["--out", str(out_dir), "--conf", "0.05"], fault=""),
             HEAVY + ["lowbit_hdl"], cwd=tmp_path, preload=FAKE_PYNQ)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "random weights: decoding with scale" in out
    assert "network det: 3 images" in out and "object(s)" in out
    assert "bit-exact with the golden model: 3 of 3 images" in out
    assert sorted(p.name for p in out_dir.iterdir()) == [f"image {i}_boxes.png".replace(
        " ", "_") for i in range(3)]
    PIL = pytest.importorskip("PIL.Image")
    with PIL.open(out_dir / "image_0_boxes.png") as im:
        assert im.size == (64, 64)
    # the user's own image file, with an explicit scale
    r = _run(BOARD.format(deploy=str(d), table=str(d / "samples.npz"), script="run",
                          argv=["--image", str(tmp_path / "mine.npy"), "--scale", "0.001",
                                "--out", str(out_dir)], fault=""),
             HEAVY + ["lowbit_hdl"], cwd=tmp_path, preload=FAKE_PYNQ)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "random weights: decoding" not in r.stdout
    assert f"{tmp_path / 'mine.npy'}: " in r.stdout and (out_dir / "mine_boxes.png").is_file()


def test_bundle_run_py_yolo_uses_the_export_scale(tmp_path):
    """A detector whose network file records its output scale and offset (train --voc):
    run.py decodes with them, without --scale, and prints the boxes detect_grid gives."""
    from lowbit_hdl import INT, UINT, Conv, Network
    from lowbit_hdl.runtime.yolo import Placement, detect_grid

    net = Network("det", (3, 64, 64), [
        Conv("c0", 125, kernel=32, stride=32, weight_dtype=INT(8), act=None, pe=5, simd=3)],
        UINT(8), task="yolo-voc").randomize(2)
    rng = np.random.default_rng(1)
    net.output_scale = tuple(float(v) for v in rng.uniform(0.0005, 0.002, 125))
    net.output_offset = tuple(float(v) for v in rng.uniform(-0.5, 0.5, 125))
    d = _task_bundle(tmp_path, net)
    r = _run(BOARD.format(deploy=str(d), table=str(d / "samples.npz"), script="run",
                          argv=["--out", str(tmp_path), "--conf", "0.05"], fault=""),
             HEAVY + ["lowbit_hdl"], cwd=tmp_path, preload=FAKE_PYNQ)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "decoding with the output scale and offset of the network's export" in r.stdout
    assert "random weights: decoding" not in r.stdout
    with np.load(d / "samples.npz") as z:
        expected = z["expected"]
    dets = detect_grid(expected[0], net.output_scale, net.output_offset, conf_thresh=0.05,
                       placement=Placement.identity(64, 64))  # samples are input-sized
    assert dets  # the case is not empty
    block = "".join(f"    {x}\n" for x in dets[:20])
    assert f"  image 0: {len(dets)} object(s)\n{block}" in r.stdout, r.stdout


def test_bundle_validate_py_voc_map(tmp_path, capsys):
    """validate.py --voc on a VOC folder whose annotations are the golden model's confident
    detections: its mAP equals the evaluation of the golden model's detections (VOC boxes
    1-based and clamped to the image) written out here."""
    from helpers import golden_fake

    from lowbit_hdl import INT, UINT, Conv, Network
    from lowbit_hdl.flow.plan import plan_network
    from lowbit_hdl.runtime import PynqBackend
    from lowbit_hdl.runtime.vocmap import VocObject, evaluate
    from lowbit_hdl.runtime.yolo import demo_scale, detect_grid, detection_frames

    net = Network("det", (3, 64, 64), [
        Conv("c0", 125, kernel=32, stride=32, weight_dtype=INT(8), act=None, pe=5, simd=3)],
        UINT(8), task="yolo-voc").randomize(2)
    d = _task_bundle(tmp_path, net)
    lay = plan_network(net).layout()
    rng = np.random.default_rng(4)
    imgs = [rng.integers(0, 256, s, dtype=np.uint8) for s in ((40, 80, 3), (64, 64, 3),
                                                               (90, 30, 3))]
    frames, pls = detection_frames(imgs, lay.input.shape)
    gold = forward(net, frames.astype(np.int64)).output
    scale = demo_scale(gold)
    voc = tmp_path / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    truth, dets = {}, []
    for i, img in enumerate(imgs):
        np.save(voc / "JPEGImages" / f"im{i}.npy", img)
        h, w = img.shape[:2]
        objs = []
        for det in detect_grid(gold[i], scale, placement=pls[i], conf_thresh=0.005):
            box = (max(det.x0 + 1, 1), max(det.y0 + 1, 1), min(det.x1 + 1, w),
                   min(det.y1 + 1, h))
            dets.append((f"im{i}", det.class_name, det.score, box))
            if det.score > 0.1:
                objs.append(VocObject(det.class_name, box, difficult=len(objs) == 1))
        truth[f"im{i}"] = objs
        xml = "".join(f"<object><name>{o.name}</name><difficult>{int(o.difficult)}"
                      f"</difficult><bndbox><xmin>{o.box[0]!r}</xmin><ymin>{o.box[1]!r}"
                      f"</ymin><xmax>{o.box[2]!r}</xmax><ymax>{o.box[3]!r}</ymax></bndbox>"
                      "</object>" for o in objs)
        (voc / "Annotations" / f"im{i}.xml").write_text(f"<annotation>{xml}</annotation>")
    (voc / "ImageSets" / "Main" / "test.txt").write_text("im0\nim1\nim2\n")
    assert sum(len(o) for o in truth.values()) >= 3  # a case with several objects
    r07 = evaluate(dets, truth, use_07_metric=True)
    rall = evaluate(dets, truth, use_07_metric=False)
    assert 0 < rall.map < 1  # neither trivial nor perfect (duplicates after clamping, …)

    sys.path.insert(0, str(d))
    try:
        import validate
        rc = validate.main(["--voc", str(voc), "--scale", repr(scale), "--batch", "2"],
                           backend=PynqBackend(golden_fake(net, lay)))
    finally:
        sys.path.remove(str(d))
        for m in ("run", "validate", "lowbit_runtime"):
            sys.modules.pop(m, None)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"mAP: {r07.map:.2%} (VOC2007 11-point), {rall.map:.2%} (all-point), 3 images, " \
        f"{len(dets)} detections" in out, out
    assert "batch 1: 3/3 images" in out
