"""The outside review's harvesting attack: a submission that implements nothing, returns
what earlier feedback revealed (a failing visible test shows the expected value at its
worst element) and learns one more element per test per upload. On frozen inputs it
climbs (shown here in the student kit, whose visible cases are frozen); on Gradescope,
where every distinct upload gets visible inputs of its own, it stays at 0 however many
rounds it learns from its own messages."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from harness_tests.corpus import LAYOUT, SOLUTION_FILES
from harness_tests.gradescope_sim import build_zip, simulate
from harness_tests.course.test_student_kit import kit_zip, run, unpack  # noqa: F401  (kit_zip is a fixture)

# q1's deterministic functions and their arguments: their visible tests compare values.
HARVESTED = {
    "log_likelihood_bernoulli": "mu, target",
    "log_likelihood_normal": "mu, logvar, z",
    "log_mean_exp": "y",
    "kl_gaussian_gaussian_analytic": "mu_q, logvar_q, mu_p, logvar_p",
}
HEAD = '''import hashlib
import json

import torch

TABLE = json.loads({table!r})


def _answer(name, *tensors):
    """What earlier feedback showed for exactly these inputs; zeros elsewhere."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    key = name + ":" + digest.hexdigest()[:16]
    print("HARVEST", key)
    out = torch.zeros(tensors[0].shape[0])
    for index, value in TABLE.get(key, {{}}).items():
        out[int(index)] = value
    return out
'''
WORST = re.compile(r"worst at index \((\d+),\): expected (\S+?),")
KEY = re.compile(r"HARVEST (\S+)")
LOCAL_ROUNDS = 7  # the smallest visible case has 5 rows: learnt whole in 5 rounds
GRADESCOPE_ROUNDS = 3
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Gradescope's run needs root (the sandbox user)")


def harvester(table: dict[str, dict[str, float]], folder: Path) -> Path:
    """A template-based upload whose q1 answers from ``table``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SOLUTION_FILES:
        (folder / name).write_bytes((LAYOUT.template_dir / name).read_bytes())
    q1 = HEAD.format(table=json.dumps(table, sort_keys=True))
    q1 += "".join(f"\n\ndef {fn}({args}):\n    return _answer({fn!r}, {args})\n" for fn, args in HARVESTED.items())
    q1 += "\n\ndef kl_gaussian_gaussian_mc(mu_q, logvar_q, mu_p, logvar_p, num_samples=1):\n    raise NotImplementedError\n"
    (folder / "q1_solution.py").write_text(q1, encoding="utf-8")
    return folder


def learn(table: dict[str, dict[str, float]], results: dict) -> int:
    """Add what each failing visible test revealed; how many new values it gave."""
    learned = 0
    for test in results["tests"]:
        keys = set(KEY.findall(test["output"]))
        found = WORST.search(test["output"])
        if test["visibility"] != "visible" or len(keys) != 1 or found is None:
            continue
        entry = table.setdefault(keys.pop(), {})
        if found.group(1) not in entry:
            entry[found.group(1)] = float(found.group(2))
            learned += 1
    return learned


def test_harvesting_feedback_climbs_on_frozen_inputs_and_earns_nothing_on_gradescope(kit_zip: Path, tmp_path: Path) -> None:  # noqa: F811
    # In the kit (frozen visible cases), the attack works: it learns and it scores.
    kit = unpack(kit_zip, tmp_path / "kit", None)
    table: dict[str, dict[str, float]] = {}
    local_scores = []
    for round_number in range(LOCAL_ROUNDS):
        harvester(table, kit)
        run(kit, "-m", "autograder", "grade", ".", "--results", "local.json")
        results = json.loads((kit / "local.json").read_text(encoding="utf-8"))
        local_scores.append(results["score"])
        learn(table, results)
    assert local_scores[0] == 0 and local_scores[-1] > 0, f"the attack should climb on frozen inputs: {local_scores}"

    # On Gradescope every round's upload is new bytes, so it meets new inputs: nothing it
    # learned (there or in the kit) ever matches, round after round.
    dist = build_zip(tmp_path / "dist")
    remote_scores, learned = [], 0
    for round_number in range(GRADESCOPE_ROUNDS):
        upload = harvester(table, tmp_path / f"upload{round_number}")
        results = simulate(dist, upload, tmp_path / f"gs{round_number}").results()
        remote_scores.append(results["score"])
        learned += learn(table, results)
    assert remote_scores == [0.0] * GRADESCOPE_ROUNDS, f"harvested feedback earned points on Gradescope: {remote_scores}"
    assert learned >= GRADESCOPE_ROUNDS, "the attack must really learn from Gradescope's messages for this test to mean anything"
