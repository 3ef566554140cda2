#!/usr/bin/env bash
# Gradescope's setup step (run once per image, as root), also used for a local install.
# Idempotent: installs the pinned dependencies with the system python3 and, as root,
# creates the unprivileged users that run student code: the ones grading.yaml names
# (sandbox.user and its numbered siblings, `python3 -m autograder sandbox-users`).
# --dry-run: install nothing, create no one; print the users it would create.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
DRY_RUN=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        *) echo "setup.sh: unknown option $arg (only --dry-run)" >&2; exit 2 ;;
    esac
done

sandbox_users() {
    # From grading.yaml (GRADER_SANDBOX_USER / GRADER_SANDBOX_SLOTS override, as in a grading).
    (cd "$HERE" && "$PYTHON" -m autograder sandbox-users)
}

if [ "$DRY_RUN" = 1 ]; then
    users="$(sandbox_users)"
    for name in $users; do
        echo "setup.sh: would create sandbox user $name"
    done
    exit 0
fi

pip_install() {
    "$PYTHON" -m pip install --disable-pip-version-check --no-input "$@"
}

# torch first, CPU build: on Gradescope from PyTorch's CPU index (the default PyPI
# wheel drags in several GB of CUDA); elsewhere (CI, a dev machine) from the
# configured indexes. GRADER_TORCH_INDEX overrides.
if ! "$PYTHON" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
    index="${GRADER_TORCH_INDEX:-}"
    if [ -z "$index" ] && [ -d /autograder/source ] && [ -z "${CI:-}" ]; then
        index="https://download.pytorch.org/whl/cpu"
    fi
    if [ -n "$index" ]; then
        pip_install torch==2.13.0 --extra-index-url "$index"
    else
        pip_install torch==2.13.0
    fi
fi
pip_install -r "$HERE/requirements.txt"

if [ "$(id -u)" = 0 ]; then
    nologin="$(command -v nologin || echo /usr/sbin/nologin)"
    users="$(sandbox_users)"
    for name in $users; do
        if ! id -u "$name" >/dev/null 2>&1; then
            useradd --system --no-create-home --home-dir /nonexistent --shell "$nologin" --user-group "$name"
        fi
    done
    # The worker runs as that user and may import modules lazily: every folder above
    # the interpreter's files must be traversable (not readable) by it.
    "$PYTHON" - <<'PY'
import os, site, stat, sys
paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.executable), *site.getsitepackages()}
for path in sorted(paths):
    path = os.path.realpath(path)
    while path not in ("/", ""):
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            os.chmod(path, mode | stat.S_IXOTH)
            print(f"setup.sh: made {path} traversable for the sandbox user")
        path = os.path.dirname(path)
PY
fi
echo "setup.sh: done ($("$PYTHON" -c 'import torch; print("torch", torch.__version__)'))"
