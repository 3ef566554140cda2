"""Kernel-level confinement of a worker: its own IPC and network namespaces and a
system-call filter, applied (as root) before the worker drops to the sandbox user.

Why these and not others:

- A new IPC namespace: SysV shared memory, semaphores and message queues (and POSIX
  message queues) created by the submission die with the worker's last process, instead
  of outliving the grading under mode 666 for the next submission to read.
- A new network namespace: it holds only a loopback device that is down, so there is no
  TCP or UDP at all, not even to 127.0.0.1, and abstract Unix sockets (which belong to a
  network namespace) cannot reach any other process of the machine or another worker.
- A seccomp filter (a dozen BPF instructions written here, so there is no native
  library to install on Gradescope's image: libseccomp's Python bindings are not on
  PyPI) that makes ``ptrace``, ``process_vm_readv/writev``, ``unshare``, ``setns``,
  ``clone`` with any namespace flag, ``mount`` and friends, ``keyctl``, ``bpf``,
  ``perf_event_open``, ``userfaultfd``, ``io_uring`` and ``prctl(PR_SET_DUMPABLE)`` fail
  with EPERM (``clone3``, whose flags a filter cannot read, fails with ENOSYS so that
  the C library falls back to ``clone``). A worker can then neither trace another
  process of its user (a traced zombie cannot be reaped by its parent: the hang this
  prevents), nor read another worker's memory, nor create user namespaces (which would
  give it capabilities to mount, unshare and reach kernel code that unprivileged users
  never reach). ``no_new_privs`` is set as well, so no set-uid program gains anything.
- A new PID namespace, with its own /proc: the worker is its first process and sees
  only what it started, not the grader's processes nor another worker's (whose command
  lines would otherwise be a channel between two regrade slots). The process that
  entered it stays outside as a tiny supervisor that only waits and passes the worker's
  exit on (sandbox.py); when the worker ends, the kernel ends everything in its namespace.

Each step can be refused (an unprivileged container, another architecture): the worker
then keeps what did hold, and the harness logs what was refused."""
from __future__ import annotations

import ctypes
import os
import platform
import struct

from autograder.libc import LIBC

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACE_FLAGS = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET

PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
EPERM = 1
ENOSYS = 38

# classic BPF opcodes
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_RET_K = 0x06

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# name -> number, per architecture (from the kernel's syscall tables)
SYSCALLS = {
    "x86_64": (AUDIT_ARCH_X86_64, {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "unshare": 272, "setns": 308,
        "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "keyctl": 250, "add_key": 248,
        "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "kcmp": 312,
        "name_to_handle_at": 303, "open_by_handle_at": 304, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
        "fsmount": 432, "fspick": 433, "pidfd_getfd": 438, "mount_setattr": 442,
        "clone": 56, "clone3": 435, "prctl": 157,
    }),
    "aarch64": (AUDIT_ARCH_AARCH64, {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "unshare": 97, "setns": 268,
        "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "keyctl": 219, "add_key": 217,
        "request_key": 218, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "kcmp": 272,
        "name_to_handle_at": 264, "open_by_handle_at": 265, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
        "fsmount": 432, "fspick": 433, "pidfd_getfd": 438, "mount_setattr": 442,
        "clone": 220, "clone3": 435, "prctl": 167,
    }),
}
DENIED = tuple(name for name in SYSCALLS["x86_64"][1] if name not in ("clone", "clone3", "prctl"))

# offsets into struct seccomp_data
NR_OFFSET, ARCH_OFFSET, ARG0_LOW_OFFSET = 0, 4, 16


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def syscall_filter(machine: str) -> bytes | None:
    """The BPF program for ``machine`` (``platform.machine()``), or None if unknown."""
    if machine not in SYSCALLS:
        return None
    arch, numbers = SYSCALLS[machine]
    deny = SECCOMP_RET_ERRNO | EPERM
    body: list[bytes] = []
    # One (nr == X) -> deny check per denied call, then the three calls with conditions.
    for name in DENIED:
        body.append(_insn(BPF_JEQ_K, 0, 1, numbers[name]))
        body.append(_insn(BPF_RET_K, 0, 0, deny))
    body.append(_insn(BPF_JEQ_K, 0, 1, numbers["clone3"]))
    body.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS))
    # clone: deny when the flags (first argument, low word) ask for a new namespace.
    body.append(_insn(BPF_JEQ_K, 0, 3, numbers["clone"]))
    body.append(_insn(BPF_LD_W_ABS, 0, 0, ARG0_LOW_OFFSET))
    body.append(_insn(BPF_JSET_K, 0, 1, NAMESPACE_FLAGS))
    body.append(_insn(BPF_RET_K, 0, 0, deny))
    # prctl(PR_SET_DUMPABLE, ...): a worker stays undumpable (not traceable, /proc/PID/mem closed).
    # After the clone branch the accumulator may hold arg0; reload the number first.
    body.append(_insn(BPF_LD_W_ABS, 0, 0, NR_OFFSET))
    body.append(_insn(BPF_JEQ_K, 0, 3, numbers["prctl"]))
    body.append(_insn(BPF_LD_W_ABS, 0, 0, ARG0_LOW_OFFSET))
    body.append(_insn(BPF_JEQ_K, 0, 1, PR_SET_DUMPABLE))
    body.append(_insn(BPF_RET_K, 0, 0, deny))
    body.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    head = [
        _insn(BPF_LD_W_ABS, 0, 0, ARCH_OFFSET),
        _insn(BPF_JEQ_K, 1, 0, arch),
        _insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),  # another ABI (int 0x80): no
        _insn(BPF_LD_W_ABS, 0, 0, NR_OFFSET),
    ]
    if machine == "x86_64":
        head += [_insn(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT), _insn(BPF_RET_K, 0, 0, deny)]
    return b"".join(head + body)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_syscall_filter() -> str | None:
    """Set no_new_privs and load the filter; None when in place, else why not."""
    program = syscall_filter(platform.machine())
    if program is None:
        return f"no system-call filter for the {platform.machine()} architecture"
    if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"no_new_privs refused ({os.strerror(ctypes.get_errno())})"
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"seccomp filter refused ({os.strerror(ctypes.get_errno())})"
    return None


def unshare_pid_namespace() -> str | None:
    """Make this process's next child the first process of a new PID namespace; None when
    granted, else why not."""
    if LIBC.unshare(CLONE_NEWPID) != 0:
        return f"PID namespace refused ({os.strerror(ctypes.get_errno())}): the worker sees the host's processes"
    return None


def enter_namespaces() -> list[str]:
    """A new IPC and a new network namespace for this process; what was refused."""
    refused = []
    for flag, name in ((CLONE_NEWIPC, "IPC namespace"), (CLONE_NEWNET, "network namespace")):
        if LIBC.unshare(flag) != 0:
            refused.append(f"{name} refused ({os.strerror(ctypes.get_errno())})")
    return refused
