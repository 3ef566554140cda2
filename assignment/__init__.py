"""HW3 itself, as the engine in ``autograder/`` sees it: the case recipes (``cases.py``),
the probe kinds that build HW3's objects in the worker (``probes.py``, ``models.py``),
the correct callees substituted into a caller's fallback run (``substitutes/``) and the
student kit's README and requirements (``kit/``). With ``grading.yaml``, ``reference/``,
``student_template/``, ``tests/`` and ``fixtures/`` it is the whole assignment."""
