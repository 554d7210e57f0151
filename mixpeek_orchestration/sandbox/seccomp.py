"""The seccomp filter of a plugin host: a classic-BPF program ``bwrap --seccomp FD`` loads.

A deny list over an allow-by-default program, the second layer under bubblewrap's namespaces:
system calls a plugin never needs and that widen the kernel's attack surface answer ``EPERM``:

* debugging and other processes' memory: ``ptrace``, ``process_vm_readv`` / ``writev``;
* mounts and namespaces: ``mount`` and the new mount API, ``pivot_root``, ``chroot``,
  ``unshare``, ``setns``, and ``clone`` with any ``CLONE_NEW*`` flag (``clone3``, whose flags a
  classic filter cannot read, answers ``ENOSYS`` so the C library falls back to ``clone``);
* kernel facilities: ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring_*``, the key
  rings, module loading, ``kexec``, ``reboot``, ``swapon``, ``syslog``, the clocks;
* sockets below the network layer: ``AF_PACKET``, ``AF_VSOCK`` (the way out of a VM) and any
  ``SOCK_RAW``.

A call made through another architecture's ABI (32-bit compat) kills the process, and x32 calls
answer ``EPERM``. The syscall numbers are those of x86_64 and aarch64 (as libseccomp resolves
them); on another machine no filter is built and the host says so.

Example:
    >>> fd = filter_fd()                      # a memfd holding the program, at offset 0
    >>> subprocess.Popen(["bwrap", "--seccomp", str(fd), ...], pass_fds=[fd])
"""

from __future__ import annotations

import errno
import os
import platform
import struct

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
# classic BPF opcodes: load word (absolute), jumps, return, and
_LD_ABS, _JEQ, _JGE, _JSET, _RET, _AND = 0x20, 0x15, 0x35, 0x45, 0x06, 0x54
_OFFSET_NR, _OFFSET_ARCH = 0, 4  # struct seccomp_data


def _arg_low(index: int) -> int:
    return 16 + 8 * index  # the low 32 bits of args[index] (little endian)


_X86_64 = {
    "ptrace": 101, "mount": 165, "umount2": 166, "unshare": 272, "setns": 308, "pivot_root": 155,
    "chroot": 161, "bpf": 321, "keyctl": 250, "add_key": 248, "request_key": 249,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
    "kexec_file_load": 320, "perf_event_open": 298, "process_vm_readv": 310,
    "process_vm_writev": 311, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_by_handle_at": 304, "name_to_handle_at": 303,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "swapon": 167, "swapoff": 168, "reboot": 169,
    "syslog": 103, "acct": 163, "quotactl": 179, "settimeofday": 164, "clock_settime": 227,
    "iopl": 172, "ioperm": 173, "uselib": 134, "lookup_dcookie": 212, "vhangup": 153,
    "clone": 56, "clone3": 435, "socket": 41,
}  # fmt: skip
_AARCH64 = {
    "ptrace": 117, "mount": 40, "umount2": 39, "unshare": 97, "setns": 268, "pivot_root": 41,
    "chroot": 51, "bpf": 280, "keyctl": 219, "add_key": 217, "request_key": 218,
    "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104,
    "kexec_file_load": 294, "perf_event_open": 241, "process_vm_readv": 270,
    "process_vm_writev": 271, "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_by_handle_at": 265, "name_to_handle_at": 264,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "swapon": 224, "swapoff": 225, "reboot": 142,
    "syslog": 116, "acct": 89, "quotactl": 60, "settimeofday": 170, "clock_settime": 112,
    "lookup_dcookie": 18, "vhangup": 58, "clone": 220, "clone3": 435, "socket": 198,
}  # fmt: skip
SYSCALLS = {"x86_64": _X86_64, "aarch64": _AARCH64}

DENIED = (
    "ptrace", "mount", "umount2", "unshare", "setns", "pivot_root", "chroot", "bpf", "keyctl",
    "add_key", "request_key", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "perf_event_open", "process_vm_readv", "process_vm_writev", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "open_by_handle_at",
    "name_to_handle_at", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "swapon", "swapoff", "reboot", "syslog", "acct", "quotactl",
    "settimeofday", "clock_settime", "iopl", "ioperm", "uselib", "lookup_dcookie", "vhangup",
)  # fmt: skip
"""System calls that answer EPERM (those an architecture lacks are skipped)."""
CLONE_NEW_FLAGS = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
AF_PACKET, AF_VSOCK, SOCK_RAW = 17, 40, 3


def _op(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def _ret_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def supported(machine: str | None = None) -> bool:
    return (machine or platform.machine()) in SYSCALLS


def build_filter(machine: str | None = None) -> bytes:
    """The program (``struct sock_filter[]``) for ``machine`` (this one by default)."""
    arch = machine or platform.machine()
    numbers = SYSCALLS[arch]
    deny = _ret_errno(errno.EPERM)
    program = [
        # another architecture's ABI: kill
        _op(_LD_ABS, 0, 0, _OFFSET_ARCH),
        _op(_JEQ, 1, 0, AUDIT_ARCH[arch]),
        _op(_RET, 0, 0, _RET_KILL_PROCESS),
        _op(_LD_ABS, 0, 0, _OFFSET_NR),
    ]
    if arch == "x86_64":  # x32 system calls carry bit 30
        program += [_op(_JGE, 0, 1, 0x40000000), _op(_RET, 0, 0, deny)]
    for name in DENIED:
        if name in numbers:
            program += [_op(_JEQ, 0, 1, numbers[name]), _op(_RET, 0, 0, deny)]
    program += [_op(_JEQ, 0, 1, numbers["clone3"]), _op(_RET, 0, 0, _ret_errno(errno.ENOSYS))]
    program += [
        # clone(flags, ...): no new namespaces
        _op(_JEQ, 0, 3, numbers["clone"]),
        _op(_LD_ABS, 0, 0, _arg_low(0)),
        _op(_JSET, 0, 1, CLONE_NEW_FLAGS),
        _op(_RET, 0, 0, deny),
        _op(_LD_ABS, 0, 0, _OFFSET_NR),
    ]
    program += [
        # socket(domain, type, protocol): no packet, vsock or raw sockets
        _op(_JEQ, 0, 7, numbers["socket"]),
        _op(_LD_ABS, 0, 0, _arg_low(0)),
        _op(_JEQ, 4, 0, AF_PACKET),
        _op(_JEQ, 3, 0, AF_VSOCK),
        _op(_LD_ABS, 0, 0, _arg_low(1)),
        _op(_AND, 0, 0, 0xF),  # the type without SOCK_NONBLOCK / SOCK_CLOEXEC
        _op(_JEQ, 0, 1, SOCK_RAW),
        _op(_RET, 0, 0, deny),
    ]
    program.append(_op(_RET, 0, 0, _RET_ALLOW))
    return b"".join(program)


def filter_fd(machine: str | None = None) -> int:
    """A memfd holding the program at offset 0, inheritable, for ``bwrap --seccomp FD``
    (bwrap closes it once read). The caller closes its own copy after starting bwrap."""
    fd = os.memfd_create("mixpeek-seccomp", 0)
    os.write(fd, build_filter(machine))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
