"""The consultation assistant's domain: the knowledge base (entries, versions, the file
format) and offline retrieval over it (normalization, segmentation, BM25, confidence)."""
