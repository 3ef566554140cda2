"""A private view of the filesystem for a worker, when the kernel allows it.

As root, before dropping privileges, the worker enters its own mount namespace and
covers every top-level folder that neither Python nor the system needs (``/tmp``,
``/home``, ``/autograder``, a project checkout, ...) with an empty tmpfs, then binds
its own staging folder back at the same path. The submission can then read neither
the harness, the fixtures, the results, other submissions nor a reference checkout,
whatever their permissions. Where mount namespaces are not allowed (an unprivileged
container), this does nothing and the permission lock-down is what protects."""
from __future__ import annotations

import ctypes
import ctypes.util
import os

CLONE_NEWNS = 0x00020000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

# Top-level folders the interpreter and the C libraries need; everything else is hidden.
SYSTEM = frozenset({"usr", "lib", "lib32", "lib64", "libx32", "bin", "sbin", "etc", "proc", "dev", "sys"})


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = lambda v: None if v is None else v.encode()  # noqa: E731
    if libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def hidden_roots(keep_prefixes: tuple[str, ...]) -> list[str]:
    """Top-level folders to cover: all but the system ones and those holding Python."""
    needed = set(SYSTEM)
    for prefix in keep_prefixes:
        parts = os.path.realpath(prefix).strip("/").split("/")
        if parts and parts[0]:
            needed.add(parts[0])
    roots = []
    for name in sorted(os.listdir("/")):
        path = f"/{name}"
        if name not in needed and os.path.isdir(path) and not os.path.islink(path):
            roots.append(path)
    return roots


def enter_private_view(workdir: str, keep_prefixes: tuple[str, ...]) -> bool:
    """Hide what the worker must not see; True when the private view is in place."""
    try:
        libc = _libc()
        if libc.unshare(CLONE_NEWNS) != 0:
            return False
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE, None)
        keep = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
        for root in hidden_roots(keep_prefixes) + ["/dev/shm"]:
            if os.path.isdir(root):
                _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=755")
        parent = os.path.dirname(workdir)
        os.makedirs(parent, exist_ok=True)
        os.chmod(parent, 0o755)
        os.makedirs(workdir, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{keep}", workdir, None, MS_BIND | MS_REC, None)
        os.close(keep)
        return True
    except OSError:
        return False
