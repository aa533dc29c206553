"""The torchvision op guard (DESIGN.md §5): timm, open_clip and plain transformers work on the CPU torch wheel.

The guard is installed by requirements.txt as a start-up hook (packaging/torchvision_guard), so a process
that never imports infir (a notebook, lm-eval) can load our HF export (issue 10, point 20).
"""

import os
import subprocess
import sys

import torch

from conftest import REPO


def _python(code: str, *args: str, cwd) -> subprocess.CompletedProcess:
    """A fresh interpreter outside the repository (so ``infir`` is not importable) and no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_vision_libraries_import_and_build_models_on_cpu_torch():
    code = ("import infir, torch, timm, open_clip, torchvision;"
            "m = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=0);"
            "print(tuple(m(torch.zeros(1, 3, 224, 224)).shape), 'ViT-B-32' in open_clip.list_models())")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["(1,", "192)", "True"]


def test_a_saved_llama_loads_in_plain_transformers_without_importing_infir(tmp_path):
    """What a notebook or lm-eval does with our export: only transformers, in a fresh interpreter."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2)).eval()
    model.save_pretrained(tmp_path / "export")
    ids = [[1, 5, 9, 42, 7]]
    with torch.no_grad():
        expected = model(torch.tensor(ids)).logits
    code = ("import sys, torch\n"
            "from transformers import AutoModelForCausalLM\n"
            "model = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()\n"
            f"torch.save(model(torch.tensor({ids})).logits.detach(), sys.argv[2])\n"
            "print(type(model).__name__, 'infir' in sys.modules)\n")
    proc = _python(code, str(tmp_path / "export"), str(tmp_path / "logits.pt"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["LlamaForCausalLM", "False"]
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected)


def test_the_start_up_hook_is_cheap_and_infir_imports_without_torch(tmp_path):
    """Every interpreter of the environment runs the hook: it must not load torch until torchvision is wanted."""
    code = ("import sys\n"
            "print(type(sys.meta_path[0]).__name__, 'torch' in sys.modules)\n"
            "sys.path.insert(0, sys.argv[1]); import infir\n"
            "print('torch' in sys.modules)\n"
            "import torch, torchvision\n"
            "print(hasattr(torch.ops.torchvision, 'nms'))\n")
    proc = _python(code, str(REPO), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["_TorchvisionImportHook", "False", "False", "True"]
