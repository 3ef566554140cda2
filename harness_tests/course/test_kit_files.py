"""The student kit's provided files, run as a student runs them from the unzipped kit.

``vae.ipynb`` executes through nbclient on the current python with its smoke parameter;
each report script's ``--smoke`` draws its figures, every one marked as a smoke run (file
name and title); offline (no data folder, every download failing) each script and the
notebook end with one message saying which file to put where, never a traceback; and the
kit holds every file its README's table names."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager  # installed with nbclient (requirements-dev.txt)
from jupyter_client.manager import KernelManager
from nbclient.exceptions import CellExecutionError

from autograder.course.build import build_student_kit
from autograder.paths import KitLayout

LAYOUT = KitLayout.here()
SOLUTIONS = ("q1_solution.py", "q2_solution.py", "q3_solution.py")
NOTEBOOK = "vae.ipynb"
MESSAGE = "Missing data: "  # how the kit's one message about missing data starts (kit_data.py)

# Loaded first by every interpreter of these tests, the notebook's kernel included
# (PYTHONPATH): with HW3_TEST_OFFLINE every download fails as with no network, and with
# HW3_TEST_FIGURE_LOG every matplotlib figure saved is logged with its titles.
SITE = '''"""Test hooks for the kit's scripts and notebook (harness_tests/course/test_kit_files.py)."""
import json
import os
import urllib.error
import urllib.request

if os.environ.get("HW3_TEST_OFFLINE"):
    def _offline(*args, **kwargs):
        raise urllib.error.URLError("simulated: no network")

    urllib.request.urlopen = _offline

