"""What plugin code may import and call: the seed guide's rules are the floor.

Imports are denied by default: a module is importable only when its top-level package is in
:data:`ALLOWED_IMPORTS` (or an operator adds it through ``ScanPolicy.extra_allowed_imports``),
or it is the platform SDK / a hosted-product compatibility path, or it is the plugin's own module.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# Top-level packages plugin code may import (seed guide, "Allowed Imports"), plus `os` whose
# harmless parts (os.path, os.environ.get) ordinary ML code uses; its dangerous functions are
# denied one by one by the scanner, and the runtime guard blocks them again at run time.
ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        # data
        "numpy", "pandas", "polars", "pyarrow",
        # ML
        "torch", "transformers", "sentence_transformers", "onnxruntime", "safetensors",
        # image
        "PIL", "cv2", "imageio",
        # audio / video
        "librosa", "soundfile", "ffmpeg",
        # HTTP
        "requests", "httpx", "aiohttp",
        # utilities
        "json", "re", "typing", "dataclasses", "pydantic", "logging",
        # small, computational stdlib helpers ordinary plugins use (no file, process or
        # network access of their own)
        "math", "time", "datetime", "collections", "functools", "itertools", "enum", "abc",
        "uuid", "hashlib", "base64", "contextlib", "random", "statistics", "string",
        "textwrap", "typing_extensions", "__future__", "copy", "decimal", "fractions",
        "numbers", "bisect", "heapq", "warnings", "mimetypes", "unicodedata", "struct", "array",
        "zlib", "csv", "html",
        # with the OS sandbox as the boundary: in-memory io (BytesIO, StringIO; io.open and
        # FileIO stay denied), asyncio (async realtime handlers; its subprocesses and servers
        # stay denied), pathlib (the sandbox shows only the plugin, its scratch and libraries)
        "io", "asyncio", "pathlib",
        # restricted: only os.path, os.environ reads, os.getenv, os.cpu_count and constants
        "os",
    }
)  # fmt: skip

# Hosted-product import paths that resolve to the platform SDK while a plugin loads.
COMPAT_PREFIXES: tuple[str, ...] = (
    "engine.plugins.extractors.pipeline",
    "engine.inference",
    "shared.models.loader",
)
SDK_PREFIXES: tuple[str, ...] = ("mixpeek_orchestration.sdk",)
SDK_MODULE = "mixpeek_orchestration.sdk"


@cache
def public_names(module: str) -> frozenset[str]:
    """The names ``module`` lists in its ``__all__``, read from its source (nothing imported
    beyond its parent packages): what plugin code may take from the SDK and the compatibility
    modules, so that a platform internal a module happens to import is never reachable."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return frozenset()
    tree = ast.parse(Path(spec.origin).read_bytes())
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return frozenset(ast.literal_eval(node.value))  # type: ignore[attr-defined]
    return frozenset()


@cache
def sdk_modules() -> frozenset[str]:
    """The platform modules plugin code may import: the SDK package, and each hosted-product
    compatibility module with the packages above it."""
    from mixpeek_orchestration.plugins.compat import ALIASES

    modules = {SDK_MODULE}
    for alias in ALIASES:
        parts = alias.split(".")
        modules |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return frozenset(modules)


@cache
def sdk_public_paths() -> frozenset[str]:
    """Every dotted path plugin code may import from the platform: :func:`sdk_modules` and the
    names each lists in ``__all__`` (a compatibility module: its target's ``__all__``)."""
    from mixpeek_orchestration.plugins.compat import ALIASES

    paths = set(sdk_modules()) | {f"{SDK_MODULE}.{name}" for name in public_names(SDK_MODULE)}
    for alias, target in ALIASES.items():
        paths |= {f"{alias}.{name}" for name in public_names(target)}
    return frozenset(paths)


# Explicitly forbidden (seed guide, "Forbidden Imports"); reported with their own message.
FORBIDDEN_IMPORTS: frozenset[str] = frozenset(
    {
        "subprocess", "ctypes", "pty", "fcntl", "resource", "multiprocessing", "threading",
        "socket", "commands", "popen2",
    }
)  # fmt: skip

