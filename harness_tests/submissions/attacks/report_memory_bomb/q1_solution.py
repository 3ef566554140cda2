# Variant of report_wrap_hang: a huge LEADING indent (L spaces) before a W-character word
# makes report._wrapped emit W lines of ~L characters each: L*W bytes in the trusted
# process before results.json is written (L = W = 1.9M -> ~3.6 TB requested).
import sys

_child = sys.modules["autograder.worker.child"]
_original = _child._student_traceback


def _big(exc, submission_dir):
    if str(exc) == "BIG":
        return "RuntimeError: failed\n" + " " * 1_900_000 + "x" * 1_900_000
    return _original(exc, submission_dir)


_child._student_traceback = _big


def log_likelihood_bernoulli(mu, target):
    raise RuntimeError("BIG")


def log_likelihood_normal(mu, logvar, z):
    raise NotImplementedError


def log_mean_exp(y):
    raise NotImplementedError


def kl_gaussian_gaussian_analytic(mu_q, logvar_q, mu_p, logvar_p):
    raise NotImplementedError


def kl_gaussian_gaussian_mc(mu_q, logvar_q, mu_p, logvar_p, num_samples=1):
    raise NotImplementedError
