"""Text rules, one copy each: words and stop words (words.py), sentences (sentences.py), and the
one scorer of sentences against a question (evidence.py)."""
