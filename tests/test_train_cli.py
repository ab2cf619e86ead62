"""Dataset readers, CIFAR augmentation, the ``train`` command (checkpoints, --resume, export,
torch == golden) and the shipped trained TFC-W1A1."""

# ruff: noqa: E402  (imports follow pytest.importorskip)

from __future__ import annotations

import gzip
import json
import math
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("sklearn.datasets")

from lowbit_hdl import golden, netfile
from lowbit_hdl.cli import main
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT
from lowbit_hdl.runtime.preprocess import quantize
from lowbit_hdl.train.data import (
    Dataset,
    dataset_for_shape,
    input_levels,
    load_cifar10,
    load_dataset,
    load_mnist,
    read_idx,
)
from lowbit_hdl.train.loop import make_scheduler, random_crop_flip, schedule_factor

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    arr = np.asarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big")
                                                     for d in arr.shape)
    data = head + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def fake_mnist(root: Path, n_train: int, n_test: int, gz: bool = True,
               sub: str = "MNIST/raw") -> tuple[np.ndarray, np.ndarray]:
    """MNIST-format files made of sklearn digits blown up to 28×28 (real, learnable data)."""
    d = datasets.load_digits()
    img = np.rint(d.images * (255 / 16)).astype(np.uint8)
    big = np.kron(img, np.ones((3, 3), dtype=np.uint8))  # 24×24
    big = np.pad(big, ((0, 0), (2, 2), (2, 2)))
    y = d.target.astype(np.uint8)
    folder = root / sub if sub else root
    write_idx(folder / "train-images-idx3-ubyte", big[:n_train], gz)
    write_idx(folder / "train-labels-idx1-ubyte", y[:n_train], gz)
    write_idx(folder / "t10k-images-idx3-ubyte", big[n_train:n_train + n_test], gz)
    write_idx(folder / "t10k-labels-idx1-ubyte", y[n_train:n_train + n_test], gz)
    return big, y


def test_read_idx_raw_and_gzip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", a, gz=False)
    write_idx(tmp_path / "b", a, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), a)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("gz,sub", [(True, "MNIST/raw"), (False, ""), (True, "raw")])
def test_load_mnist_layouts(tmp_path, gz, sub):
    big, y = fake_mnist(tmp_path, 30, 10, gz=gz, sub=sub)
    ds = load_mnist(tmp_path)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10, 1, 28, 28) and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(ds.x_test[:, 0], big[30:40])
    np.testing.assert_array_equal(ds.y_train, y[:30])
    assert ds.shape == (1, 28, 28) and ds.classes == 10


def test_load_fashion_mnist_folder_and_missing_files(tmp_path):
    fake_mnist(tmp_path, 20, 10, sub="FashionMNIST/raw")
    assert load_dataset("fashion-mnist", tmp_path).name == "fashion-mnist"
    with pytest.raises(FileNotFoundError, match="train-images"):
        load_mnist(tmp_path)


def test_load_cifar10_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, 4)]
        rows[name] = (data, labels)
        with open(folder / name, "wb") as f:  # bytes keys, as the official python2 pickles
            pickle.dump({b"data": data, b"labels": labels}, f, protocol=2)
    ds = load_cifar10(tmp_path)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    # R, G, B planes, row-major
    np.testing.assert_array_equal(ds.x_train[5, 1].ravel(),
                                  rows["data_batch_2"][0][1, 1024:2048])
    assert ds.y_test.tolist() == rows["test_batch"][1]
    assert load_cifar10(folder).x_train.shape == ds.x_train.shape
    with pytest.raises(FileNotFoundError):
        load_cifar10(tmp_path / "nothing")


def test_schedules_in_closed_form():
    assert schedule_factor("cosine", 0, 10) == 1.0
    assert schedule_factor("cosine", 5, 10) == pytest.approx(0.5)
    assert [schedule_factor("step", e, 8) for e in (0, 3, 4, 5, 6, 7)] == \
        pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    sched = make_scheduler(opt, "cosine", 4, done=2)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * (1 + math.cos(3 * math.pi / 4)) / 2)
    with pytest.raises(ValueError):
        schedule_factor("linear", 0, 3)


def test_dataset_for_shape():
    assert dataset_for_shape((1, 28, 28)) == "mnist"
    assert dataset_for_shape((3, 32, 32)) == "cifar10"
    with pytest.raises(ValueError):
        dataset_for_shape((3, 224, 224))


