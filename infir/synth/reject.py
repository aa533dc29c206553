"""Rejection sampling: each item is judged by the first reward that applies to it; its best accepted candidate
becomes the response, or the item is dropped (``rejected_by_<reward>``; ``no_verifier`` when no reward applies).

Per-candidate outcomes are counted (``candidate_<reason>``, ``judged_<reward>``, ``accepted_<reward>``), so the
report shows acceptance rates per reward, and the item keeps ``pass_rate`` (accepted / candidates): the
solve-rate difficulty signal the scoring stage can use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from infir.data.curation.base import StageOutput
from infir.data.documents import Document
from infir.synth.items import CANDIDATES, PASS_RATE, RESPONSE, REWARD
from infir.synth.rewards.base import Reward, best_candidate


class RejectStage:
    """Map stage applying ``rewards`` (in order of preference) to the candidates of each item."""

    def __init__(self, name: str, rewards: Sequence[Reward]) -> None:
        if not rewards:
            raise ValueError(f"synth stage {name}: needs at least one reward")
        names = [r.name for r in rewards]
        if len(set(names)) != len(names):
            raise ValueError(f"synth stage {name}: reward names must be unique, got {names}")
        self.name = name
        self.rewards = list(rewards)

    def __call__(self, docs: list[Document]) -> StageOutput:
        output = StageOutput()
        counts: Counter = Counter()
        groups: dict[int, list[Document]] = {}
        reasons: dict[str, str] = {}
        for doc in docs:
            chosen = next((i for i, reward in enumerate(self.rewards) if reward.applies_to(doc)), None)
            if chosen is None:
                reasons[doc.id] = "no_verifier"
            else:
                groups.setdefault(chosen, []).append(doc)
        for index, group in groups.items():
            reward = self.rewards[index]
            for doc, verdicts in zip(group, reward.judge(group)):
                if len(verdicts) != len(doc.metadata[CANDIDATES]):
                    raise AssertionError(f"reward {reward.name} gave {len(verdicts)} verdicts for "
                                         f"{len(doc.metadata[CANDIDATES])} candidates of {doc.id}")
                accepted = sum(v.accepted for v in verdicts)
                counts[f"judged_{reward.name}"] += len(verdicts)
                counts[f"accepted_{reward.name}"] += accepted
                counts.update(f"candidate_{v.reason}" for v in verdicts if not v.accepted and v.reason)
                best = best_candidate(verdicts)
                doc.metadata["verdicts"] = [v.reason or "accepted" for v in verdicts]
                if best is None:
                    reasons[doc.id] = f"rejected_by_{reward.name}"
                    continue
                doc.metadata[RESPONSE] = doc.metadata[CANDIDATES][best]
                doc.metadata[REWARD] = {"name": reward.name, "score": round(verdicts[best].score, 6),
                                        "accepted": accepted, "of": len(verdicts)}
                doc.metadata[PASS_RATE] = accepted / len(verdicts)
        for doc in docs:  # input order, whatever the grouping
            output.add(doc, reasons.get(doc.id))
        output.counts = counts
        return output
