"""The attack suite (README, "How a grading runs"): every submission under harness_tests/submissions/attacks/
goes through the real run_autograder path, built from the autograder zip, and must

- leave a valid results.json whose per-part scores are exactly what its honest code
  deserves: meta.yaml ``honest`` names the submission the attack hides behind (the
  reference, with some functions left unimplemented, some modules from the template or a
  corpus bug), which is graded beside it, and ``fails`` the tests it fails on purpose (or
  ``all``); no score is written into the meta, so a change of the rubric moves both;
- not change results.json after grading (it is re-read ~2 s after run_autograder returned);
- leave no process of the sandbox user behind;
- not get the harness's correct callees (assignment/substitutes/) shown back in results.json.

Two gradings run at a time. Each lane uses its own sandbox user (``simulate(...,
sandbox_user=)``, i.e. GRADER_SANDBOX_USER, as ``batch.slot_user`` does for a regrade), so
that one lane's "kill every
process of the sandbox user" never hits the other lane, and other gradings under
``hw3sandbox`` on the same machine are not disturbed.
The simulated AUTOGRADER_ROOT of a lane is reachable (not listable) by that lane's user only,
as /autograder is on Gradescope, so path-guessing attacks meet the real lock-down.

Needs root (the uid switch is what is being attacked; as a normal user, ``kill(-1, 9)`` would
end the developer's own session).
"""
from __future__ import annotations

import json
import os
import re
import pwd
import queue
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from autograder.regrade.batch import GradeJob, grade_many
from autograder.sandbox.zygote import kill_user_processes

from harness_tests.corpus import CONFIG, LAYOUT, PARTS, Entry, entries, honest_key, honest_submission, materialise, part_scores
from harness_tests.gradescope_sim import build_zip, install, run_autograder
from harness_tests.grading.test_gradescope_run import assert_valid_results

ATTACKS = entries("attacks")
SOLUTION_NAMES = tuple(f"{module}.py" for module in CONFIG.modules)
SETTLE_SECONDS = 2.0
RUN_TIMEOUT = 300
MAX_RESULTS_BYTES = 512 * 1024
SUBSTITUTES = LAYOUT.substitutes_dir
INERT_SUFFIX = ".attack"
GRADER_FAILED = "The autograder itself failed"  # what a grading that could not finish writes
FORGED_MARK = "FORGED-BY-SUBMISSION"  # what the forging attacks write into their results.json
BUDGET_SLACK_SECONDS = 10.0  # execution_time may pass a lowered budget by this much (start-up, clean-up)
# Lone surrogates and control characters but tab and newline: never in results.json.
UNSAFE_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
SYSV_IPC_TABLES = ("/proc/sysvipc/shm", "/proc/sysvipc/sem", "/proc/sysvipc/msg")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attack suite needs root (the sandbox user switch is under attack)")


@dataclass(frozen=True)
class Lane:
    user: str
    uid: int
    gid: int
    zip_path: Path
    runs_dir: Path


@dataclass
class AttackRun:
    entry: Entry
    lane_user: str
    upload: Path | None = None
    results: dict | None = None
    error: str = ""
    changed_after: str = ""
    survivors_at_return: list[str] = field(default_factory=list)
    survivors_after: list[str] = field(default_factory=list)
    results_bytes: int = 0
    seconds: float = 0.0
    tripwires: list[str] = field(default_factory=list)
    ipc_left: list[str] = field(default_factory=list)
    stdout: str = ""


# ---------------------------------------------------------------- sandbox users and lanes


def _sandbox_users() -> list[pwd.struct_passwd]:
    base = yaml.safe_load(LAYOUT.config_file.read_text(encoding="utf-8"))["sandbox"]["user"]
    found = []
    for name in [base] + [f"{base}{i}" for i in range(1, 16)]:
        try:
            found.append(pwd.getpwnam(name))
        except KeyError:
            continue
    return found


