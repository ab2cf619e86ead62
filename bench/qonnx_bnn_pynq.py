"""QONNX import of Brevitas' bnn_pynq models against qonnx's executor (not a test).

    python bench/qonnx_bnn_pynq.py                 # all eleven configurations, 1,000 inputs
    python bench/qonnx_bnn_pynq.py --only cnv --inputs 200

For each configuration Brevitas defines (TFC, SFC, LFC, CNV × W1A1, W1A2, W2A2; LFC has no
W2A2): build the model untrained with random batch-norm statistics and TensorNorm parameters
(seeded), export it with ``brevitas.export.export_qonnx``, import it
(:func:`lowbit_hdl.qonnx.import_model`, raw graph and the graph after qonnx's cleanup, which
must give the same network), and compare :func:`lowbit_hdl.qonnx.check`: every layer output
and the class decisions on random inputs. Prints one line per configuration: layers, inputs,
values compared, mismatches, differing decisions, seconds for export / import / check.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="configurations whose name contains this")
    ap.add_argument("--inputs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    from lowbit_hdl.qonnx import check, import_model
    from lowbit_hdl.qonnx.brevitas_models import BNN_PYNQ_CONFIGS, export_bnn_pynq

    failed = 0
    print(f"{'model':10s} {'layers':>6s} {'inputs':>6s} {'values':>13s} {'differ':>6s} "
          f"{'decisions':>9s} {'export s':>8s} {'import s':>8s} {'check s':>7s}  notes")
    with tempfile.TemporaryDirectory() as tmp:
        for name in BNN_PYNQ_CONFIGS:
            if args.only and args.only not in name:
                continue
            path = Path(tmp) / f"{name}.onnx"
            t0 = time.time()
            export_bnn_pynq(name, path, args.seed, 250 if "fc" in name else 100)
            t1 = time.time()
            r = import_model(str(path))
            t2 = time.time()
            again = import_model(cleanup_model(ModelWrapper(str(path)))).network
            same = all(np.array_equal(getattr(a, k), getattr(b, k))
                       for a, b in zip(r.network.layers, again.layers, strict=True)
                       for k in ("weights", "thresholds") if getattr(a, k, None) is not None)
            t3 = time.time()
            rep = check(r, args.inputs, seed=args.seed + 1)
            t4 = time.time()
            ok = rep.ok and same
            failed += not ok
            notes = ("" if same else "CLEANED GRAPH IMPORTS DIFFERENTLY; ") + \
                ("extra neuron for the output offsets" if r.notes else "")
            print(f"{name:10s} {len(r.network.layers):6d} {rep.inputs:6d} {rep.values:13,d} "
                  f"{rep.mismatches:6d} {rep.decisions_differ:9d} {t1 - t0:8.1f} "
                  f"{t2 - t1:8.1f} {t4 - t3:7.1f}  {notes}", flush=True)
    print("all equal" if not failed else f"{failed} configuration(s) differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
