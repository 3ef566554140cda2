"""The C library, for the system calls Python does not wrap (mount, unshare, prctl,
SysV IPC control). Looked up in the interpreter's own symbols: ``ctypes.util.find_library``
would run ``ldconfig`` (or a compiler) in a subprocess on every call, a fork of the whole
preloaded process each time a worker starts."""
from __future__ import annotations

import ctypes

LIBC = ctypes.CDLL(None, use_errno=True)
