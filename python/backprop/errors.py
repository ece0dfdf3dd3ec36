"""Exceptions: a failing library call raises one, carrying bp_last_error()'s
message. Each also derives from the Python exception that says the same
thing (a bad argument is a ValueError, an unreadable file an OSError...),
so callers can catch either."""


class BackpropError(Exception):
    """A call into libbackprop failed. `status` is the bp_status value,
    `function` the C function, str(e) the library's message."""

    def __init__(self, message, status=None, function=None):
        super().__init__(message)
        self.status = status
        self.function = function

    def __str__(self):
        return self.args[0] if self.args else ""


class InvalidArgumentError(BackpropError, ValueError):
    """BP_ERR_INVALID_ARGUMENT: a bad size, value or combination."""


class FormatError(BackpropError, ValueError):
    """BP_ERR_FORMAT: a file's contents are malformed."""


class FileError(BackpropError, OSError):
    """BP_ERR_IO: a file could not be opened, read or written."""


class NumericError(BackpropError, FloatingPointError):
    """BP_ERR_NUMERIC: a loss or value became NaN or infinite."""


class OutOfMemoryError(BackpropError, MemoryError):
    """BP_ERR_OUT_OF_MEMORY: a host or device allocation failed."""


class DeviceError(BackpropError, RuntimeError):
    """No CUDA device, a CUDA or cuBLAS failure, a backend not built, a
    request the backend cannot carry out, or a failed collective."""


_BY_STATUS = {
    1: InvalidArgumentError,
    2: OutOfMemoryError,
    3: DeviceError,  # BP_ERR_NO_DEVICE
    4: DeviceError,  # BP_ERR_NOT_BUILT
    5: DeviceError,  # BP_ERR_CUDA
    6: DeviceError,  # BP_ERR_CUBLAS
    7: FileError,
    8: FormatError,
    9: NumericError,
    10: DeviceError,  # BP_ERR_UNSUPPORTED
    11: DeviceError,  # BP_ERR_COMM
}


def raise_for_status(status, message, function=None):
    cls = _BY_STATUS.get(status, BackpropError)
    raise cls(message or f"{function} failed with status {status}", status, function)
