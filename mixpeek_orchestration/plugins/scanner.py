"""Static security scanner for plugin code: one parse, a reachability analysis, then checks.

Plugins are uploaded by untrusted users, so before a version is confirmed every ``.py`` file is
parsed (never imported) and analysed. Matching spellings is not enough (``o = os; o.system``,
``typing.sys.modules``, ``print.__self__.eval``), so the scanner runs a small flow-insensitive
points-to analysis over the module and judges every name and attribute access by what it *can
refer to*:

1. **Walk** (one iterative pass, no Python recursion): builds scopes (module, class, function,
   lambda, comprehension), records every binding (assignments, imports, parameters and their
   defaults, ``for``/``with``/``except``/``match`` targets, walrus, ``global``/``nonlocal``) as
   edges of a constraint graph, records the sites to check later, and runs the checks that need
   no resolution (imports, dunders, keyword switches, string contents, annotation strings).
2. **Solve**: propagates *tokens* through the graph with a worklist until nothing changes. A
   token names what a value may be: ``m:os`` (a module), ``p:numpy.load`` (an attribute path
   under a module), ``f:<id>`` (a function or lambda of this file, so calls see its returns),
   ``o:utils.x`` (something from another file of the plugin). Reads of one name in one scope
   share a variable, aliased to the binding's. Attribute reads on unknown objects fall back to a
   per-attribute-name *field* that collects every ``obj.attr = value`` and class-body binding in
   the file, so ``self.o = os`` is followed; ``f.attr`` for a local function ``f`` also reads
   ``f()``'s result (properties). Arguments of calls to local functions flow into parameters;
   calls of unknown callees may return their arguments.
3. **Check**: judges the resolved sites: ``os`` attributes against an allowlist, paths of allowed
   libraries against :data:`~mixpeek_orchestration.plugins.policy.DANGEROUS_PATHS`, modules
   reached through re-exports (``logging.os``, ``enum.bltns``), bare names of forbidden builtins
   (honouring real shadowing), module objects escaping into calls the analysis cannot follow or
   returned from special methods that run implicitly (``__getattr__``, ``__getitem__``...).

Decisions worth knowing:

* ``os.environ`` is read-only: ``os.environ[...] = ...``, ``update``/``setdefault``/``pop`` and
  ``os.putenv`` are errors (environment variables steer libraries and child processes). Copies
  (``dict(os.environ)``, ``{**os.environ}``, ``os.environ.copy()``) may be written.
* Escape-prone dunders (``__subclasses__``, ``__globals__``, ``__dict__``, ``__self__``...) are
  errors even without ``--strict``; other dunders are warnings, and ordinary ones
  (``__init__``, ``__name__``; ``x.__class__.__name__``) pass.
* Private attributes of library modules are errors (``torch.serialization._load``), except a few
  configuration namespaces (``torch._dynamo``); of the plugin's own objects they are fine.
* Modules of allowed libraries are only known by name: third-party re-exports under unusual
  names are caught when they are unmistakable (``anything.subprocess``), or when an ambiguous
  one (``PIL.Image.io``) is used as a module rather than called.

The scanner fails closed: a file that cannot be decoded or parsed, is too large, contains a null
byte, exceeds the time budget, or trips an internal error or analysis limit yields an ``error``
violation. It never imports or runs plugin code.

Example:
    >>> [v.message for v in scan_source("import subprocess\\n", "x.py")]
    ['Forbidden import: subprocess']
"""

from __future__ import annotations

import ast
import gc
import os
import re
import sys
import time
import types
from collections.abc import Iterable
from pathlib import Path

from mixpeek_orchestration.plugins import policy as P
from mixpeek_orchestration.plugins.policy import ScanPolicy
from mixpeek_orchestration.plugins.report import ScanReport, Violation

__all__ = ["scan_directory", "scan_source"]

# ---------------------------------------------------------------------------------------------
# Limits. Module-level so tests (and operators) can tighten them; ScanPolicy carries the budget.
# ---------------------------------------------------------------------------------------------

#: How many distinct things one value may be before the analysis gives up (fails closed).
MAX_TOKENS_PER_VALUE = 1024
#: Paths into the plugin's own modules are followed this many components deep.
MAX_OWN_PATH_DEPTH = 4
#: String annotations / query strings longer than this are not parsed (an error in type places).
MAX_EMBEDDED_SOURCE = 4_000
#: The recursion limit ``ast.parse`` runs under: CPython's AST builder scales its depth limit
#: with it, and a raised limit lets deep input overflow the C stack (a crash, not an exception).
PARSE_RECURSION_CEILING = 10_000
#: The time budget is checked every this many steps of each phase.
_TIME_CHECK_EVERY = 1024

_STDLIB = frozenset(sys.stdlib_module_names)
_OS_NAMES = frozenset(dir(os))
_ALL_FORBIDDEN_BUILTINS = P.FORBIDDEN_BUILTINS | P.DANGEROUS_BUILTINS
_HARD_DENIED = P.FORBIDDEN_IMPORTS | P.DENIED_MODULES
_REACHABLE_MODULES = (
    _HARD_DENIED | P.DESERIALIZATION_MODULES | P.RESTRICTED_STDLIB_MODULES | {"os", "io", "asyncio"}
)  # allowed modules with denied parts (io.open) are recognised when re-exported too
_ENV_TOKEN = "p:os.environ"