FORBIDDEN_BUILTINS: frozenset[str] = frozenset(
    {
        "eval", "exec", "compile", "open", "__import__", "globals", "locals", "vars",
        "getattr", "setattr", "delattr", "hasattr",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ScanPolicy:
    """Operator knobs over the default rules.

    Args:
        extra_allowed_imports: top-level packages an operator allows beyond the defaults. It
            cannot re-allow :data:`FORBIDDEN_IMPORTS` or :data:`DENIED_MODULES`.
        strict: treat warnings as errors.
        max_file_bytes: a ``.py`` file larger than this is rejected unread by the scanner.
        time_budget_s: scanning one file may take this long; past it the file fails closed.
    """

    extra_allowed_imports: frozenset[str] = field(default_factory=frozenset)
    strict: bool = False
    max_file_bytes: int = 2_000_000
    time_budget_s: float = 5.0

    def is_allowed_top_level(self, name: str) -> bool:
        return name in ALLOWED_IMPORTS or name in self.extra_allowed_imports


# ---------------------------------------------------------------------------------------------
# Scanner rule tables. The names above are the seed guide's; the tables below are what the AST
# scanner (`mixpeek_orchestration.plugins.scanner`) needs to reason about *reachability*: which
# modules an attribute chain can land in, which attributes are dangerous whatever the object, and
# which library functions deserialize, evaluate or load native code.
# ---------------------------------------------------------------------------------------------

# Modules that are never importable, not even through `ScanPolicy.extra_allowed_imports`: they
# hand out the interpreter itself (sys, builtins, importlib, inspect, gc), processes, raw files
# and sockets, native code, or are the C-level twins of denied modules.
DENIED_MODULES: frozenset[str] = frozenset(
    {
        "sys", "builtins", "__builtin__", "importlib", "imp", "inspect", "gc", "code", "codeop",
        "runpy", "pkgutil", "zipimport", "site", "sysconfig", "pydoc", "pdb", "bdb", "trace",
        "tracemalloc", "faulthandler", "atexit", "operator", "_operator", "copyreg", "types",
        "ast", "dis", "marshal", "linecache", "traceback", "weakref", "ctypes", "cffi", "_ctypes",
        "posix", "nt", "_posixsubprocess", "_winapi", "msvcrt", "winreg", "_socket", "_thread",
        "_io", "_imp", "_pickle", "cPickle", "_frozen_importlib", "_frozen_importlib_external",
        "_bootstrap", "_bootstrap_external", "_signal", "_string", "signal", "shutil", "pwd",
        "grp", "termios", "tty", "timeit", "doctest", "cProfile", "profile",
    }
)  # fmt: skip

# Not allowed by default but an operator may allow them (files, archives, event loops). They are
# listed so the scanner recognises them when an allowed module re-exports them (`PIL.Image.io`).
RESTRICTED_STDLIB_MODULES: frozenset[str] = frozenset(
    {
        "codecs", "tempfile", "glob", "fileinput", "select", "selectors",
        "mmap", "concurrent", "socketserver", "ssl", "webbrowser", "platform",
        "posixpath", "ntpath", "genericpath", "tarfile", "zipfile", "gzip", "bz2", "lzma",
        "ftplib", "smtplib", "telnetlib", "urllib", "http", "_osx_support",
    }
)  # fmt: skip

# Serialization formats that execute code when loading. Not allowed by default (an error); an
# operator may allow them, then their use is a warning and their `load`s stay errors (seed).
DESERIALIZATION_MODULES: frozenset[str] = frozenset(
    {"pickle", "shelve", "dill", "cloudpickle", "joblib"}
)

# Renamed re-exports the scanner maps back to the real module (`enum.bltns` is `builtins`). For
# the standard library the scanner also reads the exact re-exports off the running interpreter;
# for third-party packages only the unmistakable names below (and these aliases) are mapped.
REEXPORT_ALIASES: dict[str, str] = {
    "bltns": "builtins",
    "stdlib_re": "re",
    "pickle_compat": "pickle",
    "_ctypes": "ctypes",
    "cpickle": "pickle",
}

# `os` is importable for its harmless parts only; every other attribute of `os` is an error.
OS_ALLOWED_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "path", "environ", "getenv", "cpu_count", "sep", "linesep", "pathsep", "curdir",
        "pardir", "extsep", "altsep", "name", "getpid", "devnull", "fspath", "fsencode",
        "fsdecode", "PathLike",
    }
)  # fmt: skip
OS_ENVIRON_READ_METHODS: frozenset[str] = frozenset(
    {"get", "keys", "items", "values", "copy", "__getitem__", "__contains__", "__iter__", "__len__"}
)
OS_ENVIRON_WRITE_METHODS: frozenset[str] = frozenset(
    {
        "__setitem__", "__delitem__", "__ior__", "setdefault", "update", "pop", "popitem",
        "clear", "putenv", "unsetenv",
    }
)  # fmt: skip

