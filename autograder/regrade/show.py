"""``python -m autograder show RESULTS.json``: one submission's feedback as the student
sees it on Gradescope. Visible tests are shown with their output; ``after_due_date``
and ``after_published`` tests are shown marked with when the student gets to see them;
hidden tests are never shown (only how many there are)."""
from __future__ import annotations

import json
from pathlib import Path

WHEN = {
    "after_due_date": "shown to the student after the due date",
    "after_published": "shown to the student once grades are published",
}
RULE = "-" * 72


def _test_block(test: dict) -> list[str]:
    status = "passed" if test.get("status") == "passed" else "failed"
    head = f"{test.get('name', test.get('number', '?'))}  {float(test.get('score', 0)):g}/{float(test.get('max_score', 0)):g}  ({status})"
    when = WHEN.get(str(test.get("visibility", "visible")))
    lines = [head + (f"  [{when}]" if when else "")]
    output = str(test.get("output", "")).rstrip()
    lines.extend(f"    {line}" for line in output.splitlines())
    return lines


def render(results: dict) -> str:
    """The student's view of ``results`` (Gradescope's results.json format) as text."""
    tests = [t for t in results.get("tests", []) if isinstance(t, dict)]
    shown = [t for t in tests if str(t.get("visibility", "visible")) != "hidden"]
    hidden = [t for t in tests if str(t.get("visibility", "visible")) == "hidden"]
    visible_points = sum(float(t.get("max_score", 0)) for t in shown if t.get("visibility", "visible") == "visible")
    visible_score = sum(float(t.get("score", 0)) for t in shown if t.get("visibility", "visible") == "visible")
    lines = [
        f"Autograder score: {float(results.get('score', 0)):g}/{sum(float(t.get('max_score', 0)) for t in tests):g}",
        f"  visible now: {visible_score:g}/{visible_points:g} over {sum(1 for t in shown if t.get('visibility', 'visible') == 'visible')} test(s)",
    ]
    if hidden:
        lines.append(f"  {len(hidden)} hidden test(s) are never shown to the student")
    output = str(results.get("output", "")).strip()
    if output and results.get("visibility", "visible") == "visible":
        lines += [RULE, "Autograder output", *output.splitlines()]
    for test in shown:
        lines.append(RULE)
        lines.extend(_test_block(test))
    return "\n".join(lines)


def render_file(path: Path) -> str:
    """``render`` of a results file; a missing or unreadable file is a one-line error."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: results file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable results.json ({exc})") from None
    if not isinstance(results, dict):
        raise ValueError(f"{path}: not a results.json (expected an object)")
    return render(results)
