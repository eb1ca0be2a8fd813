"""Words that carry meaning: the one stop-word list and stemmer shared by the extractive
client (scoring sentences) and the citation checker (judging support)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

# Question words, function words, and the reporting verbs every news sentence has.
_STOPWORDS = """
    a about above after again against all also am an and any are aren as at be because been
    before being below between both but by can cannot could couldn did didn do does doesn doing
    don down during each either else ever few for from further had hadn has hasn have haven
    having he her here hers herself him himself his how however i if in into is isn it its
    itself just least less let like ll many may me might more most much must mustn my myself
    neither no nor not now of off on once one only or other ought our ours ourselves out over
    own per quite rather re same shall shan she should shouldn since so some still such than
    that the their theirs them themselves then there these they this those though through thus
    to too toward towards under until up upon us ve very via was wasn we were weren what when
    whence where whereas whether which while who whom whose why will with within without
    would wouldn yet you your yours yourself yourselves s t d m o y
    according accordingly said say says saying told tell tells reported reports stated
    asked mr mrs ms dr
    also ago among amongst around already always another anyone anything became become becomes
    get gets got give given gives go goes going gone make makes made mean means
    tell which whichever whoever whatever please kind sort type way ways thing things
    question answer option options article articles passage passages
"""
STOPWORDS = frozenset(_STOPWORDS.split())

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


@functools.cache
def _stemmer() -> Callable[[str], str]:
    import Stemmer  # PyStemmer, a dependency: the Snowball stemmer the BM25 index uses too

    return functools.lru_cache(maxsize=65536)(Stemmer.Stemmer("english").stemWord)


def words(text: str) -> list[str]:
    """Lower-cased words, possessive 's dropped."""
    return [w.lower() for w in _words(text)]


def _words(text: str) -> list[str]:
    out = []
    for w in WORD.findall(text):
        w = w.replace("’", "'")
        if w.lower().endswith("'s"):
            w = w[:-2]
        out.append(w)
    return out


def content_terms(text: str) -> set[str]:
    """Stems of the words that carry meaning: stop words removed, but acronyms such as "US"
    and "IT" kept."""
    stem = _stemmer()
    terms = set()
    for w in _words(text):
        low = w.lower()
        if low in STOPWORDS and not (len(w) > 1 and w.isupper()):
            continue
        if len(low) > 1 or low.isdigit():
            terms.add(stem(low))
    return terms
