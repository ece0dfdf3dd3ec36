"""The package and the backprop command are one library: a model trained
in Python predicts the same in the command and in PyTorch, and a run of the
command and the same run in Python end with the same bits."""

import csv
import importlib.util
import os
import shutil
import subprocess

import numpy as np
import pytest

from backprop import Network

REPO = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir)


def command():
    """The backprop command: $BACKPROP_COMMAND, the build tree's (the README's
    test command builds it, and CI runs these tests after it), or PATH's."""
    for path in (
        os.environ.get("BACKPROP_COMMAND"),
        os.path.join(REPO, "build", "src", "cli", "backprop"),
        shutil.which("backprop"),
    ):
        if path and os.access(path, os.X_OK):
            return path
    pytest.skip("no backprop command (build the project, or set BACKPROP_COMMAND)")


def run(*args):
    out = subprocess.run([command(), *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def blobs(n, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0, 2, (classes, features))[y] + rng.normal(0, 1, (n, features))
    return x.astype(np.float32), y.astype(np.int32)


def write_csv(path, x, y=None):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        for i, row in enumerate(x):
            # %.9g: a float32 read back by the command's parser is the same float32
            w.writerow([f"{v:.9g}" for v in row] + ([] if y is None else [int(y[i])]))


def test_a_python_model_predicts_the_same_in_the_command_and_in_pytorch(tmp_path):
    X, y = blobs(400)
    net = Network([4, 16, 3], "tanh", loss="ce", seed=3)
    net.fit(X, y, epochs=5, batch=16, optimizer="sgd", lr=0.05, momentum=0.9, progress=False)
    net.save(tmp_path / "m.safetensors")
    Xt, _ = blobs(50, seed=1)
    write_csv(tmp_path / "x.csv", Xt)
    ours = net.forward(Xt)

    rows = list(csv.reader(run("predict", "--model", tmp_path / "m.safetensors", "--data",
                               tmp_path / "x.csv", "--unlabeled", "--device", "cpu").splitlines()))
    body = [r for r in rows if r and r[0].lstrip("-").isdigit()]
    classes = np.array([int(r[0]) for r in body])
    probs = np.array([[float(v) for v in r[1:]] for r in body])
    assert classes.tolist() == ours.argmax(1).tolist()
    np.testing.assert_allclose(probs, ours, atol=1e-6)

    torch = pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location(
        "backprop_torch", os.path.join(REPO, "examples", "backprop_torch.py"))
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    model = loader.load(tmp_path / "m.safetensors")  # the nn.Sequential, in one call
    with torch.no_grad():
        theirs = model(torch.from_numpy(Xt)).numpy()
    assert theirs.argmax(1).tolist() == ours.argmax(1).tolist()
    np.testing.assert_allclose(theirs, ours, atol=1e-6)


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "file-order"])
def test_the_command_and_python_end_an_epoch_with_the_same_bits(tmp_path, shuffle):
    X, y = blobs(203)  # a short last batch too
    write_csv(tmp_path / "train.csv", X, y)
    run("train", "--data", tmp_path / "train.csv", "--test", tmp_path / "train.csv",
        "--layers", "4,16,8,3", "--epochs", 1, "--batch", 8, "--seed", 7, "--device", "cpu",
        "--save", tmp_path / "cmd.safetensors", "--quiet", *([] if shuffle else ["--no-shuffle"]))
    cmd = Network.load(tmp_path / "cmd.safetensors")

    net = Network([4, 16, 8, 3], "relu", loss="ce", seed=7)
    net.fit(X, y, epochs=1, batch=8, optimizer="sgd", lr=0.02, momentum=0.9,
            schedule="cosine", seed=7, shuffle=shuffle, progress=False)
    assert Network([4, 16, 8, 3], "relu", loss="ce", seed=7).get_params()[0][0].tobytes() != \
        net.get_params()[0][0].tobytes()  # it trained
    for layer, ((w, b), (wc, bc)) in enumerate(zip(net.get_params(), cmd.get_params()), start=1):
        assert w.tobytes() == wc.tobytes(), f"layer {layer} weights differ"
        assert b.tobytes() == bc.tobytes(), f"layer {layer} biases differ"
