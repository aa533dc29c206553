"""Generation backends: where candidate replies, evolutions and judgements come from."""

from infir.synth.backends.base import ChatRequest, Completion, GenerationBackend, RequestFailed

__all__ = ["ChatRequest", "Completion", "GenerationBackend", "RequestFailed"]
