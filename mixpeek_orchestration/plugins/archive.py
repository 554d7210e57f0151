"""The archive gate: check an untrusted plugin zip and extract it into a private directory.

Plugin archives come from users we do not trust, so the gate reads the zip structure itself
instead of trusting :mod:`zipfile`'s lenient parser, and accepts only what an ordinary zip writer
produces for a pure-Python plugin:

* every byte of the file belongs to exactly one structure: local entries tile the file from
  offset 0, then the central directory, then the end record and its comment, nothing before,
  between or after (so no prefix, appended archive, polyglot or overlapping "zip bomb" entries);
* names are relative, portable and unique (also after case folding and Unicode normalisation);
* entries are regular files or directories, stored or deflated, not encrypted;
* sizes are counted from the bytes actually inflated, never from headers, with per-entry and
  whole-archive limits and a compression-ratio bound;
* no compiled or native code, no nested archives (by name and by content), no ``.pth`` files,
  and no top-level module that would shadow the standard library or a platform package.

Every problem found becomes a :class:`~mixpeek_orchestration.plugins.report.Violation`; the gate
collects all it can find before raising :class:`ArchiveRejected`, and leaves the destination empty.
Extraction writes each file with ``O_CREAT | O_EXCL | O_NOFOLLOW`` relative to directory file
descriptors opened with ``O_NOFOLLOW``, so nothing is ever written outside the destination.
Memory stays bounded: the archive is streamed in chunks, never loaded whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import stat
import struct
import sys
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.policy import ALLOWED_IMPORTS
from mixpeek_orchestration.plugins.report import Violation

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_PROTECTED_MODULES",
    "ArchiveLimits",
    "ArchiveRejected",
    "ExtractedArchive",
    "build_archive",
    "extract_archive",
    "open_plugin_archive",
]

MiB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ArchiveLimits:
    """Bounds an uploaded plugin archive must stay within (SPEC §4).

    Args:
        max_compressed_bytes: size of the archive file itself.
        max_extracted_bytes: total bytes inflated from all entries.
        max_file_bytes: bytes inflated from one entry; ``None`` means ``max_extracted_bytes``.
        max_files: regular-file entries (directory entries have their own, equal, bound).
        max_ratio: inflated / compressed size beyond which an entry, or the whole archive,
            is treated as a zip bomb.
        ratio_exempt_bytes: entries (and archives) inflating to at most this many bytes are
            exempt from the ratio check: tiny highly-compressible files are harmless.
        max_path_length: bytes (UTF-8) of an entry name.
        max_depth: path components of an entry name.
    """

    max_compressed_bytes: int = 500 * MiB
    max_extracted_bytes: int = 500 * MiB
    max_file_bytes: int | None = None
    max_files: int = 1000
    max_ratio: int = 100
    ratio_exempt_bytes: int = 1 * MiB
    max_path_length: int = 255
    max_depth: int = 16

    @property
    def file_limit(self) -> int:
        """The per-entry inflated-size bound actually applied."""
        if self.max_file_bytes is None:
            return self.max_extracted_bytes
        return min(self.max_file_bytes, self.max_extracted_bytes)


DEFAULT_LIMITS = ArchiveLimits()

# The plugin's own top-level names: never "shadowing", whatever the protected set holds.
PLUGIN_MODULES: frozenset[str] = frozenset({"manifest", "pipeline", "realtime", "processors"})

# Packages the platform's workers import themselves (around the plugin, not from it): a plugin
# module with one of these names could be picked up instead of the real one.
_RUNTIME_PACKAGES: frozenset[str] = frozenset(
    {
        "engine", "shared", "mixpeek_orchestration", "sitecustomize", "usercustomize",
        "ray", "cloudpickle", "pydantic_core", "setuptools", "pkg_resources", "pip",
        "_distutils_hack", "distutils", "commands", "popen2",
    }
)  # fmt: skip

DEFAULT_PROTECTED_MODULES: frozenset[str] = (
    frozenset(sys.stdlib_module_names) | ALLOWED_IMPORTS | _RUNTIME_PACKAGES
) - PLUGIN_MODULES

# Violation.file for problems of the archive as a whole (no single entry to blame).
ARCHIVE = ""

_READ_CHUNK = 256 * 1024  # compressed bytes read per step
_OUT_CHUNK = 256 * 1024  # inflated bytes produced per step: bounds memory whatever the ratio
_HEAD_BYTES = 1024  # inflated prefix kept per entry for content sniffing
_MAX_VIOLATIONS = 1000
_MAX_NAME_BYTES = 4096  # longer names are not even decoded (only a prefix, for the message)

# Entries every macOS "Compress" adds; checked like any other entry, but never written.
_IGNORED_TOP = "__MACOSX"
_IGNORED_NAMES = frozenset({".DS_Store"})

_COMPILED_SUFFIXES = (".pyc", ".pyo")
_NATIVE_SUFFIXES = (".so", ".pyd", ".dll", ".dylib", ".exe", ".sys", ".wasm")
_ARCHIVE_SUFFIXES = (
    ".zip", ".tar", ".gz", ".tgz", ".bz2", ".tbz", ".tbz2", ".xz", ".txz", ".lzma", ".zst",
    ".7z", ".rar", ".jar", ".whl", ".egg", ".cab", ".z", ".lz4", ".cpio", ".iso",
)  # fmt: skip
_VERSIONED_SO = re.compile(r"\.so(\.\d+)+$")
_DRIVE = re.compile(r"^[A-Za-z]:")

_NATIVE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "an ELF executable or shared library"),
    (b"\xfe\xed\xfa\xce", "a Mach-O binary"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O binary"),
    (b"\xce\xfa\xed\xfe", "a Mach-O binary"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O binary"),
    (b"\xca\xfe\xba\xbe", "a universal Mach-O binary or Java class"),
    (b"\xbe\xba\xfe\xca", "a universal Mach-O binary"),
    (b"\x00asm", "a WebAssembly module"),
    (b"!<arch>\n", "a static library or ar archive"),
)
_ARCHIVE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"PK\x07\x08", "a spanned zip archive"),
    (b"\x1f\x8b\x08", "a gzip stream"),
    (b"\xfd7zXZ\x00", "an xz stream"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"Rar!\x1a\x07", "a rar archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd stream"),
    (b"\x04\x22\x4d\x18", "an lz4 stream"),
    (b"MSCF\x00\x00\x00\x00", "a cab archive"),
)
_BZIP2 = re.compile(rb"^BZh[1-9](1AY&SY|\x17rE8P\x90)", re.DOTALL)

# Unicode categories a file name must not contain: controls (NUL included), invisible format
# characters (bidi overrides disguise extensions), surrogates and line/paragraph separators.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# zip structures (APPNOTE.TXT): signatures and fixed parts.
_SIG_LOCAL = b"PK\x03\x04"
_SIG_CENTRAL = b"PK\x01\x02"
_SIG_EOCD = b"PK\x05\x06"
_SIG_EOCD64 = b"PK\x06\x06"
_SIG_LOCATOR64 = b"PK\x06\x07"
_SIG_DESCRIPTOR = b"PK\x07\x08"
_EOCD = struct.Struct("<4s4H2LH")  # 22 bytes
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # 56 bytes
_LOCATOR64 = struct.Struct("<4sLQL")  # 20 bytes
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # 46 bytes
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # 30 bytes
_U16 = 0xFFFF
_U32 = 0xFFFFFFFF

_FLAG_ENCRYPTED = 0x0001
_FLAG_DESCRIPTOR = 0x0008
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_FLAG_MASKED_HEADERS = 0x2000
_STORED, _DEFLATED, _AES = 0, 8, 99

# Content problems are not worth inflating for once these are found: the archive is rejected
# anyway and inflating (say) overlapping entries only burns CPU.
_FATAL_RULES = frozenset(
    {"not-a-zip", "malformed", "overlapping-entries", "too-many-files", "too-large", "zip-bomb"}
)


class ArchiveRejected(MixpeekError):
    """The archive failed the gate; ``violations`` lists every problem found.

    Args:
        violations: what was wrong, entry by entry (``file`` is the entry name, ``""`` for the
            archive as a whole; ``line`` and ``column`` are 0; ``rule`` is a stable id).
        sha256: the archive's digest when it could be computed, for logs.
    """

    def __init__(self, violations: list[Violation], *, sha256: str | None = None) -> None:
        super().__init__(ErrorCode.ARCHIVE_REJECTED, "Archive rejected")
        self.violations = list(violations)
        self.sha256 = sha256

    @property
    def rules(self) -> set[str]:
        """The distinct rule ids violated (handy for tests and logs)."""
        return {v.rule for v in self.violations}

    def to_response(self) -> dict[str, Any]:
        return {
            "detail": self.detail,
            "code": self.code.value,
            "violations": [v.model_dump() for v in self.violations],
        }

    def __str__(self) -> str:
        shown = "; ".join(f"{v.rule} {v.file!r}: {v.message}" for v in self.violations[:5])
        more = len(self.violations) - 5
        return f"Archive rejected: {shown}" + (f" (and {more} more)" if more > 0 else "")


@dataclass
class ExtractedArchive:
    """A plugin archive that passed the gate, extracted on disk.

    Args:
        root: the plugin root: the single top-level folder when every entry sits under one
            (``my_extractor/manifest.py``), else the destination directory itself.
        sha256: hex digest of the archive bytes.
        files: relative POSIX path under ``root`` -> hex sha256 of that file's content.
        total_bytes: bytes written (the sum of the extracted files' sizes).
        compressed_bytes: size of the archive.
        ignored: entries checked but deliberately not extracted (macOS ``__MACOSX/`` and
            ``.DS_Store`` metadata).
    """

    root: Path
    sha256: str
    files: dict[str, str]
    total_bytes: int
    compressed_bytes: int
    ignored: list[str] = field(default_factory=list)

    @property
    def python_files(self) -> list[Path]:
        """Absolute paths of the extracted ``.py`` files, sorted: what the scanner reads."""
        return [self.root / rel for rel in sorted(self.files) if rel.endswith(".py")]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def extract_archive(
    source: Path | str | BinaryIO | bytes,
    dest: Path,
    *,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    protected_modules: frozenset[str] = DEFAULT_PROTECTED_MODULES,
    require_manifest: bool = True,
) -> ExtractedArchive:
    """Check a plugin archive and extract it into ``dest``.

    All checks run before the archive is accepted; violations are collected (not just the
    first) and raised together. On rejection ``dest`` is left empty.

    Args:
        source: the archive: a path, a binary stream (read from its current position to its
            end; a non-seekable stream is first spooled to an anonymous temporary file, within
            ``max_compressed_bytes``), or bytes.
        dest: an empty directory, private to the caller; created with mode 0o700 when missing.
        limits: size, count and shape bounds.
        protected_modules: top-level module names the plugin root must not define (compared
            case-insensitively, after NFKC normalisation).
        require_manifest: the root must hold a ``manifest.py`` (a plugin; an uploaded model's
            directory goes through the same gate without one).

    Returns:
        The extracted archive: plugin root, archive digest and per-file digests.

    Raises:
        ArchiveRejected: the archive failed the gate.
        ValueError: ``dest`` is not an empty, real directory (a caller bug, not the archive's).
    """
    dest = _prepare_dest(Path(dest))
    try:
        with _open_source(source, limits) as src:
            return _Gate(src, limits, protected_modules, require_manifest).run(dest)
    except BaseException:
        _empty_directory(dest)
        raise


@contextlib.contextmanager
def open_plugin_archive(
    source: Path | str | BinaryIO | bytes,
    *,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    protected_modules: frozenset[str] = DEFAULT_PROTECTED_MODULES,
) -> Iterator[ExtractedArchive]:
    """Extract a plugin archive into a private temporary directory for the life of a block.

    Args:
        source: as for :func:`extract_archive`.
        limits: as for :func:`extract_archive`.
        protected_modules: as for :func:`extract_archive`.

    Returns:
        A context manager yielding the :class:`ExtractedArchive`; the temporary directory
        (mode 0o700) is removed on exit, whether the block succeeded, failed or the archive
        was rejected.

    Example:
        >>> with open_plugin_archive(Path("plugin.zip")) as extracted:  # doctest: +SKIP
        ...     scan(extracted.python_files)
    """
    tmp = Path(tempfile.mkdtemp(prefix="mixpeek-plugin-"))  # mkdtemp: mode 0o700
    try:
        yield extract_archive(source, tmp, limits=limits, protected_modules=protected_modules)
    finally:
        _rmtree(tmp)


def build_archive(root: Path, dest_zip: Path | None = None) -> bytes | Path:
    """Zip a plugin directory deterministically, in the form the gate accepts.

    Entries are the regular files under ``root`` (flat: ``manifest.py`` at the top), sorted,
    deflated, with a fixed timestamp (1980-01-01) and mode 0o644, so two builds of the same
    sources give the same bytes (and sha256). ``__pycache__``, ``.git``, ``*.pyc`` / ``*.pyo``,
    ``.DS_Store`` and other hidden files or folders are left out.

    Args:
        root: the plugin directory (the one holding ``manifest.py``).
        dest_zip: where to write the archive (atomically replaced); ``None`` returns the bytes.

    Returns:
        The archive bytes, or ``dest_zip`` once written.

    Raises:
        ValueError: ``root`` is not a directory, or holds a symbolic link or special file
            (following a link could package files from outside the plugin).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    files = _plugin_files(root)

    def write(fileobj: BinaryIO) -> None:
        # Entries opened from a ZipInfo use zlib's default level (6): the same bytes each build
        # for a given zlib (other zlib builds may deflate differently; the gate accepts both).
        with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel in files:
                path = root / rel
                info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix, so the mode bits below mean what they say
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.file_size = path.stat().st_size
                with path.open("rb") as src, zf.open(info, "w") as out:
                    shutil.copyfileobj(src, out, _READ_CHUNK)

    if dest_zip is None:
        buffer = io.BytesIO()
        write(buffer)
        return buffer.getvalue()
    dest_zip = Path(dest_zip)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".zip", dir=dest_zip.parent)
    try:
        with os.fdopen(fd, "w+b") as out:
            write(out)
        os.replace(tmp_name, dest_zip)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return dest_zip


# --------------------------------------------------------------------------------------------
# Source handling
# --------------------------------------------------------------------------------------------


class _Stop(Exception):
    """Internal: a violation makes further checking pointless or unsafe."""


class _Source:
    """Random access to the archive bytes ``[base, base + size)`` of a seekable stream."""

    def __init__(self, fp: BinaryIO, base: int, size: int) -> None:
        self.fp = fp
        self.base = base
        self.size = size

    def read_at(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``, or fewer when the archive ends first."""
        if offset < 0 or offset >= self.size or length <= 0:
            return b""
        self.fp.seek(self.base + offset)
        return self.fp.read(min(length, self.size - offset))

    def iter_range(self, offset: int, length: int, chunk: int = _READ_CHUNK) -> Iterator[bytes]:
        """The bytes ``[offset, offset + length)`` in chunks of at most ``chunk`` bytes."""
        end = min(offset + length, self.size)
        self.fp.seek(self.base + offset)
        while offset < end:
            data = self.fp.read(min(chunk, end - offset))
            if not data:
                return
            offset += len(data)
            yield data


def _too_large_archive(size: int | None, limits: ArchiveLimits) -> ArchiveRejected:
    shown = f"{size} bytes" if size is not None else "more"
    return ArchiveRejected(
        [
            Violation(
                file=ARCHIVE,
                message=f"archive is {shown}; at most {limits.max_compressed_bytes} bytes allowed",
                rule="too-large",
            )
        ]
    )


@contextlib.contextmanager
def _open_source(source: Path | str | BinaryIO | bytes, limits: ArchiveLimits) -> Iterator[_Source]:
    """Open the archive for random access, refusing an oversized one before reading it."""
    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveRejected(
                [Violation(file=ARCHIVE, message="not a regular file", rule="not-a-zip")]
            )
        if st.st_size > limits.max_compressed_bytes:
            raise _too_large_archive(st.st_size, limits)
        with path.open("rb") as fp:
            # Size of what was actually opened, not of what the name pointed at a moment ago.
            size = os.fstat(fp.fileno()).st_size
            if size > limits.max_compressed_bytes:
                raise _too_large_archive(size, limits)
            yield _Source(fp, 0, size)
        return
    stream: BinaryIO = source  # type: ignore[assignment]
    if stream.seekable():
        base = stream.tell()
        size = stream.seek(0, os.SEEK_END) - base
        if size > limits.max_compressed_bytes:
            raise _too_large_archive(size, limits)
        yield _Source(stream, base, size)
        return
    # A network body or pipe: copy it out, counting, so the limit holds without buffering it
    # in memory; TemporaryFile is anonymous (already unlinked) and private to this process.
    with tempfile.TemporaryFile(prefix="mixpeek-archive-") as spool:
        size = 0
        while chunk := stream.read(_READ_CHUNK):
            size += len(chunk)
            if size > limits.max_compressed_bytes:
                raise _too_large_archive(None, limits)
            spool.write(chunk)
        yield _Source(spool, 0, size)


# --------------------------------------------------------------------------------------------
# Destination handling
# --------------------------------------------------------------------------------------------


def _prepare_dest(dest: Path) -> Path:
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        os.mkdir(dest, 0o700)
        return dest
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{dest} must be a real directory, not a link or a file")
    if any(os.scandir(dest)):
        raise ValueError(f"{dest} must be empty")
    return dest


def _empty_directory(dest: Path) -> None:
    """Remove everything inside ``dest`` (which held nothing before we started)."""
    with contextlib.suppress(FileNotFoundError), os.scandir(dest) as entries:
        for entry in list(entries):
            if entry.is_dir(follow_symlinks=False):
                _rmtree(Path(entry.path))
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _rmtree(path: Path) -> None:
    """Remove a tree we created, even where something made parts of it read-only."""

    def retry(func: Any, target: str, *_: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)  # pragma: no cover (3.11)


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_HAVE_DIR_FD = os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd


class _Writer:
    """Creates directories and files under ``dest`` without ever resolving a link.

    Every path component is opened relative to its parent's descriptor with ``O_NOFOLLOW``,
    so even a link planted concurrently inside ``dest`` cannot redirect a write.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest

    def _mkdirs(self, parts: tuple[str, ...]) -> int | None:
        """Open (creating, mode 0o700) the directory ``dest/parts``; its fd, or None."""
        if not _HAVE_DIR_FD:  # pragma: no cover (platforms without openat)
            current = self.dest
            for part in parts:
                current = current / part
                with contextlib.suppress(FileExistsError):
                    os.mkdir(current, 0o700)
                if current.is_symlink() or not current.is_dir():
                    raise OSError(f"{current} is not a directory")
            return None
        fd = os.open(self.dest, _DIR_FLAGS)
        try:
            for part in parts:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def make_dir(self, parts: tuple[str, ...]) -> None:
        fd = self._mkdirs(parts)
        if fd is not None:
            os.close(fd)

    def open_file(self, parts: tuple[str, ...]) -> int:
        """A new file ``dest/parts`` (mode 0o600), open for writing; fails if it exists."""
        parent = self._mkdirs(parts[:-1])
        if parent is None:  # pragma: no cover (platforms without openat)
            return os.open(self.dest.joinpath(*parts), _FILE_FLAGS, 0o600)
        try:
            return os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=parent)
        finally:
            os.close(parent)


# --------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One central-directory entry and what the gate learned about it."""

    index: int
    name: str  # decoded, or a printable stand-in when it could not be
    raw_name: bytes | None
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    offset: int  # absolute offset of the local header in the archive
    mode: int
    parts: tuple[str, ...] | None = None  # set when the name is valid
    is_dir: bool = False
    ignored: bool = False
    zip64: bool = False
    data_start: int = -1
    span_end: int = -1
    readable: bool = True  # False: skip inflating (bad header, encrypted, unknown method...)


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little")


def _display(name: str) -> str:
    """A name safe to show in a report: controls escaped, length bounded."""
    out = "".join(
        c if unicodedata.category(c) not in _BAD_CATEGORIES else repr(c)[1:-1] for c in name
    )
    return out if len(out) <= 300 else out[:300] + "..."


def _fold(name: str) -> str:
    """The key under which two names collide on some file system or import system."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def _sniff(head: bytes) -> tuple[str, str] | None:
    """Classify content by its first bytes: ``(rule, what)`` for forbidden kinds, else None."""
    for magic, what in _NATIVE_MAGIC:
        if head.startswith(magic):
            return "native-code", what
    if head.startswith(b"MZ") and len(head) >= 64:
        pe_at = int.from_bytes(head[60:64], "little")
        if head[pe_at : pe_at + 4] == b"PE\x00\x00" or head.startswith(b"MZ\x90\x00"):
            return "native-code", "a Windows (PE) executable or DLL"
    # CPython bytecode: a 2-byte version magic (3.x: 2900..4000, whose high byte is a control
    # character, so text never matches) followed by b"\r\n".
    if len(head) >= 16 and head[2:4] == b"\r\n" and 2900 <= _u16(head, 0) <= 4000:
        return "compiled-code", "compiled Python bytecode"
    for magic, what in _ARCHIVE_MAGIC:
        if head.startswith(magic):
            return "nested-archive", what
    if _BZIP2.match(head):
        return "nested-archive", "a bzip2 stream"
    if head[257:262] == b"ustar":
        return "nested-archive", "a tar archive"
    return None


class _Gate:
    """One run of the gate over one archive (the state of that run)."""

    def __init__(
        self,
        src: _Source,
        limits: ArchiveLimits,
        protected: frozenset[str],
        require_manifest: bool = True,
    ) -> None:
        self.require_manifest = require_manifest
        self.src = src
        self.limits = limits
        self.protected = {_fold(m) for m in protected} - {_fold(m) for m in PLUGIN_MODULES}
        self.violations: list[Violation] = []
        self._seen: set[tuple[str, str, str]] = set()
        self.sha256: str | None = None
        self.cd_at = 0  # absolute offset of the central directory
        self.concat = 0  # bytes before the archive's own offset 0

    # -- bookkeeping -------------------------------------------------------------------------

    def flag(self, file: str, rule: str, message: str) -> None:
        key = (file, rule, message)
        if key in self._seen:
            return
        self._seen.add(key)
        if len(self.violations) < _MAX_VIOLATIONS:
            self.violations.append(Violation(file=_display(file), message=message, rule=rule))

    def stop(self, file: str, rule: str, message: str) -> _Stop:
        self.flag(file, rule, message)
        return _Stop()

    @property
    def fatal(self) -> bool:
        return any(v.rule in _FATAL_RULES for v in self.violations)

    # -- driver ------------------------------------------------------------------------------

    def run(self, dest: Path) -> ExtractedArchive:
        """Check everything, extract when clean; raise ArchiveRejected otherwise."""
        result: ExtractedArchive | None = None
        try:
            self.sha256 = self._hash()
            entries = self._read_structure()
            root_parts = self._check_entries(entries)
            self._check_layout(entries)
            if not self.fatal:
                result = self._inflate(entries, dest, root_parts)
        except _Stop:
            pass
        if self.violations or result is None:
            _empty_directory(dest)
            raise ArchiveRejected(self.violations, sha256=self.sha256)
        return result

    def _hash(self) -> str:
        if self.src.size == 0:
            raise self.stop(ARCHIVE, "not-a-zip", "the file is empty")
        digest = hashlib.sha256()
        for chunk in self.src.iter_range(0, self.src.size, 1 * MiB):
            digest.update(chunk)
        return digest.hexdigest()

    # -- structure: end record, central directory --------------------------------------------

    def _read_structure(self) -> list[_Entry]:
        size = self.src.size
        tail_len = min(size, _EOCD.size + _U16)
        tail_at = size - tail_len
        tail = self.src.read_at(tail_at, tail_len)

        # Every end record in the tail that could plausibly be one; a chance occurrence of the
        # signature inside compressed data almost never parses as a consistent record.
        candidates: list[tuple[int, tuple[int, ...]]] = []
        at = tail.rfind(_SIG_EOCD)
        while at >= 0:
            if at + _EOCD.size <= len(tail):
                rec = _EOCD.unpack_from(tail, at)
                _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, _clen = rec
                absolute = tail_at + at
                plausible = (
                    disk in (0, _U16)
                    and cd_disk in (0, _U16)
                    and n_disk == n_total
                    and (cd_size == _U32 or cd_offset == _U32 or cd_size + cd_offset <= absolute)
                )
                if plausible:
                    candidates.append((absolute, rec))
            at = tail.rfind(_SIG_EOCD, 0, at)
        if not candidates:
            if self.src.read_at(0, 4) == _SIG_LOCAL:
                raise self.stop(ARCHIVE, "malformed", "no end of central directory record")
            raise self.stop(ARCHIVE, "not-a-zip", "not a zip archive")

        exact = [c for c in candidates if c[0] + _EOCD.size + c[1][7] == size]
        eocd_at, rec = exact[0] if exact else candidates[0]  # candidates are last-first
        if len(candidates) > 1:
            self.flag(
                ARCHIVE,
                "multiple-archives",
                f"{len(candidates)} end-of-archive records: the file holds more than one archive",
            )
        comment_end = eocd_at + _EOCD.size + rec[7]
        if comment_end > size:
            raise self.stop(ARCHIVE, "malformed", "archive comment runs past the end of the file")
        if comment_end < size:
            trailing = self.src.read_at(comment_end, size - comment_end)
            if _SIG_LOCAL in trailing or _SIG_CENTRAL in trailing:
                self.flag(
                    ARCHIVE,
                    "multiple-archives",
                    f"{size - comment_end} bytes after the end of the archive hold zip structures",
                )
            else:
                self.flag(
                    ARCHIVE,
                    "trailing-data",
                    f"{size - comment_end} bytes after the end of the archive",
                )
        comment = self.src.read_at(eocd_at + _EOCD.size, rec[7])
        if _SIG_LOCAL in comment or _SIG_CENTRAL in comment:
            self.flag(ARCHIVE, "multiple-archives", "the archive comment holds zip structures")

        _, disk, cd_disk, _n_disk, n_total, cd_size, cd_offset, _ = rec
        structures_at = eocd_at  # where the trailing structures (zip64 ones, then EOCD) begin
        locator = self.src.read_at(eocd_at - _LOCATOR64.size, _LOCATOR64.size)
        if eocd_at >= _LOCATOR64.size and locator[:4] == _SIG_LOCATOR64:
            _, l_disk, rec64_offset, l_disks = _LOCATOR64.unpack(locator)
            rec64_at = eocd_at - _LOCATOR64.size - _EOCD64.size
            rec64 = self.src.read_at(rec64_at, _EOCD64.size)
            if rec64_at < 0 or len(rec64) < _EOCD64.size or rec64[:4] != _SIG_EOCD64:
                raise self.stop(ARCHIVE, "malformed", "bad zip64 end of central directory")
            (_, rec_size, _, _, disk64, cd_disk64, n_disk64, n_total, cd_size, cd_offset) = (
                _EOCD64.unpack(rec64)
            )
            if rec_size != _EOCD64.size - 12:
                raise self.stop(ARCHIVE, "malformed", "zip64 extensible data is not supported")
            if l_disk or l_disks > 1 or disk64 or cd_disk64 or n_disk64 != n_total:
                raise self.stop(ARCHIVE, "malformed", "multi-volume archives are not supported")
            structures_at = rec64_at
            expected_rec64 = rec64_offset
        else:
            expected_rec64 = None
            if disk or cd_disk:
                raise self.stop(ARCHIVE, "malformed", "multi-volume archives are not supported")

        # Bytes before the central directory that its offsets do not account for: a prefix
        # (polyglot, self-extractor stub) or an earlier archive. zipfile calls this "concat".
        concat = structures_at - cd_size - cd_offset
        if concat < 0:
            raise self.stop(ARCHIVE, "malformed", "central directory extends past its end record")
        if expected_rec64 is not None and expected_rec64 + concat != structures_at:
            raise self.stop(ARCHIVE, "malformed", "zip64 locator points to the wrong place")
        if concat > 0:
            self.flag(
                ARCHIVE,
                "multiple-archives",
                f"{concat} bytes before the archive's own data (a prefix or another archive)",
            )
        cd_at = cd_offset + concat
        self.cd_at = cd_at
        self.concat = concat
        if n_total == 0:
            if cd_size:
                raise self.stop(ARCHIVE, "malformed", "central directory size without entries")
            raise self.stop(ARCHIVE, "empty", "the archive has no entries")
        cap = 2 * self.limits.max_files
        if n_total > cap:
            raise self.stop(
                ARCHIVE,
                "too-many-files",
                f"{n_total} entries; at most {self.limits.max_files} files allowed",
            )
        return self._read_central_directory(cd_at, cd_size, n_total, concat)

    def _read_central_directory(
        self, cd_at: int, cd_size: int, n_total: int, concat: int
    ) -> list[_Entry]:
        entries: list[_Entry] = []
        pos, end = cd_at, cd_at + cd_size
        for index in range(n_total):
            fixed = self.src.read_at(pos, _CENTRAL.size)
            if pos + _CENTRAL.size > end or len(fixed) < _CENTRAL.size or fixed[:4] != _SIG_CENTRAL:
                raise self.stop(ARCHIVE, "malformed", f"central directory entry {index} is corrupt")
            (
                _sig, _cver, _system, _xver, _xsys, flags, method, _time, _date, crc,
                compressed, size, n_len, x_len, c_len, disk_start, _iattr, eattr, offset,
            ) = _CENTRAL.unpack(fixed)  # fmt: skip
            pos += _CENTRAL.size
            if pos + n_len + x_len + c_len > end:
                raise self.stop(ARCHIVE, "malformed", f"central directory entry {index} overruns")
            raw_name: bytes | None = None
            if n_len <= _MAX_NAME_BYTES:
                raw_name = self.src.read_at(pos, n_len)
                shown = raw_name.decode("utf-8", "replace")
            else:
                shown = self.src.read_at(pos, 200).decode("utf-8", "replace") + "..."
            extra = self.src.read_at(pos + n_len, x_len)
            pos += n_len + x_len + c_len
            entry = _Entry(
                index=index,
                name=shown,
                raw_name=raw_name,
                flags=flags,
                method=method,
                crc=crc,
                compressed=compressed,
                size=size,
                offset=offset,
                # Unix mode bits; checked whatever system wrote the entry, since a link or a
                # device disguised as a DOS entry is still not something we want.
                mode=eattr >> 16,
            )
            wide = (size == _U32, compressed == _U32, offset == _U32, disk_start == _U16)
            if any(wide):
                self._apply_zip64(entry, extra, *wide)
            elif disk_start != 0:
                raise self.stop(entry.name, "malformed", "entry lives on another volume")
            entry.offset += concat
            entries.append(entry)
        if pos != end:
            self.flag(
                ARCHIVE, "hidden-data", "bytes inside the central directory belong to no entry"
            )
        return entries

    def _apply_zip64(
        self, entry: _Entry, extra: bytes, size: bool, compressed: bool, offset: bool, disk: bool
    ) -> None:
        """Take the 64-bit sizes/offset from the zip64 extra field, in APPNOTE's order."""
        at = 0
        while at + 4 <= len(extra):
            tag, length = struct.unpack_from("<2H", extra, at)
            body = extra[at + 4 : at + 4 + length]
            if len(body) < length:
                break
            if tag == 0x0001:
                need = 8 * (size + compressed + offset) + 4 * disk
                if length < need:
                    break
                cursor = 0
                for present, attr in (
                    (size, "size"),
                    (compressed, "compressed"),
                    (offset, "offset"),
                ):
                    if present:
                        setattr(entry, attr, struct.unpack_from("<Q", body, cursor)[0])
                        cursor += 8
                if disk and struct.unpack_from("<L", body, cursor)[0] != 0:
                    raise self.stop(entry.name, "malformed", "entry lives on another volume")
                entry.zip64 = True
                return
            at += 4 + length
        raise self.stop(entry.name, "malformed", "entry needs a zip64 extra field it lacks")

    # -- per-entry and whole-archive checks (no data read yet) -------------------------------

    def _check_name(self, entry: _Entry) -> None:
        raw = entry.raw_name
        if raw is None:
            self.flag(entry.name, "path-too-long", "entry name is absurdly long")
            return
        try:
            if entry.flags & _FLAG_UTF8:
                name = raw.decode("utf-8")
            else:
                # Without the UTF-8 flag, zip says cp437; every tool in practice writes ASCII
                # or UTF-8, and guessing between code pages is how two tools disagree on a name.
                name = raw.decode("ascii") if raw.isascii() else raw.decode("utf-8")
        except UnicodeDecodeError:
            self.flag(entry.name, "bad-name", "entry name is not valid UTF-8")
            return
        entry.name = name
        ok = True
        if not name:
            self.flag(name, "bad-name", "entry has an empty name")
            return
        if "\x00" in name:
            self.flag(name, "control-character", "entry name contains a NUL byte")
            ok = False
        elif any(unicodedata.category(c) in _BAD_CATEGORIES for c in name):
            self.flag(
                name, "control-character", "entry name contains control or invisible characters"
            )
            ok = False
        if "\\" in name:
            self.flag(name, "backslash", "entry name contains a backslash")
            ok = False
        # Judge the path as every platform would read it: backslashes as separators too.
        portable = name.replace("\\", "/")
        if portable.startswith("/") or _DRIVE.match(portable):
            self.flag(name, "absolute-path", "entry name is an absolute path")
            ok = False
        is_dir = portable.endswith("/")
        parts = portable.strip("/").split("/") if portable.strip("/") else []
        if ".." in parts:
            self.flag(name, "path-traversal", "entry name has a '..' component")
            ok = False
        if any(p in ("", ".") for p in parts) or not parts:
            self.flag(name, "bad-name", "entry name has an empty or '.' component")
            ok = False
        encoded = len(name.rstrip("/").encode("utf-8"))
        if encoded > self.limits.max_path_length:
            self.flag(
                name,
                "path-too-long",
                f"entry name is {encoded} bytes; at most {self.limits.max_path_length} allowed",
            )
            ok = False
        elif any(len(p.encode("utf-8")) > 255 for p in parts):
            self.flag(name, "path-too-long", "a path component is longer than 255 bytes")
            ok = False
        if len(parts) > self.limits.max_depth:
            self.flag(
                name,
                "path-too-deep",
                f"entry is {len(parts)} levels deep; at most {self.limits.max_depth} allowed",
            )
            ok = False
        entry.is_dir = is_dir
        if ok:
            entry.parts = tuple(parts)
            entry.ignored = parts[0] == _IGNORED_TOP or parts[-1] in _IGNORED_NAMES

    def _check_kind(self, entry: _Entry) -> None:
        name = entry.name
        kind = stat.S_IFMT(entry.mode)
        if kind == stat.S_IFLNK:
            self.flag(name, "symlink", "entry is a symbolic link")
            entry.readable = False
        elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            what = {
                stat.S_IFIFO: "a FIFO",
                stat.S_IFCHR: "a character device",
                stat.S_IFBLK: "a block device",
                stat.S_IFSOCK: "a socket",
            }.get(kind, "not a regular file")
            self.flag(name, "not-regular-file", f"entry is {what}")
            entry.readable = False
        elif kind == stat.S_IFDIR and not entry.is_dir:
            # Extracted as a file, read by other tools as a folder: ambiguous, so refused.
            self.flag(name, "not-regular-file", "entry has directory mode but a file name")
        if entry.is_dir and (entry.size or entry.compressed > 2):
            self.flag(name, "not-regular-file", "directory entry carries data")
            entry.readable = False
        if (
            entry.flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS)
            or entry.method == _AES
        ):
            self.flag(name, "encrypted", "entry is encrypted")
            entry.readable = False
        elif entry.method not in (_STORED, _DEFLATED):
            self.flag(
                name,
                "compression-method",
                f"compression method {entry.method} (only stored and deflated are accepted)",
            )
            entry.readable = False
        elif entry.method == _STORED and entry.size != entry.compressed:
            self.flag(name, "header-mismatch", "stored entry with differing sizes")
            entry.readable = False

    def _check_suffix(self, entry: _Entry) -> None:
        if entry.is_dir or entry.parts is None:
            return
        lower = entry.parts[-1].lower()
        if lower.endswith(_COMPILED_SUFFIXES):
            self.flag(entry.name, "compiled-code", "compiled Python bytecode is not accepted")
        elif lower.endswith(_NATIVE_SUFFIXES) or _VERSIONED_SO.search(lower):
            self.flag(entry.name, "native-code", "native code is not accepted (pure Python only)")
        elif lower.endswith(".pth"):
            self.flag(entry.name, "pth-file", ".pth files run code at interpreter start-up")
        elif lower.endswith(_ARCHIVE_SUFFIXES):
            self.flag(entry.name, "nested-archive", "archives inside the archive are not accepted")

    def _check_entries(self, entries: list[_Entry]) -> tuple[str, ...]:
        """Names, kinds, sizes, uniqueness and module shadowing; returns the root's parts."""
        limits = self.limits
        for entry in entries:
            self._check_name(entry)
            self._check_kind(entry)
            self._check_suffix(entry)

        files = [e for e in entries if not e.is_dir]
        dirs = [e for e in entries if e.is_dir]
        if len(files) > limits.max_files:
            self.flag(ARCHIVE, "too-many-files", f"{len(files)} files; at most {limits.max_files}")
        if len(dirs) > limits.max_files:
            self.flag(ARCHIVE, "too-many-files", f"{len(dirs)} directory entries is too many")
        if all(e.ignored for e in files):  # nothing at all, or only macOS metadata
            self.flag(ARCHIVE, "empty", "the archive holds no files")

        # Declared sizes: a cheap early refusal. The real bound is enforced while inflating,
        # where an entry can never produce more than it declared.
        total = 0
        for e in files:
            total += e.size
            if e.size > limits.file_limit:
                self.flag(
                    e.name,
                    "too-large",
                    f"entry inflates to {e.size} bytes; at most {limits.file_limit}",
                )
            elif e.size > limits.ratio_exempt_bytes and e.size > limits.max_ratio * max(
                e.compressed, 1
            ):
                self.flag(
                    e.name,
                    "zip-bomb",
                    f"entry claims a {e.size / max(e.compressed, 1):.0f}:1 compression ratio",
                )
        if total > limits.max_extracted_bytes:
            self.flag(
                ARCHIVE,
                "too-large",
                f"entries inflate to {total} bytes; at most {limits.max_extracted_bytes}",
            )
        elif total > limits.ratio_exempt_bytes and total > limits.max_ratio * self.src.size:
            self.flag(
                ARCHIVE,
                "zip-bomb",
                f"archive claims a {total / self.src.size:.0f}:1 compression ratio",
            )

        valid = [e for e in entries if e.parts is not None]
        self._check_unique(valid)
        kept = [e for e in valid if not e.ignored]
        root = self._root_of(kept)
        self._check_root(kept, root)
        return root

    def _check_unique(self, entries: list[_Entry]) -> None:
        """Exact duplicates, case/Unicode-normalisation twins and file-versus-folder clashes."""
        seen: dict[str, tuple[str, bool]] = {}  # folded path -> (path as written, is_dir)
        explicit_dirs: set[str] = set()

        def register(path: str, is_dir: bool, explicit: bool) -> None:
            key = _fold(path)
            if key not in seen:
                seen[key] = (path, is_dir)
                if explicit and is_dir:
                    explicit_dirs.add(path)
                return
            first, first_is_dir = seen[key]
            if first != path:
                self.flag(
                    path,
                    "duplicate-name",
                    f"{path!r} and {first!r} differ only by case or Unicode form",
                )
            elif is_dir != first_is_dir:
                self.flag(path, "duplicate-name", f"{path!r} is both a file and a directory")
            elif not is_dir:
                self.flag(path, "duplicate-name", f"{path!r} appears more than once")
            elif explicit:
                if path in explicit_dirs:
                    self.flag(
                        path + "/", "duplicate-name", "directory entry appears more than once"
                    )
                explicit_dirs.add(path)

        for e in entries:
            assert e.parts is not None
            for i in range(1, len(e.parts)):
                register("/".join(e.parts[:i]), True, False)
            register("/".join(e.parts), e.is_dir, True)

    def _root_of(self, entries: list[_Entry]) -> tuple[str, ...]:
        """The single top-level folder holding everything, or () for the archive root."""
        tops = {e.parts[0] for e in entries if e.parts}
        if len(tops) != 1:
            return ()
        top = next(iter(tops))
        if any(not e.is_dir and len(e.parts or ()) == 1 for e in entries):
            return ()  # a file named like the folder sits at the top: no single folder
        return (top,)

    def _check_root(self, entries: list[_Entry], root: tuple[str, ...]) -> None:
        """``manifest.py`` present; no top-level module shadowing a protected one."""
        depth = len(root)
        has_files = False
        has_manifest = False
        reported: set[str] = set()
        for e in entries:
            assert e.parts is not None
            rel = e.parts[depth:]
            if not rel:
                continue
            if not e.is_dir:
                has_files = True
                if rel == ("manifest.py",):
                    has_manifest = True
            top = rel[0]
            if len(rel) == 1 and not e.is_dir:
                if not top.lower().endswith(".py"):
                    continue
                module, shown = top[:-3], top
            else:
                module, shown = top, top + "/"
            if _fold(module) in self.protected and shown not in reported:
                reported.add(shown)
                self.flag(
                    "/".join((*root, shown)),
                    "shadows-module",
                    f"top-level {shown!r} would shadow the module {module!r}; rename it",
                )
        if has_files and not has_manifest and self.require_manifest:
            where = f"{root[0]}/manifest.py" if root else "manifest.py"
            self.flag(where, "no-manifest", "the plugin root has no manifest.py")

    # -- layout: local headers, overlaps, unaccounted bytes ----------------------------------

    def _check_layout(self, entries: list[_Entry]) -> None:
        """Each entry's local header agrees with the central directory, and the entries tile
        the file from offset 0 up to the central directory, with no gaps and no overlaps."""
        for entry in entries:
            self._read_local_header(entry)
        spans = sorted((e for e in entries if e.span_end >= 0), key=lambda e: (e.offset, e.index))
        if len(spans) < len(entries):
            return  # some local header is unreadable: already reported as malformed
        pos = 0
        previous: _Entry | None = None
        for e in spans:
            if e.offset < pos:
                assert previous is not None
                self.flag(
                    e.name,
                    "overlapping-entries",
                    f"entry data overlaps {previous.name!r} (a non-recursive zip bomb or a "
                    f"disguised entry)",
                )
            elif e.offset > pos:
                if previous is None:
                    if not self.concat:  # else: the same prefix, already reported
                        self.flag(
                            ARCHIVE,
                            "multiple-archives",
                            f"{e.offset} bytes before the first entry (a prefix or another archive)",
                        )
                else:
                    self.flag(
                        e.name,
                        "hidden-data",
                        f"{e.offset - pos} unreferenced bytes before this entry",
                    )
            if e.span_end > pos:
                pos = e.span_end
                previous = e
        if self.cd_at < pos:
            self.flag(ARCHIVE, "overlapping-entries", "entry data overlaps the central directory")
        elif self.cd_at > pos and spans:
            self.flag(
                ARCHIVE,
                "hidden-data",
                f"{self.cd_at - pos} unreferenced bytes before the central directory",
            )

    def _read_local_header(self, entry: _Entry) -> None:
        header = self.src.read_at(entry.offset, _LOCAL.size)
        if (
            entry.offset + _LOCAL.size > self.cd_at
            or len(header) < _LOCAL.size
            or header[:4] != _SIG_LOCAL
        ):
            self.flag(entry.name, "malformed", "local header missing or outside the entry area")
            entry.readable = False
            return
        (_, _, _, flags, method, _, _, crc, compressed, size, n_len, x_len) = _LOCAL.unpack(header)
        entry.data_start = entry.offset + _LOCAL.size + n_len + x_len
        data_end = entry.data_start + entry.compressed
        mismatch: list[str] = []
        if (
            entry.raw_name is not None
            and self.src.read_at(entry.offset + _LOCAL.size, n_len) != entry.raw_name
        ):
            mismatch.append("name")
        if method != entry.method:
            mismatch.append("compression method")
        if (flags ^ entry.flags) & (_FLAG_ENCRYPTED | _FLAG_DESCRIPTOR):
            mismatch.append("flags")
        if not entry.flags & _FLAG_DESCRIPTOR and not mismatch:
            if compressed == _U32 or size == _U32:
                compressed, size = self._local_zip64_sizes(entry, x_len, compressed, size)
            if crc != entry.crc:
                mismatch.append("CRC")
            if (compressed, size) != (entry.compressed, entry.size):
                mismatch.append("sizes")
        descriptor = 0
        if entry.flags & _FLAG_DESCRIPTOR and not mismatch:
            found = self._descriptor_length(entry, data_end)
            if found is None:
                mismatch.append("data descriptor")
            else:
                descriptor = found
        if mismatch:
            self.flag(
                entry.name,
                "header-mismatch",
                f"local header disagrees with the central directory ({', '.join(mismatch)})",
            )
            entry.readable = False
        entry.span_end = data_end + descriptor
        if entry.span_end > self.cd_at:
            self.flag(
                entry.name, "overlapping-entries", "entry data runs into the central directory"
            )
            entry.readable = False

    def _local_zip64_sizes(
        self, entry: _Entry, x_len: int, compressed: int, size: int
    ) -> tuple[int, int]:
        extra = self.src.read_at(entry.data_start - x_len, x_len)
        at = 0
        while at + 4 <= len(extra):
            tag, length = struct.unpack_from("<2H", extra, at)
            body = extra[at + 4 : at + 4 + length]
            if tag == 0x0001 and len(body) >= 16:
                # The local zip64 field always holds both sizes, uncompressed first.
                return struct.unpack_from("<Q", body, 8)[0], struct.unpack_from("<Q", body, 0)[0]
            at += 4 + length
        return compressed, size

    def _descriptor_length(self, entry: _Entry, at: int) -> int | None:
        """Length of the data descriptor after an entry's data, if it matches the entry."""
        buf = self.src.read_at(at, 24)
        starts = (4, 0) if buf[:4] == _SIG_DESCRIPTOR else (0,)
        for base in starts:
            for fmt in ("<LLL", "<LQQ"):
                n = struct.calcsize(fmt)
                if len(buf) >= base + n:
                    crc, compressed, size = struct.unpack_from(fmt, buf, base)
                    if (crc, compressed, size) == (entry.crc, entry.compressed, entry.size):
                        return base + n
        return None

    # -- content: inflate, verify, sniff, write ----------------------------------------------

    def _inflate(
        self, entries: list[_Entry], dest: Path, root: tuple[str, ...]
    ) -> ExtractedArchive | None:
        """Inflate every entry under running limits; write them while nothing is wrong."""
        writer = _Writer(dest)
        budget = _Budget(self.limits, self.src.size)
        hashes: dict[str, str] = {}
        ignored: list[str] = []
        written = 0
        for entry in sorted(entries, key=lambda e: e.offset):  # sequential reads
            writing = not self.violations and entry.parts is not None and not entry.ignored
            if entry.is_dir:
                if writing and entry.parts is not None:
                    writer.make_dir(entry.parts)
                continue
            if not entry.readable:
                continue
            fd = writer.open_file(entry.parts) if writing and entry.parts is not None else None
            try:
                digest = self._inflate_entry(entry, budget, fd)
            finally:
                if fd is not None:
                    os.close(fd)
            if budget.exhausted:
                break
            if entry.ignored:
                ignored.append(entry.name)
            elif digest is not None and entry.parts is not None:
                hashes["/".join(entry.parts[len(root) :])] = digest
                written += entry.size
        if self.violations:
            return None
        return ExtractedArchive(
            root=dest.joinpath(*root),
            sha256=self.sha256 or "",
            files=dict(sorted(hashes.items())),
            total_bytes=written,
            compressed_bytes=self.src.size,
            ignored=ignored,
        )

    def _inflate_entry(self, entry: _Entry, budget: _Budget, fd: int | None) -> str | None:
        """Stream one entry through inflate, CRC, sha256 and (optionally) a file."""
        name = entry.name
        produced = 0
        crc = 0
        digest = hashlib.sha256()
        head = bytearray()
        inflater = zlib.decompressobj(-zlib.MAX_WBITS) if entry.method == _DEFLATED else None

        def emit(out: bytes) -> bool:
            nonlocal produced, crc
            if not out:
                return True
            produced += len(out)
            if produced > entry.size:
                # The header lied: stop at the declared size instead of trusting it further.
                self.flag(
                    name, "size-mismatch", f"entry inflates past its declared {entry.size} bytes"
                )
                return False
            if not budget.take(len(out), self, name, produced, entry.compressed):
                return False
            if len(head) < _HEAD_BYTES:
                head.extend(out[: _HEAD_BYTES - len(head)])
            crc = zlib.crc32(out, crc)
            digest.update(out)
            if fd is not None and not self.violations:
                view = memoryview(out)
                while view:
                    view = view[os.write(fd, view) :]
            return True

        ok = True
        try:
            for chunk in self.src.iter_range(entry.data_start, entry.compressed):
                if inflater is None:
                    ok = emit(chunk)
                else:
                    if inflater.eof:
                        ok = False
                        self.flag(name, "corrupt-data", "bytes after the end of the deflate stream")
                        break
                    data = chunk
                    while ok and data:
                        ok = emit(inflater.decompress(data, _OUT_CHUNK))
                        data = inflater.unconsumed_tail
                if not ok:
                    break
            if ok and inflater is not None:
                # Output still pending inside zlib once all input is in.
                while ok and not inflater.eof:
                    out = inflater.decompress(b"", _OUT_CHUNK)
                    if not out:
                        break
                    ok = emit(out)
                if ok and not inflater.eof:
                    ok = False
                    self.flag(name, "corrupt-data", "the deflate stream is truncated")
                elif ok and inflater.unused_data:
                    ok = False
                    self.flag(name, "corrupt-data", "bytes after the end of the deflate stream")
        except zlib.error as exc:
            ok = False
            self.flag(name, "corrupt-data", f"the deflate stream is corrupt ({exc})")
        if not ok:
            return None
        if produced != entry.size:
            self.flag(
                name,
                "size-mismatch",
                f"entry inflates to {produced} bytes, not the declared {entry.size}",
            )
            return None
        if crc != entry.crc:
            self.flag(
                name, "crc-mismatch", f"CRC-32 is {crc:08x}, the archive says {entry.crc:08x}"
            )
            return None
        sniffed = _sniff(bytes(head))
        if sniffed is not None:
            rule, what = sniffed
            self.flag(name, rule, f"content is {what}")
            return None
        return digest.hexdigest()


