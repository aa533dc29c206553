"""The chat template our trained BPE gets for SFT and instruct evaluation.

The vocabulary is fixed after pre-training, so the template adds no tokens: role headers are plain text
(``<|system|>``, ``<|user|>``, ``<|assistant|>`` followed by a newline, encoded as ordinary BPE pieces) and
every turn ends with the tokenizer's EOS, the token pre-training put after every document, so generation
stops at EOS. Rendered::

    <|system|>\\nYou are a helpful assistant.EOS<|user|>\\nWhat is 2 + 2?EOS<|assistant|>\\n2 + 2 = 4.EOS

No BOS is rendered: sequences start with :func:`infir.models.tokenizer.prefix_token_id`, added by whoever
encodes (SFT data, generation). The assistant content and its EOS sit in ``{% generation %}`` so plain
transformers' ``apply_chat_template(..., return_assistant_tokens_mask=True, return_dict=True)`` (and tools
built on it) mark exactly the trained tokens; :mod:`infir.data.sft` computes its own mask by rendering
prefixes, which also works for templates without the tag (Llama-3 Instruct).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

ROLES = ("system", "user", "assistant")


def role_header(role: str) -> str:
    """The plain-text header that opens a turn of ``role``."""
    return f"<|{role}|>\n"


ASSISTANT_HEADER = role_header("assistant")

# trim_blocks/lstrip_blocks are on in transformers' Jinja environment; the whitespace-control dashes and the
# single-line layout keep the template from emitting stray newlines.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{ raise_exception('chat roles are system, user and assistant; got ' + message['role']) }}"
    "{%- endif -%}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{%- else -%}"
    "{{ message['content'] + eos_token }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}"
)


def ensure_chat_template(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give ``tokenizer`` our template unless it already has one (e.g. a Llama-3 Instruct tokenizer).

    Set on the tokenizer object, so ``save_pretrained`` writes it (``chat_template.jinja``) and
    ``AutoTokenizer.from_pretrained`` of the export applies it in plain transformers.
    """
    if tokenizer.eos_token is None:
        raise ValueError("the chat template ends turns with EOS, but the tokenizer has no eos token")
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
