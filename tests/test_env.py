"""timm and open_clip import and build on the CPU torch (the torchvision op guard, DESIGN.md §5)."""

import subprocess
import sys

from conftest import REPO


def test_vision_libraries_import_and_build_models_on_cpu_torch():
    code = ("import infir, torch, timm, open_clip, torchvision;"
            "m = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=0);"
            "print(tuple(m(torch.zeros(1, 3, 224, 224)).shape), 'ViT-B-32' in open_clip.list_models())")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["(1,", "192)", "True"]
