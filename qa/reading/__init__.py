"""Reading passages with spaCy: the answer type a question asks for, short-answer candidates and
their votes, and which multiple-choice option the passages name. Used by the extractive reader
(qa/llm/extractive.py) and by the answer's checks (qa/answering/)."""