if os.environ.get("HW3_TEST_FIGURE_LOG"):
    from matplotlib.figure import Figure

    _savefig = Figure.savefig

    def _logged_savefig(self, fname, *args, **kwargs):
        titles = [ax.get_title() for ax in self.axes]
        if self._suptitle is not None:
            titles.append(self._suptitle.get_text())
        with open(os.environ["HW3_TEST_FIGURE_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps({"file": os.path.basename(str(fname)), "titles": titles}) + "\\n")
        return _savefig(self, fname, *args, **kwargs)

    Figure.savefig = _logged_savefig
'''

# What each script's --smoke writes into --out, and what an offline run asks for.
SMOKE_FIGURES = {
    "q1_vae.py": {"smoke_elbo_curve.png", "smoke_samples.png"},
    "q2_wgan.py": {"smoke_samples.png", "smoke_perturb_dim000.png", "smoke_perturb_dim001.png", "smoke_interpolation.png"},
    "q3_simsiam.py": {"smoke_sg_on-mlp_none_curves.png"},
}
OFFLINE_FILES = {
    "q1_vae.py": ("binarized_mnist_train.amat", "binarized_mnist_valid.amat", "binarized_mnist_test.amat"),
    "q2_wgan.py": ("train_32x32.mat",),
    "q3_simsiam.py": ("cifar-10-python.tar.gz",),
}


@pytest.fixture(scope="module")
def kit_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_student_kit(LAYOUT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    (folder / "sitecustomize.py").write_text(SITE, encoding="utf-8")
    return folder


def unpack(kit_zip: Path, where: Path, solved: bool) -> Path:
    """The kit unzipped into ``where``, with the reference solutions when ``solved``."""
    with zipfile.ZipFile(kit_zip) as archive:
        archive.extractall(where)
    if solved:
        for name in SOLUTIONS:
            shutil.copyfile(LAYOUT.reference_dir / name, where / name)
    return where


def environment(site: Path, offline: bool, figure_log: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GRADER_", "HW3_TEST_"))}
    env["PYTHONPATH"] = str(site)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["MPLBACKEND"] = "Agg"
    if offline:
        env["HW3_TEST_OFFLINE"] = "1"
    if figure_log is not None:
        env["HW3_TEST_FIGURE_LOG"] = str(figure_log)
    return env


def logged_figures(log: Path) -> dict[str, list[str]]:
    """The figures a run saved (file name -> titles), from the sitecustomize's log."""
    if not log.is_file():
        return {}
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["file"]: row["titles"] for row in rows}


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, f"{path.name} is not a drawn PNG"


def assert_one_message(text: str, files: tuple[str, ...], folder: Path) -> None:
    """``text`` is the kit's one missing-data message: no traceback, the files and the folder named."""
    assert "Traceback" not in text, text[-3000:]
    assert text.strip().startswith(MESSAGE) and text.count(MESSAGE) == 1, text[-3000:]
    for name in files:
        assert name in text, f"the message should name {name}: {text}"
    assert str(folder.resolve()) in text, f"the message should name the folder {folder.resolve()}: {text}"


# ------------------------------------------------------------------ the report scripts

@pytest.mark.parametrize("script", sorted(SMOKE_FIGURES))
def test_smoke_run_draws_its_figures_marked_as_smoke(script: str, kit_zip: Path, site: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", solved=True)
    log = tmp_path / "figures.jsonl"
    proc = subprocess.run([sys.executable, script, "--smoke", "--out", "figures"], cwd=kit,
                          env=environment(site, offline=True, figure_log=log), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    written = {p.name for p in (kit / "figures").iterdir()}
    assert SMOKE_FIGURES[script] <= written, f"{script} --smoke wrote {sorted(written)}"
    assert all(name.startswith("smoke_") for name in written), f"unmarked smoke output: {sorted(written)}"
    for name in SMOKE_FIGURES[script]:
        assert_png(kit / "figures" / name)
    titles = logged_figures(log)
    assert set(titles) == {n for n in written if n.endswith(".png")}, (sorted(titles), sorted(written))
    for name, texts in titles.items():
        assert any("SMOKE RUN" in t for t in texts), f"{name}'s title does not say it is a smoke run: {texts}"


@pytest.mark.parametrize("script", sorted(OFFLINE_FILES))
def test_script_offline_without_data_ends_with_one_message(script: str, kit_zip: Path, site: Path, tmp_path: Path) -> None:
    """A fresh kit (unsolved template), no data folder, downloads failing: one message, status 1."""
    kit = unpack(kit_zip, tmp_path / "kit", solved=False)
    proc = subprocess.run([sys.executable, script, "--data-dir", "data", "--out", "out"], cwd=kit,
                          env=environment(site, offline=True), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stdout
    assert_one_message(proc.stderr, OFFLINE_FILES[script], kit / "data")
    assert "--data-dir" in proc.stderr
    left = [p for p in (kit / "data").rglob("*") if p.is_file()] if (kit / "data").exists() else []
    assert not left, f"a failed download left files behind: {left}"


# ------------------------------------------------------------------ the notebook

def kernel_manager(where: Path) -> KernelManager:
    """A kernel of the python running these tests, whatever kernels Jupyter has installed."""
    spec = where / "kernels" / "hw3-test-python"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "tests", "language": "python"}))
    return KernelManager(kernel_name=spec.name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))


def parameters_index(nb: "nbformat.NotebookNode") -> int:
    found = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(found) == 1, "vae.ipynb should have exactly one cell tagged 'parameters'"
    return found[0]


def execute(notebook: Path, env: dict[str, str], where: Path, overrides: str | None) -> tuple["nbformat.NotebookNode", Exception | None]:
    """Run ``notebook`` as papermill would: ``overrides`` injected after its parameters cell,
    then one cell that prints the kernel's interpreter. Returns the executed notebook and
    the error that stopped it, if any."""
    nb = nbformat.read(notebook, as_version=4)
    if overrides is not None:
        nb.cells.insert(parameters_index(nb) + 1, nbformat.v4.new_code_cell(overrides))
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print('kernel python:', sys.executable)"))
    client = nbclient.NotebookClient(nb, km=kernel_manager(where), timeout=300, kernel_name="hw3-test-python",
                                     resources={"metadata": {"path": str(notebook.parent)}})
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        return nb, exc
    return nb, None


def outputs(nb: "nbformat.NotebookNode") -> list[tuple[str, dict]]:
    return [(cell.get("id", ""), out) for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def printed(nb: "nbformat.NotebookNode") -> str:
    return "".join(out.get("text", "") for _, out in outputs(nb) if out["output_type"] == "stream")


def test_template_notebook_is_valid_clean_and_not_smoke_by_default() -> None:
    nb = nbformat.read(LAYOUT.template_dir / NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and not [c for c in code if c.get("outputs") or c.get("execution_count") is not None], \
        "vae.ipynb must ship without outputs"
    assert re.search(r"^SMOKE = False\b", nb.cells[parameters_index(nb)].source, re.M)
    source = "\n".join(c.source for c in code)
    assert "import q1_vae" in source and "class VAE" not in source, "the notebook imports q1_vae's model, not a copy"


def test_notebook_runs_on_synthetic_data_with_the_smoke_parameter(kit_zip: Path, site: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", solved=True)
    log = tmp_path / "figures.jsonl"
    nb, error = execute(kit / NOTEBOOK, environment(site, offline=True, figure_log=log), tmp_path, "SMOKE = True")
    assert error is None, str(error)[-3000:]
    text = printed(nb)
    kernel = re.search(r"kernel python: (.+)", text)
    assert kernel and Path(kernel.group(1).strip()).resolve() == Path(sys.executable).resolve(), text[-500:]
    assert re.search(r"validation ELBO per example: -?\d+\.\d+", text), text[-2000:]
    assert re.search(r"test log p\(x\) per example: -?\d+\.\d+ \(importance sampling, K = \d+\)", text), text[-2000:]
    images = [out for _, out in outputs(nb) if out["output_type"] == "display_data" and "image/png" in out.get("data", {})]
    figures = {p.name for p in (kit / "vae_out").iterdir()}
    assert figures and all(n.startswith("smoke_") for n in figures) and len(images) == len(figures), sorted(figures)
    titles = logged_figures(log)
    assert set(titles) == figures and all(any("SMOKE RUN" in t for t in ts) for ts in titles.values()), titles


def error_outputs(nb: "nbformat.NotebookNode") -> list[tuple[str, dict]]:
    return [(cid, out) for cid, out in outputs(nb) if out["output_type"] == "error"]


def test_notebook_offline_without_data_ends_with_one_message(kit_zip: Path, site: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", solved=False)
    nb, error = execute(kit / NOTEBOOK, environment(site, offline=True), tmp_path, None)
    assert error is not None, "without data and network the notebook must stop"
    errors = error_outputs(nb)
    assert [cid for cid, _ in errors] == ["data"], errors
    shown = "\n".join(errors[0][1]["traceback"])
    assert_one_message(shown, OFFLINE_FILES["q1_vae.py"], kit / "data" / "binarized_mnist")
    assert "DATA_DIR" in shown
    after = nb.cells[[c.get("id") for c in nb.cells].index("data") + 1:]
    assert not [c for c in after if c.cell_type == "code" and c.get("outputs")], "no cell may run after the message"


def test_notebook_alone_says_which_kit_files_to_put_next_to_it(kit_zip: Path, site: Path, tmp_path: Path) -> None:
    """Opened on Colab without uploading the kit's files: one message naming them."""
    alone = tmp_path / "alone"
    alone.mkdir()
    with zipfile.ZipFile(kit_zip) as archive:
        (alone / NOTEBOOK).write_bytes(archive.read(NOTEBOOK))
    nb, error = execute(alone / NOTEBOOK, environment(site, offline=True), tmp_path, None)
    assert error is not None
    errors = error_outputs(nb)
    assert [cid for cid, _ in errors] == ["setup"], errors
    shown = "\n".join(errors[0][1]["traceback"])
    assert "Traceback" not in shown and str(alone.resolve()) in shown, shown
    for name in ("q1_vae.py", "q1_solution.py"):
        assert name in shown, shown


# ------------------------------------------------------------------ the kit's README

def readme_table(readme: str) -> list[tuple[str, str]]:
    """The rows (handout's name, kit's file) of the README's table of the handout's files."""
    section = readme.split("## The handout's files", 1)
    assert len(section) == 2, "the kit's README should have a section '## The handout's files'"
    rows = [line for line in section[1].split("\n## ", 1)[0].splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows[2:]]  # after header and rule
    assert cells and all(len(c) == 2 for c in cells), rows
    return [(c[0], c[1]) for c in cells]


def file_names(text: str) -> set[str]:
    return set(re.findall(r"`([\w.-]+\.(?:py|ipynb))`", text))


def test_kit_holds_every_file_its_readme_table_names(kit_zip: Path) -> None:
    with zipfile.ZipFile(kit_zip) as archive:
        names = set(archive.namelist())
        readme = archive.read("README.md").decode("utf-8")
    rows = readme_table(readme)
    handout = set().union(*(file_names(h) for h, _ in rows))
    kit = set().union(*(file_names(k) for _, k in rows))
    # The files the handout names, each in a row of its own.
    assert {NOTEBOOK, "q2_samplers.py", *SOLUTIONS} <= handout, sorted(handout)
    assert all(file_names(k) for _, k in rows), "every row names the kit's file(s)"
    assert (handout | kit) - names == set(), f"named in the README's table but not in the kit: {sorted((handout | kit) - names)}"


def test_kit_readme_installs_cpu_torch_before_the_requirements(kit_zip: Path) -> None:
    with zipfile.ZipFile(kit_zip) as archive:
        readme = archive.read("README.md").decode("utf-8")
    cpu = readme.find("pip install torch --index-url https://download.pytorch.org/whl/cpu")
    requirements = readme.find("pip install -r requirements.txt")
    assert 0 <= cpu < requirements, "a fresh Linux venv must get the CPU torch before requirements.txt pulls CUDA's"
    assert "python path/to/kit/grade.py [FOLDER]" in readme
    assert "drawn afresh for every submission" in " ".join(readme.split())
