# Hang: the failure message of a part's first failing test is wrapped UNTRUNCATED by
# report.part_table (before results.json is written). A line with >= 95 leading spaces
# makes textwrap's indent wider than the 100-column width, so it emits ONE character per
# line and re-slices the rest of the word each time: O(W^2) time for a W-character word.
# The worker may put up to ~4 MB in its error message (the header limit), so W ~ 3.9M.
import sys

_child = sys.modules["autograder.worker.child"]
_original = _child._student_traceback
W = int(sys.modules.get("builtins").__dict__.get("_W", 3_900_000))


def _big(exc, submission_dir):
    if str(exc) == "BIG":
        return "RuntimeError: failed\n" + " " * 100 + "x" * W
    return _original(exc, submission_dir)


_child._student_traceback = _big


def log_likelihood_bernoulli(mu, target):
    raise RuntimeError("BIG")


def log_likelihood_normal(mu, logvar, z):
    raise RuntimeError("BIG")


def log_mean_exp(y):
    raise RuntimeError("BIG")


def kl_gaussian_gaussian_analytic(mu_q, logvar_q, mu_p, logvar_p):
    raise NotImplementedError


def kl_gaussian_gaussian_mc(mu_q, logvar_q, mu_p, logvar_p, num_samples=1):
    raise NotImplementedError
