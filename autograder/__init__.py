"""An autograding engine: the trusted harness (config, fixtures, judging, results, CLI,
build, regrade) and the sandboxed worker. The homework itself lives beside it:
``assignment/``, ``grading.yaml``, ``reference/``, ``student_template/``, ``tests/``, ``fixtures/``."""
