"""NumPy arrays in and out of the library.

An array whose dtype and layout are already the library's (C-contiguous,
the network's float type; int32 labels) is passed as it is, without a copy;
anything else is converted once. Every check a caller could fail (shape,
dtype kind, NaN or infinity, labels out of range) happens here, before the
library is called, and raises ValueError or TypeError naming the argument.
"""

import numpy as np

_DTYPES = {
    "float32": np.dtype(np.float32),
    "f32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "f64": np.dtype(np.float64),
}


def numpy_dtype(dtype):
    """'float32', 'f32', np.float32, np.dtype('float32') -> np.dtype."""
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype {dtype!r}: the library computes in float32 or float64")
    return d


def _numeric(a, name):
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got an array of dtype {a.dtype}")
    return a


def _first_bad(a, name):
    bad = np.argwhere(~np.isfinite(a))[0]
    where = ", ".join(str(int(i)) for i in bad)
    raise ValueError(f"{name} contains NaN or infinity (first at index [{where}]: {a[tuple(bad)]})")


def reals(a, dtype, name, width=None, rows=None):
    """A C-contiguous [rows, width] array of dtype, finite. A 1-D array is
    accepted only where width is 1 (one column). Returns the array itself
    when nothing needs converting."""
    a = _numeric(a, name)
    if a.ndim == 1 and width == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2:
        want = f"[n_samples, {width}]" if width else "[n_samples, n_features]"
        raise ValueError(f"{name} must be a 2-D array {want}, got shape {a.shape}")
    if width is not None and a.shape[1] != width:
        raise ValueError(f"{name} has {a.shape[1]} columns; the network expects {width}")
    if rows is not None and a.shape[0] != rows:
        raise ValueError(f"{name} has {a.shape[0]} rows; X has {rows}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} has no rows (shape {a.shape})")
    a = np.ascontiguousarray(a, dtype=dtype)  # no copy when already so
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        _first_bad(a, name)
    return a


def labels(y, n_classes, name, rows):
    """int32 class labels [rows] in [0, n_classes)."""
    y = _numeric(y, name)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
    if y.shape[0] != rows:
        raise ValueError(f"{name} has {y.shape[0]} labels; X has {rows} rows")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            _first_bad(y, name)
        if (y != np.floor(y)).any():
            i = int(np.argmax(y != np.floor(y)))
            raise ValueError(f"{name}: class labels must be integers, got {y[i]} at index {i}")
    if rows and (y.min() < 0 or y.max() >= n_classes):
        i = int(np.argmax((y < 0) | (y >= n_classes)))
        raise ValueError(
            f"{name}: label {y[i]} at index {i} is out of range: the network has "
            f"{n_classes} outputs, so labels are 0..{n_classes - 1}"
        )
    return np.ascontiguousarray(y, dtype=np.int32)


def address(a):
    """The data pointer of an array (None passes NULL)."""
    return None if a is None else a.ctypes.data