def _prefixes(paths: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for path in paths:
        parts = path.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(out)


# Module paths worth following deeper than ``module.attr``: prefixes of every path a rule names.
# Other paths stop being tracked after two components; flow-insensitive cycles (``node =
# node.parent``) would otherwise grow them combinatorially, and the rules that judge deeper
# attributes only need the receiver (``PIL.Image`` for ``PIL.Image.io``), not the result.
_INTERESTING_PATHS = _prefixes(
    [
        *P.DANGEROUS_PATHS,
        *P.CONDITIONAL_LOADS,
        *P.GUARDED_CALLS,
        *P.KNOWN_SUBMODULES,
        *P.PRIVATE_ATTRIBUTES_ALLOWED,
        "os.path",
        "os.environ",
    ]
)
_ENV_TOKENS = frozenset({_ENV_TOKEN})

# Calls whose result may be (an element of) their arguments: ``next(iter([os]))``.
_PASSTHROUGH_CALLS = frozenset(
    f"p:{name}"
    for name in (
        "builtins.next", "builtins.iter", "builtins.list", "builtins.tuple", "builtins.sorted",
        "builtins.reversed", "builtins.min", "builtins.max", "builtins.set", "builtins.frozenset",
        "builtins.dict", "builtins.enumerate", "builtins.zip", "builtins.filter",
        "builtins.staticmethod", "builtins.classmethod", "builtins.property", "functools.reduce",
        "functools.partial", "functools.lru_cache", "functools.cache", "functools.wraps",
        "functools.cached_property", "copy.copy", "copy.deepcopy", "contextlib.contextmanager",
        "itertools.chain", "itertools.cycle", "itertools.repeat", "collections.ChainMap",
        "collections.OrderedDict", "collections.defaultdict", "collections.deque",
    )
)  # fmt: skip
# Builtins are not tracked as values (they are called everywhere and would flood the graph);
# calls to these, by their bare name when no binding hides the builtin, are recognised instead.
_PASSTHROUGH_BUILTINS = frozenset(
    t.split(".", 1)[1] for t in _PASSTHROUGH_CALLS if t.startswith("p:builtins.")
)
_COPYING_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset", "sorted"})
_ENV_SAFE_BUILTINS = _COPYING_BUILTINS | frozenset(
    ("len", "print", "repr", "str", "bool", "iter", "enumerate")
)
_KNOWN_BUILTIN_CALLS = _PASSTHROUGH_BUILTINS | _ENV_SAFE_BUILTINS
# Calls that copy their argument into a plain container: ``dict(os.environ)`` is not environ.
_COPYING_CALLS = frozenset(
    f"p:builtins.{n}" for n in ("dict", "list", "tuple", "set", "frozenset", "sorted")
)
# Callees that only read ``os.environ`` when it is passed to them.
_ENV_SAFE_READERS = (
    _COPYING_CALLS
    | frozenset(
        f"p:builtins.{n}" for n in ("len", "print", "repr", "str", "bool", "iter", "enumerate")
    )
    | frozenset({"p:json.dumps"})
)

_TYPING_GENERICS = frozenset(
    {
        "List", "Dict", "Set", "FrozenSet", "Tuple", "Optional", "Union", "Type", "Sequence",
        "Mapping", "MutableMapping", "MutableSequence", "Iterable", "Iterator", "Callable",
        "ClassVar", "Final", "Annotated", "Deque", "DefaultDict", "OrderedDict", "Counter",
        "Generator", "AsyncIterator", "AsyncGenerator", "Awaitable", "Coroutine", "Required",
        "NotRequired", "TypeGuard", "list", "dict", "tuple", "set", "frozenset", "type",
        "Collection", "AbstractSet", "ChainMap", "Container",
    }
)  # fmt: skip
# Calls whose string arguments are evaluated as types: name -> (positional type slots, keyword
# type slots). ``None`` slots means every positional argument after the first. The strings are
# parsed and scanned like annotations.
_TYPE_STRING_CALLS: dict[str, tuple[tuple[int, ...] | None, tuple[str, ...]]] = {
    "ForwardRef": ((0,), ()),
    "TypeAdapter": ((0,), ("type",)),
    "TypeVar": (None, ("bound",)),
    "NewType": ((1,), ()),
}

# Callee names (last attribute or bare name) that get a closer look.
_SPECIAL_CALL_NAMES = frozenset(
    {
        *_TYPE_STRING_CALLS, "create_model", "eval", "query", "format", "format_map", "join",
        "run", "run_async", "probe", "compile", "type", "ForwardRef",
    }
)  # fmt: skip

_SUSPICIOUS_STRING = re.compile(
    r"__(?:import|builtins|subclasses|globals|getattribute|code|closure|mro|bases|base|reduce"
    r"|reduce_ex|loader|self|traceback|func|init_subclass)__"
    r"|\b(?:f_globals|f_builtins|f_locals|f_back|tb_frame|gi_frame|cr_frame|ag_frame|_getframe)\b"
)
_FORMAT_FIELD = re.compile(r"\{([^{}]*)\}")
_PLAIN_PERCENT = re.compile(r"(?:[^%]|%s|%r|%%){0,400}")

# Rule ids (stable; tests and tooling key on them).
R_PARSE = "parse-error"
R_NULL = "null-byte"
R_SIZE = "file-too-large"
R_TIMEOUT = "scan-timeout"
R_INTERNAL = "scanner-error"
R_LIMIT = "scanner-limit"
R_READ = "read-error"
R_FILETYPE = "file-type"
R_FORBIDDEN_IMPORT = "forbidden-import"
R_NOT_ALLOWED = "import-not-allowed"
R_STAR = "star-import"
R_BUILTIN = "forbidden-builtin"
R_CALL = "forbidden-call"
R_ATTR = "dangerous-attribute"
R_DUNDER = "dunder-access"
R_DEFINITION = "dangerous-definition"
R_DESER = "unsafe-deserialization"
R_REMOTE = "remote-code"
R_NATIVE = "native-code"
R_EVAL = "eval-like"
R_ENV = "env-write"
R_ESCAPE = "module-escape"
R_MUTATION = "module-mutation"
R_PRIVATE = "private-attribute"
R_ANNOTATION = "annotation-string"
R_FORMAT = "format-string"
R_SUSPICIOUS = "suspicious-string"
R_BUILT_NAME = "string-built-name"
R_REEXPORT = "module-reexport"
R_DYNAMIC_CLASS = "dynamic-class"
R_METACLASS = "metaclass"

#: Every rule id the scanner can emit.
RULES: frozenset[str] = frozenset(v for k, v in dict(globals()).items() if k.startswith("R_"))

# Walk flags.
_F_TOP = 1  # a statement directly in a module or class body (runs unconditionally)
_F_TYPE = 2  # a type position: string constants are forward references
_F_LITERAL = 4  # inside Literal[...]: strings are values
_F_FROMSTR = 8  # parsed out of a string annotation: calls are not allowed
_F_ADD = 16  # an operand of a string concatenation (folded at the top of the chain)
_F_QUERY = 32  # parsed out of a pandas query string: only @names are Python names
_INHERIT = _F_TYPE | _F_LITERAL | _F_FROMSTR | _F_QUERY

_QUERY_MARK = "q_at_0_"
_NAME_DUNDERS = frozenset({"__name__", "__qualname__", "__module__"})

# Edge kinds of the constraint graph.
_COPY, _ATTR, _CALL, _FILTER = 0, 1, 2, 3

# Site contexts.
_LOAD, _STORE, _DEL = 0, 1, 2


# Memo tables of pure lookups (module path steps and path verdicts), shared across scans so
# every file importing `typing` does not recompute them; cleared when they grow large.
_STEP_MEMO: dict[tuple[str, str], str | None] = {}
_PATH_MEMO: dict[str, tuple[str, str, str] | None] = {}
_MEMO_LIMIT = 100_000


def _bounded(memo: dict) -> dict:  # type: ignore[type-arg]
    if len(memo) > _MEMO_LIMIT:
        memo.clear()
    return memo


class _ScanTimeout(Exception):
    """The per-file time budget ran out."""


class _ScanLimit(Exception):
    """An analysis limit was exceeded; the file fails closed."""


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def scan_source(
    source: bytes | str,
    filename: str,
    *,
    policy: ScanPolicy | None = None,
    plugin_modules: frozenset[str] = frozenset(),
) -> list[Violation]:
    """Scan one plugin file and return its violations (errors and warnings), sorted by position.

    Args:
        source: the file's raw bytes (PEP 263 coding cookies and BOMs are honoured, exactly as
            the interpreter would decode them) or already-decoded text.
        filename: the path inside the plugin, used as ``Violation.file``.
        policy: operator knobs; defaults to :class:`ScanPolicy()`.
        plugin_modules: top-level module / package names that belong to the plugin itself and may
            be imported absolutely (``{"manifest", "processors"}``). Relative imports are always
            allowed.

    Returns:
        The violations; an empty list means the file is clean.
    """
    result = _scan_file(source, filename, policy or ScanPolicy(), plugin_modules, None)
    return result.violations


def scan_directory(root: Path, *, policy: ScanPolicy | None = None) -> ScanReport:
    """Scan every ``.py`` file under ``root`` (an unpacked plugin) and return the report.

    ``plugin_modules`` is derived from root's entries (top-level ``*.py`` stems and directories).
    Files are scanned in sorted order of their relative POSIX paths. After the per-file scans, a
    cross-file check rejects plugin modules that hand a module object (``os``...) to each other,
    which a per-file analysis could not follow. Symbolic links are reported, never followed.

    Args:
        root: the plugin's root directory.
        policy: operator knobs; defaults to :class:`ScanPolicy()`.

    Returns:
        A :class:`ScanReport` with every violation, ``files_scanned`` and ``strict`` set.
    """
    policy = policy or ScanPolicy()
    root = Path(root)
    plugin_modules = frozenset(
        entry.stem if entry.suffix == ".py" else entry.name
        for entry in root.iterdir()
        if (entry.is_file() and entry.suffix == ".py")
        or (entry.is_dir() and not entry.is_symlink() and entry.name.isidentifier())
    )
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            if name.endswith(".py"):
                path = Path(dirpath) / name
                files.append((path.relative_to(root).as_posix(), path))
    files.sort()

    violations: list[Violation] = []
    results: list[_FileResult] = []
    for rel, path in files:
        if path.is_symlink() or not path.is_file():
            violations.append(_violation(rel, 0, 0, R_FILETYPE, "Not a regular file: " + rel))
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            violations.append(_violation(rel, 0, 0, R_READ, f"Cannot read file: {exc}"))
            continue
        result = _scan_file(data, rel, policy, plugin_modules, _module_name(rel))
        results.append(result)
        violations.extend(result.violations)
    violations.extend(_cross_file_violations(results))
    return ScanReport(violations=violations, files_scanned=len(files), strict=policy.strict)


# ---------------------------------------------------------------------------------------------
# Per-file driver (size, bytes, parse, budget, fail-closed)
# ---------------------------------------------------------------------------------------------


class _FileResult:
    """What scanning one file produced, including what the cross-file check needs."""

    __slots__ = ("exports", "filename", "module", "own_refs", "violations")

    def __init__(self, filename: str, module: str | None) -> None:
        self.filename = filename
        self.module = module
        self.violations: list[Violation] = []
        # module-level names bound to module objects (or other values unsafe to re-export)
        self.exports: dict[str, frozenset[str]] = {}
        # (dotted path into another plugin module, line, column)
        self.own_refs: list[tuple[str, int, int]] = []


def _violation(
    file: str, line: int, column: int, rule: str, message: str, severity: str = "error"
) -> Violation:
    return Violation(
        file=file,
        line=line,
        column=column,
        message=message,
        severity=severity,  # type: ignore[arg-type]  # "error" or "warning"
        rule=rule,
    )


def _scan_file(
    source: bytes | str,
    filename: str,
    policy: ScanPolicy,
    plugin_modules: frozenset[str],
    module: str | None,
) -> _FileResult:
    """Scan one file, converting every failure into an error violation (fail closed)."""
    result = _FileResult(filename, module)
    started = time.monotonic()
    deadline = started + policy.time_budget_s

    size = len(source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source)
    if size > policy.max_file_bytes:
        result.violations.append(
            _violation(
                filename,
                0,
                0,
                R_SIZE,
                f"File too large: {size} bytes (limit {policy.max_file_bytes})",
            )
        )
        return result
    nul = "\x00" if isinstance(source, str) else b"\x00"
    if nul in source:  # type: ignore[operator]
        line = source[: source.index(nul)].count("\n" if isinstance(source, str) else b"\n") + 1  # type: ignore[arg-type,index]
        result.violations.append(_violation(filename, line, 0, R_NULL, "Null byte in source"))
        return result

    # The analysis allocates many small objects next to a large AST; the cyclic collector would
    # sweep the whole live heap again and again. Pause it for this file (what we leave behind is
    # collected once it is back on).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _scan_parsed(source, filename, policy, plugin_modules, module, deadline, result)
    finally:
        if gc_was_enabled:
            gc.enable()


def _scan_parsed(
    source: bytes | str,
    filename: str,
    policy: ScanPolicy,
    plugin_modules: frozenset[str],
    module: str | None,
    deadline: float,
    result: _FileResult,
) -> _FileResult:
    tree = _parse(source, filename, result)
    if tree is None:
        return result
    scanner = _ModuleScanner(filename, policy, plugin_modules, module, deadline)
    try:
        if time.monotonic() > deadline:
            raise _ScanTimeout
        scanner.run(tree)
    except _ScanTimeout:
        scanner.report_at(
            0, 0, R_TIMEOUT, f"Scan exceeded its time budget ({policy.time_budget_s:g} s)"
        )
    except _ScanLimit as exc:
        scanner.report_at(0, 0, R_LIMIT, f"Scanner limit exceeded: {exc}")
    except Exception as exc:  # fail closed on any internal error, keep what was found so far
        scanner.report_at(0, 0, R_INTERNAL, f"Scanner error: {type(exc).__name__}: {exc}")
    result.violations = scanner.violations()
    result.exports = scanner.exports
    result.own_refs = scanner.own_refs
    return result


def _parse(source: bytes | str, filename: str, result: _FileResult) -> ast.Module | None:
    """``ast.parse`` the raw source under a safe recursion limit; failures become violations."""
    old_limit = sys.getrecursionlimit()
    lowered = False
    try:
        if old_limit > PARSE_RECURSION_CEILING:
            try:
                sys.setrecursionlimit(PARSE_RECURSION_CEILING)
                lowered = True
            except RecursionError:
                pass
        return ast.parse(source, filename=filename)
    except SyntaxError as exc:  # includes IndentationError, TabError and bad coding cookies
        line = exc.lineno or 0
        col = max((exc.offset or 1) - 1, 0)
        msg = f"Cannot parse: {exc.msg}"
        result.violations.append(_violation(filename, line, col, R_PARSE, msg))
    except (ValueError, UnicodeError, LookupError, OverflowError) as exc:
        msg = f"Cannot parse: {type(exc).__name__}: {exc}"
        result.violations.append(_violation(filename, 0, 0, R_PARSE, msg))
    except (RecursionError, MemoryError) as exc:
        msg = f"Cannot parse: source nested too deeply ({type(exc).__name__})"
        result.violations.append(_violation(filename, 0, 0, R_PARSE, msg))
    finally:
        if lowered:
            sys.setrecursionlimit(old_limit)
    return None


# ---------------------------------------------------------------------------------------------
# Static facts about modules (computed once)
# ---------------------------------------------------------------------------------------------


def _stdlib_reexports() -> dict[tuple[str, str], str]:
    """Map ``(allowed stdlib module, attribute)`` to the real module it is, for this interpreter.

    Stdlib modules re-export what they import under arbitrary names (``enum.bltns`` is
    ``builtins``, ``mimetypes.posixpath`` is ``os.path``); reading them off the running
    interpreter is exact where a hand-written list would drift.
    """
    table: dict[tuple[str, str], str] = {}
    names = [n for n in P.ALLOWED_IMPORTS if n in _STDLIB and n != "os"]
    names += ["json.decoder", "json.encoder", "json.scanner", "collections.abc", "os.path"]
    for name in names:
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name, fromlist=["_"])
            except Exception:  # an absent optional stdlib module is simply not mapped
                continue
        for attr, value in vars(module).items():
            if isinstance(value, types.ModuleType):
                table[(name, attr)] = value.__name__
    return table


_REEXPORTS: dict[tuple[str, str], str] | None = None


def _reexports() -> dict[tuple[str, str], str]:
    global _REEXPORTS
    if _REEXPORTS is None:
        _REEXPORTS = _stdlib_reexports()
    return _REEXPORTS


def _canonical_module(base: str, attr: str) -> str | None:
    """The dangerous module ``base.attr`` is (a re-export), or None.

    Standard-library re-exports are known exactly (read off the interpreter). Elsewhere only
    unmistakable names map (``anything.subprocess``); ambiguous ones (``torch.jit.trace``,
    ``polars.select``) stay attribute paths, and :meth:`_ModuleScanner._judge_path` rejects them
    when they are used as a module (``PIL.Image.io.open``).
    """
    real = _reexports().get((base, attr))
    if real is not None:
        if real in ("posixpath", "ntpath"):
            return "os.path"
        return real if real.split(".", 1)[0] in _REACHABLE_MODULES else None
    name = P.REEXPORT_ALIASES.get(attr, attr)
    if name in P.UNAMBIGUOUS_MODULE_ATTRIBUTES or attr in P.REEXPORT_ALIASES:
        if name in _REACHABLE_MODULES:
            return name
        stripped = name.lstrip("_")
        if stripped in _REACHABLE_MODULES:
            return stripped
    return None


_SDK_TOPS = frozenset(p.split(".", 1)[0] for p in P.SDK_PREFIXES + P.COMPAT_PREFIXES)


def _is_sdk_path(dotted: str) -> bool:
    """The platform SDK or a hosted-product compatibility path (``engine.inference...``), or a
    public name of one: only what their ``__all__`` lists, never a module inside the SDK.

    Other hosted built-in services (``engine.inference.<provider>.<model>.services``) pass the
    scan and fail at import with a message naming the ones this platform has.
    """
    if dotted in P.sdk_public_paths():
        return True
    if not dotted.startswith("engine.inference."):
        return False
    parts = dotted.split(".")
    modules = P.sdk_modules()
    return not any(".".join(parts[:i]) in modules for i in range(3, len(parts)))


