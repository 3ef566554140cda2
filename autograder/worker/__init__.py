"""Code that runs inside the sandboxed worker, next to the student's modules.

Everything here is imported by the zygote before it forks, so the worker never has
to read harness files from disk (they are unreadable to the sandbox user)."""