# Builtins that are not in the seed's list but open an interactive debugger, read stdin, stop
# the worker or import modules by name (`help("os")`).
DANGEROUS_BUILTINS: frozenset[str] = frozenset(
    {"breakpoint", "help", "input", "exit", "quit", "copyright", "credits", "license"}
)

# Attribute names that are dangerous on *any* object: frame and traceback walks, process and
# native-code entry points, deserializers and evaluators of allowed libraries. Value: (rule,
# reason). A method of the plugin's own class with one of these names is still flagged when used.
DENIED_ATTRIBUTES: dict[str, tuple[str, str]] = {
    **{
        name: ("dangerous-attribute", "frame or traceback access")
        for name in (
            "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "tb_frame",
            "tb_next", "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await",
            "ag_frame", "ag_code", "co_code", "co_consts", "co_names", "_getframe",
            "_current_frames", "settrace", "setprofile", "currentframe",
        )
    },
    **{
        name: ("dangerous-attribute", "object-graph walk")
        for name in ("mro", "get_referrers", "get_referents", "get_objects", "get_field")
    },
    **{
        name: ("forbidden-call", "process control")
        for name in (
            "system", "popen", "fork", "forkpty", "kill", "killpg", "execl", "execle", "execlp",
            "execlpe", "execv", "execve", "execvp", "execvpe", "spawnl", "spawnle", "spawnlp",
            "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn",
            "posix_spawnp", "startfile", "create_subprocess_shell", "create_subprocess_exec",
            "subprocess_shell", "subprocess_exec", "check_output", "check_call", "Popen",
            "getoutput", "getstatusoutput",
        )
    },
    **{
        name: ("native-code", "native code loading")
        for name in (
            "load_library", "load_inline", "cpp_extension", "ctypeslib", "CDLL", "PyDLL",
            "WinDLL", "OleDLL", "LoadLibrary", "dlopen", "register_custom_ops_library",
            "ExtensionFileLoader", "register_execution_provider_library",
            "CUDAPluggableAllocator",
        )
    },
    **{
        name: ("unsafe-deserialization", "pickle deserialization")
        for name in ("read_pickle", "Unpickler", "pickle_compat")
    },
    **{
        name: ("eval-like", "evaluates code")
        for name in ("unsafe_eval", "lambda_eval", "_evaluate", "_eval_type", "_create_fn")
    },
    **{
        name: ("forbidden-call", "dynamic import")
        for name in ("import_module", "exec_module", "load_module", "module_from_spec")
    },
}  # fmt: skip

# Module names that are unmistakable as attribute names: `anything.subprocess` is flagged even
# when the scanner cannot tell what `anything` is.
UNAMBIGUOUS_MODULE_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "os", "_os", "sys", "_sys", "subprocess", "builtins", "__builtin__", "bltns",
        "importlib", "ctypes", "_ctypes", "pickle", "_pickle", "cPickle", "marshal", "shelve",
        "posix", "nt", "_posixsubprocess", "runpy", "pty", "shutil", "_thread", "_io", "_imp",
        "multiprocessing", "threading", "socket", "_socket", "fcntl", "codeop", "dill",
        "cloudpickle", "copyreg", "_frozen_importlib", "_frozen_importlib_external",
        "_bootstrap", "_bootstrap_external", "_string",
    }
)  # fmt: skip

