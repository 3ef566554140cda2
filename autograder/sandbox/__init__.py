"""Where untrusted code is started and held: the zygote and its confinement, local (portable) mode,
the worker pool interface. May import autograder's top modules and autograder.worker only."""
