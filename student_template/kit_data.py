"""Getting a dataset's files: download them, or say exactly which file to put where.

Provided code shared by the report scripts (``q1_vae.py``, ``q2_samplers.py``,
``q3_samplers.py``) and ``vae.ipynb``. Without the data and without network access
(a cluster node, an offline laptop) a run must end with one message a student can act
on, not with a traceback from deep inside ``urllib``: ``DataUnavailable`` is that
message, and ``main_or_exit`` prints it and exits non-zero.
"""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

BLOCK = 1 << 20  # bytes read at a time, so that a large download never sits in memory


class DataUnavailable(FileNotFoundError):
    """A dataset's files are not where the run looks, and could not be downloaded.

    The message names the files, where they come from and the folder they go in, so
    that a student can copy them by hand. In a notebook (Jupyter, Colab) it shows as
    that message alone: IPython calls ``_render_traceback_`` instead of printing a
    traceback.
    """

    def __init__(self, dataset: str, files: Sequence[str], folder: str | os.PathLike, source: str,
                 reason: str, hint: str = "or pass --data-dir FOLDER") -> None:
        self.dataset = dataset
        self.files = tuple(files)
        self.folder = Path(folder).resolve()
        self.source = source
        self.reason = reason
        self.hint = hint
        super().__init__(self.message())

    def message(self) -> str:
        """The whole message: what is missing, why, and which file to put where."""
        names = self.files[0] if len(self.files) == 1 else ", ".join(self.files[:-1]) + " and " + self.files[-1]
        return (f"Missing data: {self.dataset} is not in {self.folder}, and {self.reason}.\n"
                f"Put {names}\n  (from {self.source})\n"
                f"in {self.folder} ({self.hint}).")

    def __str__(self) -> str:
        return self.message()

    def _render_traceback_(self) -> list[str]:
        return self.message().splitlines()


def fetch(urls: Sequence[str], target: Path, timeout: float = 60.0,
          log: Callable[[str], None] = print) -> str | None:
    """Download the first URL that answers into ``target``; None on success, else the last error.

    The file is written under a temporary name and renamed when complete, so that an
    interrupted download never passes for the dataset.
    """
    error = "no URL given"
    partial = target.with_name(target.name + ".part")
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                log(f"downloading {url} to {target}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(partial, "wb") as out:
                    while True:
                        block = response.read(BLOCK)
                        if not block:
                            break
                        out.write(block)
            partial.replace(target)
            return None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = f"{url}: {exc}"
            partial.unlink(missing_ok=True)
    return error


def download_failed(error: str) -> str:
    """The reason part of a ``DataUnavailable`` message for a download that did not work."""
    return f"downloading it failed (no network access?): {error}"


DOWNLOAD_OFF = "downloading is switched off"


def main_or_exit(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Run a script's ``main``; missing data ends it with its message on stderr and status 1."""
    try:
        main(argv)
    except DataUnavailable as missing:
        print(missing.message(), file=sys.stderr)
        return 1
    return 0
