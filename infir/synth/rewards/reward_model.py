"""A reward model judges math and reasoning replies: the best-scoring candidate is kept (PAPER.md §4).

The reward model is any HF sequence-classification model with one output (Skywork-Reward and similar:
``AutoModelForSequenceClassification``, ``num_labels=1``, the logit is the reward). Each candidate is scored
as the conversation ``[system?, user: instruction, assistant: candidate]`` rendered with the reward
model's own chat template, the way reward models are trained and published.

Padding. ``LlamaForSequenceClassification`` (transformers 5.x ``GenericForSequenceClassification``; Qwen2,
Mistral, Gemma share it) pools the logit of the *rightmost token whose id differs from
``config.pad_token_id``*, found from ``input_ids`` alone (the attention mask is not used), and pools the last
position when ``pad_token_id`` is None (then it refuses batches larger than 1). So a padded batch scores
like the unpadded sequences when it is padded with the config's ``pad_token_id`` (the rightmost non-pad
token is the same with or without the padding). A model whose config has no ``pad_token_id`` is padded
with an id that occurs in no row of the batch, set as ``pad_token_id`` for that call, so the pooled token
stays the true last one; padding with EOS (the usual fix) would move the pool off a template's final EOS.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infir.data.documents import Document
from infir.eval.loading import check_dtype
from infir.synth.items import CANDIDATES
from infir.synth.rewards.base import Reward, Verdict

if TYPE_CHECKING:  # torch and transformers load only when the model does (in the worker that judges)
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SMALL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                "special_tokens_map.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _local_dir(path: str) -> Path | None:
    """``path`` as a local directory if it names one (or looks like a file path), else None (a hub id)."""
    candidate = Path(path).expanduser()
    if candidate.exists() or path.startswith(("/", ".", "~")) or not _HUB_ID.match(path):
        return candidate
    return None


class RewardModelReward(Reward):
    """Scores every candidate with a reward model; ``floor`` (if set) is the lowest score accepted.

    ``floor=None`` accepts every non-empty candidate, so rejection keeps the best-scoring one. Inputs longer
    than ``max_length`` tokens are truncated on the right and counted in ``stats["truncated"]``: cutting on the
    left would drop the instruction the reply is judged against; cutting on the right means the model judges
    a reply it did not see to the end, so a high truncation count means ``max_length`` is too small.
    ``stats`` also counts ``scored``, ``empty_reply`` and ``below_floor``. ``domains``: the ``doc.domain``
    values this reward judges (None: all).
    ``padding_side`` does not change the scores (tested); right padding needs no position ids.
    The model loads on the first :meth:`judge` and is reused; an unused object pickles (curation workers),
    and pickling a used one drops the model (the copy reloads it).
    """

    name = "reward_model"

    def __init__(self, path: str, floor: float | None = None, domains: list[str] | None = None,
                 batch_size: int = 8, max_length: int = 2048, device: str = "auto", dtype: str = "auto",
                 system_prompt: str | None = None, padding_side: str = "right") -> None:
        if batch_size < 1 or max_length < 2:
            raise ValueError(f"reward_model: batch_size must be >= 1 and max_length >= 2, "
                             f"got {batch_size} and {max_length}")
        if padding_side not in ("right", "left"):
            raise ValueError(f"reward_model: padding_side must be right or left, got {padding_side!r}")
        self.path = str(path)
        local = _local_dir(self.path)
        if local is not None and not (local / "config.json").is_file():  # fail at config time, not in a worker
            what = "does not exist" if not local.exists() else "is not an HF model directory (no config.json)"
            raise FileNotFoundError(f"reward_model path={self.path}: {what}")
        self.floor = None if floor is None else float(floor)
        self.domains = None if domains is None else list(domains)
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.dtype = check_dtype(dtype)
        self.system_prompt = system_prompt
        self.padding_side = padding_side
        self.stats: Counter = Counter()
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None, "_tokenizer": None}

    def applies_to(self, doc: Document) -> bool:
        return self.domains is None or doc.domain in self.domains

    # --- identity -------------------------------------------------------------------------------

    def fingerprint(self) -> dict:
        """Settings plus the model's identity: its config/tokenizer file hashes and weight file stats.

        Cheap: small files are hashed, weights only stat'ed (name, size, mtime), so a model retrained
        into the same directory changes the key. A hub id is identified by its cached snapshot's commit.
        ``batch_size`` and ``padding_side`` do not change scores and are left out.
        """
        return {"name": self.name, "model": self._model_identity(), "floor": self.floor,
                "max_length": self.max_length, "system_prompt": self.system_prompt, "dtype": self.dtype}

    def _model_identity(self) -> dict:
        local = _local_dir(self.path)
        if local is None:
            return {"hub_id": self.path, "revision": self._hub_revision()}
        local = local.resolve()
        files: dict[str, Any] = {}
        for child in sorted(local.iterdir()):
            if child.name in _SMALL_FILES and child.is_file():
                files[child.name] = hashlib.sha256(child.read_bytes()).hexdigest()
            elif child.suffix in _WEIGHT_SUFFIXES and child.is_file():
                stat = child.stat()
                files[child.name] = [stat.st_size, stat.st_mtime_ns]
        return {"path": str(local), "files": files}

    def _hub_revision(self) -> str | None:
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.path, local_files_only=True)).name  # the snapshot's commit
        except Exception:  # not cached (yet): the id alone
            return None

    # --- loading --------------------------------------------------------------------------------

    def _load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if self._model is not None and self._tokenizer is not None:
            return self._model, self._tokenizer
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from infir.eval.loading import resolve_device
        from infir.models.chat_template import ensure_chat_template

        local = _local_dir(self.path)
        source = str(local) if local is not None else self.path
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local is not None)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, local_files_only=local is not None, dtype=torch.float32)
        except OSError as error:  # missing hub id offline, missing files: name the path, not transformers' guts
            raise FileNotFoundError(f"reward_model path={self.path}: cannot load a sequence-classification "
                                    f"model and tokenizer from it ({error.__class__.__name__}: "
                                    f"{str(error).splitlines()[0] if str(error) else ''})") from error
        if model.config.num_labels != 1:
            raise ValueError(f"reward_model path={self.path}: a reward model has one output (num_labels=1), "
                             f"this one has {model.config.num_labels}")
        if not getattr(tokenizer, "chat_template", None):
            log.info("reward model %s has no chat template; using ours (infir.models.chat_template)", self.path)
        tokenizer = ensure_chat_template(tokenizer)
        target = resolve_device(self.device)
        dtype = (torch.bfloat16 if target.type == "cuda" else torch.float32) if self.dtype == "auto" \
            else getattr(torch, self.dtype)
        self._model = model.to(device=target, dtype=dtype).eval()
        self._tokenizer = tokenizer
        return self._model, self._tokenizer

    # --- scoring --------------------------------------------------------------------------------

    def encode(self, instruction: str, reply: str) -> list[int]:
        """Token ids of one (instruction, reply) conversation, exactly one BOS where the model uses one.

        Rendered with ``tokenize=False`` and encoded without special tokens (as ``apply_chat_template``
        tokenises), so a template that writes BOS (Llama-3) is not given a second one; a tokenizer that
        adds BOS by itself but whose template omits it gets it prepended. Truncated to ``max_length``.
        """
        _, tokenizer = self._load()
        messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": reply}]
        if self.system_prompt is not None:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        bos = tokenizer.bos_token_id
        if bos is not None and ids[:1] != [bos] and tokenizer("a")["input_ids"][:1] == [bos]:
            ids.insert(0, bos)
        if len(ids) > self.max_length:
            self.stats["truncated"] += 1
            ids = ids[:self.max_length]
        return ids

    def score(self, sequences: Sequence[Sequence[int]]) -> list[float]:
        """Reward per token sequence, in batches of ``batch_size`` (longest first, to pad little)."""
        model, _ = self._load()
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        scores = [0.0] * len(sequences)
        for start in range(0, len(order), self.batch_size):
            batch = [list(sequences[i]) for i in order[start:start + self.batch_size]]
            for index, value in zip(order[start:start + self.batch_size], self._score_batch(model, batch)):
                scores[index] = value
        return scores

    def _score_batch(self, model: PreTrainedModel, batch: list[list[int]]) -> list[float]:
        import torch

        config = model.config.get_text_config()
        pad = config.pad_token_id
        if pad is None:  # the model pools the last position: pad with an id absent from the batch
            present = {token for ids in batch for token in ids}
            pad = next(token for token in range(len(present) + 1) if token not in present)
        width = max(len(ids) for ids in batch)
        rows, masks = [], []
        for ids in batch:
            fill, ones, zeros = [pad] * (width - len(ids)), [1] * len(ids), [0] * (width - len(ids))
            rows.append(ids + fill if self.padding_side == "right" else fill + ids)
            masks.append(ones + zeros if self.padding_side == "right" else zeros + ones)
        device = next(model.parameters()).device
        input_ids = torch.tensor(rows, device=device)
        attention_mask = torch.tensor(masks, device=device)
        kwargs: dict[str, torch.Tensor] = {}
        if self.padding_side == "left":  # positions start at 0 on the first real token, as unpadded
            kwargs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        restore = config.pad_token_id
        config.pad_token_id = pad  # only changes anything when it was None (then: for this call)
        try:
            with torch.inference_mode():
                logits = model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
        finally:
            config.pad_token_id = restore
        return logits[:, 0].float().cpu().tolist()

    def judge(self, docs: Sequence[Document]) -> list[list[Verdict]]:
        """One verdict per candidate: ``empty_reply`` for blank replies (not scored), else the reward."""
        verdicts: list[list[Verdict | None]] = []
        slots: list[tuple[int, int]] = []
        sequences: list[list[int]] = []
        for d, doc in enumerate(docs):
            candidates = doc.metadata.get(CANDIDATES) or []
            row: list[Verdict | None] = []
            for c, candidate in enumerate(candidates):
                if not isinstance(candidate, str) or not candidate.strip():
                    self.stats["empty_reply"] += 1
                    row.append(Verdict(float("-inf"), False, "empty_reply"))
                    continue
                row.append(None)
                slots.append((d, c))
                sequences.append(self.encode(doc.text, candidate))
            verdicts.append(row)
        for (d, c), value in zip(slots, self.score(sequences) if sequences else []):
            accepted = self.floor is None or value >= self.floor
            self.stats["scored"] += 1
            if not accepted:
                self.stats["below_floor"] += 1
            verdicts[d][c] = Verdict(value, accepted, "" if accepted else "below_floor")
        return [[v for v in row if v is not None] for row in verdicts]