def test_random_crop_flip_is_a_shifted_or_mirrored_crop():
    torch.manual_seed(0)
    x = torch.randint(1, 256, (16, 3, 8, 8)).float()
    out = random_crop_flip(x, pad=2)
    assert out.shape == x.shape
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    flips = 0
    for i in range(16):
        cands = [(xp[i, :, r:r + 8, c:c + 8], f) for r in range(5) for c in range(5)
                 for f in (False, True)]
        hits = [f for cand, f in cands if torch.equal(out[i], cand.flip(2) if f else cand)]
        assert hits, f"image {i} is no crop of its padded original"
        flips += hits[0]
    assert 0 < flips < 16


def test_train_command_checkpoint_resume_and_export(tmp_path, capsys):
    data = tmp_path / "data"
    fake_mnist(data, 500, 200)
    out = tmp_path / "tfc.npz"
    summ = tmp_path / "tfc.json"
    net = str(ROOT / "networks" / "tfc_w1a1.py")
    base = [net, "--data", str(data), "--out", str(out), "--summary", str(summ),
            "--threads", "1", "--batch-size", "50", "--device", "cpu"]
    assert main(["train", *base, "--epochs", "2"]) == 0
    text = capsys.readouterr().out
    assert "epoch 1/2" in text and "epoch 2/2" in text
    assert "decisions identical on 200/200 images" in text
    ckpt = out.with_suffix(".ckpt.pt")
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 2 and {"model", "optimizer", "best", "best_epoch"} <= set(state)
    # resume: continues with epoch 3 of 3 (here under bf16 autocast), keeps the history
    assert main(["train", *base, "--epochs", "3", "--resume", "--amp", "bf16"]) == 0
    text = capsys.readouterr().out
    assert "resumed from" in text and "after epoch 2" in text and "bf16 autocast" in text
    assert "epoch 3/3" in text and "epoch 1/3" not in text
    # the schedule follows the new total: cosine factor (1 + cos(2π/3)) / 2 = 1/4 of 0.01
    assert re.search(r"^epoch 3/3 .* lr 2\.50e-03", text, re.M)
    s = json.loads(summ.read_text())
    assert [h["epoch"] for h in s["history"]] == [1, 2, 3]
    assert s["torch_test_acc"] == s["golden_test_acc"] and s["agree"] == 200
    assert s["golden_test_acc"] > 0.5  # learnable data: well above chance after 3 epochs
    # the written network is the exported integer model
    int_net = netfile.load(out)
    ds = load_mnist(data)
    pred = golden.forward(int_net, ds.x_test).output[:, 0, 0, 0]
    assert float((pred == ds.y_test).mean()) == s["golden_test_acc"]
    # nothing left to train: resume only exports again
    assert main(["train", *base, "--epochs", "3", "--resume"]) == 0
    assert not re.search(r"^epoch \d", capsys.readouterr().out, re.M)


def test_train_command_rejects_mismatched_dataset(tmp_path, capsys):
    fake_mnist(tmp_path, 20, 10)
    net = str(ROOT / "networks" / "cnv_w1a1.py")
    rc = main(["train", net, "--data", str(tmp_path), "--dataset", "mnist", "--epochs", "1",
               "--out", str(tmp_path / "x.npz")])
    assert rc == 2 and "expects" in capsys.readouterr().err
    rc = main(["train", str(ROOT / "networks" / "tiny_yolo_w1a3.py"), "--data", str(tmp_path),
               "--epochs", "1", "--out", str(tmp_path / "y.npz")])
    assert rc == 2 and "no dataset for input shape" in capsys.readouterr().err


def test_cli_module_does_not_import_torch():
    code = ("import sys, lowbit_hdl.cli, lowbit_hdl.train.cli; "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, check=True)
    assert r.stdout.strip() == "False"


def test_shipped_trained_tfc_classifies_the_sample_images():
    net = netfile.load_network(ROOT / "networks" / "tfc_w1a1_mnist.py")
    net.infer(check_params=True)
    with np.load(ROOT / "networks" / "data" / "mnist_samples.npz") as z:
        x, y = z["images"], z["labels"]
    assert x.shape == (100, 1, 28, 28) and x.dtype == np.uint8 and y.shape == (100,)
    pred = golden.forward(net, x).output[:, 0, 0, 0]
    assert (pred == y).mean() >= 0.95  # measured 98/100


