"""The archive gate: hostile zips are refused with the right rule, clean plugins extract.

Every hostile archive is built here, with :mod:`zipfile` where it can produce the structure and
with raw ``struct`` packing where it will not (overlaps, lying headers, bad CRCs, odd flags).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mixpeek_orchestration.errors import ErrorCode
from mixpeek_orchestration.plugins.archive import (
    ArchiveLimits,
    ArchiveRejected,
    ExtractedArchive,
    build_archive,
    extract_archive,
    open_plugin_archive,
)

MANIFEST = b'metadata = {"feature_extractor_name": "demo", "version": "1.0.0"}\n'
PIPELINE = b"def build_steps(extractor_request, container=None, **kwargs):\n    return {}\n"
CORE = b"class Processor:\n    def __call__(self, batch):\n        return batch\n"

# --------------------------------------------------------------------------------------------
# Raw zip construction
# --------------------------------------------------------------------------------------------


def deflate(data: bytes, level: int = 9) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


@dataclass
class E:
    """One raw entry; every header field can be overridden to lie."""

    name: str | bytes
    data: bytes = b""
    method: int = 8
    flags: int = 0
    mode: int = 0o100644
    create_system: int = 3
    crc: int | None = None
    size: int | None = None  # declared uncompressed size (both headers)
    payload: bytes | None = None  # the raw compressed bytes, when not derived from data
    local_name: bytes | None = None  # a different name in the local header

    @property
    def raw_name(self) -> bytes:
        return self.name if isinstance(self.name, bytes) else self.name.encode("utf-8")

    @property
    def all_flags(self) -> int:
        utf8 = 0x800 if isinstance(self.name, str) and not self.name.isascii() else 0
        return self.flags | utf8

    def compressed(self) -> bytes:
        if self.payload is not None:
            return self.payload
        return deflate(self.data) if self.method == 8 else self.data

    def fields(self) -> tuple[int, int, int]:
        crc = zlib.crc32(self.data) if self.crc is None else self.crc
        size = len(self.data) if self.size is None else self.size
        return crc, len(self.compressed()), size

    def local(self) -> bytes:
        crc, csize, size = self.fields()
        name = self.local_name if self.local_name is not None else self.raw_name
        header = struct.pack(
            "<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, self.all_flags, self.method, 0, 0x21,
            crc, csize, size, len(name), 0,
        )  # fmt: skip
        return header + name + self.compressed()

    def central(self, offset: int) -> bytes:
        crc, csize, size = self.fields()
        header = struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, self.create_system, 20, 0, self.all_flags,
            self.method, 0, 0x21, crc, csize, size, len(self.raw_name), 0, 0, 0, 0,
            (self.mode << 16) & 0xFFFFFFFF, offset,
        )  # fmt: skip
        return header + self.raw_name


def raw_zip(
    entries: list[E],
    *,
    prefix: bytes = b"",
    prefix_in_offsets: bool = False,
    trailing: bytes = b"",
    comment: bytes = b"",
    gaps: dict[int, bytes] | None = None,
    extra_central: list[tuple[E, int]] | None = None,
) -> bytes:
    """A zip file byte by byte. ``extra_central`` adds directory entries at given offsets."""
    base = len(prefix) if prefix_in_offsets else 0
    body = bytearray()
    central = bytearray()
    count = 0
    for i, e in enumerate(entries):
        central += e.central(base + len(body))
        body += e.local()
        body += (gaps or {}).get(i, b"")
        count += 1
    for e, offset in extra_central or []:
        central += e.central(offset)
        count += 1
    eocd = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), base + len(body), len(comment)
    )
    return prefix + bytes(body) + bytes(central) + eocd + comment + trailing


def plugin_entries(*extra: E, top: str = "") -> list[E]:
    return [
        E(top + "manifest.py", MANIFEST),
        E(top + "pipeline.py", PIPELINE),
        E(top + "processors/core.py", CORE),
        *extra,
    ]


def plugin_zip(*extra: E, **kwargs: object) -> bytes:
    return raw_zip(plugin_entries(*extra), **kwargs)  # type: ignore[arg-type]


def zf_zip(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def base_files(**extra: bytes) -> dict[str, bytes]:
    return {"manifest.py": MANIFEST, "pipeline.py": PIPELINE, "processors/core.py": CORE, **extra}


def tar_gz_bytes() -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("evil.py")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"x=1\n"))
    return buf.getvalue()


def tar_bytes() -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("evil.py")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"x=1\n"))
    return buf.getvalue()


def fifield_overlap() -> bytes:
    """The quoted-overlap bomb: entry A's data *is* entry B's local record."""
    inner = E("b.py", b"x = 1\n" * 50)
    outer = E("a.py", inner.local(), method=0)
    return raw_zip(
        [E("manifest.py", MANIFEST), outer],
        extra_central=[(inner, len(E("manifest.py", MANIFEST).local()) + 30 + len(b"a.py"))],
    )


def same_offset_overlap() -> bytes:
    """Many directory entries, one local record (the full-overlap variant)."""
    shared = E("manifest.py", MANIFEST)
    return raw_zip([shared], extra_central=[(E("pipeline.py", MANIFEST), 0)])


def lying_size() -> bytes:
    """Headers say 100 bytes; the deflate stream holds 5 MB."""
    data = b"\0" * 5_000_000
    return plugin_zip(E("weights.bin", data[:100], payload=deflate(data), crc=zlib.crc32(data)))


def overclaiming_size() -> bytes:
    """Headers say more than the stream holds."""
    return plugin_zip(E("notes.txt", b"hello", size=50))


def truncated_deflate() -> bytes:
    good = deflate(b"abc" * 1000)
    return plugin_zip(E("notes.txt", b"abc" * 1000, payload=good[: len(good) // 2]))


def deflate_with_junk() -> bytes:
    data = b"abc" * 1000
    return plugin_zip(E("notes.txt", data, payload=deflate(data) + b"HIDDEN"))


def comment_with_zip() -> bytes:
    return plugin_zip(comment=zf_zip({"evil.py": b"x=1"}))


def two_zips() -> bytes:
    return zf_zip({"evil.py": b"import os\n"}) + zf_zip(base_files())


def small_tail_zip() -> bytes:
    """A big first archive, then a small clean one whose own offsets start at its own 0."""
    return zf_zip({"junk.txt": os.urandom(100_000)}) + zf_zip(base_files())


def local_name_lies() -> bytes:
    return plugin_zip(E("notes.txt", b"hello", local_name=b"evil.py.."))


def aes_entry() -> bytes:
    return plugin_zip(E("secret.py", b"x", method=99, payload=b"\0" * 20))


def dir_with_data() -> bytes:
    return plugin_zip(E("data/", b"surprise", mode=0o040755))


def ligature_twin() -> bytes:
    return plugin_zip(E("\ufb01le.py", b"a"), E("file.py", b"b"))


def nfd_twin() -> bytes:
    return plugin_zip(E("caf\u00e9.py", b"a"), E("cafe\u0301.py", b"b"))


@dataclass
class Case:
    id: str
    build: Callable[[], bytes]
    rule: str
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    outside: tuple[str, ...] = ()  # paths (relative to tmp_path) that must not appear


SMALL = ArchiveLimits(max_extracted_bytes=1_000_000)

CASES: list[Case] = [
    # -- names ---------------------------------------------------------------------------
    Case("dotdot", lambda: plugin_zip(E("../evil.py", b"x")), "path-traversal", outside=("evil.py",)),
    Case("dotdot-deep", lambda: plugin_zip(E("a/../../evil.py", b"x")), "path-traversal", outside=("evil.py",)),
    Case("dotdot-backslash", lambda: plugin_zip(E("..\\evil.py", b"x")), "path-traversal", outside=("evil.py",)),
    Case("absolute", lambda: plugin_zip(E("/tmp/evil.py", b"x")), "absolute-path"),
    Case("drive-letter", lambda: plugin_zip(E("C:/evil.py", b"x")), "absolute-path"),
    Case("drive-letter-backslash", lambda: plugin_zip(E("C:\\evil.py", b"x")), "absolute-path"),
    Case("unc", lambda: plugin_zip(E("\\\\server\\share\\evil.py", b"x")), "absolute-path"),
    Case("backslash", lambda: plugin_zip(E("processors\\extra.py", b"x")), "backslash"),
    Case("nul-in-name", lambda: plugin_zip(E("evil.py\x00.txt", b"x")), "control-character"),
    Case("newline-in-name", lambda: plugin_zip(E("evil\n.py", b"x")), "control-character"),
    Case("bidi-override", lambda: plugin_zip(E("\u202egpj.py", b"x")), "control-character"),
    Case("dot-component", lambda: plugin_zip(E("./notes.txt", b"x")), "bad-name"),
    Case("not-utf8-name", lambda: plugin_zip(E(b"caf\xe9.py", b"x")), "bad-name"),
    Case("path-too-long", lambda: plugin_zip(E("d/" + "x" * 300 + ".py", b"x")), "path-too-long"),
    Case("path-too-deep", lambda: plugin_zip(E("/".join(["d"] * 20) + "/x.py", b"x")), "path-too-deep"),
    # -- entry kinds ---------------------------------------------------------------------
    Case("symlink", lambda: plugin_zip(E("link.py", b"/etc/passwd", mode=0o120777)), "symlink"),
    Case("symlink-dos-system", lambda: plugin_zip(E("link.py", b"/etc", mode=0o120777, create_system=0)), "symlink"),
    Case("fifo", lambda: plugin_zip(E("pipe", b"", mode=0o010644)), "not-regular-file"),
    Case("char-device", lambda: plugin_zip(E("null", b"", mode=0o020644)), "not-regular-file"),
    Case("socket", lambda: plugin_zip(E("sock", b"", mode=0o140644)), "not-regular-file"),
    Case("dir-with-data", dir_with_data, "not-regular-file"),
    # -- duplicates ----------------------------------------------------------------------
    Case("duplicate", lambda: plugin_zip(E("manifest.py", b"evil = 1\n")), "duplicate-name"),
    Case("duplicate-case", lambda: plugin_zip(E("processors/Core.py", b"x")), "duplicate-name"),
    Case("duplicate-case-dir", lambda: plugin_zip(E("Processors/other.py", b"x")), "duplicate-name"),
    Case("duplicate-nfd", nfd_twin, "duplicate-name"),
    Case("duplicate-nfkc", ligature_twin, "duplicate-name"),
    Case("file-and-dir", lambda: plugin_zip(E("processors", b"x")), "duplicate-name"),
    # -- zip structure -------------------------------------------------------------------
    Case("encrypted", lambda: plugin_zip(E("secret.py", b"x", flags=0x1)), "encrypted"),
    Case("aes", aes_entry, "encrypted"),
    Case("bzip2-method", lambda: plugin_zip(E("a.py", b"x", method=12, payload=b"BZh9")), "compression-method"),
    Case("lzma-method", lambda: plugin_zip(E("a.py", b"x", method=14, payload=b"\0" * 9)), "compression-method"),
    Case("bad-crc", lambda: plugin_zip(E("notes.txt", b"hello", crc=0xDEADBEEF)), "crc-mismatch"),
    Case("overlap-quoted", fifield_overlap, "overlapping-entries"),
    Case("overlap-same-offset", same_offset_overlap, "overlapping-entries"),
    Case("trailing-data", lambda: plugin_zip(trailing=b"garbage after the end"), "trailing-data"),
    Case("prefix-data", lambda: plugin_zip(prefix=b"#!/bin/sh\necho hi\n"), "multiple-archives"),
    Case("prefix-absolute-offsets", lambda: plugin_zip(prefix=b"MZ" + b"\0" * 62, prefix_in_offsets=True), "multiple-archives"),
    Case("two-zips", two_zips, "multiple-archives"),
    Case("two-zips-small-tail", small_tail_zip, "multiple-archives"),
    Case("zip-in-comment", comment_with_zip, "multiple-archives"),
    Case("gap-between-entries", lambda: plugin_zip(gaps={0: b"hidden payload"}), "hidden-data"),
    Case("local-name-lies", local_name_lies, "header-mismatch"),
    Case("truncated-deflate", truncated_deflate, "corrupt-data"),
    Case("junk-after-deflate", deflate_with_junk, "corrupt-data"),
    # -- code and archives ---------------------------------------------------------------
    Case("pyc", lambda: plugin_zip(E("processors/core.cpython-311.pyc", b"\xa7\r\r\n" + b"\0" * 12)), "compiled-code"),
    Case("pyc-magic-in-data", lambda: plugin_zip(E("data.bin", b"\xa7\r\r\n" + b"\0" * 40)), "compiled-code"),
    Case("so", lambda: plugin_zip(E("fast.so", b"not really")), "native-code"),
    Case("so-versioned", lambda: plugin_zip(E("libfast.so.1.2", b"x")), "native-code"),
    Case("pyd", lambda: plugin_zip(E("fast.pyd", b"x")), "native-code"),
    Case("elf-in-data", lambda: plugin_zip(E("data.bin", b"\x7fELF\x02\x01\x01" + b"\0" * 60)), "native-code"),
    Case("macho-in-data", lambda: plugin_zip(E("weights.bin", b"\xcf\xfa\xed\xfe" + b"\0" * 60)), "native-code"),
    Case("pe-in-data", lambda: plugin_zip(E("model.onnx", b"MZ" + b"\0" * 58 + struct.pack("<L", 64) + b"PE\0\0")), "native-code"),
    Case("pth", lambda: plugin_zip(E("processors/hook.pth", b"import os\n")), "pth-file"),
    Case("zip-by-name", lambda: plugin_zip(E("vendor.zip", b"just text")), "nested-archive"),
    Case("zip-by-magic", lambda: plugin_zip(E("data.bin", zf_zip({"evil.py": b"x"}))), "nested-archive"),
    Case("tar-gz-by-name", lambda: plugin_zip(E("deps.tar.gz", tar_gz_bytes())), "nested-archive"),
    Case("gzip-by-magic", lambda: plugin_zip(E("blob.dat", tar_gz_bytes())), "nested-archive"),
    Case("tar-by-magic", lambda: plugin_zip(E("blob.dat", tar_bytes())), "nested-archive"),
    Case("wheel", lambda: plugin_zip(E("numpyx-1.0-py3-none-any.whl", b"x")), "nested-archive"),
    # -- shadowing -----------------------------------------------------------------------
    Case("shadow-json", lambda: plugin_zip(E("json.py", b"x")), "shadows-module"),
    Case("shadow-os", lambda: plugin_zip(E("os.py", b"x")), "shadows-module"),
    Case("shadow-numpy-package", lambda: plugin_zip(E("numpy/__init__.py", b"x")), "shadows-module"),
    Case("shadow-engine-case", lambda: plugin_zip(E("Engine/plugins/x.py", b"x")), "shadows-module"),
    Case("shadow-sitecustomize", lambda: plugin_zip(E("sitecustomize.py", b"x")), "shadows-module"),
    Case("shadow-upper-suffix", lambda: plugin_zip(E("Typing.PY", b"x")), "shadows-module"),
    Case("shadow-under-top-folder", lambda: raw_zip(plugin_entries(E("ext/subprocess.py", b"x"), top="ext/")), "shadows-module"),
    # -- sizes and bombs -----------------------------------------------------------------
    Case("header-lies-small", lying_size, "size-mismatch", limits=SMALL),
    Case("header-claims-more", overclaiming_size, "size-mismatch"),
    Case("bomb-over-limit", lambda: plugin_zip(E("zeros.bin", b"\0" * 2_000_000)), "too-large", limits=SMALL),
    Case("bomb-ratio", lambda: plugin_zip(E("zeros.bin", b"\0" * 3_000_000)), "zip-bomb"),
    Case(
        "bomb-ratio-overall",
        lambda: plugin_zip(*(E(f"z{i}.bin", b"\0" * (1 << 20)) for i in range(6))),
        "zip-bomb",
    ),
    Case("too-many-files", lambda: plugin_zip(*(E(f"f{i}.txt", b"x") for i in range(10))), "too-many-files", limits=ArchiveLimits(max_files=8)),
    Case("archive-too-large", lambda: plugin_zip(E("big.txt", os.urandom(5000), method=0)), "too-large", limits=ArchiveLimits(max_compressed_bytes=4096)),
    Case("file-too-large", lambda: plugin_zip(E("big.txt", os.urandom(5000))), "too-large", limits=ArchiveLimits(max_file_bytes=4096)),
    # -- not a plugin --------------------------------------------------------------------
    Case("empty-zip", lambda: zf_zip({}), "empty"),
    Case("only-directories", lambda: raw_zip([E("a/", mode=0o040755), E("a/b/", mode=0o040755)]), "empty"),
    Case("only-macos-metadata", lambda: zf_zip({"__MACOSX/._manifest.py": b"x", ".DS_Store": b"x"}), "empty"),
    Case("not-a-zip", lambda: b"this is plainly not a zip archive" * 10, "not-a-zip"),
    Case("zero-bytes", lambda: b"", "not-a-zip"),
    Case("pe-executable", lambda: b"MZ\x90\x00" + os.urandom(500), "not-a-zip"),
    Case("truncated-zip", lambda: zf_zip(base_files())[:-30], "malformed"),
    Case("no-manifest", lambda: zf_zip({"pipeline.py": PIPELINE}), "no-manifest"),
    Case("manifest-not-at-root", lambda: zf_zip({"a/manifest.py": MANIFEST, "b/pipeline.py": PIPELINE}), "no-manifest"),
]  # fmt: skip


def tree(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_archive_is_rejected(case: Case, tmp_path: Path) -> None:
    archive = tmp_path / "upload.zip"
    archive.write_bytes(case.build())
    work = tmp_path / "work"
    work.mkdir()
    dest = work / "dest"
    dest.mkdir(mode=0o700)
    before = tree(tmp_path)

    with pytest.raises(ArchiveRejected) as info:
        extract_archive(archive, dest, limits=case.limits)

    error = info.value
    assert case.rule in error.rules, error.violations
    assert list(dest.iterdir()) == []
    assert tree(tmp_path) == before  # nothing written anywhere, inside dest or out
    for name in case.outside:
        assert not (tmp_path / name).exists() and not (work / name).exists()
    response = error.to_response()
    assert response["detail"] == "Archive rejected"
    assert response["code"] == "archive_rejected"
    assert response["violations"]
    for v in response["violations"]:
        assert {"file", "line", "column", "message", "severity", "rule"} <= set(v)
        assert v["line"] == 0 and v["column"] == 0 and v["severity"] == "error"


def test_there_are_enough_hostile_cases() -> None:
    assert len(CASES) >= 35
    assert len({c.id for c in CASES}) == len(CASES)


def test_all_violations_are_collected(tmp_path: Path) -> None:
    archive = plugin_zip(
        E("../evil.py", b"x"),
        E("fast.so", b"x"),
        E("link.py", b"/etc", mode=0o120777),
        E("json.py", b"x"),
        E("data.bin", b"\x7fELF" + b"\0" * 40),
    )
    with pytest.raises(ArchiveRejected) as info:
        extract_archive(archive, tmp_path / "dest")
    assert {"path-traversal", "native-code", "symlink", "shadows-module"} <= info.value.rules
    assert any(v.file == "data.bin" and v.rule == "native-code" for v in info.value.violations)
    assert list((tmp_path / "dest").iterdir()) == []


def test_rejection_maps_to_http_422() -> None:
    error = ArchiveRejected([])
    assert error.code is ErrorCode.ARCHIVE_REJECTED
    assert error.http_status == 422


# --------------------------------------------------------------------------------------------
# Clean plugins
# --------------------------------------------------------------------------------------------


def write_plugin(root: Path) -> dict[str, bytes]:
    files = {
        "manifest.py": MANIFEST,
        "pipeline.py": PIPELINE,
        "realtime.py": b"class RealtimeHandler:\n    def predict(self, request):\n        return {}\n",
        "processors/__init__.py": b"",
        "processors/core.py": CORE,
        "processors/helpers/__init__.py": b"",
        "processors/helpers/text.py": b"def clean(s):\n    return s.strip()\n",
        "labels.json": b'{"labels": ["a", "b"]}\n',
        # a safetensors-shaped file: 8-byte header length, JSON header, raw floats
        "weights/model.safetensors": struct.pack("<Q", 2) + b"{}" + os.urandom(4096),
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def assert_extracted(result: ExtractedArchive, expected: dict[str, bytes]) -> None:
    assert set(result.files) == set(expected)
    for rel, data in expected.items():
        path = result.root / rel
        assert path.read_bytes() == data
        assert result.files[rel] == hashlib.sha256(data).hexdigest()
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert result.total_bytes == sum(len(d) for d in expected.values())


def test_flat_plugin_extracts(tmp_path: Path) -> None:
    expected = base_files(**{"processors/__init__.py": b"", "labels.json": b"{}"})
    archive = zf_zip(expected)
    dest = tmp_path / "dest"
    result = extract_archive(io.BytesIO(archive), dest)
    assert result.root == dest
    assert result.sha256 == hashlib.sha256(archive).hexdigest()
    assert result.compressed_bytes == len(archive)
    assert_extracted(result, expected)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert stat.S_IMODE((dest / "processors").stat().st_mode) & 0o077 == 0


def test_plugin_under_one_top_folder(tmp_path: Path) -> None:
    expected = base_files(**{"processors/helpers/text.py": b"x = 1\n", "data/labels.json": b"[]"})
    archive = zf_zip(
        {"my_extractor/": b"", **{f"my_extractor/{k}": v for k, v in expected.items()}}
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    result = extract_archive(archive, dest)
    assert result.root == dest / "my_extractor"
    assert_extracted(result, expected)
    assert [p.name for p in result.python_files][:1] == ["manifest.py"]


def test_stored_entries_and_small_compressible_files_pass(tmp_path: Path) -> None:
    expected = base_files(**{"vocab.txt": b"a" * 900_000})  # ratio ~1000, but under 1 MiB
    result = extract_archive(zf_zip(expected, zipfile.ZIP_STORED), tmp_path / "a")
    assert_extracted(result, expected)
    result = extract_archive(zf_zip(expected), tmp_path / "b")
    assert_extracted(result, expected)


def test_unicode_names_pass(tmp_path: Path) -> None:
    expected = base_files(**{"donn\u00e9es/\u00e9tiquettes.json": b"[]"})
    result = extract_archive(zf_zip(expected), tmp_path / "dest")
    assert_extracted(result, expected)


def test_violation_collection_is_capped_and_deduplicated(tmp_path: Path) -> None:
    archive = plugin_zip(*(E(f"../x{i}.so", b"x") for i in range(20)))
    with pytest.raises(ArchiveRejected) as info:
        extract_archive(archive, tmp_path / "dest")
    traversal = [v for v in info.value.violations if v.rule == "path-traversal"]
    assert len(traversal) == 20
    assert len(info.value.violations) == len(
        {(v.file, v.rule, v.message) for v in info.value.violations}
    )


class _Unseekable(io.RawIOBase):
    """A write-only or read-only stream without seek/tell, like a socket or a pipe."""

    def __init__(self, data: bytes = b"") -> None:
        self.buffer = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.buffer.read(len(b))
        b[: len(data)] = data
        return len(data)

    def write(self, b: bytes) -> int:  # type: ignore[override]
        return self.buffer.write(b)


def test_streamed_zip_with_data_descriptors_passes(tmp_path: Path) -> None:
    sink = _Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in base_files().items():
            zf.writestr(name, data)
    archive = sink.buffer.getvalue()
    assert zipfile.ZipFile(io.BytesIO(archive)).infolist()[0].flag_bits & 0x08
    result = extract_archive(archive, tmp_path / "dest")
    assert_extracted(result, base_files())


def test_zip64_archive_passes(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in base_files().items():
            with zf.open(name, "w", force_zip64=True) as out:
                out.write(data)
    result = extract_archive(buf.getvalue(), tmp_path / "dest")
    assert_extracted(result, base_files())


def test_non_seekable_source_is_spooled(tmp_path: Path) -> None:
    archive = zf_zip(base_files())
    result = extract_archive(io.BufferedReader(_Unseekable(archive)), tmp_path / "dest")
    assert result.sha256 == hashlib.sha256(archive).hexdigest()
    with pytest.raises(ArchiveRejected) as info:
        extract_archive(
            io.BufferedReader(_Unseekable(archive)),
            tmp_path / "dest2",
            limits=ArchiveLimits(max_compressed_bytes=100),
        )
    assert info.value.rules == {"too-large"}


def test_macos_metadata_is_checked_but_not_extracted(tmp_path: Path) -> None:
    archive = zf_zip(
        {
            **{f"demo/{k}": v for k, v in base_files().items()},
            "demo/.DS_Store": b"\0\0\0\1Bud1",
            "__MACOSX/demo/._manifest.py": b"\0\5\26\7appledouble",
        }
    )
    result = extract_archive(archive, tmp_path / "dest")
    assert result.root == tmp_path / "dest" / "demo"
    assert_extracted(result, base_files())
    assert sorted(result.ignored) == ["__MACOSX/demo/._manifest.py", "demo/.DS_Store"]
    assert not (tmp_path / "dest" / "__MACOSX").exists()


def test_dest_must_be_empty_and_real(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(ValueError):
        extract_archive(zf_zip(base_files()), dest)
    assert (dest / "keep.txt").read_text() == "mine"
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(ValueError):
        extract_archive(zf_zip(base_files()), link)
    assert list(target.iterdir()) == []


# --------------------------------------------------------------------------------------------
# build_archive and open_plugin_archive
# --------------------------------------------------------------------------------------------


def test_build_archive_round_trips_deterministically(tmp_path: Path) -> None:
    root = tmp_path / "my_extractor"
    expected = write_plugin(root)
    # what a working copy also holds, and the archive must leave out
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "manifest.cpython-311.pyc").write_bytes(b"\xa7\r\r\n" + b"\0" * 12)
    (root / "processors" / "core.pyc").write_bytes(b"\xa7\r\r\n" + b"\0" * 12)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / ".env").write_text("SECRET=1\n")

    first = build_archive(root)
    os.utime(root / "manifest.py", (time.time() + 100, time.time() + 100))
    second = build_archive(root)
    assert isinstance(first, bytes) and first == second
    written = build_archive(root, tmp_path / "out.zip")
    assert written == tmp_path / "out.zip"
    assert written.read_bytes() == first

    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(expected)
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert all(i.external_attr >> 16 == 0o100644 for i in infos)
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos)

    result = extract_archive(written, tmp_path / "dest")
    assert result.sha256 == hashlib.sha256(first).hexdigest()
    assert result.root == tmp_path / "dest"
    assert_extracted(result, expected)


def test_build_archive_refuses_links(tmp_path: Path) -> None:
    root = tmp_path / "plugin"
    write_plugin(root)
    (root / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        build_archive(root)


def test_open_plugin_archive_cleans_up(tmp_path: Path) -> None:
    archive = tmp_path / "plugin.zip"
    archive.write_bytes(zf_zip(base_files()))
    with open_plugin_archive(archive) as extracted:
        tmp = extracted.root
        assert (tmp / "manifest.py").read_bytes() == MANIFEST
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o700
    assert not tmp.exists()

    with pytest.raises(RuntimeError), open_plugin_archive(archive) as extracted:
        tmp = extracted.root
        raise RuntimeError("scanner blew up")
    assert not tmp.exists()

    made: list[str] = []
    real_mkdtemp = __import__("tempfile").mkdtemp

    def spy(*args: object, **kwargs: object) -> str:
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("tempfile.mkdtemp", spy)
        with pytest.raises(ArchiveRejected), open_plugin_archive(plugin_zip(E("os.py", b"x"))):
            pass
    assert made and not Path(made[0]).exists()


# --------------------------------------------------------------------------------------------
# Bounded memory
# --------------------------------------------------------------------------------------------


def test_large_archive_inflates_in_bounded_memory(tmp_path: Path) -> None:
    """~60 MB of modestly compressible data: tracemalloc peak stays far below 20 MB."""
    import random

    alphabet = bytes(range(ord("a"), ord("a") + 16))
    block = bytes(random.Random(0).choices(alphabet, k=1 << 20))
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in base_files().items():
            zf.writestr(name, data)
        with zf.open("weights/big.bin", "w") as out:
            for _ in range(60):
                out.write(block)
    limits = ArchiveLimits(
        max_compressed_bytes=200 * (1 << 20), max_extracted_bytes=200 * (1 << 20)
    )

    tracemalloc.start()
    try:
        with open_plugin_archive(archive, limits=limits) as extracted:
            assert extracted.total_bytes > 60 * (1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * (1 << 20), f"peak {peak / (1 << 20):.1f} MiB"