def _module_name(rel: str) -> str:
    """``processors/core.py`` -> ``processors.core``; ``pkg/__init__.py`` -> ``pkg``."""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _dotted(node: ast.AST) -> str:
    """A short human-readable rendering of a receiver expression for messages."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute) and len(parts) < 6:
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        parts.append("(...)")
    else:
        parts.append("<expr>")
    return ".".join(reversed(parts))


def _last_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


# ---------------------------------------------------------------------------------------------
# Analysis data structures
# ---------------------------------------------------------------------------------------------


class _Var:
    """A node of the constraint graph: the set of tokens a value may be, and outgoing edges."""

    __slots__ = ("edges", "tokens")

    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.edges: list[tuple[int, object, object]] = []


class _Scope:
    """A Python scope: its bindings and the declarations that redirect them.

    ``top_lines`` remembers, for module and class scopes, the first line where a name is bound by
    a statement that runs unconditionally (directly in the body): only such a binding really
    shadows a builtin for later uses.
    """

    __slots__ = (
        "deleted", "fn", "globals_", "kind", "loads", "nonlocals", "parent", "top_lines",
        "vars",
    )  # fmt: skip

    def __init__(self, kind: str, parent: _Scope | None, fn: _FnInfo | None = None) -> None:
        self.kind = kind
        self.parent = parent
        self.fn = fn
        self.vars: dict[str, _Var] = {}
        self.loads: dict[str, _Var] = {}  # one shared variable per name read in this scope
        # rarely written: shared empty values until then (scopes are created by the thousand)
        self.globals_: frozenset[str] | set[str] = _EMPTY
        self.nonlocals: frozenset[str] | set[str] = _EMPTY
        self.deleted: frozenset[str] | set[str] = _EMPTY
        self.top_lines: dict[str, int] = {}

    def declare(self, kind: str, names: list[str]) -> None:
        """Record ``global`` / ``nonlocal`` / ``del`` names."""
        current = getattr(self, kind)
        setattr(self, kind, set(current) | set(names))


_EMPTY: frozenset[str] = frozenset()


class _FnInfo:
    """A function or lambda of the file: parameters (for argument flow) and its return value."""

    __slots__ = ("by_name", "is_method", "kwarg", "name", "node", "positional", "returns", "vararg")

    def __init__(self, name: str, node: ast.AST) -> None:
        self.name = name
        self.node = node
        self.positional: list[_Var] = []
        self.by_name: dict[str, _Var] = {}
        self.vararg: _Var | None = None
        self.kwarg: _Var | None = None
        self.returns = _Var()
        self.is_method = False


class _CallRec:
    """A call site: where its result goes and what flows into the callee's parameters."""

    __slots__ = (
        "args", "bound", "builtin", "dst", "func", "kwargs", "node", "passthrough", "via_attr",
    )  # fmt: skip

    def __init__(self, node: ast.AST, func: _Var | None, dst: _Var, via_attr: bool) -> None:
        self.node = node
        self.func = func
        self.dst = dst
        self.via_attr = via_attr
        self.args: list[tuple[_Var | None, bool]] = []  # (value or None, is_starred)
        self.kwargs: list[tuple[str | None, _Var]] = _NO_KWARGS  # (name or None for **, value)
        self.bound: set[str] | None = None  # local functions already wired
        self.passthrough = False
        # (name, scope) of a bare-name callee that may be a known builtin; after resolution, the
        # builtin's name if it is one, else None
        self.builtin: tuple[str, _Scope] | str | None = None


_NO_KWARGS: list[tuple[str | None, _Var]] = []  # shared, never appended to


_VALUE_TYPES = frozenset(
    {
        ast.Name, ast.Attribute, ast.Subscript, ast.Call, ast.IfExp, ast.BoolOp, ast.List,
        ast.Tuple, ast.Set, ast.Dict, ast.Starred, ast.NamedExpr, ast.Await, ast.Lambda,
        ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp,
    }
)  # fmt: skip

_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
_PLAIN_CONSTANTS = frozenset({int, float, complex, bool, type(None), type(...)})


