"""Pre-training data curation: heuristic filtering -> reasoning-oriented recall -> MinHash dedup
-> quality scoring -> n-gram decontamination (PAPER.md §2).

Stages are plain functions over batches of documents, free of any executor, so the local
process-pool runner runs them today and a distributed engine can run the same code later.
"""
