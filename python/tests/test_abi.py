"""The binding against the C compiler: every struct, function, callback and
constant the binding declares (python/backprop/_capi.py) is compiled against
include/backprop.h as static assertions — sizes, field offsets, field types,
function types, enum values. A struct that grows or a prototype that changes
in the header fails here, with every difference listed by the compiler."""

import ctypes
import os
import shutil
import subprocess

import pytest

from backprop import _capi
from backprop._cdecl import Declarations

HEADER_DIR = os.environ.get(
    "BACKPROP_INCLUDE",
    os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "include"),
)


def _assertions(C, constants):
    lines = []

    def check(cond, what):
        lines.append(f'_Static_assert({cond}, "{what}");')

    for name, cls in C.structs.items():
        check(f"sizeof({name}) == {ctypes.sizeof(cls)}", f"sizeof({name})")
        for (field, ctype), (fname, ftype) in zip(C.struct_fields[name], cls._fields_):
            offset = getattr(cls, fname).offset
            member = f"((({name} *)0)->{field})"
            check(f"offsetof({name}, {field}) == {offset}", f"{name}.{field} offset")
            check(f"sizeof{member} == {ctypes.sizeof(ftype)}", f"{name}.{field} size")
            if not issubclass(ftype, ctypes.Array):
                check(
                    f"__builtin_types_compatible_p(__typeof__{member}, {ctype})",
                    f"{name}.{field} type {ctype}",
                )
    for name, (ret, args) in C.functions.items():
        sig = f"{ret} (*)({', '.join(args) or 'void'})"
        check(f"__builtin_types_compatible_p(__typeof__(&{name}), {sig})", f"{name}: {sig}")
    for name, (ret, args) in C.callback_decls.items():
        sig = f"{ret} (*)({', '.join(args) or 'void'})"
        check(f"__builtin_types_compatible_p({name}, {sig})", f"{name}: {sig}")
    for name, value in constants.items():
        check(f"{name} == {value}", f"{name} == {value}")
    return lines


def _compile(tmp_path, lines):
    cc = shutil.which(os.environ.get("CC", "cc"))
    header = os.path.join(HEADER_DIR, "backprop.h")
    if cc is None:
        pytest.skip("no C compiler (cc) to check the binding against")
    if not os.path.exists(header):
        pytest.skip(f"no {header}: run the tests from the repository")
    src = tmp_path / "abi.c"
    src.write_text(
        "#include <stddef.h>\n#include <backprop.h>\n#include <backprop_file.h>\n" + "\n".join(lines) + "\n"
    )
    run = subprocess.run(
        [cc, "-std=gnu11", "-fsyntax-only", "-I", HEADER_DIR, str(src)],
        capture_output=True,
        text=True,
    )
    failed = [ln for ln in run.stderr.splitlines() if "static assertion failed" in ln]
    return run.returncode, failed, run.stderr


def test_binding_matches_the_header(tmp_path):
    lines = _assertions(_capi.C, _capi.CONSTANTS)
    # Every declaration is checked (a generator that emitted nothing would pass).
    assert len(lines) > 200
    rc, failed, stderr = _compile(tmp_path, lines)
    assert rc == 0, "\n".join(failed) or stderr


def test_a_drifted_declaration_is_caught(tmp_path):
    """The check can fail: a struct with a field moved, one with a field
    missing at its end, a prototype with a wrong argument type and a wrong
    constant are each reported."""
    D = Declarations({})
    D.enum("bp_status", "bp_dtype")
    D.struct(
        """typedef struct bp_gradcheck_config {
    int max_per_layer;
    double eps;
    double floor;
} bp_gradcheck_config;"""
    )
    D.struct(
        """typedef struct bp_evaluation {
    int n_samples;
    double loss;
    int correct;
} bp_evaluation;"""
    )
    D.functions_from("bp_status bp_network_set_lr(bp_network *net, float lr);")
    rc, failed, _ = _compile(tmp_path, _assertions(D, {"BP_F64": 2}))
    text = "\n".join(failed)
    assert rc != 0
    for what in (
        "bp_gradcheck_config.max_per_layer offset",
        "sizeof(bp_evaluation)",
        "bp_network_set_lr",
        "BP_F64 == 2",
    ):
        assert what in text, f"{what!r} not reported:\n{text}"