def _child_fields(tp: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(tp)
    if fields is None:
        fields = tuple(f for f in tp._fields if f not in ("ctx", "type_ignores"))  # type: ignore[attr-defined]
        _CHILD_FIELDS[tp] = fields
    return fields


# ---------------------------------------------------------------------------------------------
# The scanner
# ---------------------------------------------------------------------------------------------


class _ModuleScanner:
    """Scans one parsed module: walk, solve, check. See the module docstring for the design."""

    def __init__(
        self,
        filename: str,
        policy: ScanPolicy,
        plugin_modules: frozenset[str],
        module: str | None,
        deadline: float,
    ) -> None:
        self.filename = filename
        self.policy = policy
        self.plugin_modules = plugin_modules
        self.module = module
        self.package = module.rsplit(".", 1)[0] if module and "." in module else ""
        if module is not None and filename.endswith("__init__.py"):
            self.package = module
        self.deadline = deadline
        self._found: dict[tuple[int, int, str, str], Violation] = {}
        self._flagged_nodes: set[int] = set()
        self._name_reads: set[int] = set()  # ids of `.__class__` nodes read only for a name

        self._stack: list[tuple[ast.AST, _Scope, int]] = []
        self._node_vars: dict[int, _Var] = {}
        self._fields: dict[str, _Var] = {}
        self._work: list[tuple[_Var, set[str]]] = []
        self._fns: dict[str, _FnInfo] = {}
        self._calls: list[_CallRec] = []
        self._builtin_calls: list[_CallRec] = []  # calls of a bare name that may be a builtin
        self._call_of: dict[int, ast.Call] = {}  # id(func expr) -> its Call
        self._through_returns: set[tuple[str, int, str]] = set()
        self._class_bases: set[int] = set()  # ids of base-class expressions
        # (node, receiver, attribute, context, enclosing call if node is its callee, result)
        self._attr_sites: list[
            tuple[ast.AST, _Var | None, str, int, ast.Call | None, _Var | None]
        ] = []
        self._name_sites: list[tuple[ast.AST, str, _Scope, _Var]] = []
        self._container_stores: list[tuple[str, _Scope, _Var]] = []
        self._subscript_stores: list[tuple[ast.AST, _Var | None]] = []
        # pure functions of their arguments: shared by every scan (see _bounded)
        self._step_memo = _bounded(_STEP_MEMO)
        self._path_memo = _bounded(_PATH_MEMO)
        self.exports: dict[str, frozenset[str]] = {}
        self.own_refs: list[tuple[str, int, int]] = []
        self._module_scope = _Scope("module", None)
        self._scopes: list[_Scope] = [self._module_scope]
        self._resolved: dict[tuple[int, str], _Scope | None] = {}
        self._handlers = self._build_handlers()

    # ----- reporting -------------------------------------------------------------------------

    def report(
        self, node: ast.AST | None, rule: str, message: str, severity: str = "error"
    ) -> None:
        """Record a violation at ``node``'s position (deduplicated)."""
        line = getattr(node, "lineno", 0) or 0
        col = getattr(node, "col_offset", 0) or 0
        if node is not None and severity == "error":
            self._flagged_nodes.add(id(node))
        self.report_at(line, col, rule, message, severity)

    def report_at(
        self, line: int, col: int, rule: str, message: str, severity: str = "error"
    ) -> None:
        key = (line, col, rule, message)
        if key not in self._found:
            self._found[key] = _violation(self.filename, line, col, rule, message, severity)

    def violations(self) -> list[Violation]:
        return sorted(self._found.values(), key=lambda v: (v.line, v.column, v.rule, v.message))

    def _tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _ScanTimeout

    # ----- entry point ------------------------------------------------------------------------

    def run(self, tree: ast.Module) -> None:
        """Walk, resolve names, solve the graph (with a pass for unknown callees), then check."""
        self._walk(tree)
        self._resolve_names()
        self._solve()
        for _ in range(4):  # unknown callees pass their arguments through; re-solve until stable
            if not self._unknown_callee_passthrough():
                break
            self._solve()
        self._check_attr_sites()
        self._check_name_sites()
        self._check_calls()
        self._check_subscript_stores()
        self._check_protocol_returns()
        self._collect_exports()

    # ----- graph primitives -------------------------------------------------------------------

    def _new_scope(self, kind: str, parent: _Scope, fn: _FnInfo | None = None) -> _Scope:
        scope = _Scope(kind, parent, fn)
        self._scopes.append(scope)
        return scope

    def _v(self, node: ast.AST | None, scope: _Scope) -> _Var | None:
        """The value variable of an expression evaluated in ``scope`` (None: carries nothing).

        All loads of one name in one scope share a variable (resolved once, in phase 2).
        """
        tp = type(node)
        if tp is ast.Name:
            name = node.id  # type: ignore[union-attr]
            var = scope.loads.get(name)
            if var is None:
                var = scope.loads[name] = _Var()
            return var
        if tp not in _VALUE_TYPES:
            return None
        key = id(node)
        var = self._node_vars.get(key)
        if var is None:
            var = self._node_vars[key] = _Var()
        return var

    def _field(self, name: str) -> _Var:
        var = self._fields.get(name)
        if var is None:
            var = self._fields[name] = _Var()
        return var

    def _add(self, var: _Var, tokens: Iterable[str]) -> None:
        new = (tokens if type(tokens) is set else set(tokens)) - var.tokens  # type: ignore[operator]
        if new:
            var.tokens |= new
            if len(var.tokens) > MAX_TOKENS_PER_VALUE:
                raise _ScanLimit("a value may refer to too many things")
            self._work.append((var, new))

    def _edge(self, src: _Var | None, kind: int, dst: object, extra: object = None) -> None:
        """Add an edge and push what ``src`` already holds through it."""
        if src is None:
            return
        src.edges.append((kind, dst, extra))
        if src.tokens:
            self._apply(kind, dst, extra, set(src.tokens))

    def _copy(self, node: ast.AST | None, dst: _Var | None, scope: _Scope) -> None:
        if dst is not None:
            self._edge(self._v(node, scope), _COPY, dst)

    def _apply(self, kind: int, dst: object, extra: object, delta: set[str]) -> None:
        if kind == _COPY:
            self._add(dst, delta)  # type: ignore[arg-type]
        elif kind == _ATTR:
            out = []
            for tok in delta:
                if tok[0] == "f":
                    self._attr_of_result(tok, dst, extra)  # type: ignore[arg-type]
                else:
                    stepped = self._attr_token(tok, extra)  # type: ignore[arg-type]
                    if stepped:
                        out.append(stepped)
            if out:
                self._add(dst, out)  # type: ignore[arg-type]
        elif kind == _FILTER:
            self._add(dst, delta - _ENV_TOKENS)  # type: ignore[arg-type]
        else:
            for tok in delta:
                self._on_callee(dst, tok)  # type: ignore[arg-type]

    def _attr_of_result(self, fn: str, dst: _Var, attr: str) -> None:
        """``f.attr`` for a local function ``f`` may really be ``f().attr``: properties, cached
        properties and ``property(lambda self: ...)`` are called by the attribute read."""
        key = (fn, id(dst), attr)
        if key in self._through_returns:
            return
        self._through_returns.add(key)
        info = self._fns.get(fn)
        if info is not None:
            # deferred through the worklist: nested functions would otherwise recurse here
            info.returns.edges.append((_ATTR, dst, attr))
            if info.returns.tokens:
                self._work.append((info.returns, set(info.returns.tokens)))

    def _expand(self, tokens: Iterable[str]) -> set[str]:
        """``tokens`` plus what the local functions among them return (transitively)."""
        out = set(tokens)
        todo = [t for t in out if t[0] == "f"]
        seen = set(todo)
        while todo:
            info = self._fns.get(todo.pop())
            if info is None:
                continue
            for tok in info.returns.tokens:
                out.add(tok)
                if tok[0] == "f" and tok not in seen:
                    seen.add(tok)
                    todo.append(tok)
        return out

    def _solve(self) -> None:
        work = self._work
        steps = 0
        while work:
            var, delta = work.pop()
            steps += 1
            if steps % _TIME_CHECK_EVERY == 0:
                self._tick()
            for kind, dst, extra in list(var.edges):
                self._apply(kind, dst, extra, delta)

    def _attr_token(self, tok: str, attr: str) -> str | None:
        """What ``<tok>.attr`` is: a module path extends, a plugin path extends, others None."""
        kind = tok[0]
        if kind == "m" or kind == "p":
            return self._step(tok[2:], attr)
        if kind == "o":
            if tok.count(".") >= MAX_OWN_PATH_DEPTH:
                return None
            return f"{tok}.{attr}"
        return None

    def _step(self, base: str, attr: str) -> str | None:
        """The token of ``base.attr`` for a module path ``base`` (None: stop tracking)."""
        key = (base, attr)
        if key in self._step_memo:
            return self._step_memo[key]
        path = f"{base}.{attr}"
        canon = None if path in P.KNOWN_SUBMODULES else _canonical_module(base, attr)
        tok: str | None
        if canon is not None:
            tok = "m:" + canon
        elif base.startswith("builtins."):
            tok = None  # attributes of builtin objects are not modules
        elif "." not in base or path in _INTERESTING_PATHS:
            tok = "p:" + path
        else:
            tok = None  # see _INTERESTING_PATHS
        self._step_memo[key] = tok
        return tok

    def _on_callee(self, call: _CallRec, tok: str) -> None:
        """A new thing the callee of ``call`` may be: wire returns / parameters / passthrough."""
        kind = tok[0]
        if kind == "f":
            if call.bound is None:
                call.bound = set()
            elif tok in call.bound:
                return
            call.bound.add(tok)
            info = self._fns.get(tok)
            if info is not None:
                self._bind_call(call, info)
        elif tok in _PASSTHROUGH_CALLS or kind == "o":
            self._passthrough(call, tok in _COPYING_CALLS)

    def _passthrough(self, call: _CallRec, copying: bool) -> None:
        if call.passthrough:
            return
        call.passthrough = True
        kind = _FILTER if copying else _COPY
        for var, _ in call.args:
            self._edge(var, kind, call.dst)  # a None placeholder is skipped by _edge
        for _, var in call.kwargs:
            self._edge(var, kind, call.dst)

    def _bind_call(self, call: _CallRec, info: _FnInfo) -> None:
        """Arguments of a call to a local function flow into its parameters; returns flow out."""
        self._edge(info.returns, _COPY, call.dst)
        shifts = (0, 1) if (info.is_method and call.via_attr) else (0,)
        every = [*info.positional, *info.by_name.values()]
        if info.vararg:
            every.append(info.vararg)
        if info.kwarg:
            every.append(info.kwarg)
        for index, (var, starred) in enumerate(call.args):
            if var is None:
                continue
            targets: list[_Var | None]
            if starred:
                targets = list(every)
            else:
                targets = [
                    info.positional[index + s] if index + s < len(info.positional) else info.vararg
                    for s in shifts
                ]
            for target in targets:
                if target is not None:
                    self._edge(var, _COPY, target)
        for name, var in call.kwargs:
            if name is None:
                for target in every:
                    self._edge(var, _COPY, target)
            else:
                target = info.by_name.get(name) or info.kwarg
                if target is not None:
                    self._edge(var, _COPY, target)

    def _unknown_callee_passthrough(self) -> bool:
        """Calls whose callee is still unknown may return their arguments: add those edges."""
        added = False
        for call in self._calls:
            if not call.passthrough and (call.func is None or not call.func.tokens):
                self._passthrough(call, False)
                added = True
        return added

    # ----- the walk ----------------------------------------------------------------------------

    def _push(self, node: ast.AST | None, scope: _Scope, flags: int = 0) -> None:
        if node is not None:
            self._stack.append((node, scope, flags))

    def _push_all(self, nodes: Iterable[ast.AST | None], scope: _Scope, flags: int = 0) -> None:
        for node in nodes:
            if node is not None:
                self._stack.append((node, scope, flags))

    def _walk(self, tree: ast.Module) -> None:
        scope = self._module_scope
        # push in reverse so statements are visited in source order (top-level shadowing needs it)
        for stmt in reversed(tree.body):
            self._stack.append((stmt, scope, _F_TOP))
        stack = self._stack
        pop = stack.pop
        handlers = self._handlers
        generic = self._generic
        countdown = _TIME_CHECK_EVERY
        while stack:
            node, scope, flags = pop()
            countdown -= 1
            if not countdown:
                countdown = _TIME_CHECK_EVERY
                self._tick()
            handler = handlers.get(type(node))
            if handler is not None:
                handler(node, scope, flags)  # type: ignore[operator]
            else:
                generic(node, scope, flags)

    def _generic(self, node: ast.AST, scope: _Scope, flags: int) -> None:
        child_flags = flags & _INHERIT
        push = self._stack.append
        for name in _child_fields(type(node)):
            value = getattr(node, name, None)
            if type(value) is list:
                for item in reversed(value):
                    if isinstance(item, ast.AST):
                        push((item, scope, child_flags))
            elif isinstance(value, ast.AST):
                if type(value) is ast.Constant and type(value.value) in _PLAIN_CONSTANTS:  # type: ignore[attr-defined]
                    continue  # numbers, None, True: nothing to check
                push((value, scope, child_flags))

    def _build_handlers(self) -> dict[type, object]:
        a = ast
        return {
            a.Import: self._h_import,
            a.ImportFrom: self._h_import_from,
            a.FunctionDef: self._h_function,
            a.AsyncFunctionDef: self._h_function,
            a.Lambda: self._h_lambda,
            a.ClassDef: self._h_class,
            a.Return: self._h_return,
            a.Yield: self._h_yield,
            a.YieldFrom: self._h_yield,
            a.Assign: self._h_assign,
            a.AugAssign: self._h_aug_assign,
            a.AnnAssign: self._h_ann_assign,
            a.For: self._h_for,
            a.AsyncFor: self._h_for,
            a.With: self._h_with,
            a.AsyncWith: self._h_with,
            a.ExceptHandler: self._h_except,
            a.Global: self._h_global,
            a.Nonlocal: self._h_nonlocal,
            a.Delete: self._h_delete,
            a.Match: self._h_match,
            a.If: self._h_body,
            a.While: self._h_body,
            a.Try: self._h_body,
            a.TryStar: self._h_body,
            a.Name: self._h_name,
            a.Attribute: self._h_attribute,
            a.Subscript: self._h_subscript,
            a.Call: self._h_call,
            a.IfExp: self._h_collect,
            a.BoolOp: self._h_collect,
            a.List: self._h_collect,
            a.Tuple: self._h_collect,
            a.Set: self._h_collect,
            a.Starred: self._h_collect,
            a.Await: self._h_collect,
            a.Dict: self._h_dict,
            a.NamedExpr: self._h_named_expr,
            a.ListComp: self._h_comprehension,
            a.SetComp: self._h_comprehension,
            a.GeneratorExp: self._h_comprehension,
            a.DictComp: self._h_comprehension,
            a.Constant: self._h_constant,
            a.BinOp: self._h_binop,
            a.JoinedStr: self._h_joined_str,
        }

    # ----- statements: imports -------------------------------------------------------------

    def _import_status(self, dotted: str, node: ast.AST) -> str | None:
        """Judge an absolute module import. Returns the token prefix to bind, or None if denied.

        ``"m"`` for an allowed library module, ``"p"`` for SDK / compatibility paths, ``"o"``
        for the plugin's own modules.
        """
        top = dotted.split(".", 1)[0]
        if top in _HARD_DENIED:
            self.report(node, R_FORBIDDEN_IMPORT, f"Forbidden import: {dotted}")
            return None
        if top in P.DESERIALIZATION_MODULES:
            if self.policy.is_allowed_top_level(top):
                self.report(node, R_DESER, f"Unsafe deserialization module: {top}", "warning")
                return "m"
            self.report(
                node, R_FORBIDDEN_IMPORT, f"Forbidden import: {dotted} (unsafe deserialization)"
            )
            return None
        if top in _SDK_TOPS and _is_sdk_path(dotted):
            return "p"
        if top in _SDK_TOPS and top not in self.plugin_modules:
            self.report(
                node,
                R_NOT_ALLOWED,
                f"Import not allowed: {dotted} is not a public name of the platform SDK "
                "(import what `mixpeek_orchestration.sdk` exports)",
            )
            return None
        if (
            top in self.plugin_modules
            and top not in _STDLIB
            and not self.policy.is_allowed_top_level(top)
        ):
            return "o"
        if not self.policy.is_allowed_top_level(top):
            self.report(
                node, R_NOT_ALLOWED, f"Import not allowed: {dotted} (not in the allowed list)"
            )
            return None
        return "m"

    def _h_import(self, node: ast.Import, scope: _Scope, flags: int) -> None:
        for alias in node.names:
            dotted = alias.name
            kind = self._import_status(dotted, node)
            if kind is None:
                continue
            if kind == "m":
                self._judge_import_path(dotted, node)
            if alias.asname:
                token = f"{kind}:{dotted}"
                name = alias.asname
            else:
                name = dotted.split(".", 1)[0]
                token = f"{kind}:{name}"
            if kind == "o":
                self.own_refs.append((dotted, node.lineno, node.col_offset))
            self._add(self._store_var(scope, name, node, flags), (token,))

    def _judge_import_path(self, dotted: str, node: ast.AST) -> None:
        """``import torch.hub`` / ``import logging.config``: judge each dotted prefix."""
        parts = dotted.split(".")
        for i in range(1, len(parts)):
            base, attr = ".".join(parts[:i]), parts[i]
            self._judge_step_at(base, attr, node, None, _LOAD, importing=True)

    def _h_import_from(self, node: ast.ImportFrom, scope: _Scope, flags: int) -> None:
        if node.level:  # relative: the plugin's own code
            base = self._resolve_relative(node.module, node.level)
            for alias in node.names:
                if alias.name == "*":
                    if base is not None:
                        self.own_refs.append((f"{base}.*", node.lineno, node.col_offset))
                    continue
                name = alias.asname or alias.name
                var = self._store_var(scope, name, node, flags)
                if base is not None:
                    path = f"{base}.{alias.name}" if base else alias.name
                    self.own_refs.append((path, node.lineno, node.col_offset))
                    self._add(var, ("o:" + path,))
            return
        module = node.module or ""
        # `from engine.plugins.extractors import pipeline` names a compat path through its member
        sdk = []
        if module.split(".", 1)[0] in _SDK_TOPS:
            sdk = [alias for alias in node.names if _is_sdk_path(f"{module}.{alias.name}")]
        kind = "p" if sdk and len(sdk) == len(node.names) else self._import_status(module, node)
        if kind is None:
            return
        if kind == "m":
            self._judge_import_path(module, node)
        for alias in node.names:
            if alias.name == "*":
                if kind == "o":
                    self.own_refs.append((f"{module}.*", node.lineno, node.col_offset))
                elif kind == "m" and module not in P.STAR_IMPORT_SAFE:
                    self.report(
                        node, R_STAR, f"Star import from {module} hides which names it binds"
                    )
                continue
            name = alias.asname or alias.name
            var = self._store_var(scope, name, node, flags)
            if kind == "o":
                self.own_refs.append((f"{module}.{alias.name}", node.lineno, node.col_offset))
                self._add(var, (f"o:{module}.{alias.name}",))
                continue
            if kind == "m" and module == "os":
                if alias.name not in P.OS_ALLOWED_ATTRIBUTES:
                    self.report(node, R_FORBIDDEN_IMPORT, f"Forbidden import: os.{alias.name}")
                    continue
            elif kind == "m":
                self._judge_step_at(module, alias.name, node, None, _LOAD, importing=True)
            elif kind == "p" and not _is_sdk_path(f"{module}.{alias.name}"):
                self.report(
                    node,
                    R_NOT_ALLOWED,
                    f"Import not allowed: {module}.{alias.name} is not a public name of the "
                    "platform SDK",
                )
                continue
            token = self._step(module, alias.name) if kind == "m" else None
            self._add(var, (token or f"p:{module}.{alias.name}",))

    def _resolve_relative(self, module: str | None, level: int) -> str | None:
        """Absolute plugin module for ``from ..x import y`` in this file, when known."""
        if self.module is None:
            return None
        parts = self.package.split(".") if self.package else []
        up = level - 1
        if up > len(parts):
            return None
        parts = parts[: len(parts) - up] if up else parts
        if module:
            parts = [*parts, *module.split(".")]
        return ".".join(parts)

    # ----- statements: definitions -----------------------------------------------------------

    def _h_function(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: _Scope, flags: int
    ) -> None:
        token = f"f:{id(node)}"
        info = _FnInfo(node.name, node)
        info.is_method = scope.kind == "class" and not any(
            _last_name(d) == "staticmethod" for d in node.decorator_list
        )
        inner = self._new_scope("function", scope, info)
        self._fns[token] = info
        self._setup_arguments(node.args, scope, inner, info)
        self._push(node.returns, scope, _F_TYPE)
        self._push_all(node.decorator_list, scope)
        for stmt in reversed(node.body):
            self._stack.append((stmt, inner, 0))
        self._bind_definition(node, node.name, token, node.decorator_list, scope, flags)

    def _h_lambda(self, node: ast.Lambda, scope: _Scope, flags: int) -> None:
        token = f"f:{id(node)}"
        info = _FnInfo("<lambda>", node)
        inner = self._new_scope("function", scope, info)
        self._fns[token] = info
        self._setup_arguments(node.args, scope, inner, info)
        self._push(node.body, inner, flags & _F_FROMSTR)
        self._copy(node.body, info.returns, inner)
        self._add(self._v(node, scope), (token,))  # type: ignore[arg-type]
        if flags & _F_FROMSTR:
            self.report(node, R_ANNOTATION, "Lambda inside a string annotation")

    def _setup_arguments(
        self, args: ast.arguments, outer: _Scope, inner: _Scope, info: _FnInfo
    ) -> None:
        """Parameters bind in the function; defaults and annotations evaluate outside it."""
        params = inner.vars
        push = self._stack.append
        positional = args.args if not args.posonlyargs else [*args.posonlyargs, *args.args]
        for index, arg in enumerate(positional):
            var = params[arg.arg] = _Var()
            info.positional.append(var)
            if index >= len(args.posonlyargs):
                info.by_name[arg.arg] = var
            if arg.annotation is not None:
                push((arg.annotation, outer, _F_TYPE))
        for arg in args.kwonlyargs:
            info.by_name[arg.arg] = params[arg.arg] = _Var()
            if arg.annotation is not None:
                push((arg.annotation, outer, _F_TYPE))
        for arg, slot in ((args.vararg, "vararg"), (args.kwarg, "kwarg")):  # type: ignore[assignment]
            if arg is not None:
                setattr(info, slot, params.setdefault(arg.arg, _Var()))
                if arg.annotation is not None:
                    push((arg.annotation, outer, _F_TYPE))
        for arg in (*positional, *args.kwonlyargs, args.vararg, args.kwarg):  # type: ignore[assignment]
            if arg is not None and arg.arg[0] == "_":
                self._check_binding_name(arg.arg, arg, inner)
        defaults = args.defaults
        if defaults:
            for arg, default in zip(
                positional[len(positional) - len(defaults) :], defaults, strict=True
            ):
                push((default, outer, 0))
                self._copy(default, params[arg.arg], outer)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):  # type: ignore[assignment]
            if default is not None:
                push((default, outer, 0))
                self._copy(default, params[arg.arg], outer)

    def _bind_definition(
        self,
        node: ast.AST,
        name: str,
        token: str | None,
        decorators: list[ast.expr],
        scope: _Scope,
        flags: int,
    ) -> None:
        """Bind a def/class name; decorators are calls whose result is what the name holds."""
        var = self._store_var(scope, name, node, flags)
        if not decorators:
            if token is not None:
                self._add(var, (token,))
            return
        seed = _Var()
        if token is not None:
            self._add(seed, (token,))
        current = seed
        for decorator in reversed(decorators):
            result = _Var()
            call = _CallRec(
                node, self._v(decorator, scope), result, isinstance(decorator, ast.Attribute)
            )
            call.args.append((current, False))
            self._calls.append(call)
            self._edge(call.func, _CALL, call)
            # a decorator usually returns (a wrapper of) what it was given: keep that flowing
            self._edge(current, _COPY, result)
            current = result
        self._edge(current, _COPY, var)

    def _h_class(self, node: ast.ClassDef, scope: _Scope, flags: int) -> None:
        inner = self._new_scope("class", scope)
        self._push_all(node.bases, scope)
        for keyword in node.keywords:
            self._push(keyword.value, scope)
            if keyword.arg == "metaclass" and _last_name(keyword.value) not in (
                "ABCMeta", "EnumMeta", "EnumType", "type", "ModelMetaclass",
            ):  # fmt: skip
                self.report(keyword.value, R_METACLASS, "Custom metaclass", "warning")
        if any(_last_name(b) == "type" for b in node.bases):
            self.report(node, R_METACLASS, f"Class {node.name} defines a metaclass", "warning")
        self._push_all(node.decorator_list, scope)
        for stmt in reversed(node.body):
            self._stack.append((stmt, inner, _F_TOP))
        # a class carries no token (calling it is an unknown callee, its attributes are fields),
        # but a decorator may replace it with anything: model that like a decorated def
        if node.decorator_list:
            self._bind_definition(node, node.name, None, node.decorator_list, scope, flags)
        else:
            self._store_var(scope, node.name, node, flags)
        for base in node.bases:
            self._class_bases.add(id(base))

    def _h_return(self, node: ast.Return, scope: _Scope, flags: int) -> None:
        self._push(node.value, scope)
        if scope.fn is not None:
            self._copy(node.value, scope.fn.returns, scope)

    def _h_yield(self, node: ast.Yield | ast.YieldFrom, scope: _Scope, flags: int) -> None:
        self._push(node.value, scope)
        fn_scope = scope
        while fn_scope is not None and fn_scope.fn is None:
            fn_scope = fn_scope.parent  # type: ignore[assignment]
        if fn_scope is not None and fn_scope.fn is not None:
            self._copy(node.value, fn_scope.fn.returns, scope)

    # ----- statements: bindings ------------------------------------------------------------

    def _binding_scope(self, scope: _Scope, name: str) -> _Scope:
        """The scope a store to ``name`` in ``scope`` binds (global / nonlocal redirect it)."""
        if name in scope.globals_:
            return self._module_scope
        if name in scope.nonlocals:
            # the nearest enclosing function that binds it (its binding may come later in the
            # text: then the nearest enclosing function at all)
            outer, nearest = scope.parent, None
            while outer is not None and outer.kind != "module":
                if outer.kind == "function":
                    nearest = nearest or outer
                    if name in outer.vars:
                        return outer
                outer = outer.parent
            return nearest or self._module_scope
        return scope

    def _store_var(self, scope: _Scope, name: str, node: ast.AST, flags: int) -> _Var:
        """The variable a store of ``name`` writes, recording unconditional top-level binds."""
        if name[0] == "_":
            self._check_binding_name(name, node, scope)
        target = self._binding_scope(scope, name) if scope.globals_ or scope.nonlocals else scope
        var = target.vars.get(name)
        if var is None:
            var = target.vars[name] = _Var()
            if target.kind == "class":  # class attributes are readable as obj.name
                self._edge(var, _COPY, self._field(name))
        if flags & _F_TOP and target is scope:
            line = getattr(node, "lineno", 0)
            scope.top_lines.setdefault(name, line)
        return var

    def _check_binding_name(self, name: str, node: ast.AST, scope: _Scope) -> None:
        """Binding special names: hooks that run code implicitly, or the interpreter's own."""
        if name[:1] != "_" or not _is_dunder(name):
            return
        if name in P.DANGEROUS_DUNDER_NAMES:
            self.report(node, R_DUNDER, f"Binding {name} is not allowed")
        elif name in P.DANGEROUS_DUNDER_DEFINITIONS:
            self.report(node, R_DEFINITION, f"Defining {name} is not allowed")
        elif name in P.WARN_DUNDER_DEFINITIONS and name != "__match_args__":
            self.report(node, R_DEFINITION, f"Defines {name}", "warning")

    def _bind_target(
        self,
        target: ast.AST,
        value: _Var | None,
        scope: _Scope,
        flags: int,
        value_node: ast.AST | None = None,
    ) -> None:
        """Bind an assignment target (names, tuples, starred, attributes, subscripts)."""
        todo: list[tuple[ast.AST, _Var | None, ast.AST | None]] = [(target, value, value_node)]
        while todo:
            node, val, val_node = todo.pop()
            tp = type(node)
            if tp is ast.Name:
                var = self._store_var(scope, node.id, node, flags)  # type: ignore[attr-defined]
                if val is not None:
                    self._edge(val, _COPY, var)
            elif tp is ast.Tuple or tp is ast.List:
                elts = node.elts  # type: ignore[attr-defined]
                if (
                    val_node is not None
                    and type(val_node) in (ast.Tuple, ast.List)
                    and len(val_node.elts) == len(elts)  # type: ignore[attr-defined]
                    and not any(isinstance(e, ast.Starred) for e in (*elts, *val_node.elts))  # type: ignore[attr-defined]
                ):
                    for elt, velt in zip(elts, val_node.elts, strict=True):  # type: ignore[attr-defined]
                        todo.append((elt, self._v(velt, scope), velt))
                else:
                    for elt in elts:
                        todo.append((elt, val, None))
            elif tp is ast.Starred:
                todo.append((node.value, val, None))  # type: ignore[attr-defined]
            elif tp is ast.Attribute:
                self._attribute_store(node, val, scope, _STORE)  # type: ignore[arg-type]
            elif tp is ast.Subscript:
                self._subscript_store(node, val, scope, value_node=val_node)  # type: ignore[arg-type]
            else:
                self._push(node, scope)

    def _attribute_store(
        self, node: ast.Attribute, value: _Var | None, scope: _Scope, ctx: int
    ) -> None:
        self._push(node.value, scope)
        self._check_dunder_attribute(node, node.attr, ctx)
        self._attr_sites.append((node, self._v(node.value, scope), node.attr, ctx, None, None))
        if value is not None:
            self._edge(value, _COPY, self._field(node.attr))

    def _subscript_store(
        self,
        node: ast.Subscript,
        value: _Var | None,
        scope: _Scope,
        value_node: ast.AST | None = None,
    ) -> None:
        """``c[k] = v``: v flows into whatever ``c`` names; environ writes are checked later."""
        self._push(node.value, scope)
        self._push(node.slice, scope)
        self._subscript_stores.append((node, self._v(node.value, scope)))
        key = _const_str(node.slice)
        if key in P.UNSAFE_SWITCHES and value_node is not None:
            self._check_switch(key, value_node, node)
        if value is None:
            return
        root = node.value
        while isinstance(root, ast.Subscript):
            root = root.value
        if isinstance(root, ast.Name):
            self._container_stores.append((root.id, scope, value))
        elif isinstance(root, ast.Attribute):
            self._edge(value, _COPY, self._field(root.attr))

    def _h_assign(self, node: ast.Assign, scope: _Scope, flags: int) -> None:
        self._push(node.value, scope)
        value = self._v(node.value, scope)
        for target in node.targets:
            self._bind_target(target, value, scope, flags, node.value)
            if isinstance(target, ast.Name) and target.id == "__match_args__":
                self._check_match_args(node.value)

    def _h_aug_assign(self, node: ast.AugAssign, scope: _Scope, flags: int) -> None:
        self._push(node.value, scope)
        target = node.target
        if isinstance(target, ast.Name):  # x += y reads x too
            self._name_sites.append((target, target.id, scope, _Var()))
        self._bind_target(target, self._v(node.value, scope), scope, flags & ~_F_TOP, node.value)

    def _h_ann_assign(self, node: ast.AnnAssign, scope: _Scope, flags: int) -> None:
        self._push(node.annotation, scope, _F_TYPE)
        if node.value is not None:
            self._push(node.value, scope)
            self._bind_target(node.target, self._v(node.value, scope), scope, flags, node.value)
        elif not isinstance(node.target, ast.Name):
            self._push(node.target.value, scope)  # type: ignore[union-attr]

    def _h_for(self, node: ast.For | ast.AsyncFor, scope: _Scope, flags: int) -> None:
        self._push_all(reversed(node.orelse), scope)
        self._push_all(reversed(node.body), scope)
        self._push(node.iter, scope)
        self._bind_target(node.target, self._v(node.iter, scope), scope, 0)

    def _h_with(self, node: ast.With | ast.AsyncWith, scope: _Scope, flags: int) -> None:
        self._push_all(reversed(node.body), scope)
        for item in node.items:
            self._push(item.context_expr, scope)
            if item.optional_vars is not None:
                self._bind_target(item.optional_vars, self._v(item.context_expr, scope), scope, 0)

    def _h_except(self, node: ast.ExceptHandler, scope: _Scope, flags: int) -> None:
        self._push_all(reversed(node.body), scope)
        self._push(node.type, scope)
        if node.name:
            self._store_var(scope, node.name, node, 0)

    def _h_global(self, node: ast.Global, scope: _Scope, flags: int) -> None:
        scope.declare("globals_", node.names)

    def _h_nonlocal(self, node: ast.Nonlocal, scope: _Scope, flags: int) -> None:
        scope.declare("nonlocals", node.names)

    def _h_delete(self, node: ast.Delete, scope: _Scope, flags: int) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self._check_binding_name(target.id, target, scope)
                self._binding_scope(scope, target.id).declare("deleted", [target.id])
            elif isinstance(target, ast.Attribute):
                self._attribute_store(target, None, scope, _DEL)
            elif isinstance(target, ast.Subscript):
                self._subscript_store(target, None, scope)
            else:
                self._push(target, scope)

    def _h_body(self, node: ast.AST, scope: _Scope, flags: int) -> None:
        """Compound statements: children run conditionally (never ``_F_TOP``)."""
        self._generic(node, scope, 0)

    # ----- statements: match -----------------------------------------------------------------

    def _h_match(self, node: ast.Match, scope: _Scope, flags: int) -> None:
        self._push(node.subject, scope)
        subject = self._v(node.subject, scope) or _Var()
        for case in reversed(node.cases):
            self._push_all(reversed(case.body), scope)
            self._push(case.guard, scope)
            self._bind_pattern(case.pattern, subject, scope)

    def _bind_pattern(self, pattern: ast.pattern, subject: _Var, scope: _Scope) -> None:
        """Captures get (parts of) the subject; class patterns read attributes of it."""
        todo: list[tuple[ast.pattern, _Var]] = [(pattern, subject)]
        while todo:
            pat, subj = todo.pop()
            if isinstance(pat, ast.MatchValue):
                self._push(pat.value, scope)
            elif isinstance(pat, ast.MatchSequence):
                todo.extend((p, subj) for p in pat.patterns)
            elif isinstance(pat, ast.MatchMapping):
                self._push_all(pat.keys, scope)
                todo.extend((p, subj) for p in pat.patterns)
                if pat.rest:
                    self._edge(subj, _COPY, self._store_var(scope, pat.rest, pat, 0))
            elif isinstance(pat, ast.MatchClass):
                self._push(pat.cls, scope)
                todo.extend((p, subj) for p in pat.patterns)
                for attr, sub in zip(pat.kwd_attrs, pat.kwd_patterns, strict=True):
                    # `case C(system=s)` reads subject.system: judge it like an attribute access
                    self._check_dunder_attribute(sub, attr, _LOAD)
                    part = _Var()
                    self._attr_sites.append((sub, subj, attr, _LOAD, None, part))
                    self._edge(subj, _ATTR, part, attr)
                    todo.append((sub, part))
            elif isinstance(pat, ast.MatchStar):
                if pat.name:
                    self._edge(subj, _COPY, self._store_var(scope, pat.name, pat, 0))
            elif isinstance(pat, ast.MatchAs):
                if pat.pattern is not None:
                    todo.append((pat.pattern, subj))
                if pat.name:
                    self._edge(subj, _COPY, self._store_var(scope, pat.name, pat, 0))
            elif isinstance(pat, ast.MatchOr):
                todo.extend((p, subj) for p in pat.patterns)

    # ----- expressions -------------------------------------------------------------------------

    def _h_name(self, node: ast.Name, scope: _Scope, flags: int) -> None:
        name = node.id
        if type(node.ctx) is not ast.Load:  # a stray store/del target: bind without a value
            if type(node.ctx) is ast.Del:
                self._binding_scope(scope, name).declare("deleted", [name])
            else:
                self._store_var(scope, name, node, 0)
            return
        self._name_load(node, scope, flags)

    def _name_load(self, node: ast.Name, scope: _Scope, flags: int) -> _Var:
        """A name read; returns its (shared) variable. Parents call this directly for Name
        children, saving a trip through the stack."""
        raw = node.id
        loads = scope.loads
        var = loads.get(raw)
        if var is None:
            var = loads[raw] = _Var()
        name = raw
        if flags & _F_QUERY:
            if not raw.startswith(_QUERY_MARK):
                return var  # a column name of the data frame, not a Python name
            name = raw[len(_QUERY_MARK) :]
        if name[0] == "_" and _is_dunder(name):
            if name in P.DANGEROUS_DUNDER_NAMES:
                self.report(node, R_DUNDER, f"Dangerous dunder access: {name}")
            elif name == "__import__":
                pass  # a forbidden builtin, reported by the name check
            elif name not in P.SAFE_DUNDERS:
                self.report(node, R_DUNDER, f"Dunder access: {name}", "warning")
        self._name_sites.append((node, name, scope, var))
        return var

    def _h_attribute(self, node: ast.Attribute, scope: _Scope, flags: int) -> None:
        if type(node.ctx) is not ast.Load:
            self._attribute_store(
                node, None, scope, _STORE if type(node.ctx) is ast.Store else _DEL
            )
            return
        value = node.value
        receiver: _Var | None
        if type(value) is ast.Name and type(value.ctx) is ast.Load:  # type: ignore[attr-defined]
            receiver = self._name_load(value, scope, flags & (_F_FROMSTR | _F_QUERY))  # type: ignore[arg-type]
        else:
            self._stack.append((value, scope, flags & (_F_FROMSTR | _F_QUERY)))
            receiver = self._v(value, scope)
        attr = node.attr
        if attr[0] == "_":
            if attr in _NAME_DUNDERS and isinstance(node.value, ast.Attribute):
                self._name_reads.add(id(node.value))  # `x.__class__.__name__` is type(x).__name__
            if not (attr == "__class__" and id(node) in self._name_reads):
                self._check_dunder_attribute(node, attr, _LOAD)
        node_vars = self._node_vars
        result = node_vars.get(id(node))
        if result is None:
            result = node_vars[id(node)] = _Var()
        self._attr_sites.append((node, receiver, attr, _LOAD, self._call_of.get(id(node)), result))
        if receiver is not None:
            receiver.edges.append((_ATTR, result, attr))
            if receiver.tokens:
                self._apply(_ATTR, result, attr, set(receiver.tokens))

    def _check_dunder_attribute(self, node: ast.AST, attr: str, ctx: int) -> None:
        if not _is_dunder(attr):
            return
        if ctx != _LOAD:
            if attr not in P.DUNDER_STORE_OK:
                self.report(node, R_DUNDER, f"Dunder assignment: .{attr}")
        elif attr in P.ESCAPE_DUNDERS:
            self.report(node, R_DUNDER, f"Dangerous dunder access: .{attr}")
        elif attr not in P.SAFE_DUNDERS:
            self.report(node, R_DUNDER, f"Dunder access: .{attr}", "warning")

    def _h_subscript(self, node: ast.Subscript, scope: _Scope, flags: int) -> None:
        if type(node.ctx) is not ast.Load:
            self._subscript_store(node, None, scope)
            return
        self._push(node.value, scope, flags & (_F_FROMSTR | _F_QUERY))
        base = _last_name(node.value)
        slice_flags = flags & (_F_FROMSTR | _F_QUERY)
        generic = base in _TYPING_GENERICS and (
            isinstance(node.value, ast.Name) or base[:1].isupper()  # type: ignore[index]
        )
        if flags & _F_TYPE or generic:
            if base == "Literal":
                slice_flags |= _F_LITERAL
            elif base == "Annotated" and isinstance(node.slice, ast.Tuple) and node.slice.elts:
                self._push(node.slice.elts[0], scope, slice_flags | _F_TYPE)
                self._push_all(node.slice.elts[1:], scope, slice_flags)
                slice_flags = -1
            else:
                slice_flags |= _F_TYPE
        if slice_flags != -1:
            self._push(node.slice, scope, slice_flags)
        self._copy(node.value, self._v(node, scope), scope)

    def _h_call(self, node: ast.Call, scope: _Scope, flags: int) -> None:
        func = node.func
        if flags & _F_FROMSTR:
            self.report(node, R_ANNOTATION, "Call inside a string annotation")
        self._call_of[id(func)] = node
        inherit = flags & (_F_FROMSTR | _F_QUERY)
        push = self._stack.append
        value_of = self._v
        func_type = type(func)
        via_attr = func_type is ast.Attribute
        name = func.attr if via_attr else (func.id if func_type is ast.Name else None)  # type: ignore[attr-defined]
        node_vars = self._node_vars
        dst = node_vars.get(id(node))
        if dst is None:
            dst = node_vars[id(node)] = _Var()
        name_load = self._name_load
        if func_type is ast.Name:
            func_var = name_load(func, scope, inherit)  # type: ignore[arg-type]
        else:
            push((func, scope, inherit))
            func_var = value_of(func, scope)  # type: ignore[assignment]
        rec = _CallRec(node, func_var, dst, via_attr)
        args = rec.args
        for arg in node.args:
            arg_type = type(arg)
            if arg_type is ast.Constant and type(arg.value) is not str:  # type: ignore[attr-defined]
                args.append((None, False))  # a plain constant: nothing to check or follow
                continue
            if arg_type is ast.Name:
                args.append((name_load(arg, scope, inherit), False))  # type: ignore[arg-type]
                continue
            push((arg, scope, inherit))
            if arg_type is ast.Starred:
                var = value_of(arg.value, scope)  # type: ignore[attr-defined]
                if var is not None:
                    args.append((var, True))
            else:
                args.append((value_of(arg, scope), False))  # type: ignore[arg-type]
        switches = P.UNSAFE_SWITCHES
        if node.keywords:
            rec.kwargs = []
        for keyword in node.keywords:
            value = keyword.value
            push((value, scope, inherit))
            var = value_of(value, scope)
            if var is not None:
                rec.kwargs.append((keyword.arg, var))
            if keyword.arg in switches:
                self._check_switch(keyword.arg, value, value)  # type: ignore[arg-type]
        self._calls.append(rec)
        self._edge(rec.func, _CALL, rec)
        if func_type is ast.Name and name in _KNOWN_BUILTIN_CALLS:
            rec.builtin = (name, scope)  # type: ignore[assignment]
            self._builtin_calls.append(rec)
        if name in _SPECIAL_CALL_NAMES:
            self._special_call(node, name, scope)  # type: ignore[arg-type]
        if len(node.args) >= 2 and type(node.args[0]) is ast.Constant:
            # kwargs.setdefault("trust_remote_code", True)
            key = node.args[0].value  # type: ignore[attr-defined]
            if key in switches:
                self._check_switch(key, node.args[1], node)

    def _special_call(self, node: ast.Call, name: str, scope: _Scope) -> None:
        """Calls recognised by name: type-string evaluators, then the shape checks."""
        type_slots = _TYPE_STRING_CALLS.get(name)
        if type_slots is not None:
            positions, keywords = type_slots
            for index, arg in enumerate(node.args):
                if (positions is None and index > 0) or (positions and index in positions):
                    self._check_type_string_arg(arg, node.func)
                    if _const_str(arg) is not None:
                        self._embedded_type_string(arg, scope, 0)  # type: ignore[arg-type]
            for keyword in node.keywords:
                if keyword.arg in keywords:
                    self._check_type_string_arg(keyword.value, node.func)
                    if _const_str(keyword.value) is not None:
                        self._embedded_type_string(keyword.value, scope, 0)  # type: ignore[arg-type]
        if name == "create_model":
            self._create_model_types(node, scope)
        self._syntactic_call_checks(node, scope)

    def _syntactic_call_checks(self, node: ast.Call, scope: _Scope) -> None:
        """Checks that need only the call's shape: evaluators, format walks, executables."""
        func = node.func
        args = node.args
        if isinstance(func, ast.Attribute):
            attr = func.attr
            if attr in ("eval", "query") and (args or any(k.arg == "expr" for k in node.keywords)):
                expr = args[0] if args else next(k.value for k in node.keywords if k.arg == "expr")
                self._check_query_string(expr, node, attr, scope)
            elif attr in ("format", "format_map"):
                if not isinstance(
                    func.value, (ast.Constant, ast.Name, ast.Attribute, ast.Subscript)
                ):
                    self.report(node, R_FORMAT, "Format string built at run time")
            elif attr == "join" and _const_str(func.value) is not None and args:
                parts = args[0]
                if isinstance(parts, (ast.List, ast.Tuple)) and all(
                    _const_str(e) is not None for e in parts.elts
                ):
                    joined = func.value.value.join(e.value for e in parts.elts)  # type: ignore[attr-defined,union-attr]
                    self._check_built_string(joined, node)
        name = _last_name(func)
        if name in ("run", "run_async", "probe", "compile") and any(
            k.arg == "cmd" for k in node.keywords
        ):
            self.report(node, R_CALL, f"Forbidden call: {name}(cmd=...) runs a chosen executable")
        if isinstance(func, ast.Name) and func.id == "type" and len(args) == 3:
            self.report(
                node,
                R_DYNAMIC_CLASS,
                "type() with three arguments builds a class at run time",
                "warning",
            )
        if name == "ForwardRef" and args and _const_str(args[0]) is None:
            self.report(node, R_EVAL, "ForwardRef of a computed string is evaluated as code")

    def _check_type_string_arg(self, arg: ast.AST, func: ast.AST) -> None:
        if isinstance(arg, (ast.BinOp, ast.JoinedStr)) or (
            isinstance(arg, ast.Call) and _last_name(arg.func) in ("join", "format", "str")
        ):
            self.report(
                arg, R_EVAL, f"{_last_name(func)} of a computed string is evaluated as code"
            )

    def _create_model_types(self, node: ast.Call, scope: _Scope) -> None:
        """``create_model("M", x=("str", ...))``: field type strings are forward references."""
        for keyword in node.keywords:
            value = keyword.value
            if isinstance(value, ast.Tuple) and value.elts:
                value = value.elts[0]
            if _const_str(value) is not None:
                self._embedded_type_string(value, scope, 0)  # type: ignore[arg-type]

    def _check_query_string(self, expr: ast.AST, node: ast.Call, attr: str, scope: _Scope) -> None:
        """``df.query(...)`` / ``df.eval(...)`` evaluate their string: scan it as Python."""
        text = _const_str(expr)
        if text is None:
            self.report(node, R_EVAL, f"{attr}() of a computed expression string")
            return
        if len(text) > MAX_EMBEDDED_SOURCE:
            self.report(node, R_EVAL, f"{attr}() expression string too long to check")
            return
        source = re.sub(r"`[^`]*`", "_bq_", text).replace("@", _QUERY_MARK)
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            if "@" in text or "__" in text:
                self.report(node, R_EVAL, f"{attr}() expression string that cannot be checked")
            return
        self._relocate(tree, expr)
        self._push(tree.body, scope, _F_QUERY)

    def _check_match_args(self, value: ast.AST) -> None:
        """``__match_args__`` names attributes that class patterns read: judge each name."""
        elts = value.elts if isinstance(value, (ast.Tuple, ast.List)) else [value]  # type: ignore[attr-defined]
        for elt in elts:
            name = _const_str(elt)
            if name is None:
                self.report(elt, R_ATTR, "__match_args__ must be string constants")
            elif (
                name.startswith("_")
                or name in P.DENIED_ATTRIBUTES
                or name in P.UNAMBIGUOUS_MODULE_ATTRIBUTES
                or (name in _OS_NAMES and name not in P.OS_ALLOWED_ATTRIBUTES)
            ):
                self.report(elt, R_ATTR, f"__match_args__ names a dangerous attribute: {name}")

    def _h_collect(self, node: ast.AST, scope: _Scope, flags: int) -> None:
        """IfExp, BoolOp, List, Tuple, Set, Starred, Await: the value is any of the parts."""
        self._generic(node, scope, flags)
        dst = self._v(node, scope)
        tp = type(node)
        if tp is ast.IfExp:
            parts = (node.body, node.orelse)  # type: ignore[attr-defined]
        elif tp is ast.BoolOp:
            parts = node.values  # type: ignore[attr-defined]
        elif tp is ast.Starred or tp is ast.Await:
            parts = (node.value,)  # type: ignore[assignment,attr-defined]
        else:
            parts = node.elts  # type: ignore[attr-defined]
            for part in parts:  # [*os.environ] unpacks into a new container: drop environ
                if type(part) is ast.Starred:
                    self._edge(self._v(part, scope), _FILTER, dst)
                else:
                    self._copy(part, dst, scope)
            return
        for part in parts:
            self._copy(part, dst, scope)

    def _h_dict(self, node: ast.Dict, scope: _Scope, flags: int) -> None:
        self._generic(node, scope, flags)
        dst = self._v(node, scope)
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # {**mapping}: a copy of its items, never os.environ itself
                self._edge(self._v(value, scope), _FILTER, dst)
                continue
            self._copy(key, dst, scope)
            self._copy(value, dst, scope)
            name = _const_str(key)
            if name in P.UNSAFE_SWITCHES:
                self._check_switch(name, value, value)

    def _h_named_expr(self, node: ast.NamedExpr, scope: _Scope, flags: int) -> None:
        if flags & _F_FROMSTR:
            self.report(node, R_ANNOTATION, "Assignment expression inside a string annotation")
        self._push(node.value, scope, flags & _INHERIT)
        target = scope
        while target.kind == "comprehension":  # PEP 572: binds in the enclosing scope
            target = target.parent  # type: ignore[assignment]
        var = self._store_var(target, node.target.id, node.target, 0)
        self._copy(node.value, var, scope)
        self._copy(node.value, self._v(node, scope), scope)

    def _h_comprehension(self, node: ast.AST, scope: _Scope, flags: int) -> None:
        generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        inner = self._new_scope("comprehension", scope)
        inherit = flags & _INHERIT
        dst = self._v(node, scope)
        if isinstance(node, ast.DictComp):
            self._push(node.key, inner, inherit)
            self._push(node.value, inner, inherit)
            self._copy(node.key, dst, inner)
            self._copy(node.value, dst, inner)
        else:
            self._push(node.elt, inner, inherit)  # type: ignore[attr-defined]
            self._copy(node.elt, dst, inner)  # type: ignore[attr-defined]
        for index, gen in enumerate(generators):
            # the first iterable is evaluated in the enclosing scope, the rest inside
            iter_scope = scope if index == 0 else inner
            self._push(gen.iter, iter_scope, inherit)
            self._push_all(gen.ifs, inner, inherit)
            self._bind_target(gen.target, self._v(gen.iter, iter_scope), inner, 0)

    def _h_binop(self, node: ast.BinOp, scope: _Scope, flags: int) -> None:
        is_add = isinstance(node.op, ast.Add)
        if is_add and not flags & _F_ADD:
            self._fold_concatenation(node)
        elif (
            isinstance(node.op, ast.Mod)
            and _const_str(node.left) is not None
            and _PLAIN_PERCENT.fullmatch(node.left.value)  # type: ignore[attr-defined]
        ):
            right = node.right
            values = right.elts if isinstance(right, ast.Tuple) else [right]
            if all(isinstance(v, ast.Constant) for v in values):
                try:
                    text = node.left.value % tuple(v.value for v in values)  # type: ignore[attr-defined]
                except Exception:  # not a valid %-format: nothing to fold
                    text = None
                if text is not None:
                    self._check_built_string(text, node)
        child = (flags & _INHERIT) | (_F_ADD if is_add else 0)
        self._push(node.right, scope, child)
        self._push(node.left, scope, child)

    def _fold_concatenation(self, node: ast.BinOp) -> None:
        """``"sy" + "stem"``: join constant pieces of a ``+`` chain and judge the result."""
        pieces: list[str] = []
        todo: list[ast.AST] = [node]
        while todo:
            part = todo.pop()
            if isinstance(part, ast.BinOp) and isinstance(part.op, ast.Add):
                todo.append(part.right)
                todo.append(part.left)
            elif _const_str(part) is not None:
                pieces.append(part.value)  # type: ignore[attr-defined]
            else:
                return
        self._check_built_string("".join(pieces), node)

    def _h_joined_str(self, node: ast.JoinedStr, scope: _Scope, flags: int) -> None:
        self._generic(node, scope, flags & ~_F_TYPE)
        pieces: list[str] = []
        for value in node.values:
            if _const_str(value) is not None:
                pieces.append(value.value)  # type: ignore[attr-defined]
            elif isinstance(value, ast.FormattedValue) and _const_str(value.value) is not None:
                pieces.append(value.value.value)  # type: ignore[attr-defined]
            else:
                return
        self._check_built_string("".join(pieces), node)

    def _check_built_string(self, text: str, node: ast.AST) -> None:
        """A string assembled from constant pieces that spells something dangerous."""
        name = text.strip()
        if (
            name in P.DENIED_ATTRIBUTES
            or name in _ALL_FORBIDDEN_BUILTINS
            or name in P.UNSAFE_SWITCHES
            or name in _REACHABLE_MODULES
            or (_is_dunder(name) and name not in P.SAFE_DUNDERS)
            or (name in _OS_NAMES and name not in P.OS_ALLOWED_ATTRIBUTES)
        ):
            self.report(node, R_BUILT_NAME, f"String built from pieces spells {name!r}")
        else:
            self._check_string(text, node)

    def _h_constant(self, node: ast.Constant, scope: _Scope, flags: int) -> None:
        value = node.value
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str):
            return
        self._check_string(value, node)
        if flags & _F_TYPE and not flags & _F_LITERAL and isinstance(node.value, str):
            self._embedded_type_string(node, scope, flags)

    def _check_string(self, text: str, node: ast.AST) -> None:
        match = _SUSPICIOUS_STRING.search(text) if "_" in text else None  # every needle has one
        if match:
            self.report(
                node, R_SUSPICIOUS, f"String contains an escape primitive: {match.group(0)}"
            )
        if "{" in text:
            for field in _FORMAT_FIELD.findall(text):
                name = re.split(r"[!:]", field, maxsplit=1)[0]
                parts = re.split(r"[.\[\]]", name)
                if "__" in name or any(
                    p.startswith("_") or p in P.DENIED_ATTRIBUTES for p in parts[1:] if p
                ):
                    self.report(node, R_FORMAT, f"Format field walks attributes: {{{field}}}")
                    break

    def _embedded_type_string(self, node: ast.Constant, scope: _Scope, flags: int) -> None:
        """A string in a type position is evaluated by typing / pydantic: scan it as code."""
        text: str = node.value  # type: ignore[assignment]
        if len(text) > MAX_EMBEDDED_SOURCE:
            self.report(node, R_ANNOTATION, "String annotation too long")
            return
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            self.report(node, R_ANNOTATION, f"Unparsable string annotation: {text[:60]!r}")
            return
        self._relocate(tree, node)
        while scope.kind in ("function", "comprehension") and scope.parent is not None:
            scope = scope.parent  # annotations resolve against the module / class namespace
        self._push(tree.body, scope, _F_TYPE | _F_FROMSTR)

    @staticmethod
    def _relocate(tree: ast.AST, origin: ast.AST) -> None:
        line = getattr(origin, "lineno", 0)
        col = getattr(origin, "col_offset", 0)
        for sub in ast.walk(tree):
            if "lineno" in sub._attributes:
                sub.lineno = line  # type: ignore[attr-defined]
                sub.col_offset = col  # type: ignore[attr-defined]

    def _check_switch(self, name: str, value: ast.AST, at: ast.AST) -> None:
        """``trust_remote_code=True``, ``allow_pickle=True``, ``weights_only=False``..."""
        rule, safe, severity = P.UNSAFE_SWITCHES[name]
        if isinstance(value, ast.Constant) and any(
            value.value is s or (type(value.value) is type(s) and value.value == s) for s in safe
        ):
            return
        shown = repr(value.value) if isinstance(value, ast.Constant) else "<computed>"
        self.report(at, rule, f"Unsafe switch: {name}={shown}", severity)

    # ----- phase 2: names ------------------------------------------------------------------

    def _lookup(self, scope: _Scope, name: str) -> _Scope | None:
        """The scope whose binding a load of ``name`` in ``scope`` reads (None: builtins)."""
        current: _Scope | None = scope
        first = True
        while current is not None:
            if current.kind == "class" and not first:
                current = current.parent
                continue
            if name in current.globals_:
                return self._module_scope if name in self._module_scope.vars else None
            if name in current.vars:
                return current
            first = False
            current = current.parent
        return None

    def _resolve(self, scope: _Scope, name: str) -> _Scope | None:
        key = (id(scope), name)
        if key in self._resolved:
            return self._resolved[key]
        target = self._resolved[key] = self._lookup(scope, name)
        return target

    def _resolve_names(self) -> None:
        """Wire every name read to its binding, and container stores to their containers.

        The shared read variable of a name in a scope becomes an alias of the binding's variable
        (same token set, same edge list), so reads cost no edges of their own. Calls of builtins
        that pass their arguments through (``next``, ``list``...) get passthrough edges.
        """
        for index, scope in enumerate(self._scopes):
            if index % _TIME_CHECK_EVERY == 0:
                self._tick()
            for raw, var in scope.loads.items():
                name = raw[len(_QUERY_MARK) :] if raw.startswith(_QUERY_MARK) else raw
                target = self._resolve(scope, name)
                if target is not None:
                    self._alias(var, target.vars[name])
        for call in self._builtin_calls:
            name, scope = call.builtin  # type: ignore[assignment,misc,str-unpack]
            target = self._resolve(scope, name)
            if target is None or not self._shadows(target, name, call.node.lineno):  # type: ignore[attr-defined]
                call.builtin = name
                if name in _PASSTHROUGH_BUILTINS:
                    self._passthrough(call, name in _COPYING_BUILTINS)
                call.passthrough = True  # a builtin's result is not (a part of) a module
            else:
                call.builtin = None
        for name, scope, value in self._container_stores:
            target = self._lookup(scope, name)
            if target is not None:
                self._edge(value, _COPY, target.vars[name])
        # attribute reads also see every `obj.attr = value` / class attribute of that name
        fields = self._fields
        for site in self._attr_sites:
            if site[3] == _LOAD and site[5] is not None and site[2] in fields:
                self._edge(fields[site[2]], _COPY, site[5])

    def _alias(self, var: _Var, binding: _Var) -> None:
        """Make ``var`` share ``binding``'s tokens and edges (its own edges move over)."""
        if var is binding:
            return
        moved = var.edges
        binding.edges.extend(moved)
        var.edges = binding.edges
        var.tokens = binding.tokens
        if binding.tokens:
            for kind, dst, extra in moved:
                self._apply(kind, dst, extra, set(binding.tokens))

    def _shadows(self, target: _Scope, name: str, line: int) -> bool:
        """Does the binding in ``target`` really hide the builtin of the same name at ``use``?

        A function's local always does (unbound locals raise, they never fall back). In a module
        or class body only an unconditional top-level binding before the use does, and only if
        the name is never deleted (``del open`` brings the builtin back).
        """
        if target.kind in ("function", "comprehension"):
            return True
        if name in target.deleted:
            return False
        bound = target.top_lines.get(name)
        return bound is not None and bound < line

    # ----- phase 3: checks -------------------------------------------------------------------

    def _check_name_sites(self) -> None:
        for node, name, scope, var in self._name_sites:
            if name in _ALL_FORBIDDEN_BUILTINS:
                target = self._resolve(scope, name)
                if target is None or not self._shadows(target, name, node.lineno):  # type: ignore[attr-defined]
                    self.report(node, R_BUILTIN, f"Forbidden builtin: {name}")
            if var.tokens:
                for tok in var.tokens:
                    if tok[0] == "p" and (
                        tok[2:] in P.CONDITIONAL_LOADS or tok[2:] in P.GUARDED_CALLS
                    ):
                        self._check_conditional(tok[2:], node, self._call_of.get(id(node)))

    def _check_attr_sites(self) -> None:
        for index, (node, receiver, attr, ctx, call, _result) in enumerate(self._attr_sites):
            if index % _TIME_CHECK_EVERY == 0:
                self._tick()
            tokens = receiver.tokens if receiver is not None else ()
            if tokens and any(t[0] == "f" for t in tokens):
                tokens = self._expand(tokens)
            module_like = False
            for tok in tokens:
                kind = tok[0]
                if kind == "m" or kind == "p":
                    module_like = True
                    self._judge_step_at(tok[2:], attr, node, call, ctx)
                elif kind == "o":
                    module_like = True
                    self.own_refs.append((f"{tok[2:]}.{attr}", node.lineno, node.col_offset))  # type: ignore[attr-defined]
            if ctx != _LOAD or id(node) in self._flagged_nodes:
                continue
            denied = P.DENIED_ATTRIBUTES.get(attr)
            if denied is not None:
                rule, reason = denied
                if rule == R_CALL:
                    self.report(node, rule, f"Forbidden call: {_dotted(node)} ({reason})")
                else:
                    self.report(node, rule, f"Dangerous attribute: .{attr} ({reason})")
            elif attr in P.UNAMBIGUOUS_MODULE_ATTRIBUTES and not module_like:
                self.report(
                    node,
                    R_ATTR,
                    f"Dangerous attribute: {_dotted(node)} may be the {attr.lstrip('_')} module",
                )

    def _judge_step_at(
        self,
        base: str,
        attr: str,
        node: ast.AST,
        call: ast.Call | None,
        ctx: int,
        importing: bool = False,
    ) -> None:
        """Judge ``base.attr`` where ``base`` is a module (path) and report at ``node``."""
        if _is_dunder(attr):
            return  # dunders are judged by name where they appear
        path = f"{base}.{attr}"
        tok = self._step(base, attr) or "p:" + path
        if ctx != _LOAD:
            top = base.split(".", 1)[0]
            if top in _STDLIB or self._judge_path(path) is not None or attr in P.DENIED_ATTRIBUTES:
                self.report(node, R_MUTATION, f"Module attribute assignment: {path}")
            return
        if tok[0] == "m":
            module = tok[2:]
            if module != path and not self._module_allowed(module):
                self.report(node, R_ATTR, f"Forbidden module access: {path} is the {module} module")
            return
        if (
            attr in _REACHABLE_MODULES
            and call is None
            and base.split(".", 1)[0] not in _STDLIB
            and path not in P.KNOWN_SUBMODULES
            and not importing
            and (not self._module_allowed(attr) or attr in ("io", "asyncio"))
        ):
            # `PIL.Image.io` used as a value, not called like `torch.jit.trace(...)`: assume it is
            # the module it is named after (third-party re-exports are not known exactly)
            self.report(node, R_ATTR, f"Forbidden module access: {path} may be the {attr} module")
            return
        verdict = self._judge_path(path)
        if verdict is not None:
            rule, message, severity = verdict
            if importing and rule == R_CALL and path.startswith("os."):
                rule, message = R_FORBIDDEN_IMPORT, f"Forbidden import: {path}"
            self.report(node, rule, message, severity)
        elif (path in P.CONDITIONAL_LOADS or path in P.GUARDED_CALLS) and not importing:
            self._check_conditional(path, node, call)

    def _module_allowed(self, module: str) -> bool:
        top = module.split(".", 1)[0]
        if top in _HARD_DENIED:
            return False
        return self.policy.is_allowed_top_level(top)

    def _judge_path(self, path: str) -> tuple[str, str, str] | None:
        """Rule, message and severity for an attribute path of a module, or None if fine."""
        if path in self._path_memo:
            return self._path_memo[path]
        verdict = self._judge_path_uncached(path)
        self._path_memo[path] = verdict
        return verdict

    def _judge_path_uncached(self, path: str) -> tuple[str, str, str] | None:
        parts = path.split(".")
        top = parts[0]
        if top == "os" and len(parts) > 1:
            second = parts[1]
            if second not in P.OS_ALLOWED_ATTRIBUTES:
                return (R_CALL, f"Forbidden call: os.{second}", "error")
            if second == "environ" and len(parts) > 2:
                third = parts[2]
                if third in P.OS_ENVIRON_WRITE_METHODS:
                    return (R_ENV, f"Environment write: os.environ.{third}", "error")
                if third not in P.OS_ENVIRON_READ_METHODS:
                    return (R_CALL, f"Forbidden call: os.environ.{third}", "error")
            return None
        if top in _SDK_TOPS and len(parts) > 1:
            # a public SDK name, or an attribute of one (``ResourceType.CPU``), is fine; any
            # other path into the platform's package (or a compatibility module) is an internal
            prefix = next(
                (
                    ".".join(parts[:d])
                    for d in range(len(parts), 0, -1)
                    if _is_sdk_path(".".join(parts[:d]))
                ),
                None,
            )
            if prefix is not None and (prefix == path or prefix not in P.sdk_modules()):
                return None
            return (
                R_NOT_ALLOWED,
                f"Import not allowed: {path} is not a public name of the platform SDK",
                "error",
            )
        if top == "builtins" and len(parts) > 1:
            if parts[1] in _ALL_FORBIDDEN_BUILTINS:
                return (R_BUILTIN, f"Forbidden builtin: {parts[1]} (as {path})", "error")
            return None
        prefix = top
        last_index = len(parts) - 1
        for index, part in enumerate(parts[1:], start=1):
            prefix = f"{prefix}.{part}"
            danger = P.DANGEROUS_PATHS.get(prefix)
            if danger is not None:
                rule, reason, severity = danger
                return (
                    rule,
                    f"{_RULE_WORDS.get(rule, 'Forbidden')}: {prefix} ({reason})",
                    severity,
                )
            if (
                index < last_index
                and part in _REACHABLE_MODULES
                and top not in _STDLIB
                and prefix not in P.KNOWN_SUBMODULES
            ):
                # used as a module (something is read from it): assume the re-export it names
                return (
                    R_ATTR,
                    f"Forbidden module access: {prefix} may be the {part} module",
                    "error",
                )
        last = parts[-1]
        if last.startswith("_") and not _is_dunder(last):
            if top in _STDLIB:
                return (R_PRIVATE, f"Private attribute of a standard module: {path}", "error")
            if not any(path == a or path.startswith(a + ".") for a in P.PRIVATE_ATTRIBUTES_ALLOWED):
                return (R_PRIVATE, f"Private attribute of a library module: {path}", "error")
        return None

    def _check_conditional(self, path: str, node: ast.AST, call: ast.Call | None) -> None:
        """A loader / call that is safe only in a checked form, and only when called directly
        (an alias could be called any way)."""
        direct = call is not None and call.func is node
        guarded = P.GUARDED_CALLS.get(path)
        if guarded is not None:
            if id(node) in self._class_bases:
                return  # subclassing is not calling; keyword switches are checked on every call
            keywords, max_positional, rule = guarded
            if not direct:
                if path.rsplit(".", 1)[-1][:1].isupper():
                    return  # a class named in an annotation, isinstance() or a subclass
                problem = "not called directly, so its arguments cannot be checked"
            elif any(kw.arg in keywords or kw.arg is None for kw in call.keywords):  # type: ignore[union-attr]
                problem = "with " + "/".join(sorted(keywords)) + " (or **kwargs)"
            elif max_positional is not None and (
                len(call.args) > max_positional  # type: ignore[union-attr]
                or any(isinstance(a, ast.Starred) for a in call.args)  # type: ignore[union-attr]
            ):
                problem = f"with more than {max_positional} positional arguments (unsafe switch)"
            else:
                return
            self.report(node, rule, f"{_RULE_WORDS.get(rule, 'Forbidden call')}: {path} {problem}")
            return
        keyword, required = P.CONDITIONAL_LOADS[path]
        if direct:
            for kw in call.keywords:  # type: ignore[union-attr]
                if (
                    kw.arg == keyword
                    and isinstance(kw.value, ast.Constant)
                    and kw.value.value is required
                ):
                    return
        self.report(node, R_DESER, f"Unsafe deserialization: {path} without {keyword}={required!r}")

    def _check_calls(self) -> None:
        """Module objects and ``os.environ`` must not escape into calls the analysis can't follow."""
        for index, call in enumerate(self._calls):
            if index % _TIME_CHECK_EVERY == 0:
                self._tick()
            callee = call.func.tokens if call.func is not None else set()
            foreign = [t for t in callee if t[0] != "f"]
            if callee and not foreign:
                continue  # only functions of this file: arguments are followed into them
            if call.node.__class__ is not ast.Call:
                continue  # a decorator applied to a def: it receives the function, by design
            values: set[str] = set()
            for var, _ in call.args:
                if var is not None:
                    values |= var.tokens
            for _, var in call.kwargs:
                values |= var.tokens
            if not values:
                continue
            if any(t[0] == "f" for t in values):
                values = self._expand(values)  # a callback that returns a module hands it over
            modules = sorted(t[2:] for t in values if t[0] == "m")
            if modules:
                self.report(
                    call.node, R_ESCAPE, f"Module object passed to a call: {', '.join(modules)}"
                )
            safe_reader = (not foreign and call.builtin in _ENV_SAFE_BUILTINS) or (
                foreign and set(foreign) <= _ENV_SAFE_READERS
            )
            if _ENV_TOKEN in values and not safe_reader:
                self.report(call.node, R_ENV, "os.environ passed to a call that may modify it")

    def _check_subscript_stores(self) -> None:
        for node, container in self._subscript_stores:
            if container is not None and _ENV_TOKEN in container.tokens:
                self.report(node, R_ENV, "Environment write: os.environ[...]")

    def _check_protocol_returns(self) -> None:
        """Special methods run implicitly (``obj.x`` -> ``__getattr__``, ``obj[k]``, ``obj()``,
        iteration, ``with``), so their results reach places the analysis does not connect. They
        must not return module objects or ``os.environ``."""
        for info in self._fns.values():
            if not (_is_dunder(info.name) and info.returns.tokens):
                continue
            risky = sorted(_risky(self._expand(info.returns.tokens)))
            if risky:
                what = ", ".join(t[2:] for t in risky)
                self.report(info.node, R_ESCAPE, f"{info.name} returns a module object: {what}")

    def _collect_exports(self) -> None:
        """What another plugin file could import from this one that carries a module object:
        module-level names (functions count by what they return), and attributes."""
        for name, var in self._module_scope.vars.items():
            risky = _risky(self._expand(var.tokens) if var.tokens else ())
            if risky:
                self.exports[name] = risky
        stored = frozenset(t for var in self._fields.values() for t in _risky(var.tokens))
        if stored:
            self.exports[_ATTRIBUTES_EXPORT] = stored


