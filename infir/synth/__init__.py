"""SFT data synthesis (PAPER.md §4, Figure 2): seeds -> evolution -> candidates -> rejection -> scores -> selection.

``python -m infir.synth synth=<recipe>`` runs a recipe; each stage is a curation-runner stage, so every
stage's shards and statistics are persisted, a killed run resumes shard by shard, and stages can be ablated
by removing them from ``synth.stages``.
"""
