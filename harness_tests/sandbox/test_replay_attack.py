"""A submission that implements nothing and replays the student kit's visible fixtures
(expected outputs looked up by a hash of the inputs). In the kit it earns the visible
points it replays, which shows that the replay works; on Gradescope, whose visible tests
use inputs the kit does not hold, it must earn nothing."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save

from autograder.grading.fixture_store import FILES, FixtureStore
from harness_tests.corpus import LAYOUT, materialise_files
from harness_tests.gradescope_sim import build_zip, simulate
from harness_tests.course.test_student_kit import kit_zip, run, unpack  # noqa: F401  (kit_zip is a fixture)

# function name -> (case names, argument names)
REPLAYED = {
    "log_likelihood_bernoulli": (("bernoulli_basic",), ("mu", "target")),
    "log_likelihood_normal": (("normal_basic",), ("mu", "logvar", "z")),
    "log_mean_exp": (("lme_basic", "lme_extreme"), ("y",)),
    "kl_gaussian_gaussian_analytic": (("kl_basic",), ("mu_q", "logvar_q", "mu_p", "logvar_p")),
    "cosine": (("cosine_basic", "cosine_zero"), ("x1", "x2")),
}

REPLAY = '''
import base64, hashlib
import torch
from safetensors.torch import load

_TABLE = load(base64.b64decode("{data}"))


def _replay(*tensors):
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    key = h.hexdigest()
    if key not in _TABLE:
        raise RuntimeError("these inputs are not in the student kit")
    return _TABLE[key].clone()
'''


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def replay_submission(kit_fixtures: Path, target: Path) -> Path:
    """q1 and q3 built from the kit's own visible fixtures; q2 from the reference (its
    visible tests use critics drawn per submission, nothing to replay)."""
    store = FixtureStore(kit_fixtures)
    table = {}
    for cases, args in REPLAYED.values():
        for name in cases:
            case = store.case(name)
            table[_digest(*(case.inputs[a] for a in args))] = case.expected["out"]
    data = base64.b64encode(save(table)).decode()
    head = REPLAY.format(data=data)
    q1 = head + "".join(f"\n\ndef {fn}({', '.join(args)}):\n    return _replay({', '.join(args)})\n"
                        for fn, (_, args) in REPLAYED.items() if fn != "cosine")
    q1 += "\n\ndef kl_gaussian_gaussian_mc(mu_q, logvar_q, mu_p, logvar_p, num_samples=1):\n    raise RuntimeError('nothing to replay')\n"
    template_q3 = (LAYOUT.template_dir / "q3_solution.py").read_text(encoding="utf-8")
    q3 = template_q3.replace("import torch.nn as nn\n", "import torch.nn as nn\n" + head, 1)
    marker = "    def forward(self, x1, x2):\n        \"\"\"Cosine similarity"
    start = q3.index(marker)
    body = q3.index("raise NotImplementedError", start)
    end = q3.index("\n", body)
    q3 = q3[:body] + "return _replay(x1, x2)" + q3[end:]
    return materialise_files(target, {"q1_solution.py": q1, "q3_solution.py": q3})


def _parts(results: dict) -> dict[str, float]:
    scores: dict[str, float] = {}
    for test in results["tests"]:
        part = ".".join(test["number"].split(".")[:2])
        scores[part] = scores.get(part, 0.0) + float(test["score"])
    return scores


def test_replaying_the_kit_earns_nothing_on_gradescope(kit_zip: Path, tmp_path: Path) -> None:  # noqa: F811
    kit = unpack(kit_zip, tmp_path / "kit", None)
    assert not (kit / "fixtures" / FILES["hidden"]).exists()
    upload = replay_submission(kit / "fixtures", tmp_path / "upload")
    # In the kit, the replay earns what it replays: the attack itself works.
    for name in ("q1_solution.py", "q3_solution.py"):
        (kit / name).write_bytes((upload / name).read_bytes())
    run(kit, "-m", "autograder", "grade", ".", "--results", "local.json")
    local = _parts(json.loads((kit / "local.json").read_text()))
    assert local["1.1"] > 0 and local["1.3"] > 0 and local["3.2"] > 0, local
    remote = simulate(build_zip(tmp_path / "dist"), upload, tmp_path / "gs").results()
    earned = {part: score for part, score in _parts(remote).items() if part not in ("2.1",) and score > 0}
    assert not earned, f"replaying the kit's fixtures earned points on Gradescope: {earned}"
