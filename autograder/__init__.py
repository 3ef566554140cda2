"""HW3 autograding kit: trusted harness (config, judging, results) and the sandboxed worker."""
