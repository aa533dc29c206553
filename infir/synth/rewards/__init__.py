"""Rejection sampling: rewards judge each candidate reply; the best accepted one is kept."""

from infir.synth.rewards.base import Reward, Verdict, best_candidate

__all__ = ["Reward", "Verdict", "best_candidate"]