_ATTRIBUTES_EXPORT = "<attributes>"


def _risky(tokens: Iterable[str]) -> frozenset[str]:
    """Tokens another file must not receive unseen: modules, ``os`` paths, guarded loaders."""
    return frozenset(
        t
        for t in tokens
        if t[0] == "m" or t.startswith(("p:os", "p:builtins")) or t[2:] in P.CONDITIONAL_LOADS
    )


_RULE_WORDS = {
    R_DESER: "Unsafe deserialization",
    R_EVAL: "Code evaluation",
    R_REMOTE: "Remote code",
    R_NATIVE: "Native code loading",
    R_CALL: "Forbidden call",
    R_FORBIDDEN_IMPORT: "Forbidden import",
    R_ATTR: "Dangerous attribute",
}


# ---------------------------------------------------------------------------------------------
# Cross-file check
# ---------------------------------------------------------------------------------------------


def _cross_file_violations(results: list[_FileResult]) -> list[Violation]:
    """Reject plugin files importing a module object that another plugin file bound.

    Each file is analysed alone, so ``from .utils import o`` where ``utils`` did ``import os as
    o`` would hide ``o.getcwd()``. Such re-exports are errors at the importing site.
    """
    exports = {r.module: r.exports for r in results if r.module is not None}
    out: list[Violation] = []
    for result in results:
        for path, line, col in result.own_refs:
            parts = path.split(".")
            for cut in range(len(parts) - 1, 0, -1):
                module = ".".join(parts[:cut])
                if module in exports:
                    name = parts[cut]
                    table = exports[module]
                    hits = sorted(table) if name == "*" else ([name] if name in table else [])
                    if _ATTRIBUTES_EXPORT in table and _ATTRIBUTES_EXPORT not in hits:
                        hits.append(_ATTRIBUTES_EXPORT)  # a module object stored as an attribute
                    for hit in hits:
                        what = ", ".join(sorted(t[2:] for t in table[hit]))
                        out.append(
                            _violation(
                                result.filename,
                                line,
                                col,
                                R_REEXPORT,
                                f"Plugin module {module} re-exports {hit} ({what}); import it directly",
                            )
                        )
                    break
    return out
