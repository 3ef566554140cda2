"""A private view of the filesystem for a worker, when the kernel allows it.

As root, before dropping privileges, the worker enters its own mount namespace and
covers every top-level folder but the system ones (``/usr``, ``/lib*``, ``/bin``,
``/etc``, ``/proc``, ``/dev``, ...) with an empty tmpfs: ``/tmp``, ``/home``, ``/root``,
``/autograder``, a project checkout, ... Then it binds back, read-only and at the same
paths, only what it needs: the interpreter's own folders (prefix, standard library,
site-packages; never the whole top-level folder that holds them, which may be ``/root``
or a ``/tmp`` shared with other gradings) and its staging folder; its scratch folder
becomes a fresh size-limited tmpfs of its own that vanishes with it. The submission can
then read neither the harness, the fixtures, the results, other submissions, another
worker's scratch nor a reference checkout, whatever their permissions. Where mount
namespaces are not allowed (an unprivileged container), this does nothing and says so:
the permission lock-down is then what protects."""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

from autograder.libc import LIBC

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

# Top-level folders the interpreter and the C libraries need; everything else is hidden.
SYSTEM = frozenset({"usr", "lib", "lib32", "lib64", "libx32", "bin", "sbin", "etc", "proc", "dev", "sys"})


@dataclass(frozen=True)
class ViewRequest:
    """What one worker must see: its staged modules, its own scratch, the interpreter."""

    submission: str
    scratch: str
    keep_prefixes: tuple[str, ...]
    uid: int
    gid: int
    scratch_bytes: int


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = lambda v: None if v is None else v.encode()  # noqa: E731
    if LIBC.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def _top(path: str) -> str:
    return path.strip("/").split("/")[0]


def needed_folders(keep_prefixes: tuple[str, ...]) -> list[str]:
    """The interpreter's folders outside the system ones, real paths, none inside another."""
    real = sorted({os.path.realpath(p) for p in keep_prefixes if p and os.path.isdir(p)})
    kept: list[str] = []
    for path in real:
        if _top(path) in SYSTEM or path == "/":
            continue
        if any(path == k or path.startswith(k + "/") for k in kept):
            continue
        kept.append(path)
    return kept


def links_on_the_way(keep_prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(link, target) for every symbolic link on the path to a prefix outside the system
    folders (a venv under ``/opt/venv -> /srv/venv``): recreated in the covered view."""
    links: dict[str, str] = {}
    for prefix in keep_prefixes:
        parts = os.path.abspath(prefix).strip("/").split("/")
        for i in range(1, len(parts) + 1):
            path = "/" + "/".join(parts[:i])
            if _top(path) not in SYSTEM and os.path.islink(path):
                links[path] = os.readlink(path)
    return sorted(links.items())


def hidden_roots() -> tuple[list[str], list[str]]:
    """Top-level folders to cover (all but the system ones) and top-level files to blank."""
    folders, files = [], []
    for name in sorted(os.listdir("/")):
        path = f"/{name}"
        if name in SYSTEM or os.path.islink(path):
            continue
        if os.path.isdir(path):
            folders.append(path)
        elif os.path.isfile(path):
            files.append(path)
    return folders, files


def _bind_read_only(fd: int, target: str) -> None:
    os.makedirs(target, exist_ok=True)
    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC, None)
    _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


def enter_private_view(view: ViewRequest) -> str | None:
    """Hide what the worker must not see; None when the private view is in place, else why not."""
    if LIBC.unshare(CLONE_NEWNS) != 0:
        return f"mount namespace refused ({os.strerror(ctypes.get_errno())}): the worker sees the whole filesystem"
    try:
        _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
        folders = needed_folders(view.keep_prefixes)
        links = links_on_the_way(view.keep_prefixes)
        # Hold every folder to bring back before covering the folders that contain them.
        held = [(os.open(path, os.O_RDONLY | os.O_DIRECTORY), path) for path in folders + [view.submission]]
        folders_to_cover, files_to_blank = hidden_roots()
        for root in folders_to_cover + ["/dev/shm"]:
            _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=755")
        for path in files_to_blank:
            _mount(os.devnull, path, None, MS_BIND, None)
        for fd, path in held:
            _bind_read_only(fd, path)
            os.close(fd)
        for link, target in links:
            if not os.path.lexists(link):
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(target, link)
        os.makedirs(view.scratch, exist_ok=True)
        _mount(
            "tmpfs", view.scratch, "tmpfs", MS_NOSUID | MS_NODEV,
            f"size={view.scratch_bytes},nr_inodes=4096,mode=700,uid={view.uid},gid={view.gid}",
        )
        return None
    except OSError as exc:
        # A half-built view is worse than none: the caller must not run the submission.
        raise PrivateViewError(f"private filesystem view failed: {exc}") from None


MS_NOEXEC = 0x8


def mount_own_proc() -> None:
    """A /proc of this process's own PID namespace over the host's, in the worker's own
    mount namespace: the worker then sees its own processes only."""
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    except OSError as exc:
        raise PrivateViewError(f"the worker's own /proc could not be mounted: {exc}") from None


class PrivateViewError(OSError):
    """The mount namespace was granted but the view could not be built."""