def processes_of_uid(uid: int) -> list[str]:
    """``pid name state ppid`` of every live process whose real, effective, saved or fs uid
    is ``uid``. Zombies are left out: they are dead and cannot run anything; they wait for
    their new parent (pid 1 here) to reap them."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        if str(uid) in fields.get("Uid", "").split() and not fields.get("State", "").strip().startswith(("Z", "X")):
            found.append(f"{entry} {fields.get('Name', '?').strip()} {fields.get('State', '?').strip()} ppid={fields.get('PPid', '?').strip()}")
    return found


def ipc_objects_of_uid(uid: int) -> list[str]:
    """SysV IPC objects (shared memory, semaphores, message queues) of the host's IPC
    namespace owned or created by ``uid``, and POSIX shared memory in /dev/shm it owns:
    what a grading could leave for the next one to read."""
    found = []
    for table in SYSV_IPC_TABLES:
        try:
            with open(table, encoding="ascii") as handle:
                header = handle.readline().split()
                for line in handle:
                    row = dict(zip(header, line.split()))
                    if str(uid) in (row.get("uid"), row.get("cuid")):
                        found.append(f"{table}: key {row.get('key')} id {row.get('shmid') or row.get('semid') or row.get('msqid')}")
        except OSError:
            continue
    try:
        found += [f"/dev/shm/{e.name}" for e in os.scandir("/dev/shm") if e.stat(follow_symlinks=False).st_uid == uid]
    except OSError:
        pass
    return found


def _remove_ipc(uid: int) -> None:
    """The test's own cleanup: what a failed check left must not fail the next attack."""
    for line in ipc_objects_of_uid(uid):
        if line.startswith("/dev/shm/"):
            os.unlink(line)
        else:
            table, rest = line.split(": ", 1)
            flag = {"shm": "-m", "sem": "-s", "msg": "-q"}[table.rsplit("/", 1)[1]]
            subprocess.run(["ipcrm", flag, rest.rsplit(" ", 1)[1]], check=False, capture_output=True)


def _end_leftovers(uid: int) -> None:
    """The test's own cleanup after a failed check: the lane's user is dedicated to this
    suite, so its processes were started by it."""
    kill_user_processes(uid)


def _make_lanes(base_zip: Path, lanes_root: Path) -> list[Lane]:
    users = _sandbox_users()
    if not users:
        pytest.skip("no sandbox user: run setup.sh as root")
    # The highest-numbered users: the configured one and the first slots are what everyone
    # else (run_autograder, a regrade, a benchmark) uses on this machine.
    chosen = users[-2:] if len(users) > 2 else users
    lanes = []
    for entry in chosen:
        runs = lanes_root / entry.pw_name
        runs.mkdir()
        os.chown(runs, 0, entry.pw_gid)
        os.chmod(runs, 0o750)
        lanes.append(Lane(entry.pw_name, entry.pw_uid, entry.pw_gid, base_zip, runs))
    return lanes


# ---------------------------------------------------------------- one graded attack


def _upload(entry: Entry, target: Path) -> Path:
    """The attack's upload folder. ``replace_all``: the folder's own files only (no
    reference modules added). ``symlinks``: {name: link target} created in the upload.
    Files stored as ``NAME.attack`` (conftest.py, pytest.ini, sitecustomize.py, torch.py,
    ...) become ``NAME``: kept inert in the repository, where the project's own pytest
    run would otherwise load them."""
    if entry.meta.get("replace_all"):
        shutil.copytree(entry.path, target, ignore=shutil.ignore_patterns("meta.yaml"))
    else:
        materialise(entry, target)
    for path in sorted(target.rglob(f"*{INERT_SUFFIX}")):
        path.rename(path.with_name(path.name[: -len(INERT_SUFFIX)]))
    for name, link in (entry.meta.get("symlinks") or {}).items():
        path = target / name
        if path.exists() or path.is_symlink():
            path.unlink()
        os.symlink(link, path)
    return target


def grade_attack(entry: Entry, lane: Lane, uploads: Path) -> AttackRun:
    run = AttackRun(entry, lane.user)
    started = time.monotonic()
    upload = run.upload = _upload(entry, uploads / entry.name)
    root = lane.runs_dir / entry.name
    try:
        install(lane.zip_path, upload, root, keep_symlinks=bool(entry.meta.get("symlinks")))
        if "budget_seconds" in entry.meta:
            _lower_budget(root / "source" / "grading.yaml", float(entry.meta["budget_seconds"]))
        gs = run_autograder(root, timeout=RUN_TIMEOUT, sandbox_user=lane.user)
        run.stdout = gs.stdout
        run.survivors_at_return = processes_of_uid(lane.uid)
        run.ipc_left = ipc_objects_of_uid(lane.uid)
        snapshot = gs.results_file.read_bytes() if gs.results_file.exists() else b""
        time.sleep(SETTLE_SECONDS)
        run.survivors_after = processes_of_uid(lane.uid)
        run.tripwires = [str(p) for p in (root, root / "source", root / "results", root / "submission") if (p / "TRIPWIRE").exists()]
        later = gs.results_file.read_bytes() if gs.results_file.exists() else b""
        if later != snapshot:
            run.changed_after = later[:400].decode("utf-8", errors="replace")
        run.results_bytes = len(snapshot)
        try:
            run.results = json.loads(snapshot)
        except ValueError as exc:
            run.error = f"results.json is not JSON ({exc}); run_autograder stderr: {gs.stderr[-1500:]}"
    except Exception as exc:  # reported by the test of this attack, not by the fixture
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        if processes_of_uid(lane.uid):
            _end_leftovers(lane.uid)
        _remove_ipc(lane.uid)
    run.seconds = time.monotonic() - started
    return run


