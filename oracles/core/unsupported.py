"""An op that the installed torch has no kernel for, in a dtype or on a device (torch 2.0's CPU kernels lack
float16 for most elementwise ops: `"sin_vml_cpu" not implemented for 'Half'`; torch.nn.functional.rms_norm came
in torch 2.4). That is a property of the
torch under test, not a verdict on a gradient: the test is skipped as `unsupported by this torch`, without
Hypothesis shrinking it (it would, for every example of every such test), and the run reports each missing
kernel once, with how many tests met it, so an upgrade comparison from an old torch stays readable."""

from __future__ import annotations

import functools
import re
import unittest

PREFIX = "unsupported by this torch: "
# torch's messages for a kernel it lacks: a dtype a CPU or CUDA kernel does not dispatch, an op a backend
# (a device) does not implement
_MISSING = (re.compile(r"\"(?P<kernel>[\w.:]+)\" not implemented for '(?P<where>\w+)'"),
            re.compile(r"Could not run '(?P<kernel>[\w.:]+)' with arguments from the '(?P<where>\w+)' backend"))
# a derivative torch does not have: nextafter's before torch 2.1, or a double backward (torch 2.13 words it
# "derivative for aten::_ctc_loss_backward is not implemented")
_UNDIFFERENTIATED = re.compile(r"derivative for '?(?P<op>[\w.:]+?)'? is not implemented")
# an op whose forward-mode formula torch does not have (ormqr, pdist, index_reduce in torch 2.13)
_NO_FORWARD_AD = re.compile(r"Trying to use forward AD with (?P<op>[\w.:]+) that does not support it")
# an op an older torch does not have at all (torch.nn.functional.rms_norm before torch 2.4)
_ABSENT = re.compile(r"module '(?P<module>torch[\w.]*)' has no attribute '(?P<name>\w+)'")
# a spelling a newer torch has removed (torch.qr in torch 2.15: "This function was deprecated since version 1.9 and
# is now removed. `torch.qr` is deprecated in favor of `torch.linalg.qr` ...")
_REMOVED = re.compile(r"deprecated since version [\d.]+ and is now removed\. `(?P<name>[\w.]+)`")


class UnsupportedKernel(unittest.SkipTest):  # Hypothesis and pytest both take a SkipTest as "skip this test"
    def __init__(self, kernel: str, where: str):
        self.kernel = f"{kernel} for {where}"
        super().__init__(PREFIX + self.kernel)


def missing_kernel(error: BaseException) -> UnsupportedKernel | None:
    """The kernel `error` says torch lacks, or None for any other error."""
    if isinstance(error, AttributeError):
        match = _ABSENT.search(str(error))
        return UnsupportedKernel(f"{match['module']}.{match['name']}", "this version") if match else None
    if not isinstance(error, (RuntimeError, NotImplementedError)):
        return None
    match = _UNDIFFERENTIATED.search(str(error))
    if match:
        return UnsupportedKernel(f"the derivative of {match['op']}", "this version")
    match = _NO_FORWARD_AD.search(str(error))
    if match:
        return UnsupportedKernel(f"forward AD of {match['op']}", "this version")
    match = _REMOVED.search(str(error))
    if match:
        return UnsupportedKernel(match["name"], "this version (removed)")
    for pattern in _MISSING:
        match = pattern.search(str(error))
        if match:
            return UnsupportedKernel(match["kernel"], match["where"])
    return None


def skipping_missing_kernels(test):
    """`test`, with torch's error for a missing kernel raised as UnsupportedKernel (a skip)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        except (RuntimeError, NotImplementedError, AttributeError) as error:
            unsupported = missing_kernel(error)
            if unsupported is None:
                raise
            raise unsupported from error

    run.skips_missing_kernels = True
    return run
