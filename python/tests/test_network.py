"""The low-level layer: Network over the C library, arrays in and out,
errors as exceptions, files, checks, PyTorch."""

import os
import pickle
import threading
import time

import numpy as np
import pytest

import backprop
from backprop import Network

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([0.0, 1.0, 1.0, 0.0])


def xor_net(**kw):
    opts = dict(dtype="float64", max_batch=4)
    opts.update(kw)
    return Network([2, 4, 1], ["tanh", "sigmoid"], **opts)


def blobs(n=64, features=5, classes=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = rng.normal(0, 3, (classes, features))
    x = centers[y] + rng.normal(0, 1, (n, features))
    return x.astype(dtype), y


def test_describes_what_it_built():
    net = Network([5, 8, 3], "tanh", loss="ce", seed=7, max_batch=16)
    assert net.sizes == (5, 8, 3)
    assert net.activations == ("tanh", "identity")
    assert (net.loss, net.dtype, net.device, net.seed) == ("ce", np.float32, "cpu", 7)
    assert net.n_params == 5 * 8 + 8 + 8 * 3 + 3
    assert "Network([5, 8, 3]" in repr(net)


def test_xor_trains():
    net = xor_net()
    net.set_optimizer("sgd", lr=2.0, momentum=0.9)
    for _ in range(2000):
        loss = net.step(XOR_X, XOR_Y)
    out = net.forward(XOR_X).ravel()
    assert loss < 1e-3
    np.testing.assert_array_equal(out > 0.5, XOR_Y > 0.5)
    assert net.optimizer["name"] == "sgd" and net.optimizer["momentum"] == 0.9


def test_the_same_seed_gives_the_same_parameters():
    a, b, c = xor_net(seed=3), xor_net(seed=3), xor_net(seed=4)
    for (wa, ba), (wb, bb) in zip(a.get_params(), b.get_params()):
        assert wa.tobytes() == wb.tobytes() and ba.tobytes() == bb.tobytes()
    assert a.get_params()[0][0].tobytes() != c.get_params()[0][0].tobytes()


def test_arrays_of_the_library_layout_are_not_copied():
    net = Network([5, 3], loss="ce", dtype="float32")
    x = np.zeros((4, 5), dtype=np.float32)
    assert net._x(x) is x
    y = np.array([0, 1, 2, 0], dtype=np.int32)
    assert net._targets(y, 4) is y


def test_other_layouts_are_converted_once_to_the_same_values():
    net = Network([5, 3], loss="ce", dtype="float32", seed=2)
    x, y = blobs(8)
    ref = net.forward(x)
    for other in (x.astype(np.float64), np.asfortranarray(x), x.tolist(), x[:, ::-1][:, ::-1]):
        converted = net._x(other)
        assert converted.flags.c_contiguous and converted.dtype == np.float32
        np.testing.assert_array_equal(net.forward(other), ref)
    assert net._targets(y.astype(np.int64), 8).dtype == np.int32
    assert net._targets(y.astype(np.float64), 8).tolist() == y.tolist()


def test_bad_input_raises_a_clear_exception():
    net = Network([5, 4, 3], loss="ce", max_batch=8)
    x, y = blobs(8)
    with pytest.raises(ValueError, match=r"X has 4 columns; the network expects 5"):
        net.forward(x[:, :4])
    with pytest.raises(ValueError, match=r"X must be a 2-D array \[n_samples, 5\], got shape \(5,\)"):
        net.forward(x[0])
    with pytest.raises(TypeError, match=r"X: expected real numbers, got an array of dtype <U"):
        net.forward(np.array([["a"] * 5]))
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at index \[3, 2\]"):
        net.step(bad, y)
    with pytest.raises(ValueError, match=r"label 3 at index 5 is out of range: the network has 3 outputs"):
        net.step(x, np.where(np.arange(8) == 5, 3, y))
    with pytest.raises(ValueError, match=r"label -1 at index 0"):
        net.evaluate(x, np.where(np.arange(8) == 0, -1, y))
    with pytest.raises(ValueError, match=r"y has 7 labels; X has 8 rows"):
        net.step(x, y[:7])
    with pytest.raises(ValueError, match=r"class labels must be integers, got 0.5"):
        net.step(x, np.full(8, 0.5))
    with pytest.raises(ValueError, match=r"dtype 'int8'"):
        Network([5, 3], dtype="int8")


def test_library_errors_carry_its_message():
    with pytest.raises(backprop.InvalidArgumentError) as e:
        Network([5, 4, 3], "swish")
    assert "swish" in str(e.value) and "relu" in str(e.value)  # the library's list
    assert e.value.function == "bp_activation_parse" and isinstance(e.value, ValueError)
    net = Network([5, 3], loss="ce", max_batch=4)
    x, y = blobs(8)
    with pytest.raises(backprop.InvalidArgumentError, match="max_batch"):
        net.step(x, y)  # 8 rows, max_batch 4: the library says so
    with pytest.raises(backprop.InvalidArgumentError, match="identity"):
        Network([5, 3], "relu", output_activation="relu", loss="ce")


def test_evaluate_predict_and_forward_agree():
    net = Network([5, 16, 3], loss="ce", max_batch=8, seed=5)
    x, y = blobs(50)  # more rows than max_batch: the library goes in chunks
    ev = net.evaluate(x, y)
    p = net.forward(x)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    pred = net.predict(x)
    assert pred.tolist() == p.argmax(axis=1).tolist()
    assert ev.n_samples == 50 and ev.correct == int((pred == y).sum())
    assert ev.accuracy == pytest.approx(ev.correct / 50)
    expected = -np.log(p[np.arange(50), y]).mean()
    assert ev.loss == pytest.approx(expected, rel=1e-4)


def test_gradients_match_central_differences():
    net = Network([4, 6, 3], "tanh", loss="ce", dtype="float64", max_batch=8, seed=11)
    x, y = blobs(8, features=4, dtype=np.float64)
    errors = net.gradcheck(x, y)
    assert errors.shape == (2,) and (errors < 1e-7).all()
    loss, grads = net.gradients(x, y)
    (w1, b1), (w2, b2) = net.get_params()
    eps = 1e-6
    w1p = w1.copy()
    w1p[2, 1] += eps
    net.set_params([(w1p, b1), (w2, b2)])
    loss_p = net.evaluate(x, y).loss
    assert (loss_p - loss) / eps == pytest.approx(grads[0][0][2, 1], rel=1e-4)
    assert [g.shape for pair in grads for g in pair] == [(6, 4), (6,), (3, 6), (3,)]


def test_layer_state_of_the_last_pass():
    net = xor_net()
    net.gradients(XOR_X, XOR_Y)
    z, a, delta = net.layer_state(2, 4)
    np.testing.assert_allclose(a, 1 / (1 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_allclose(a.ravel(), net.forward(XOR_X).ravel(), rtol=1e-12)


def test_layer_state_after_a_fused_training_step():
    # float32 ReLU layers fuse their product, bias and ReLU in training
    # steps (fused_epilogues): z is not stored, a and delta are.
    net = Network([5, 8, 3], "relu", loss="ce", max_batch=4, seed=3)
    x, y = blobs(4)
    net.set_optimizer("sgd", lr=0.01)
    net.step(x, y)
    z, a, delta = net.layer_state(1, 4)
    assert z is None and a.shape == (4, 8) and delta.shape == (4, 8)
    assert (a >= 0).all() and np.isfinite(delta).all()
    net.gradients(x, y)  # an unfused pass stores z again
    z, a, _ = net.layer_state(1, 4)
    np.testing.assert_array_equal(a, np.maximum(z, 0))
    unfused = Network([5, 8, 3], "relu", loss="ce", max_batch=4, seed=3, fused_epilogues=False)
    unfused.set_optimizer("sgd", lr=0.01)
    unfused.step(x, y)
    assert unfused.layer_state(1, 4)[0] is not None


def test_save_load_and_load_params(tmp_path):
    net = Network([5, 8, 3], loss="ce", seed=3)
    x, y = blobs(20)
    path = tmp_path / "m.safetensors"
    net.save(path)
    back = Network.load(path)
    assert (back.sizes, back.activations, back.loss, back.dtype) == (
        net.sizes, net.activations, net.loss, net.dtype)
    assert back.forward(x).tobytes() == net.forward(x).tobytes()
    other = Network([5, 8, 3], loss="ce", seed=99)
    other.load_params(str(path))
    assert other.forward(x).tobytes() == net.forward(x).tobytes()


def test_a_model_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    Network([5, 8, 3], loss="ce").save(path)
    net = Network([5, 9, 3], loss="ce", seed=4)
    before = net.get_params()
    with pytest.raises(backprop.InvalidArgumentError, match="9"):
        net.load_params(path)
    for (w0, b0), (w1, b1) in zip(before, net.get_params()):
        assert w0.tobytes() == w1.tobytes() and b0.tobytes() == b1.tobytes()
    with pytest.raises(backprop.FormatError):
        (tmp_path / "junk.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{not json at all")
        Network.load(tmp_path / "junk.safetensors")


def test_a_failed_save_leaves_no_file(tmp_path):
    net = Network([5, 3])
    with pytest.raises(backprop.FileError):
        net.save(tmp_path / "missing" / "m.safetensors")
    (tmp_path / "dir.safetensors").mkdir()
    with pytest.raises(backprop.FileError):
        net.save(tmp_path / "dir.safetensors")
    assert os.listdir(tmp_path) == ["dir.safetensors"]  # no temporary file left
    assert os.listdir(tmp_path / "dir.safetensors") == []


def test_checkpoint_round_trip(tmp_path):
    net = Network([5, 8, 3], loss="ce", max_batch=20, seed=1)
    net.set_optimizer("adam", lr=1e-2)
    x, y = blobs(20)
    net.step(x, y)
    net.save_checkpoint(tmp_path / "c.ckpt")
    loss_a = net.step(x, y)
    other = Network([5, 8, 3], loss="ce", max_batch=20, seed=2)
    other.set_optimizer("adam")
    other.load_checkpoint(tmp_path / "c.ckpt")
    assert other.step(x, y) == loss_a
    assert other.optimizer["lr"] == 1e-2


def test_compare_on_two_backends():
    x, y = blobs(16, dtype=np.float64)
    c = backprop.compare([5, 8, 3], x, y, loss="ce", dtype="float64", a="cpu", b="cpu")
    assert c.passed and c.worst == 0 and c.loss_a == c.loss_b and c.tolerance == 1e-12
    assert c.weight_grad_rel.shape == (2,)
    if backprop.cuda_device_count() == 0:
        with pytest.raises(backprop.DeviceError):
            backprop.compare([5, 8, 3], x, y, loss="ce", dtype="float64", b="cuda")
        pytest.skip("no CUDA device: the CPU-vs-GPU comparison needs one")
    c = backprop.compare([5, 8, 3], x, y, loss="ce", dtype="float64", b="cuda")
    assert c.passed, c


def test_to_torch_predicts_what_forward_predicts():
    torch = pytest.importorskip("torch")
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        net = Network([5, 16, 8, 3], ["leaky_relu", "tanh", "identity"], loss="ce",
                      dtype=dtype, seed=9)
        x, _ = blobs(40, dtype=net.dtype)
        model = net.to_torch()
        with torch.no_grad():
            theirs = model(torch.from_numpy(x)).numpy()
        ours = net.forward(x)
        np.testing.assert_allclose(theirs, ours, rtol=tol, atol=tol)
        assert theirs.argmax(1).tolist() == ours.argmax(1).tolist()
        assert isinstance(model, torch.nn.Sequential)


def test_pickle_keeps_the_function():
    net = Network([5, 8, 3], loss="ce", seed=3)
    x, _ = blobs(10)
    back = pickle.loads(pickle.dumps(net))
    assert back.forward(x).tobytes() == net.forward(x).tobytes()
    assert repr(back) == repr(net)


def test_the_gil_is_released_during_library_calls():
    """While one thread is inside a long library call, another thread keeps
    running Python: the longest pause it sees is far shorter than the call."""
    net = Network([512, 1024, 1024, 10], loss="ce", max_batch=1024)
    x = np.random.default_rng(0).random((4096, 512), dtype=np.float32)
    net.forward(x[:1024])
    done, spans = threading.Event(), []

    def work():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 1.0:
            s = time.perf_counter()
            net.forward(x)
            spans.append(time.perf_counter() - s)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    last, longest = time.perf_counter(), 0.0
    while not done.is_set():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    worker.join()
    call = min(spans)
    assert call > 0.02, f"the call ({call:.3f} s) is too short to tell"
    assert longest < 0.5 * call, f"main thread paused {longest:.3f} s during {call:.3f} s calls"


def test_calls_from_several_threads_take_turns():
    """The library wants one thread at a time on a network; with the GIL
    released, Network serialises its calls itself: two threads stepping one
    network give the bits of the same steps taken one after another."""
    x, y = blobs(64)
    shared, alone = (Network([5, 64, 3], loss="ce", max_batch=64, seed=8) for _ in range(2))
    for net in (shared, alone):
        net.set_optimizer("sgd", lr=0.01)  # no momentum: every step the same function

    def steps():
        for _ in range(100):
            shared.step(x, y)

    threads = [threading.Thread(target=steps) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(200):
        alone.step(x, y)
    for (w0, b0), (w1, b1) in zip(shared.get_params(), alone.get_params()):
        assert w0.tobytes() == w1.tobytes() and b0.tobytes() == b1.tobytes()


def test_mixed_precision():
    x, y = blobs(64)
    net = Network([5, 32, 3], loss="ce", precision="bf16-mixed", max_batch=64, seed=2)
    assert (net.precision, net.dtype) == ("bf16-mixed", np.float32)
    net.set_optimizer("sgd", lr=0.05, momentum=0.9)
    losses = [net.step(x, y) for _ in range(50)]
    assert losses[-1] < 0.5 * losses[0]
    assert Network([5, 3], dtype="float64").precision == "64-true"
    with pytest.raises(backprop.InvalidArgumentError, match="precision|64"):
        Network([5, 3], dtype="float64", precision="bf16-mixed")
    c = backprop.compare([5, 32, 3], x, y, loss="ce", precision="16-mixed", a="cpu", b="cpu")
    assert c.passed and c.tolerance == 2e-3 and c.judges_gradients
    back = pickle.loads(pickle.dumps(net))
    assert back.precision == "bf16-mixed" and back.forward(x).tobytes() == net.forward(x).tobytes()


def test_save_16bit_writes_bf16_tensors(tmp_path):
    import json
    import struct

    net = Network([5, 8, 3], loss="ce", precision="bf16-mixed")
    net.save_16bit(tmp_path / "m16.safetensors")
    raw = (tmp_path / "m16.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["layers.0.weight"]["dtype"] == "BF16" and header["layers.0.weight"]["shape"] == [8, 5]
    w = np.frombuffer(raw[8 + n :][slice(*header["layers.0.weight"]["data_offsets"])], np.uint16)
    expected = net.get_params()[0][0].ravel().view(np.uint32)
    rounded = ((expected + 0x7FFF + ((expected >> 16) & 1)) >> 16).astype(np.uint16)  # nearest, ties even
    assert (w == rounded).all()


def test_set_optimizer_takes_the_library_table():
    # Every optimizer's hyperparameters by the table's names, RMSprop's included;
    # another optimizer's name is a TypeError, a value out of range the library's error.
    net = backprop.Network([2, 4, 2], "relu", loss="ce", seed=1)
    net.set_optimizer("rmsprop", lr=0.01, alpha=0.9, centered=True)
    got = net.optimizer
    assert got["name"] == "rmsprop" and got["alpha"] == 0.9 and got["centered"] == 1
    with pytest.raises(TypeError, match="momentum"):
        net.set_optimizer("adam", momentum=0.5)
    with pytest.raises(ValueError, match="momentum 2"):
        net.set_optimizer("sgd", momentum=2)
    assert net.optimizer["name"] == "rmsprop"  # a refused call changes nothing
