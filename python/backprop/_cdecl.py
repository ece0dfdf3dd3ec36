"""C declarations as ctypes types: the binding states the library's API in
C, copied from include/backprop.h, and this module turns it into ctypes.

Writing the binding in the header's own syntax keeps it reviewable against
the header line by line, and lets a test hand the very same text to the C
compiler (python/tests/test_abi.py): every struct's size and field offsets
and every function's type are checked against include/backprop.h, so a
struct that grows or a signature that changes cannot drift silently.

Only the subset of C that the public header uses is understood: structs of
scalars, pointers and fixed arrays; functions of such arguments; enums as
int; opaque handles as void pointers.
"""

import ctypes
import re

# Scalar C types by name. Every enum of the header is an int-sized C enum.
SCALARS = {
    "int": ctypes.c_int,
    "long long": ctypes.c_longlong,
    "double": ctypes.c_double,
    "size_t": ctypes.c_size_t,
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
    "char": ctypes.c_char,
}

_DECLARATOR = re.compile(r"^(?P<type>.*?)(?P<name>\w+)\s*(?:\[(?P<len>\w+)\])?$")


def _normalize(ctype):
    """'const  bp_x*' -> 'const bp_x *' (one spelling for comparisons)."""
    ctype = re.sub(r"\s*\*\s*", " *", ctype.strip())
    ctype = re.sub(r"\s+", " ", ctype)
    return ctype.replace("* *", "**").strip()


class Declarations:
    """Structs, enums, callbacks and functions declared in C text."""

    def __init__(self, constants):
        self.structs = {}  # C name -> ctypes.Structure subclass
        self.struct_fields = {}  # C name -> [(field, C type)]
        self.functions = {}  # C name -> (C return type, [C argument types])
        self.callbacks = {}  # C typedef name -> CFUNCTYPE
        self.callback_decls = {}  # C typedef name -> (C return, [C args])
        self.enums = set()
        self.constants = dict(constants)  # C constant name -> value

    # ---- types ---------------------------------------------------------------
    def ctype(self, ctype, field=False):
        """The ctypes type that passes a value of C type `ctype`. A pointer
        argument is a void pointer (NumPy arrays pass their address); a
        pointer field of a struct points to its scalar type, so that it can
        be indexed and assigned a ctypes array."""
        ctype = _normalize(ctype)
        bare = ctype.replace("const ", "").strip()
        if bare.endswith("*"):
            target = bare[:-1].strip()
            if target == "char":
                return ctypes.c_char_p
            if target in self.structs:
                return ctypes.POINTER(self.structs[target])
            if field and (target in SCALARS or target in self.enums):
                return ctypes.POINTER(self.ctype(target))
            return ctypes.c_void_p  # data arrays, handles, out-pointers
        if bare in SCALARS:
            return SCALARS[bare]
        if bare in self.enums:
            return ctypes.c_int
        if bare in self.callbacks:
            return self.callbacks[bare]
        if bare == "void":
            return None
        raise TypeError(f"the binding does not know the C type {ctype!r}")

    # ---- declarations --------------------------------------------------------
    def enum(self, *names):
        self.enums.update(names)

    def struct(self, text):
        """A `typedef struct NAME { fields } NAME;` declaration."""
        m = re.match(r"\s*typedef struct (\w+) \{(.*)\} (\w+);\s*$", text, re.S)
        if not m or m.group(1) != m.group(3):
            raise ValueError(f"not a typedef'd struct: {text[:60]!r}")
        name = m.group(1)
        fields = []
        for decl in m.group(2).split(";"):
            decl = re.sub(r"/\*.*?\*/", "", decl, flags=re.S).strip()
            if not decl:
                continue
            first, *more = [d.strip() for d in decl.split(",")]
            d = _DECLARATOR.match(first)
            base = d.group("type")
            fields.append(self._field(base, d))
            for other in more:  # `double beta1, beta2;`
                d = _DECLARATOR.match(other)
                fields.append(self._field(base.rstrip("* ") + " " + d.group("type"), d))
        cls = type(name, (ctypes.Structure,), {"_fields_": [(n, t) for n, _, t in fields]})
        cls._c_name_ = name
        self.structs[name] = cls
        self.struct_fields[name] = [(n, c) for n, c, _ in fields]
        return cls

    def _field(self, base, d):
        ctype = _normalize(base)
        t = self.ctype(ctype, field=True)
        if d.group("len"):
            length = d.group("len")
            t = t * int(self.constants.get(length, length))
        return d.group("name"), ctype, t

    def callback(self, text):
        """`typedef RET (*NAME)(ARGS);`"""
        m = re.match(r"\s*typedef (.+?)\(\*(\w+)\)\((.*)\);\s*$", text, re.S)
        ret, name, args = _normalize(m.group(1)), m.group(2), self._args(m.group(3))
        self.callbacks[name] = ctypes.CFUNCTYPE(self.ctype(ret), *[self.ctype(a) for a in args])
        self.callback_decls[name] = (ret, args)

    def functions_from(self, text):
        """Prototypes `RET NAME(ARGS);`, one or more, comments allowed."""
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        for proto in text.split(";"):
            proto = " ".join(proto.split())
            if not proto:
                continue
            m = re.match(r"^(.+?)\b(bp_\w+)\((.*)\)$", proto)
            if not m:
                raise ValueError(f"not a prototype: {proto!r}")
            self.functions[m.group(2)] = (_normalize(m.group(1)), self._args(m.group(3)))

    @staticmethod
    def _args(text):
        text = text.strip()
        if text in ("", "void"):
            return []
        out = []
        for arg in text.split(","):
            d = _DECLARATOR.match(arg.strip())
            out.append(_normalize(d.group("type")))
        return out

    # ---- binding a library ---------------------------------------------------
    def bind(self, lib, errcheck):
        """Sets argtypes and restype of every declared function on lib.
        Functions returning bp_status get errcheck (raising on failure)."""
        for name, (ret, args) in self.functions.items():
            fn = getattr(lib, name)
            fn.argtypes = [self.ctype(a) for a in args]
            fn.restype = self.ctype(ret)
            if ret == "bp_status":
                fn.errcheck = errcheck