def test_input_levels_follow_the_runtime_rule():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 1, 6, 6), dtype=np.uint8)
    x[0, 0, 0, :4] = [0, 127, 128, 255]
    y = np.arange(20) % 10
    ds = Dataset("d", x, y, x[:5], y[:5])
    same, fill = input_levels(ds, UINT(8))
    assert same is ds and fill == 0
    bip, fill = input_levels(ds, BIPOLAR)
    assert fill == -1 and bip.x_train.dtype == np.int8
    assert bip.x_train[0, 0, 0, :4].tolist() == [-1, -1, 1, 1]  # BNN-PYNQ: pixel > 127
    assert np.array_equal(bip.x_train, np.where(x >= 128, 1, -1))
    assert np.array_equal(bip.x_test, quantize(x[:5], "BIPOLAR"))
    i4, fill = input_levels(ds, INT(4))
    assert fill == -8 and np.array_equal(i4.x_train, quantize(x, "INT4"))
    # shifting the levels with the level of pixel 0 as fill = quantizing the shifted pixels
    for dt in (BIPOLAR, INT(4)):
        lv, fill = input_levels(ds, dt)
        torch.manual_seed(3)
        a = random_crop_flip(torch.as_tensor(lv.x_train).float(), pad=2, fill=fill)
        torch.manual_seed(3)
        b = random_crop_flip(torch.as_tensor(x).float(), pad=2)
        assert np.array_equal(a.numpy(), quantize(b.numpy().astype(np.uint8), str(dt)))
    with pytest.raises(TypeError):
        input_levels(ds, "BIPOLAR")


