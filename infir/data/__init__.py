"""Data: documents, embedded sources, tokenisation, packing and mixing."""
