"""Retrieval: a question's filters (time and sources) and the retriever that finds, fuses,
reranks and diversifies its passages."""
