"""The sandbox users a grading machine needs, from grading.yaml: ``sandbox.user`` and its
numbered siblings (one per regrade slot, leased by ``sandbox.lease_user``). setup.sh creates
exactly these (``python3 -m autograder sandbox-users``), so a renamed user in grading.yaml
is the user that exists on Gradescope."""
from __future__ import annotations

import os
import re

from autograder.config import ConfigError, GradingConfig

USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")  # useradd's portable names, with room for a digit
SLOTS_ENV = "GRADER_SANDBOX_SLOTS"  # how many users, default: as many as a grading may lease


def sandbox_users(config: GradingConfig, environ: "os._Environ[str] | dict[str, str] | None" = None) -> list[str]:
    """``user``, ``user1``, ... : the base name is grading.yaml's (or GRADER_SANDBOX_USER's,
    which local simulations use, as the grading itself does)."""
    from autograder.sandbox.zygote import SANDBOX_USER_ENV, SIBLINGS

    env = os.environ if environ is None else environ
    base = env.get(SANDBOX_USER_ENV) or config.sandbox.user
    if not USER_NAME.fullmatch(base):
        raise ConfigError(f"sandbox.user: {base!r} is not a valid user name (lower-case letters, digits, '_' and '-', 31 at most)")
    count = int(env.get(SLOTS_ENV, "") or SIBLINGS)
    return [base if i == 0 else f"{base}{i}" for i in range(max(count, 1))]
