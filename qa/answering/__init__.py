"""Answering: the assistant that walks a question down the stages, the prompt and the checked
answer, prompt compaction, short answers, follow-up rewriting and the learned confidence."""