def _lower_budget(config: Path, seconds: float) -> None:
    """The attack's own time budget, in the unzipped autograder's grading.yaml (a short
    one keeps the suite short; the code under test is the same)."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["sandbox"]["budget_seconds"] = seconds
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _selected(request: pytest.FixtureRequest) -> list[Entry]:
    """The attacks whose test was selected (``-k``), or all of them."""
    keys = {item.callspec.params["entry"].key for item in request.session.items
            if getattr(item, "callspec", None) is not None and isinstance(item.callspec.params.get("entry"), Entry)}
    return [e for e in ATTACKS if e.key in keys] or ATTACKS


@pytest.fixture(scope="module")
def attack_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, AttackRun]:
    dist = tmp_path_factory.mktemp("attack-dist")
    uploads = tmp_path_factory.mktemp("attack-uploads")
    base_zip = build_zip(dist)
    lanes_root = Path(tempfile.mkdtemp(prefix="hw3-attack-lanes-"))
    os.chmod(lanes_root, 0o711)
    try:
        lanes = _make_lanes(base_zip, lanes_root)
        free: queue.Queue[Lane] = queue.Queue()
        for lane in lanes:
            free.put(lane)

        def job(entry: Entry) -> AttackRun:
            lane = free.get()
            try:
                return grade_attack(entry, lane, uploads)
            finally:
                free.put(lane)

        # Slowest first (timeouts), so that the two lanes finish together.
        order = sorted(_selected(request), key=lambda e: -float(e.meta.get("slow_seconds", 0)))
        with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            runs = dict(zip((e.key for e in order), pool.map(job, order)))
        yield runs
    finally:
        if os.environ.get("GRADER_KEEP_ATTACK_RUNS"):
            print(f"attack runs kept in {lanes_root}")
        else:
            shutil.rmtree(lanes_root, ignore_errors=True)


# ---------------------------------------------------------------- checks


@pytest.fixture(scope="module")
def honest_grades(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    """Per-test scores of every distinct honest submission the attacks hide behind,
    graded through the batch path with the same tests and fixtures."""
    root = tmp_path_factory.mktemp("honest")
    specs = {honest_key(e.meta.get("honest") or {}): e.meta.get("honest") or {} for e in ATTACKS}
    jobs = [GradeJob(str(i), honest_submission(spec, root / "subs" / str(i)), root / "results" / f"{i}.json") for i, spec in enumerate(specs.values())]
    graded = {r.job.key: r.results for r in grade_many(LAYOUT, CONFIG, jobs, workers=2)}
    return {key: {t["number"]: float(t["score"]) for t in graded[str(i)]["tests"]} for i, key in enumerate(specs)}


def deserved_scores(entry: Entry, honest_grades: dict[str, dict[str, float]]) -> dict[str, float]:
    """What the attack's honest code earns, per part: its ``honest`` submission's grade,
    less the tests it fails on purpose (``fails``)."""
    tests = dict(honest_grades[honest_key(entry.meta.get("honest") or {})])
    fails = entry.meta.get("fails") or []
    numbers = [t.number for t in CONFIG.tests()] if fails == "all" else [str(n) for n in fails]
    unknown = sorted(set(numbers) - set(tests))
    assert not unknown, f"{entry.name}/meta.yaml: fails names tests grading.yaml does not have: {unknown}"
    for number in numbers:
        tests[number] = 0.0
    return part_scores({"tests": [{"number": n, "score": s} for n, s in tests.items()]})


def _honest_words(entry: Entry) -> str:
    honest, fails = entry.meta.get("honest") or {}, entry.meta.get("fails")
    words = [f"{k}: {v}" for k, v in sorted(honest.items())] or ["the reference"]
    return "; ".join(words + ([f"fails on purpose: {fails}"] if fails else []))


def _own_lines(upload: Path) -> set[str]:
    lines: set[str] = set()
    for path in upload.rglob("*"):
        if path.is_file() and not path.is_symlink():
            lines.update(line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return lines


def leaked_substitute_lines(upload: Path, results_text: str) -> list[str]:
    """Code lines of the harness's correct callees that show up in results.json although
    the submission does not contain them itself."""
    own = _own_lines(upload)
    leaked = []
    for path in sorted(SUBSTITUTES.glob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            code = line.strip()
            if len(code) >= 24 and not code.startswith(("#", "import", "from", "class", "def", "super()")) and code not in own and code in results_text:
                leaked.append(f"{path.name}: {code}")
    return leaked


def test_attack_corpus_is_well_formed() -> None:
    assert len(ATTACKS) >= 20
    for entry in ATTACKS:
        assert isinstance(entry.meta.get("attack"), str) and entry.meta["attack"].strip(), entry.name
        # Only the solution modules may be live files: a conftest.py, pytest.ini, torch.py, ...
        # in the repository would be picked up by the project's own tools.
        live = [p.relative_to(entry.path).as_posix() for p in entry.path.rglob("*")
                if p.is_file() and p.name != "meta.yaml" and not p.name.endswith(INERT_SUFFIX) and p.name not in SOLUTION_NAMES]
        assert not live, f"{entry.name}: store {live} as NAME{INERT_SUFFIX}"
        assert "expected" not in entry.meta, f"{entry.name}: say what the code honestly is (honest, fails), not what it scores"
        honest_key(entry.meta.get("honest") or {})
        if entry.meta.get("replace_all"):
            names = {p.name for p in entry.path.iterdir()} | set(entry.meta.get("symlinks") or {})
            assert set(SOLUTION_NAMES) <= names, entry.name


@pytest.mark.parametrize("entry", ATTACKS, ids=lambda e: e.name)
def test_attack_is_contained(entry: Entry, attack_runs: dict[str, AttackRun], honest_grades: dict[str, dict[str, float]]) -> None:
    run = attack_runs[entry.key]
    what = f"{entry.name} ({entry.meta['attack'].strip()}) [lane {run.lane_user}, {run.seconds:.0f} s]"
    assert not run.error, f"{what}: {run.error}"
    assert run.results is not None
    assert_valid_results(run.results)
    assert not run.changed_after, f"{what}: results.json changed after run_autograder returned: {run.changed_after}"
    assert not run.survivors_at_return, f"{what}: processes of the sandbox user outlived run_autograder: {run.survivors_at_return}"
    assert not run.survivors_after, f"{what}: processes of the sandbox user appeared after grading: {run.survivors_after}"
    assert run.results_bytes <= MAX_RESULTS_BYTES, f"{what}: results.json is {run.results_bytes} bytes"
    assert not run.ipc_left, f"{what}: IPC objects of the sandbox user outlived the grading: {run.ipc_left}"
    text = "\n".join([str(run.results.get("output", ""))] + [str(t.get("output", "")) for t in run.results["tests"]])
    unsafe = sorted({repr(c) for c in UNSAFE_TEXT.findall(text + "\n".join(t["name"] for t in run.results["tests"]))})
    assert not unsafe, f"{what}: results.json carries unsafe characters {unsafe}"
    assert not UNSAFE_TEXT.search(run.stdout), f"{what}: run_autograder printed unsafe characters"
    if "budget_seconds" in entry.meta:
        budget = float(entry.meta["budget_seconds"])
        assert run.results["execution_time"] <= budget + BUDGET_SLACK_SECONDS, f"{what}: execution_time {run.results['execution_time']} s for a budget of {budget:g} s"
        assert any("time budget" in t["output"] for t in run.results["tests"]), f"{what}: no test names the time budget"
    assert FORGED_MARK not in text, f"{what}: results.json carries the submission's forged text"
    assert GRADER_FAILED not in text, f"{what}: the grading failed as a whole instead of failing the tests the attack hit: {text[:500]}"
    hidden_text = "\n".join(str(t.get("output", "")) for t in run.results["tests"] if t.get("visibility", "visible") != "visible")
    secret = entry.meta.get("not_in_hidden")
    assert not secret or secret not in hidden_text, f"{what}: a non-visible test's message carries the submission's own text ({secret!r})"
    assert not run.tripwires, f"{what}: submitted code ran with write access to the grader's folders: {run.tripwires}"
    assert run.upload is not None
    leaked = leaked_substitute_lines(run.upload, text)
    assert not leaked, f"{what}: results.json shows the harness's correct callee code: {leaked}"
    scores = part_scores(run.results)
    expected = deserved_scores(entry, honest_grades)
    if scores != expected:
        wrong = {p: f"got {scores[p]:g}, deserves {expected[p]:g}" for p in PARTS if scores[p] != expected[p]}
        details = {t["number"]: (t["score"], t["output"][:300]) for t in run.results["tests"] if ".".join(t["number"].split(".")[:2]) in wrong}
        pytest.fail(f"{what}: per-part scores differ from what its honest code ({_honest_words(entry)}) earns when graded "
                    f"beside it: {wrong}\n{json.dumps(details, indent=1)}")