def test_train_binary_input_network(tmp_path, capsys):
    """BNN-PYNQ's binarized pixels: the trainer feeds the levels the runtime makes, and the
    exported network (BIPOLAR input) equals torch on every test image."""
    data = tmp_path / "data"
    fake_mnist(data, 400, 100)
    out = tmp_path / "tfcb.npz"
    rc = main(["train", str(ROOT / "networks" / "tfc_w1a1_binput.py"), "--data", str(data),
               "--out", str(out), "--threads", "1", "--batch-size", "50", "--device", "cpu",
               "--epochs", "2", "--shift", "1"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "pixels → BIPOLAR input levels" in text and "identical on 100/100" in text
    net = netfile.load(out)
    assert net.input_dtype == BIPOLAR
    ds = load_mnist(data)
    gold = golden.forward(net, quantize(ds.x_test, "BIPOLAR")).output[:, 0, 0, 0]
    acc = float(re.search(r"golden integer model: ([\d.]+)%", text).group(1))
    assert acc == pytest.approx(100 * np.mean(gold == ds.y_test))
    assert acc > 50  # it learns from binarized digits


def test_random_shift_is_a_translation_without_flip():
    torch.manual_seed(1)
    x = torch.randint(1, 256, (32, 1, 8, 8)).float()
    out = random_crop_flip(x, pad=2, flip=False)
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    moved = 0
    for i in range(32):
        offs = [(r, c) for r in range(5) for c in range(5)
                if torch.equal(out[i], xp[i, :, r:r + 8, c:c + 8])]
        assert offs, f"image {i} is no translation of its original"
        moved += offs[0] != (2, 2)
    assert moved > 16  # 24 of 25 offsets move the image


def test_train_time_limit_stops_cleanly_and_resume_finishes(tmp_path, capsys):
    data = tmp_path / "data"
    fake_mnist(data, 400, 100)
    out = tmp_path / "tfc.npz"
    base = [str(ROOT / "networks" / "tfc_w1a1.py"), "--data", str(data), "--out", str(out),
            "--threads", "1", "--batch-size", "50", "--device", "cpu", "--epochs", "3"]
    # no epoch fits in 0 s: nothing trained, nothing exported, status 3
    assert main(["train", *base, "--time-limit", "0"]) == 3
    text = capsys.readouterr().out
    assert "stopped after epoch 0 of 3" in text and "--resume" in text
    assert not out.exists()
    assert main(["train", *base, "--resume", "--shift", "1", "--skip-golden"]) == 0
    text = capsys.readouterr().out
    assert "epoch 3/3" in text and "shift ±1" in text and "golden check skipped" in text
    pred = np.load(out.with_suffix(".pred.npy"))
    ds = load_mnist(data)
    gold = golden.forward(netfile.load(out), ds.x_test).output[:, 0, 0, 0]
    assert np.array_equal(pred, gold)  # the saved torch decisions are the exported network's
    assert main(["train", *base, "--shift", "-1"]) == 2


def test_bench_check_compares_golden_with_saved_predictions(tmp_path):
    data = tmp_path / "data"
    fake_mnist(data, 300, 100)
    out = tmp_path / "tfc.npz"
    summ = tmp_path / "s.json"
    assert main(["train", str(ROOT / "networks" / "tfc_w1a1.py"), "--data", str(data),
                 "--out", str(out), "--threads", "1", "--device", "cpu", "--epochs", "1",
                 "--skip-golden", "--summary", str(summ)]) == 0
    assert "golden_test_acc" not in json.loads(summ.read_text())
    cmd = [sys.executable, str(ROOT / "bench" / "train_accuracy.py"), "check", str(out),
           "--data", str(data), "--summary", str(summ)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "decisions identical on 100/100" in r.stdout
    s = json.loads(summ.read_text())
    assert s["agree"] == 100 and s["golden_test_acc"] == s["torch_test_acc"]
    # a wrong prediction file is caught
    pred = np.load(out.with_suffix(".pred.npy"))
    np.save(out.with_suffix(".pred.npy"), (pred + 1) % 10)
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "decisions identical on 0/100" in r.stdout


def test_train_command_runs_without_the_hardware_packages(tmp_path):
    """``train`` imports only its own module: it runs where amaranth and cocotb are missing
    (a GPU box), and ``build`` there says which package it needs."""
    block = ("import sys, runpy\n"
             "class B:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name.split('.')[0] in ('amaranth', 'cocotb', 'cocotb_tools'):\n"
             "            raise ModuleNotFoundError(name, name=name)\n"
             "sys.meta_path.insert(0, B())\n"
             "sys.argv = ['lowbit_hdl'] + sys.argv[1:]\n"
             "runpy.run_module('lowbit_hdl', run_name='__main__')\n")
    script = tmp_path / "blocked.py"
    script.write_text(block)
    env_cmd = [sys.executable, str(script)]
    r = subprocess.run([*env_cmd, "train", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "--time-limit" in r.stdout, r.stderr
    r = subprocess.run([*env_cmd, "build", "networks/tfc_w1a1.py"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 2 and "needs the Python package 'amaranth'" in r.stderr


def test_train_progress_line_on_request_only(tmp_path, capsys):
    data = tmp_path / "data"
    fake_mnist(data, 200, 50)
    base = [str(ROOT / "networks" / "tfc_w1a1.py"), "--data", str(data), "--threads", "1",
            "--batch-size", "50", "--device", "cpu", "--epochs", "1",
            "--out", str(tmp_path / "t.npz")]
    assert main(["train", *base, "--progress"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/1 [" in err and "4/4 batches" in err  # last batch always shown
    assert main(["train", *base, "--no-progress"]) == 0
    assert "batches" not in capsys.readouterr().err


def test_eval_every_skips_test_evaluations_but_not_the_last(tmp_path, capsys):
    data = tmp_path / "data"
    fake_mnist(data, 200, 50)
    summ = tmp_path / "t.json"
    base = [str(ROOT / "networks" / "tfc_w1a1.py"), "--data", str(data), "--threads", "1",
            "--batch-size", "50", "--device", "cpu", "--out", str(tmp_path / "t.npz"),
            "--summary", str(summ)]
    assert main(["train", *base, "--epochs", "3", "--eval-every", "2"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^epoch 1/3 .* test +- +lr", text, re.M)
    assert re.search(r"^epoch 2/3 .* test +\d+\.\d\d% +lr", text, re.M)
    assert re.search(r"^epoch 3/3 .* test +\d+\.\d\d% +lr", text, re.M)
    hist = json.loads(summ.read_text())["history"]  # strict JSON: no NaN
    assert hist[0]["test_acc"] is None and hist[1]["test_acc"] is not None
    assert main(["train", *base, "--epochs", "1", "--eval-every", "0"]) == 2
    assert "--eval-every must be ≥ 1" in capsys.readouterr().err


def test_recalibrate_bn_gives_exact_statistics_and_stays_exportable(tmp_path, capsys):
    from lowbit_hdl.train.loop import recalibrate_bn
    from lowbit_hdl.train.model import build_model

    net = netfile.load_network(ROOT / "networks" / "tfc_w1a1.py", seed=None)
    torch.manual_seed(0)
    model = build_model(net, dropout=0.2)
    x = torch.randint(0, 256, (230, 1, 28, 28), dtype=torch.uint8)
    recalibrate_bn(model, x, batch_size=100)  # uneven last batch: weights 100, 100, 30
    assert not model.training and model.dropout == 0.2
    fc0 = model.mvtu["fc0"]
    with torch.no_grad():
        pre = fc0._op(x.float(), fc0.wq(fc0.weight)).flatten(1) * fc0.in_scale
    bn = fc0.norm
    # per-batch means averaged with equal weight per batch (the cumulative average)
    means = torch.stack([pre[s:s + 100].mean(0) for s in range(0, 230, 100)]).mean(0)
    assert torch.allclose(bn.running_mean, means, rtol=1e-5, atol=1e-4)
    assert bn.momentum == 0.1
    data = tmp_path / "data"
    fake_mnist(data, 300, 100)
    out = tmp_path / "t.npz"
    assert main(["train", str(ROOT / "networks" / "tfc_w1a1.py"), "--data", str(data),
                 "--threads", "1", "--device", "cpu", "--epochs", "1", "--out", str(out),
                 "--recalibrate-bn"]) == 0
    text = capsys.readouterr().out
    assert "BatchNorm statistics recalibrated on 300 training images" in text
    assert "decisions identical on 100/100 images" in text
