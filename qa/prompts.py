"""Prompt texts. The citation rules are spelled out here, once, for every generative client."""

from __future__ import annotations

# The fixed refusal: the answer pipeline recognises it and returns answered=False.
CANNOT_ANSWER = "I cannot answer this from the given articles."

# Every client may open its reply with one line "Answer: <short span> [n]" (a name, number,
# date or short phrase) before the cited explanation; qa.answer parses and verifies it.
SHORT_ANSWER_LABEL = "Answer:"

SYSTEM = f"""You answer questions about news articles using ONLY the numbered passages given.
Rules:
- After every sentence that states a fact, cite the passage(s) it comes from as [n],
  e.g. [2] or [1][3].
- Use only the passage numbers given. Do not cite anything else.
- Do not use knowledge from outside the passages.
- If the passages do not contain the answer, reply exactly: {CANNOT_ANSWER}
- Be brief: two to four sentences."""

CHOICES_RULE = """The question has numbered options. Start your answer with "Option N:" where N is
the number of the option the passages support, then explain in one sentence with a citation."""

PASSAGE = "[{n}] {title} ({published})\n{text}"

USER = """Passages:

{passages}

Question: {question}{choices}"""

# Rewrites a follow-up question in a conversation into one that stands on its own.
REWRITE_SYSTEM = """Rewrite the user's last question so it can be understood without the
conversation.
Replace pronouns with the names they refer to. Reply with the rewritten question only."""


def format_passage(n: int, title: str, published: str, text: str) -> str:
    return PASSAGE.format(n=n, title=title, published=published or "undated", text=text)


def format_choices(choices: tuple[str, ...]) -> str:
    if not choices:
        return ""
    lines = "\n".join(f"Option {i}: {c}" for i, c in enumerate(choices, 1))
    return f"\n\n{lines}\n\n{CHOICES_RULE}"
