"""Decontamination of synthetic samples: instruction and response against the eval sets' 10-gram index.

Synthetic data is where benchmark leakage creeps in: a teacher that has seen a benchmark can write its
problems as "new" instructions, or quote its solutions. The curation filter (``infir.data.curation.decontam``,
the same index and thresholds) is applied to the instruction and the kept response together.
"""

from __future__ import annotations

from infir.data.curation.decontam import Decontaminator
from infir.data.documents import Document
from infir.synth.items import RESPONSE


class SampleDecontaminator(Decontaminator):
    """Drops a sample whose instruction or response overlaps an eval set (``contaminated_<benchmark>``)."""

    def drop_reason(self, doc: Document) -> str | None:
        joined = Document(doc.id, f"{doc.text}\n{doc.metadata.get(RESPONSE, '')}", doc.source, doc.domain,
                          doc.metadata)
        return super().drop_reason(joined)
