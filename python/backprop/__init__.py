"""backprop: fully connected networks trained by backpropagation on CPUs
and NVIDIA GPUs — the Python face of the libbackprop C library.

The distribution is called backprop-mlp (`pip install .` from the
repository); the module you import is `backprop`.

    from backprop import Network, MLPClassifier, MLPRegressor

Network is the library's network with NumPy arrays in and out; fit() runs
the library's trainer; MLPClassifier and MLPRegressor are scikit-learn
estimators over both. Nothing here re-implements the algorithm: every
number comes from the C library.
"""

from ._capi import library_path, lib as _lib
from .compare import Comparison, compare
from .errors import (
    BackpropError,
    DeviceError,
    FileError,
    FormatError,
    InvalidArgumentError,
    NumericError,
    OutOfMemoryError,
)
from .network import Evaluation, Network, cuda_device_count

__version__ = _lib.bp_version().decode()

_SKLEARN = ("MLPClassifier", "MLPRegressor")


def __getattr__(name):
    # The estimators need scikit-learn; importing backprop does not.
    if name in _SKLEARN:
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'backprop' has no attribute {name!r}")


__all__ = [
    "BackpropError",
    "Comparison",
    "DeviceError",
    "Evaluation",
    "FileError",
    "FormatError",
    "InvalidArgumentError",
    "MLPClassifier",
    "MLPRegressor",
    "Network",
    "NumericError",
    "OutOfMemoryError",
    "compare",
    "cuda_device_count",
    "library_path",
]