# Paths of allowed libraries that are dangerous: the path itself and everything under it.
# Value: (rule, reason, severity).
DANGEROUS_PATHS: dict[str, tuple[str, str, str]] = {
    # deserializers (pickle by other names)
    "pickle.load": ("unsafe-deserialization", "pickle load", "error"),
    "pickle.loads": ("unsafe-deserialization", "pickle load", "error"),
    "pickle.Unpickler": ("unsafe-deserialization", "pickle load", "error"),
    "shelve.open": ("unsafe-deserialization", "shelve (pickle) load", "error"),
    "shelve.Shelf": ("unsafe-deserialization", "shelve (pickle) load", "error"),
    "dill.load": ("unsafe-deserialization", "dill load", "error"),
    "dill.loads": ("unsafe-deserialization", "dill load", "error"),
    "cloudpickle.load": ("unsafe-deserialization", "cloudpickle load", "error"),
    "cloudpickle.loads": ("unsafe-deserialization", "cloudpickle load", "error"),
    "joblib.load": ("unsafe-deserialization", "joblib (pickle) load", "error"),
    "pandas.read_pickle": ("unsafe-deserialization", "pickle load", "error"),
    "pandas.io.pickle": ("unsafe-deserialization", "pickle load", "error"),
    "pandas.compat.pickle_compat": ("unsafe-deserialization", "pickle load", "error"),
    "pandas.read_hdf": ("unsafe-deserialization", "HDF5 object columns are pickled", "error"),
    "pandas.HDFStore": ("unsafe-deserialization", "HDF5 object columns are pickled", "error"),
    "pandas.io.pytables": ("unsafe-deserialization", "HDF5 object columns are pickled", "error"),
    "torch.package": ("unsafe-deserialization", "torch.package imports pickled code", "error"),
    "torch.jit.load": ("unsafe-deserialization", "TorchScript archive load", "warning"),
    # evaluation of strings as code
    "pandas.eval": ("eval-like", "evaluates an expression string", "error"),
    "pandas.core.computation": ("eval-like", "evaluates an expression string", "error"),
    "PIL.ImageMath.eval": ("eval-like", "evaluates an expression string", "error"),
    "PIL.ImageMath.unsafe_eval": ("eval-like", "evaluates an expression string", "error"),
    "PIL.ImageMath.lambda_eval": ("eval-like", "evaluates an expression string", "error"),
    "numpy.lib.utils": ("eval-like", "source and evaluation helpers", "error"),
    "typing.ForwardRef._evaluate": ("eval-like", "evaluates an annotation string", "error"),
    "logging.config": (
        "eval-like",
        "dictConfig/fileConfig/listen build arbitrary objects",
        "error",
    ),
    "string.Formatter": ("dangerous-attribute", "resolves attribute names at run time", "error"),
    "pydantic.ImportString": ("forbidden-call", "imports a module named by data", "error"),
    "pydantic.types.ImportString": ("forbidden-call", "imports a module named by data", "error"),
    "pydantic.PyObject": ("forbidden-call", "imports a module named by data", "error"),
    "pydantic.v1.PyObject": ("forbidden-call", "imports a module named by data", "error"),
    "pydantic.v1.types.PyObject": ("forbidden-call", "imports a module named by data", "error"),
    "pydantic._internal": ("dangerous-attribute", "pydantic internals", "error"),
    # remote code
    "torch.hub": ("remote-code", "downloads and runs repository code", "error"),
    "torch.utils.model_zoo": ("remote-code", "downloads and unpickles models", "error"),
    "transformers.dynamic_module_utils": ("remote-code", "runs repository code", "error"),
    "torch.distributed": ("forbidden-call", "remote procedure calls", "error"),
    # native code
    "numpy.ctypeslib": ("native-code", "loads shared libraries", "error"),
    "numpy.f2py": ("native-code", "compiles and loads extensions", "error"),
    "numpy.distutils": ("native-code", "compiles and loads extensions", "error"),
    "numpy.testing.extbuild": ("native-code", "compiles and loads extensions", "error"),
    "torch.utils.cpp_extension": ("native-code", "compiles and loads extensions", "error"),
    "torch.ops.load_library": ("native-code", "loads shared libraries", "error"),
    "torch.classes.load_library": ("native-code", "loads shared libraries", "error"),
    # processes, files, threads
    "torch.multiprocessing": ("forbidden-import", "starts processes", "error"),
    "torch.utils.collect_env": ("forbidden-call", "runs subprocesses", "error"),
    "PIL.ImageShow": ("forbidden-call", "runs external viewers", "error"),
    "PIL.ImageGrab": ("forbidden-call", "runs external programs", "error"),
    "PIL.EpsImagePlugin": ("forbidden-call", "runs Ghostscript", "error"),
    "logging.handlers": ("forbidden-call", "file, socket and thread handlers", "error"),
    "logging.FileHandler": ("forbidden-call", "writes files", "error"),
    "logging.currentframe": ("dangerous-attribute", "frame access", "error"),
    "contextlib.chdir": ("forbidden-call", "changes the working directory", "error"),
    "mimetypes.init": ("forbidden-call", "reads files", "error"),
    "mimetypes.read_mime_types": ("forbidden-call", "reads files", "error"),
    # file access of modules an operator may allow for their in-memory parts (io.BytesIO)
    "io.open": ("forbidden-call", "opens files", "error"),
    "io.open_code": ("forbidden-call", "opens files", "error"),
    "io.FileIO": ("forbidden-call", "opens files", "error"),
    "codecs.open": ("forbidden-call", "opens files", "error"),
    "asyncio.create_subprocess_exec": ("forbidden-call", "starts processes", "error"),
    "asyncio.create_subprocess_shell": ("forbidden-call", "starts processes", "error"),
    "asyncio.subprocess": ("forbidden-call", "starts processes", "error"),
    "asyncio.start_server": ("forbidden-call", "listens on a socket", "error"),
    "asyncio.start_unix_server": ("forbidden-call", "listens on a socket", "error"),
    # code generation and run-time evaluation inside allowed libraries
    "torch.compile": ("eval-like", "generates and compiles code (and caches it on disk)", "error"),
    "torch._dynamo": ("eval-like", "generates and compiles code", "error"),
    "torch._inductor": ("eval-like", "generates and compiles code", "error"),
    "torch.jit.script": ("eval-like", "compiles Python source", "error"),
    "torch.jit.CompilationUnit": ("eval-like", "compiles source strings", "error"),
    "torch.fx": ("eval-like", "generates Python code and runs it", "error"),
    "typing.ForwardRef": ("eval-like", "evaluates an annotation string", "error"),
    "typing.get_type_hints": ("eval-like", "evaluates annotation strings", "error"),
    "typing._eval_type": ("eval-like", "evaluates annotation strings", "error"),
    "pydantic.create_model": (
        "eval-like",
        "builds a model whose annotations may be strings",
        "error",
    ),
    "pandas.io.formats.style": ("eval-like", "renders templates", "error"),
    "pandas.io.formats.style_render": ("eval-like", "renders templates", "error"),
}