class _Budget:
    """Running counters over the bytes actually inflated, shared by all entries."""

    def __init__(self, limits: ArchiveLimits, archive_size: int) -> None:
        self.limits = limits
        self.archive_size = archive_size
        self.total = 0
        self.exhausted = False

    def take(self, n: int, gate: _Gate, name: str, produced: int, compressed: int) -> bool:
        """Count ``n`` more inflated bytes of an entry; False (and a violation) past a limit."""
        limits = self.limits
        self.total += n
        if self.total > limits.max_extracted_bytes:
            gate.flag(
                ARCHIVE, "too-large", f"archive inflates past {limits.max_extracted_bytes} bytes"
            )
            self.exhausted = True
            return False
        if (
            self.total > limits.ratio_exempt_bytes
            and self.total > limits.max_ratio * self.archive_size
        ):
            gate.flag(ARCHIVE, "zip-bomb", f"archive inflates past {limits.max_ratio}:1")
            self.exhausted = True
            return False
        if produced > limits.file_limit:
            gate.flag(name, "too-large", f"entry inflates past {limits.file_limit} bytes")
            return False
        if produced > limits.ratio_exempt_bytes and produced > limits.max_ratio * max(
            compressed, 1
        ):
            gate.flag(name, "zip-bomb", f"entry inflates past {limits.max_ratio}:1")
            return False
        return True


def _plugin_files(root: Path) -> list[str]:
    """Relative POSIX paths of the files ``build_archive`` packages, sorted."""
    skip_dirs = {"__pycache__", ".git"}
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for d in list(dirnames):
            path = here / d
            if d in skip_dirs or d.startswith("."):
                dirnames.remove(d)
            elif path.is_symlink():
                raise ValueError(f"{path} is a symbolic link; plugins may not contain links")
        dirnames.sort()
        for f in filenames:
            if f.startswith(".") or f.endswith((".pyc", ".pyo")):
                continue
            path = here / f
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                raise ValueError(f"{path} is a symbolic link; plugins may not contain links")
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(f"{path} is not a regular file")
            found.append(path.relative_to(root).as_posix())
    return sorted(found)
