"""The trusted grading run: the pytest plugin, judging, comparisons, statistics, results.
May import autograder's top modules and autograder.sandbox; never the worker's code, course tools or regrade."""