# Loaders that are safe only with an explicit keyword: path -> (keyword, required constant).
CONDITIONAL_LOADS: dict[str, tuple[str, object]] = {
    "torch.load": ("weights_only", True),
    "torch.serialization.load": ("weights_only", True),
}

# Calls that are fine unless given these keywords, or more positional arguments than this (the
# later positional parameters are the dangerous ones), and that must be called directly (an alias
# could be called any way; classes, CapWords, are exempt from that last rule since annotations,
# isinstance() and subclasses name them): path -> (keywords, max positional or None, rule).
GUARDED_CALLS: dict[str, tuple[frozenset[str], int | None, str]] = {
    "logging.basicConfig": (frozenset({"filename", "filemode"}), 0, "forbidden-call"),  # a file
    "ffmpeg.run": (frozenset({"cmd"}), 1, "forbidden-call"),  # cmd: the executable to run
    "ffmpeg.run_async": (frozenset({"cmd"}), 1, "forbidden-call"),
    "ffmpeg.probe": (frozenset({"cmd"}), 1, "forbidden-call"),
    "ffmpeg.compile": (frozenset({"cmd"}), 1, "forbidden-call"),
    # positional forms of the unsafe switches (their keyword forms are UNSAFE_SWITCHES)
    "numpy.load": (frozenset(), 2, "unsafe-deserialization"),  # 3rd positional: allow_pickle
    "numpy.lib.npyio.load": (frozenset(), 2, "unsafe-deserialization"),
    "numpy.lib.format.read_array": (frozenset(), 1, "unsafe-deserialization"),
    "numpy.lib.npyio.NpzFile": (frozenset(), 2, "unsafe-deserialization"),
    "sentence_transformers.SentenceTransformer": (frozenset(), 3, "remote-code"),
    "sentence_transformers.CrossEncoder": (frozenset(), 3, "remote-code"),
    "transformers.pipeline": (frozenset(), 2, "remote-code"),  # later: trust_remote_code
}

# Private (underscore) attributes of library modules are errors (internals re-export anything),
# except these configuration namespaces ordinary model code touches.
PRIVATE_ATTRIBUTES_ALLOWED: frozenset[str] = frozenset({"torch._logging"})

