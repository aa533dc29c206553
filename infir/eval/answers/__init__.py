"""Answer extraction and scoring, one module per benchmark family.

Why its own sub-package: every generative task scores a free-form output by first pulling an answer out of it
and then comparing it with the gold answer; those rules decide the reported accuracy as much as the model does,
so each family follows the reference implementation researchers compare against and is tested against it:
``gsm8k`` (lm-evaluation-harness's filters and exact match, plus a numeric extra), ``math_equivalence`` (boxed
answers, Hendrycks normalisation, symbolic equivalence measured against math-verify), ``choice`` (multiple-choice
letters). tests/test_gsm8k_lm_eval_agreement.py and tests/test_math_verify_agreement.py run the references.

Robustness contract: nothing here raises on model output (malformed output scores as "no answer" / not
equal), and nothing can hang.
"""
