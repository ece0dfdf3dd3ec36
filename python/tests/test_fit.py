"""fit: the library's trainer over NumPy arrays — options, history,
checkpoints and resume, Ctrl-C, callbacks, progress, bad input."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import backprop
from backprop import Network


def blobs(n=600, features=5, classes=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0, 3, (classes, features))[y] + rng.normal(0, 1, (n, features))
    return x.astype(dtype), y


def params_bytes(net):
    return b"".join(w.tobytes() + b.tobytes() for w, b in net.get_params())


def test_fit_trains_and_reports_every_epoch():
    X, y = blobs()
    net = Network([5, 16, 3], loss="ce", seed=1)
    seen = []
    r = net.fit(X, y, epochs=6, batch=32, optimizer="sgd", lr=0.05, momentum=0.9,
                schedule="cosine", on_epoch=seen.append, progress=False)
    assert (r.epochs, r.stopped, r.early_stopped) == (6, False, False)
    assert [e["epoch"] for e in r.history] == [1, 2, 3, 4, 5, 6] and seen == r.history
    assert r.history[0]["samples"] == 600 and np.isnan(r.history[0]["val_loss"])
    lrs = [e["lr"] for e in r.history]  # cosine from 0.05 down
    assert lrs[0] == pytest.approx(0.05) and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert r.train_loss == r.history[-1]["train_loss"] < r.history[0]["train_loss"]
    assert net.evaluate(X, y).accuracy > 0.95
    assert net.optimizer["momentum"] == 0.9


def test_the_same_seed_gives_the_same_run():
    X, y = blobs()
    runs = []
    for seed in (5, 5, 6):
        net = Network([5, 16, 3], loss="ce", seed=1)
        net.fit(X, y, epochs=2, batch=16, seed=seed, optimizer="adam", lr=1e-2, progress=False)
        runs.append(params_bytes(net))
    assert runs[0] == runs[1] != runs[2]


def test_validation_and_early_stopping():
    X, y = blobs(800, seed=2)
    net = Network([5, 32, 3], loss="ce", seed=1)
    r = net.fit(X, y, epochs=200, batch=32, optimizer="sgd", lr=0.1, momentum=0.9,
                validation_fraction=0.25, patience=3, progress=False)
    assert r.early_stopped and r.epochs < 200
    assert r.history[0]["val_samples"] == 200 and r.history[0]["samples"] == 600
    best = min(r.history, key=lambda e: e["val_loss"])
    assert (r.best_epoch, r.best_loss) == (best["epoch"], best["val_loss"])
    Xv, yv = blobs(100, seed=3)
    r2 = Network([5, 32, 3], loss="ce").fit(X, y, epochs=2, validation_data=(Xv, yv), progress=False)
    assert r2.history[-1]["val_samples"] == 100


def test_regression_targets():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = np.stack([X[:, 0] * 2 - X[:, 1], np.sin(X[:, 2])], axis=1)
    net = Network([3, 32, 2], "tanh", dtype="float64", seed=2)
    r = net.fit(X, y, epochs=60, batch=20, optimizer="adam", lr=1e-2, progress=False)
    assert r.train_loss < 0.01 and net.evaluate(X, y).loss < 0.01
    assert np.isnan(r.history[-1]["train_accuracy"])


def test_ctrl_c_stops_between_steps_and_resume_is_bit_exact(tmp_path):
    X, y = blobs(1000)
    opts = dict(epochs=4, batch=10, optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine",
                progress=False)
    whole = Network([5, 16, 3], loss="ce", seed=1)
    whole.fit(X, y, **opts)

    ckpt = tmp_path / "run.ckpt"

    def interrupt(epoch):  # Ctrl-C as the terminal sends it, during epoch 2's end
        if epoch["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    net = Network([5, 16, 3], loss="ce", seed=1)
    with pytest.raises(KeyboardInterrupt, match="checkpoint was written"):
        net.fit(X, y, checkpoint=ckpt, on_epoch=interrupt, **opts)
    assert ckpt.exists() and os.listdir(tmp_path) == ["run.ckpt"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    assert params_bytes(net) != params_bytes(whole)

    resumed = Network([5, 16, 3], loss="ce", seed=99)
    r = resumed.fit(X, y, resume=ckpt, **opts)
    assert r.epochs == 4
    assert params_bytes(resumed) == params_bytes(whole)


def test_ctrl_c_at_any_moment_ends_the_run_within_a_step():
    """SIGINT from outside, while the library is inside a step: the run ends
    at the next step boundary, long before its 10000 epochs."""
    X, y = blobs(600)
    net = Network([5, 64, 3], loss="ce", seed=1)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt, match="stopped by Ctrl-C"):
        net.fit(X, y, epochs=10000, batch=8, progress=False)
    timer.join()
    assert time.perf_counter() - started < 30
    assert net.evaluate(X, y).accuracy > 0.9  # a consistent, trained network


def test_a_failing_callback_ends_the_run_and_raises():
    X, y = blobs()

    def boom(epoch):
        raise RuntimeError(f"callback failed at epoch {epoch['epoch']}")

    net = Network([5, 8, 3], loss="ce")
    with pytest.raises(RuntimeError, match="callback failed at epoch 1"):
        net.fit(X, y, epochs=50, on_epoch=boom, progress=False)


def test_progress_bar_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    X, y = blobs(200)
    Network([5, 8, 3], loss="ce").fit(X, y, epochs=2, batch=20, progress=True)
    err = capsys.readouterr().err
    assert "20/20" in err and "epoch 2/2" in err


def test_bad_input_is_refused_before_training(tmp_path):
    X, y = blobs(100)
    net = Network([5, 8, 3], loss="ce", seed=1)
    before = params_bytes(net)
    Xn = X.copy()
    Xn[10, 1] = np.inf
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at index \[10, 1\]"):
        net.fit(Xn, y, epochs=1)
    with pytest.raises(ValueError, match="label 7 at index 3 is out of range"):
        net.fit(X, np.where(np.arange(100) == 3, 7, y), epochs=1)
    with pytest.raises(ValueError, match=r"X_val has 4 columns"):
        net.fit(X, y, epochs=1, validation_data=(X[:, :4], y))
    with pytest.raises(TypeError, match="unknown option"):
        net.fit(X, y, epochs=1, learning_rate=0.1)
    with pytest.raises(backprop.InvalidArgumentError, match="validation"):
        net.fit(X, y, epochs=1, validation_fraction=1.5)
    with pytest.raises(backprop.BackpropError):
        net.fit(X, y, epochs=1, checkpoint=tmp_path / "missing" / "run.ckpt")
    assert params_bytes(net) == before
    assert os.listdir(tmp_path) == []


def test_data_parallel_needs_gpus():
    X, y = blobs(100)
    if backprop.cuda_device_count() >= 2:
        net = Network([5, 8, 3], loss="ce", device="cuda:0")
        r = net.fit(X, y, epochs=2, devices=[0, 1], progress=False)
        assert r.epochs == 2
        return
    with pytest.raises(backprop.BackpropError):
        Network([5, 8, 3], loss="ce").fit(X, y, epochs=1, devices=[0, 1])
    pytest.skip("no 2 CUDA devices: data-parallel fit needs them")
