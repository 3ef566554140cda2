"""Registers the grading plugin for every pytest run in this kit."""
pytest_plugins = ["autograder.grading.plugin"]
