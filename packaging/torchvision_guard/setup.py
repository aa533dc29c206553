"""Only what pyproject.toml cannot say: ship ``infir_torchvision_guard.pth`` at the top of the wheel.

Setuptools has no declarative way to place a file at the site-packages root; copying it into the
build directory during build_py is the usual approach (pytest-cov ships its .pth the same way).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "infir_torchvision_guard.pth"


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(str(Path(__file__).parent / PTH), str(Path(self.build_lib) / PTH), preserve_mode=0)


setup(cmdclass={"build_py": BuildPyWithPth})
