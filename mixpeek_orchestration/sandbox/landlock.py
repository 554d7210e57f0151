"""Landlock: the kernel's own access control, applied by the plugin host to itself.

The second layer under bubblewrap's mount namespace: even inside the sandbox's private mount
tree, the host process (and every thread and child it starts afterwards) may only read and
execute under the read-only roots, write under the writable ones, connect or bind TCP on the
listed ports (the in-sandbox egress forwarder), and neither reach abstract unix sockets nor
signal processes outside its domain. No library in the ecosystem covers network and scope rules
yet, so this is the three system calls through ``ctypes`` (the same numbers on x86_64 and
aarch64), following ``landlock(7)``.

Landlock restricts the calling thread and what it starts later: :func:`restrict` must run before
anything starts a thread (the host calls it first thing, before importing numpy or torch).
Kernels without Landlock (and gVisor) report ABI 0 and :func:`restrict` returns 0.

Example:
    >>> restrict(ro=["/usr", "/plugin"], rw=["/scratch", "/tmp"], tcp_ports=[3128])
    7
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_PR_SET_NO_NEW_PRIVS = 38
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, 3, 5
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = EXECUTE | READ_FILE | READ_DIR
BIND_TCP, CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(result: int) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"landlock: {os.strerror(code)}")
    return result


def abi_version() -> int:
    """The kernel's Landlock ABI (0: none)."""
    result = _libc().syscall(
        _CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
    )
    return max(0, int(result))


def _fs_rights(abi: int) -> int:
    rights = _FS_ABI1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(
    *, ro: Iterable[str] = (), rw: Iterable[str] = (), tcp_ports: Iterable[int] = ()
) -> int:
    """Restrict this thread (and what it starts) to ``ro`` / ``rw`` paths and ``tcp_ports``.

    Paths that do not exist are skipped. Returns the ABI applied (0: Landlock unavailable,
    nothing applied).
    """
    abi = abi_version()
    if abi < 1:
        return 0
    libc = _libc()
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net, size = BIND_TCP | CONNECT_TCP, 16
    if abi >= 6:
        attr.scoped, size = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL, 24
    ruleset = _check(
        libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    )
    try:
        for paths, rights in ((ro, READ), (rw, handled)):
            for path in paths:
                if not os.path.exists(path):
                    continue
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                try:
                    allowed = rights if os.path.isdir(path) else rights & _FILE_RIGHTS
                    rule = _PathBeneathAttr(allowed & handled, fd)
                    _check(
                        libc.syscall(
                            _ADD_RULE,
                            ruleset,
                            _RULE_PATH_BENEATH,
                            ctypes.byref(rule),
                            ctypes.c_uint32(0),
                        )
                    )
                finally:
                    os.close(fd)
        if abi >= 4:
            for port in tcp_ports:
                net = _NetPortAttr(BIND_TCP | CONNECT_TCP, int(port))
                _check(
                    libc.syscall(
                        _ADD_RULE, ruleset, _RULE_NET_PORT, ctypes.byref(net), ctypes.c_uint32(0)
                    )
                )
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        _check(libc.syscall(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)))
    finally:
        os.close(ruleset)
    return abi
