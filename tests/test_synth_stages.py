"""The synthesis stages one at a time, on inputs crafted to hit each of their decisions.

Code rejection against adversarial candidates in the hardened sandbox (and a real stdlib seed's doctests),
the reward model and the reference / majority rewards through the rejection stage, evolution's elimination
reasons and accounting with a scripted backend, selection quotas over shards, and the local backend's
truncation, sampling order and reply cache on a tiny random Llama.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from infir.data.curation.base import StageStats  # noqa: E402
from infir.data.documents import Document  # noqa: E402
from infir.models.chat_template import ASSISTANT_HEADER  # noqa: E402
from infir.synth.backends.base import ChatRequest, Completion, RequestFailed  # noqa: E402
from infir.synth.evolve import EvolutionFilter, EvolveStage  # noqa: E402
from infir.synth.reject import RejectStage  # noqa: E402
from infir.synth.scoring import ScoreStage  # noqa: E402
from infir.synth.rewards.reference import MajorityAnswerReward, ReferenceAnswerReward  # noqa: E402
from infir.synth.rewards.sandbox_tests import SandboxTestsReward  # noqa: E402
from infir.synth.select import SelectStage  # noqa: E402
from test_sandbox import _host_processes_running  # noqa: E402


def _fenced(code: str) -> str:
    """A reply as a model writes it: a sentence, then the code in a python block."""
    return f"Here is the function.\n```python\n{code}```\nIt handles the examples."


# --- 1. code rejection in the sandbox -------------------------------------------------------------

SOLUTION = '''def running_max(xs):
    """The running maximum of xs."""
    out, best = [], None
    for x in xs:
        best = x if best is None or x > best else best
        out.append(best)
    return out
'''
TESTS = ("assert running_max([]) == []\n"
         "assert running_max([3, 1, 4, 1, 5]) == [3, 3, 4, 4, 5]\n"
         "assert running_max([-2, -5]) == [-2, -2]\n")
STRAY_MARKER = f"infir-synth-stray-{uuid.uuid4().hex}"
ADVERSARIAL = {
    "wrong_answer": "def running_max(xs):\n    return sorted(xs)\n",
    "exits_before_defining": "import sys\nsys.exit(0)\n" + SOLUTION,
    "skips_its_tests": "def running_max(xs):\n    return xs\n\nimport os\nos._exit(0)\n",
    "fakes_success": ("import os, sys\nprint('3 passed in 0.01s')\nprint('PASSED')\nsys.stdout.flush()\n"
                      "os.write(4, b'0' * 32)  # the harness's result channel, with a guessed token\nos._exit(0)\n"),
    "raises_at_import": "import definitely_not_a_module_xyz\n" + SOLUTION,
    "exits_inside_a_test": "def running_max(xs):\n    import os\n    os._exit(0)\n",
    "atexit_exit_zero": "import atexit, os\natexit.register(os._exit, 0)\n\ndef running_max(xs):\n    return xs\n",
    "leaves_a_process_and_exits": (  # a background process that would outlive the run, then a clean exit
        "import os, subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)  # {STRAY_MARKER}'])\n"
        "import time\ntime.sleep(0.3)  # long enough for it to start\n"
        "def running_max(xs):\n    return xs\n\nos._exit(0)\n"),
}


def _code_item(doc_id: str, candidates: list[str], solution: str | None = SOLUTION, tests: str | None = TESTS,
               ) -> Document:
    return Document(doc_id, "Write `running_max(xs)`: the running maximum of a list.", "stdlib", "code",
                    {"format": "code", "candidates": candidates,
                     "reference": {"solution": solution, "tests": tests, "entry_point": "running_max"}})


@pytest.fixture(scope="module")
def sandbox_reward() -> SandboxTestsReward:
    return SandboxTestsReward(allow_code_execution=True, sandbox={"workers": 2})


def test_the_sandbox_reward_keeps_only_the_candidate_whose_tests_ran_to_the_end(sandbox_reward) -> None:
    names = list(ADVERSARIAL)
    candidates = [_fenced(ADVERSARIAL[n]) for n in names[:3]] + [_fenced(SOLUTION)] + \
        [_fenced(ADVERSARIAL[n]) for n in names[3:]]
    correct = candidates.index(_fenced(SOLUTION))
    mixed = _code_item("mixed", candidates)
    hostile = _code_item("hostile", [_fenced(ADVERSARIAL[n]) for n in names])
    out = RejectStage(name="reject", rewards=[sandbox_reward])([mixed, hostile])

    assert [d.id for d in out.kept] == ["mixed"] and out.dropped == [(hostile, "rejected_by_sandbox_tests")]
    assert mixed.metadata["response"] == candidates[correct]  # exactly the passing one, though it is not first
    assert mixed.metadata["pass_rate"] == pytest.approx(1 / len(candidates))
    assert mixed.metadata["reward"] == {"name": "sandbox_tests", "score": 1.0, "accepted": 1, "of": len(candidates)}
    verdicts = mixed.metadata["verdicts"]
    assert verdicts[correct] == "accepted"
    for name, verdict in zip(names, [v for i, v in enumerate(verdicts) if i != correct]):
        assert verdict != "accepted" and verdict.startswith("sandbox_"), (name, verdict)
    assert all(v != "accepted" and v.startswith("sandbox_") for v in hostile.metadata["verdicts"])
    assert out.counts["judged_sandbox_tests"] == 2 * len(names) + 1 and out.counts["accepted_sandbox_tests"] == 1
    assert _host_processes_running(STRAY_MARKER) == []  # the background process did not outlive its sandbox


def test_broken_tests_reject_the_item_and_missing_tests_leave_it_unverified(sandbox_reward) -> None:
    from infir.sandbox import SolutionAndTests

    broken = "assert running_max([1, 2]) == [1, 1]\n"  # wrong: the reference solution fails it
    fits_broken = "def running_max(xs):\n    return [xs[0]] * len(xs) if xs else []\n"
    assert sandbox_reward.sandbox().run_tests(SolutionAndTests(fits_broken, broken)).passed  # would be accepted
    invalid = _code_item("invalid", [_fenced(fits_broken), _fenced(SOLUTION)], tests=broken)
    untested = _code_item("untested", [_fenced(SOLUTION)], tests=None)
    out = RejectStage(name="reject", rewards=[sandbox_reward])([invalid, untested])
    assert out.kept == []
    assert dict((d.id, r) for d, r in out.dropped) == {"invalid": "rejected_by_sandbox_tests",
                                                       "untested": "no_verifier"}
    assert invalid.metadata["verdicts"] == ["tests_invalid", "tests_invalid"]
    assert "response" not in invalid.metadata and "verdicts" not in untested.metadata


def test_a_stdlib_seeds_doctests_pass_its_reference_and_fail_wrong_or_missing_functions(sandbox_reward) -> None:
    from infir.synth.seeds import EmbeddedSeeds

    seeds = EmbeddedSeeds({"stdlib": {"max_seeds": 100000, "require_tests": True}}).documents()
    seed = next(d for d in seeds if d.id == "code/statistics.py:median_low")
    reference = seed.metadata["reference"]
    assert reference["entry_point"] == "median_low" and ">>> median_low(" in reference["tests"]
    wrong = "def median_low(data):\n    data = sorted(data)\n    return data[len(data) // 2]\n"  # the high median
    missing = "import statistics\n"  # defines nothing: the module's own median_low must not stand in for it
    candidates = [_fenced(wrong), _fenced(missing), _fenced(reference["solution"] + "\n")]
    seed.metadata["candidates"] = candidates
    out = RejectStage(name="reject", rewards=[sandbox_reward])([seed])
    assert out.kept == [seed] and seed.metadata["response"] == candidates[2]
    assert seed.metadata["verdicts"] == ["sandbox_fail", "sandbox_fail", "accepted"]


# --- 2. the reward model through the rejection stage ----------------------------------------------

MATH = [
    Document("rm1", "Tom has 3 apples and buys 4 more. How many apples?", "seed", "math",
             {"format": "gsm8k", "candidates": ["3 + 4 = 7. The answer is 7.", "7", "The answer is 12.",
                                                "Tom has 3 apples; 3 + 4 = 7 apples in all. #### 7"]}),
    Document("rm2", "What is 12 + 30? Think step by step.", "seed", "math",
             {"format": "gsm8k", "candidates": ["12 + 30 = 42.", "12 + 30 = 43, so 43.", "The quick brown fox."]}),
]


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory) -> Path:
    from infir.models.chat_template import ensure_chat_template
    from infir.models.tokenizer import load_tokenizer, train_bpe
    from test_synth_reward_model import CORPUS, _save_model

    out = tmp_path_factory.mktemp("rm-tok")
    train_bpe(CORPUS, 320, 2, out)
    tokenizer = ensure_chat_template(load_tokenizer(out))
    return _save_model(tmp_path_factory.mktemp("rm"), tokenizer, tokenizer.pad_token_id)


def _math_items() -> list[Document]:
    return [Document(d.id, d.text, d.source, d.domain, {**d.metadata, "candidates": list(d.metadata["candidates"])})
            for d in MATH]


def test_rejection_keeps_the_candidate_the_reward_model_scores_best(rm_dir) -> None:
    from infir.synth.rewards.reward_model import RewardModelReward
    from test_synth_reward_model import reference_scores

    docs = _math_items()
    code = Document("c1", "Write a function.", "seed", "code", {"format": "code", "candidates": ["def f(): pass"]})
    reward = RewardModelReward(str(rm_dir), domains=["math"], batch_size=3, device="cpu")
    out = RejectStage(name="reject", rewards=[reward])([*docs, code])
    assert out.kept == docs and out.dropped == [(code, "no_verifier")]  # the reward judges its domains only
    everything = []
    for doc in docs:
        scores = reference_scores(rm_dir, doc)  # each candidate alone, unpadded
        everything += scores
        ranked = sorted(scores)
        assert ranked[-1] - ranked[-2] > 1e-3, "the tiny model must separate the top two for the argmax to mean much"
        best = scores.index(ranked[-1])
        assert 0 < best < len(scores) - 1  # neither the first nor the last: the stage must rank, not pick an end
        assert doc.metadata["response"] == doc.metadata["candidates"][best]
        assert doc.metadata["reward"]["name"] == reward.name
        assert doc.metadata["reward"]["score"] == pytest.approx(ranked[-1], abs=1e-4)
        assert doc.metadata["pass_rate"] == 1.0  # no floor: every non-empty candidate is accepted

    floored = RewardModelReward(str(rm_dir), domains=["math"], floor=max(everything) + 0.5, device="cpu")
    docs = _math_items()
    out = RejectStage(name="reject", rewards=[floored])(docs)
    assert out.kept == [] and [r for _, r in out.dropped] == [f"rejected_by_{floored.name}"] * len(docs)
    assert f"rejected_by_{floored.name}" == "rejected_by_reward_model"
    assert all(set(d.metadata["verdicts"]) == {"below_floor"} for d in docs)


# --- 3. reference answers and majority agreement --------------------------------------------------


def _math(doc_id: str, fmt: str, candidates: list[str], answer: str | None = None) -> Document:
    metadata = {"format": fmt, "candidates": candidates}
    if answer is not None:
        metadata["reference"] = {"answer": answer, "format": fmt}
    return Document(doc_id, "A problem.", "seed", "math", metadata)


def test_reference_answers_are_read_strictly_and_compared_as_numbers_or_math() -> None:
    from infir.eval.answers.math_equivalence import math_answers_equal

    reward = ReferenceAnswerReward()
    gsm8k = _math("g", "gsm8k", ["600 + 634 = 1,234.\n#### 1,234", "600 + 634 = 1234, so the answer is 1234.",
                                 "#### 1235", "#### 1234.0"], answer="1234")
    [row] = reward.judge([gsm8k])
    assert [(v.accepted, v.reason) for v in row] == [(True, ""), (False, "no_final_answer"),
                                                     (False, "wrong_answer"), (True, "")]
    answers = ["0.5", "1/2", "\\dfrac{1}{2}", "\\frac{1}{3}", "2"]
    boxed = _math("b", "boxed", [f"So the answer is $\\boxed{{{a}}}$." for a in answers] + ["It is one half."],
                  answer="\\frac{1}{2}")
    [row] = reward.judge([boxed])
    expected = [math_answers_equal(a, "\\frac{1}{2}") for a in answers]
    assert expected[:3] == [True, True, True] and expected[3:] == [False, False]
    assert [v.accepted for v in row] == expected + [False] and row[-1].reason == "no_final_answer"

    out = RejectStage(name="reject", rewards=[reward])([gsm8k, _math("none", "gsm8k", ["#### 4"])])
    assert out.kept == [gsm8k] and gsm8k.metadata["response"] == gsm8k.metadata["candidates"][0]
    assert gsm8k.metadata["pass_rate"] == 0.5 and out.dropped[0][1] == "no_verifier"


def test_majority_accepts_agreeing_candidates_and_leaves_referenced_items_to_the_reference() -> None:
    reward = MajorityAnswerReward(min_votes=2, min_share=0.5)
    agree = _math("agree", "gsm8k", ["So #### 8", "3 + 4 = 7\n#### 7", "#### 9", "The total is 7.\n#### 7"])
    split = _math("split", "gsm8k", ["#### 1", "#### 2", "#### 3", "#### 4"])
    referenced = _math("referenced", "gsm8k", ["#### 5", "#### 5", "#### 5", "#### 6"], answer="6")
    assert not reward.applies_to(referenced) and reward.applies_to(agree)
    agreed, splitted = reward.judge([agree, split])
    assert [v.accepted for v in agreed] == [False, True, False, True]
    assert [v.score for v in agreed if v.accepted] == [0.5, 0.5]
    assert not any(v.accepted for v in splitted) and {v.reason for v in splitted} == {"no_majority"}

    # majority first: it still does not judge an item with a reference, whose 3 agreeing votes are wrong
    out = RejectStage(name="reject", rewards=[reward, ReferenceAnswerReward()])([agree, split, referenced])
    assert [d.id for d in out.kept] == ["agree", "referenced"]
    assert out.dropped == [(split, "rejected_by_majority_answer")]
    assert agree.metadata["response"] == agree.metadata["candidates"][1]  # the first of the majority
    assert referenced.metadata["reward"]["name"] == "reference_answer"
    assert referenced.metadata["response"] == "#### 6"


# --- 4. evolution ---------------------------------------------------------------------------------

PARENT = "Tom has 3 apples and buys 4 more at the market. How many apples does Tom have now?"


@pytest.mark.parametrize("evolved,reason", [
    ("#Rewritten Prompt#: Tom has 3 apples and buys 5 more pears. How many fruits does he have?", "template_leak"),
    ("I'm sorry, but I can't rewrite this prompt for you.", "refusal"),
    ("?? ... the of and", "degenerate"),
    (" ".join(f"apple{i}" for i in range(301)), "too_long"),
    ("tom has 3 apples, and buys 4 more at the market; how many apples does tom have now", "no_information_gain"),
    (PARENT.replace("now?", "now today?"), "no_information_gain"),  # one new word: word-set Jaccard above 0.9
    ("He buys 4 more, so 3 + 4 = 7 apples.\n#### 7", "answered_not_rewritten"),  # a solution, not a task
    ("Write it as code:\n```python\nprint(3 + 4)\n```", "answered_not_rewritten"),
    ("Tom has 3 apples, buys 4 more, then gives a third of all his apples to Ann. How many does Tom keep, and "
     "how many would he keep if he had bought twice as many?", None),
], ids=["leak", "refusal", "degenerate", "too_long", "repunctuated", "near_copy", "answered", "answered_code",
        "real_rewrite"])
def test_the_evolution_filter_names_each_failed_rewrite(evolved: str, reason: str | None) -> None:
    assert EvolutionFilter().reason(evolved, PARENT) == reason


class ScriptedBackend:
    """Replies by request key from a script (a RequestFailed or a list of completions); records the requests."""

    def __init__(self, script: dict) -> None:
        self.script, self.stats, self.requests = script, Counter(), []

    def fingerprint(self) -> str:
        return "scripted"

    def complete(self, requests):
        self.requests += list(requests)
        self.stats["requests"] += len(requests)
        replies = []
        for request in requests:
            reply = self.script.get(request.key)
            if reply is None:  # later rounds: a fresh instruction of its own
                reply = [Completion(f"Solve a harder variant number {len(self.requests)} about {request.key} "
                                    f"with pears, plums and two extra steps of reasoning.")]
            replies.append(reply)
        return replies


class UsesScriptedBackend:
    """A stage that asks a scripted backend object instead of building one from a generator config."""

    def __init__(self, backend: ScriptedBackend, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scripted = backend

    @property
    def backend(self):
        return self.scripted


class ScriptedEvolve(UsesScriptedBackend, EvolveStage):
    pass


OPS = [{"name": "deepen", "kind": "depth", "prompt": "Make this harder: {instruction}"},
       {"name": "breadth", "kind": "breadth", "prompt": "Write a new {domain} problem like: {instruction}"}]


def test_evolve_keeps_parents_adds_children_and_counts_every_elimination() -> None:
    parents = [Document(f"p{i}", f"{PARENT} (variant {i})", "procedural", "math",
                        {"format": "gsm8k", "origin": "seed", "reference": {"answer": "7", "format": "gsm8k"}})
               for i in range(3)]
    good = "Tom has 3 apples and buys 4 bags of 5 pears each. How many fruits does he carry home?"
    script = {
        "p0:deepen": [Completion(good)],
        "p0:breadth": RequestFailed("http_500", "scripted"),
        "p1:deepen": [Completion("Tom has 3 apples and buys 4 bags of", "length")],
        "p1:breadth": [Completion("#Rewritten Prompt#: Ann has 2 pears and finds 9 more plums.")],
        "p2:deepen": [Completion("I'm sorry, but I cannot make this harder.")],
        "p2:breadth": [Completion("A train leaves at 9 and travels 60 km per hour. How far has it gone by noon?")],
    }
    backend = ScriptedBackend(script)
    stage = ScriptedEvolve(backend, name="evolve", generator={"_target_": "unused"}, ops=OPS, per_instruction=2,
                           rounds=2)
    out = stage([*parents])
    stats = StageStats("evolve")
    stats.add(out, 0.0)
    stats.check()  # read + created = kept + dropped

    first_round = {r.key for r in backend.requests[:6]}
    assert first_round == set(script)  # both ops for every parent, the instruction in the prompt
    assert all(r.messages[-1][1].endswith(next(p.text for p in parents if r.key.startswith(p.id + ":")))
               for r in backend.requests[:6])
    assert out.kept[:3] == parents and stats.read == 3
    kept_children = {d.id: d for d in out.kept[3:]}
    assert set(kept_children) >= {"p0~deepen", "p2~breadth"}
    dropped = {d.id: reason for d, reason in out.dropped}
    assert dropped == {"p0~breadth": "request_failed", "p1~deepen": "truncated", "p1~breadth": "template_leak",
                       "p2~deepen": "refusal"}
    second = [d for d in out.kept[3:] if d.metadata["round"] == 2]
    assert {d.metadata["parent"] for d in second} == {"p0~deepen", "p2~breadth"} and len(second) == 4
    assert out.created == stats.created == 6 + 4 and stats.kept == 3 + 2 + 4
    assert dict(stats.dropped) == {"request_failed": 1, "truncated": 1, "template_leak": 1, "refusal": 1}
    assert stats.counts["evolved_deepen"] == 5 and stats.counts["backend_requests"] == 10
    for child in [*out.kept[3:], *(d for d, _ in out.dropped)]:
        assert "reference" not in child.metadata and child.metadata["origin"] == "evolved"
        assert child.id == f"{child.metadata['parent']}~{child.metadata['evolution']}"
        assert child.domain == "math" and child.metadata["format"] == "gsm8k"
    assert kept_children["p0~deepen"].text == good and kept_children["p0~deepen"].metadata["parent"] == "p0"
    assert all("reference" in p.metadata for p in parents)  # the parents keep theirs


# --- 5. selection ---------------------------------------------------------------------------------


def _scored(doc_id: str, domain: str, difficulty: str, quality: float) -> Document:
    return Document(doc_id, doc_id, "seed", domain, {"difficulty": difficulty, "quality": quality})


def test_selection_by_difficulty_and_quota_does_not_depend_on_shard_order() -> None:
    stage = SelectStage("select", difficulties={"math": ["medium", "hard"], "code": ["easy", "medium", "hard"]},
                        max_per_domain={"math": 2})
    shard_a = [_scored("m-easy", "math", "easy", 0.99), _scored("m-top", "math", "medium", 0.9),
               _scored("m-tie-a", "math", "hard", 0.7), _scored("c1", "code", "easy", 0.2)]
    shard_b = [_scored("m-tie-b", "math", "medium", 0.7), _scored("m-low", "math", "hard", 0.3),
               _scored("chat1", "chat", "medium", 0.95), _scored("c2", "code", "hard", 0.1)]

    def run(shards):
        decision = stage.decide([stage.summarise(s) for s in shards])
        outputs = [stage.apply(s, decision) for s in shards]
        return ({d.id for o in outputs for d in o.kept}, {d.id: r for o in outputs for d, r in o.dropped})

    kept, dropped = run([shard_a, shard_b])
    assert (kept, dropped) == run([shard_b, shard_a])
    math_kept = [d for d in shard_a + shard_b if d.id in kept and d.domain == "math"]
    assert len(math_kept) == 2 and "m-top" in kept and sorted(d.metadata["quality"] for d in math_kept) == [0.7, 0.9]
    assert kept == {"c1", "c2", "m-top"} | {d.id for d in math_kept}
    tie_loser = ({"m-tie-a", "m-tie-b"} - kept).pop()
    assert dropped == {"m-easy": "difficulty_not_selected", tie_loser: "over_domain_quota",
                       "m-low": "over_domain_quota", "chat1": "domain_not_selected"}


# --- 6. the local backend and the reply cache -----------------------------------------------------

LM_CORPUS = ["Question: Tom has 3 apples and buys 4 more. How many apples?\nAnswer: 3 + 4 = 7.\n#### 7\n",
             "def add(a, b):\n    return a + b\n", "The quick brown fox jumps over the lazy dog.\n"] * 30
PROMPTS = ["Tom has 3 apples. How many?", "Write add(a, b).", "The quick brown fox", "What is 12 + 30?"]


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory) -> Path:
    from support.tiny_lm import save_tiny_lm

    # initializer_range 0.3: peaky logits, so greedy argmax is never a float-noise coin flip
    return save_tiny_lm(tmp_path_factory.mktemp("lm"), texts=LM_CORPUS, vocab_size=320, initializer_range=0.3)


def _request(i: int, n: int = 1, max_tokens: int = 3, temperature: float = 0.0, seed: int = 0) -> ChatRequest:
    return ChatRequest(f"r{i}-{n}-{temperature}", (("system", "You are a helpful assistant."), ("user", PROMPTS[i])),
                       n, max_tokens, temperature, 0.95 if temperature else 1.0, seed)


@pytest.fixture(scope="module")
def local(lm_dir):
    from infir.synth.backends.local import LocalBackend

    return LocalBackend(model=str(lm_dir), device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def reference_lm(lm_dir):
    from infir.eval.loading import load_model
    from infir.models.chat_template import ensure_chat_template

    model, tokenizer = load_model(lm_dir, device="cpu")
    return model, ensure_chat_template(tokenizer)


def _rendered(tokenizer, request: ChatRequest) -> str:
    text = tokenizer.apply_chat_template(request.message_dicts, tokenize=False, add_generation_prompt=True)
    return text.removeprefix(tokenizer.bos_token or "")  # generate puts the prefix token in front itself


def test_local_backend_replies_are_the_eval_decoder_s_and_flag_truncation(local, reference_lm) -> None:
    import torch

    from infir.eval.generation import GenerationConfig, generate
    from infir.models.tokenizer import decode_text, encode_with_prefix

    model, tokenizer = reference_lm
    greedy = [_request(i) for i in range(4)]
    replies = local.complete(greedy)
    prompts = [_rendered(tokenizer, r) for r in greedy]
    assert all(p.endswith(ASSISTANT_HEADER) and PROMPTS[i] in p for i, p in enumerate(prompts))  # its turn next
    config = GenerationConfig(max_new_tokens=3, num_samples=1, batch_size=4, seed=0)
    assert [[c.text for c in reply] for reply in replies] == generate(model, tokenizer, prompts, config)
    eos = tokenizer.eos_token_id
    for prompt, [completion] in zip(prompts, replies):  # truncated unless EOS came within the 3 tokens
        ids = torch.tensor([encode_with_prefix(tokenizer, [prompt])[0]])
        new = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)[0, ids.shape[1]:].tolist()
        assert completion.truncated == (eos not in new), (prompt, new)
        assert completion.finish_reason == ("length" if eos not in new else "stop")
        assert completion.text == decode_text(tokenizer, new[:new.index(eos)] if eos in new else new)
    assert any(reply[0].truncated for reply in replies)

    # sampled and greedy requests interleaved: each reply is its own request's, in request order
    mixed = [_request(0, n=3, max_tokens=6, temperature=0.9, seed=7), _request(1), _request(2, 3, 6, 0.9, 7),
             _request(3)]
    replies = local.complete(mixed)
    assert [len(r) for r in replies] == [3, 1, 3, 1]
    sampled = generate(model, tokenizer, [_rendered(tokenizer, mixed[i]) for i in (0, 2)],
                       GenerationConfig(max_new_tokens=6, do_sample=True, temperature=0.9, top_p=0.95, num_samples=3,
                                        batch_size=4, seed=7))
    greedy_texts = generate(model, tokenizer, [_rendered(tokenizer, mixed[i]) for i in (1, 3)], config)
    assert [[c.text for c in r] for r in replies] == [sampled[0], greedy_texts[0], sampled[1], greedy_texts[1]]
    assert any(len(set(texts)) > 1 for texts in sampled)  # sampling, not one greedy reply copied


class CountingBackend:
    def __init__(self, inner) -> None:
        self.inner, self.stats, self.sent = inner, inner.stats, []

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def complete(self, requests):
        self.sent.append([r.key for r in requests])
        return self.inner.complete(requests)


def test_the_reply_cache_serves_repeats_from_its_file(local, tmp_path) -> None:
    from infir.synth.backends.cache import CachedBackend

    path = tmp_path / "replies.sqlite"
    requests = [_request(0), _request(1, n=3, max_tokens=5, temperature=0.9, seed=3), _request(2)]
    inner = CountingBackend(local)
    cached = CachedBackend(inner, path)
    first = cached.complete(requests)
    assert inner.sent == [[r.key for r in requests]]
    hits = local.stats["cache_hits"]
    assert cached.complete(requests) == first and len(inner.sent) == 1  # nothing sent again
    assert local.stats["cache_hits"] == hits + 3
    assert any(c.finish_reason == "length" for reply in first for c in reply)  # endings survive the round trip

    fresh_inner = CountingBackend(local)
    fresh = CachedBackend(fresh_inner, path)  # as another process would open it
    more = [*requests, _request(3)]
    replies = fresh.complete(more)
    assert replies[:3] == first and fresh_inner.sent == [[more[3].key]]  # only the new request is sent
    assert all(isinstance(c, Completion) for reply in replies for c in reply)


# --- scoring by a judge --------------------------------------------------------------------------

class ScriptedScore(UsesScriptedBackend, ScoreStage):
    pass


def _scored_item(doc_id: str, pass_rate: float = 0.5, steps: int | None = 3) -> Document:
    metadata = {"format": "gsm8k", "response": "First we add.\nThen we divide.\n#### 4", "pass_rate": pass_rate}
    if steps is not None:
        metadata["steps"] = steps
    return Document(doc_id, f"Question {doc_id}?", "procedural", "math", metadata)


def test_the_judge_scores_labels_and_counts_unparseable_replies() -> None:
    backend = ScriptedBackend({
        "a:judge": [Completion("Quality: 8\nDifficulty: hard\nDomain: code")],
        "b:judge": [Completion("This looks like a fine problem to me.")],  # no parseable lines
        "c:judge": RequestFailed("http_500"),
        "d:judge": [Completion("quality = 3, difficulty: Easy, domain: math")],
    })
    stage = ScriptedScore(backend, name="score", difficulty="judge", quality="judge", domain="judge",
                          generator={"_target_": "unused"}, min_quality=0.5,
                          judge_prompt="Rate {instruction} / {response} in {domains}.")
    docs = [_scored_item(k) for k in "abcd"]
    output = stage(docs)
    assert [d.id for d in output.kept] == ["a"]
    a = output.kept[0]
    assert (a.metadata["quality"], a.metadata["difficulty"], a.domain) == (0.8, "hard", "code")
    assert {d.id: r for d, r in output.dropped} == {"b": "judge_unparseable", "c": "request_failed",
                                                    "d": "low_quality"}
    prompt = backend.requests[0].messages[-1][1]
    assert prompt == "Rate Question a? / First we add.\nThen we divide.\n#### 4 in math, code."


def test_measured_difficulties_come_from_the_solve_rate_or_the_reference_steps() -> None:
    by_rate = ScoreStage(name="score", difficulty="pass_rate", easy_at=0.75, hard_at=0.25)
    rates = {"e": 1.0, "m": 0.5, "h": 0.25}
    kept = by_rate([_scored_item(k, pass_rate=r) for k, r in rates.items()]).kept
    assert {d.id: d.metadata["difficulty"] for d in kept} == {"e": "easy", "m": "medium", "h": "hard"}
    by_steps = ScoreStage(name="score", difficulty="reference_steps", easy_steps=2, hard_steps=4)
    output = by_steps([_scored_item("two", steps=2), _scored_item("three", steps=3), _scored_item("five", steps=5),
                       _scored_item("none", steps=None)])
    assert {d.id: d.metadata["difficulty"] for d in output.kept} == {"two": "easy", "three": "medium",
                                                                      "five": "hard"}
    assert output.dropped[0][1] == "no_difficulty"