# Keyword / dict-key switches that turn on remote code or pickle: name -> (rule, safe values,
# severity when unsafe). A value is safe only when it is one of these constants.
UNSAFE_SWITCHES: dict[str, tuple[str, tuple[object, ...], str]] = {
    "trust_remote_code": ("remote-code", (False, None), "error"),
    "allow_pickle": ("unsafe-deserialization", (False, None), "error"),
    "weights_only": ("unsafe-deserialization", (True,), "error"),
    "safe_mode": ("unsafe-deserialization", (True,), "error"),
    "pickle_module": ("unsafe-deserialization", (None,), "error"),
    "trust_repo": ("remote-code", (False, None), "error"),
    "use_safetensors": ("unsafe-deserialization", (True, None), "warning"),
}

# Dunder attributes that walk the object graph towards builtins, frames, code or classes: always
# errors. `SAFE_DUNDERS` are ordinary and pass; any other dunder is a warning (seed).
ESCAPE_DUNDERS: frozenset[str] = frozenset(
    {
        "__subclasses__", "__globals__", "__builtins__", "__code__", "__closure__",
        "__getattribute__", "__getattr__", "__setattr__", "__delattr__", "__reduce__",
        "__reduce_ex__", "__import__", "__loader__", "__spec__", "__self__", "__func__",
        "__dict__", "__mro__", "__bases__", "__base__", "__init_subclass__", "__subclasshook__",
        "__traceback__", "__defaults__", "__kwdefaults__", "__annotations__", "__wrapped__",
        "__objclass__", "__build_class__", "__prepare__", "__set_name__", "__class_getitem__",
        "__instancecheck__", "__subclasscheck__", "__getstate__", "__setstate__", "__context__",
        "__cause__", "__weakref__", "__func_globals__", "__path__", "__cached__",
    }
)  # fmt: skip
SAFE_DUNDERS: frozenset[str] = frozenset(
    {
        "__name__", "__qualname__", "__doc__", "__module__", "__version__", "__init__",
        "__new__", "__call__", "__len__", "__iter__", "__next__", "__enter__", "__exit__",
        "__aenter__", "__aexit__", "__repr__", "__str__", "__eq__", "__hash__", "__getitem__",
        "__contains__", "__post_init__", "__fields__", "__all__", "__slots__", "__file__",
        "__package__", "__debug__", "__author__", "__pydantic_fields__", "__signature__",
        "__array__", "__float__", "__int__", "__bool__", "__add__", "__mul__", "__lt__",
    }
)  # fmt: skip
# Dunder attributes that may be assigned (functools.wraps-style metadata).
DUNDER_STORE_OK: frozenset[str] = frozenset({"__doc__", "__name__", "__qualname__", "__module__"})
# Dunder names that must not be read or bound as plain names.
DANGEROUS_DUNDER_NAMES: frozenset[str] = frozenset(
    {"__builtins__", "__loader__", "__spec__", "__build_class__", "__annotations__", "__dict__"}
)
# Special methods a plugin class must not define (pickle gadgets, class-creation hooks), and
# those that are allowed but worth a warning.
DANGEROUS_DUNDER_DEFINITIONS: frozenset[str] = frozenset(
    {"__reduce__", "__reduce_ex__", "__init_subclass__", "__prepare__", "__builtins__"}
)
WARN_DUNDER_DEFINITIONS: frozenset[str] = frozenset(
    {
        "__getattr__", "__getattribute__", "__setattr__", "__delattr__", "__instancecheck__",
        "__subclasscheck__", "__set_name__", "__class_getitem__", "__set__", "__get__",
        "__delete__", "__match_args__",
    }
)  # fmt: skip

# Submodule names that collide with a dangerous module name but are harmless (`pandas.io`).
KNOWN_SUBMODULES: frozenset[str] = frozenset(
    {
        "pandas.io", "pandas.api.types", "pandas.core.dtypes", "torch.signal", "torch.types",
        "numpy.typing", "torch.library", "pyarrow.types", "pydantic.types", "polars.io",
        "polars.datatypes", "pyarrow.io", "imageio.core", "transformers.utils",
    }
)  # fmt: skip

# `from X import *` is allowed only for these (their public names are all harmless); any other
# star import hides which names it binds.
STAR_IMPORT_SAFE: frozenset[str] = frozenset(
    {
        "math", "typing", "typing_extensions", "dataclasses", "collections", "collections.abc",
        "itertools", "functools", "enum", "abc", "statistics", "decimal", "fractions",
        "numbers", "datetime", "time", "re", "json", "heapq", "bisect",
    }
)  # fmt: skip
