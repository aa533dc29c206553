"""`eval=paper` scores the benchmark files it names, not the embedded sets it inherits from eval/embedded
(before: each `path:` source was merged into the inherited `{embedded: ...}` one, which won)."""

from __future__ import annotations

import json

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO
from infir.eval.checks import check_eval_config
from infir.eval.suite import build_task
from infir.hydra_support import register_resolvers

register_resolvers()


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_paper_suite_reads_the_local_benchmark_copies(tmp_path):
    gsm8k = [{"question": f"File question {i}?", "answer": f"Work.\n#### {i}"} for i in range(7)]
    _write(tmp_path / "gsm8k" / "test.jsonl", gsm8k)
    _write(tmp_path / "gsm8k" / "train.jsonl", gsm8k[:6])
    _write(tmp_path / "math" / "test.jsonl", [{"problem": "1+1?", "solution": "$\\boxed{2}$"}] * 3)
    mmlu = [{"question": "Q?", "choices": ["a", "b", "c", "d"], "answer": 1, "subject": "s"}]
    _write(tmp_path / "mmlu" / "test.jsonl", mmlu * 4)
    _write(tmp_path / "mmlu" / "dev.jsonl", mmlu * 5)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=["eval=paper", f"eval.data_dir={tmp_path}",
                                                         f"model_path={tmp_path}"])
    tasks = check_eval_config(OmegaConf.to_container(cfg.eval, resolve=True))
    assert set(tasks) == {"gsm8k", "math", "mmlu"}  # code tasks wait for allow_code_execution
    defaults = {"max_new_tokens": 512, "batch_size": 1}
    run = build_task("gsm8k", tasks["gsm8k"], "base", defaults)
    assert [r["question"] for r in run.task.records] == [r["question"] for r in gsm8k]
    assert run.settings["source"] == {"path": f"{tmp_path}/gsm8k", "split": "test"}
    assert len(build_task("math", tasks["math"], "base", defaults).task.records) == 3
    assert len(build_task("mmlu", tasks["mmlu"], "base", defaults).task.records) == 4
