"""The bulk regrade of a Gradescope export: unpacking, slots, progress, the gradebook.
May import autograder's top modules, autograder.grading, autograder.sandbox and autograder.worker (to warm its zygotes)."""
