"""Answer extraction and scoring, one module per benchmark family.

Why its own sub-package: every generative task scores a free-form output by first pulling an answer out of it
and then comparing it with the gold answer; those rules decide the reported accuracy as much as the model does,
so each family follows the reference implementation researchers compare against and is tested against it:
``gsm8k`` (lm-evaluation-harness filters), ``math_equivalence`` (boxed answers, Hendrycks normalisation,
symbolic equivalence), ``choice`` (multiple-choice letters).

Robustness contract: nothing here raises on model output (malformed output scores as "no answer" / not
equal), and nothing can hang.
"""
