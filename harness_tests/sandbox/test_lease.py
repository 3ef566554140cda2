"""Leasing a sandbox user is a bounded wait: when every user is held by another grading,
the grading fails with a clear error instead of blocking for ever."""
from __future__ import annotations

import fcntl
import os
import sys
import time

import pytest

if sys.platform == "win32":  # the sandbox is Linux-only; Windows grades in local mode
    pytest.skip("no sandbox users on Windows", allow_module_level=True)

from autograder.sandbox.zygote import LEASE_DIR, lease_user  # noqa: E402
from autograder.sandbox.pool import SandboxError  # noqa: E402

NAME = f"autograder-lease-test-{os.getpid()}"  # no such user, hence no numbered siblings


def test_a_held_user_is_waited_for_a_bounded_time_then_refused() -> None:
    path = os.path.join(LEASE_DIR, f"autograder-sandbox-{NAME}.lock")
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(SandboxError, match="stayed busy"):
            lease_user(NAME, wait_seconds=0.5)
        assert 0.5 <= time.monotonic() - started < 5.0
        fcntl.flock(holder, fcntl.LOCK_UN)
        name, fd = lease_user(NAME, wait_seconds=0.5)
        assert name == NAME
        os.close(fd)
    finally:
        os.close(holder)
        os.unlink(path)
