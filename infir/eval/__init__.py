"""Few-shot evaluation: tasks, prompting, generation, scoring and a code sandbox."""
