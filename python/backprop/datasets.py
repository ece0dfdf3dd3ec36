"""Data sets the library can reach without a file argument, as NumPy
arrays: Fashion-MNIST where Debian's dataset-fashion-mnist puts it (or
$BACKPROP_FASHION_MNIST_DIR), and three interleaved spirals generated from a
seed — the same data, read by the same code, as the backprop command's."""

import ctypes
import os

import numpy as np

from ._arrays import numpy_dtype
from ._capi import S, lib
from .errors import FileError
from .network import _parse


def _arrays(handle):
    """(X, labels) copied out of a bp_dataset, which is then freed."""
    try:
        d = S["bp_dataset_desc"]()
        lib.bp_dataset_describe_sized(handle, ctypes.byref(d), ctypes.sizeof(d))
        real = ctypes.c_float if d.dtype == 0 else ctypes.c_double
        n, f = d.n_samples, d.n_features
        x = np.ctypeslib.as_array((real * (n * f)).from_address(d.x)).reshape(n, f).copy()
        y = np.ctypeslib.as_array((ctypes.c_int32 * n).from_address(
            ctypes.cast(d.labels, ctypes.c_void_p).value)).copy()
        return x, y
    finally:
        lib.bp_dataset_free(handle)


def fashion_mnist(dtype="float32", directory=None):
    """((X_train, y_train), (X_test, y_test)): 60000 and 10000 images of 784
    pixels scaled to [0, 1], labels 0..9. Raises FileError (an OSError)
    naming the directory and the package when the files are not there."""
    train, test = ctypes.c_void_p(), ctypes.c_void_p()
    where = None if directory is None else os.fsencode(directory)
    dt = _parse("dtype", numpy_dtype(dtype).name)
    lib.bp_dataset_load_fashion_mnist(where, dt, ctypes.byref(train), ctypes.byref(test))
    return _arrays(train), _arrays(test)


def spirals(n, seed=1, dtype="float32"):
    """(X, y): n points of three interleaved spirals in the plane, label
    i % 3, generated from seed (the same on every machine)."""
    out = ctypes.c_void_p()
    lib.bp_dataset_spirals(int(n), int(seed), _parse("dtype", numpy_dtype(dtype).name),
                           ctypes.byref(out))
    return _arrays(out)


def fashion_mnist_or_spirals(seed=1, dtype="float32"):
    """The data `backprop train` trains on without --data: Fashion-MNIST when
    it is installed, else 3000 training and 1500 test spirals (seeds seed
    and seed + 1000003, as the command draws them)."""
    try:
        return fashion_mnist(dtype)
    except FileError:
        return spirals(3000, seed, dtype), spirals(1500, seed + 1000003, dtype)
