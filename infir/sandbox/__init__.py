"""Sandbox for untrusted code (benchmark completions now, synthesised SFT code later)."""

from infir.sandbox.limits import SandboxLimits
from infir.sandbox.runner import Sandbox, SandboxResult, SandboxUnavailable, SolutionAndTests
from infir.sandbox.verdict import ERROR, FAIL, PASS, TIMEOUT

__all__ = ["ERROR", "FAIL", "PASS", "TIMEOUT", "Sandbox", "SandboxLimits", "SandboxResult", "SandboxUnavailable",
           "SolutionAndTests"]
