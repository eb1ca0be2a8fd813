"""Bytes of an article file -> text, and the name of the encoding that was used.

The order of trust:

1. a byte order mark (UTF-8, UTF-16) is obeyed;
2. valid UTF-8 is UTF-8 (nearly every file written this century);
3. UTF-8 with a few invalid bytes (a stray cp1252 "é" pasted into a UTF-8 file, one bad line
   of a JSONL bundle) is still UTF-8 when its valid multi-byte characters are at least as many
   as its invalid sequences: the bad bytes become U+FFFD and are reported with their lines.
   Reading the whole file as cp1252 instead turned every good "é" into "Ã©";
4. otherwise the usual Western code page, cp1252 (a superset of Latin-1's printable
   characters), when it decodes the bytes and the result reads like Western text: most letters
   plain ASCII, the others accented Latin letters (Spanish "ñ" stays "ñ");
5. otherwise charset-normalizer's guess, only when it is reliable (little mojibake, text that
   looks like language);
6. otherwise the file is skipped as undecodable: a wrong guess would index garbage silently.

A file read with anything but UTF-8, or with bytes replaced, is reported by the caller.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass


class Skip(Exception):
    """Raised inside the readers; becomes a skipped entry for the file or record."""


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # "utf-8", "utf-16", "cp1252" or charset-normalizer's name for its guess
    replaced: int = 0  # invalid UTF-8 sequences replaced by U+FFFD
    lines: tuple[int, ...] = ()  # the lines of the first few of them


WESTERN = "cp1252"
# Unicode category Cc (C0, DEL and C1 controls) except the whitespace \t \n \v \f \r; a regex
# counts them at C speed (a 1 MB article in milliseconds, not a second).
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# In Western European prose at most about one letter in six is accented (Portuguese, French);
# Cyrillic or Greek bytes read as cp1252 give almost only accented letters ("Ïðèâåò").
_MAX_ACCENTED_SHARE = 0.3


def decode(data: bytes) -> Decoded:
    """Text of a file; raises :class:`Skip` for empty, binary or undecodable data."""
    if not data.strip():
        raise Skip("empty file")
    decoded = _decode_bytes(data)
    if not decoded.text.strip():
        raise Skip("empty file")
    return decoded


def _decode_bytes(data: bytes) -> Decoded:
    # UTF-16 is full of NUL bytes, so its BOM must be honoured before the binary test.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return Decoded(_check_text(data.decode("utf-16")), "utf-16")
        except UnicodeDecodeError:
            raise Skip("not valid UTF-16 despite its byte order mark") from None
    if b"\x00" in data:
        raise Skip("binary file")
    try:
        return Decoded(_check_text(data.decode("utf-8-sig")), "utf-8")
    except UnicodeDecodeError:
        pass
    mostly = _mostly_utf8(data)
    if mostly is not None:
        return mostly
    western = _western(data)
    if western is not None:
        return Decoded(_check_text(western), WESTERN)
    from charset_normalizer import from_bytes  # imported late: only legacy files need it

    best = from_bytes(data).best()
    # Accept the guess only when the decoded text looks like language (coherence) and has
    # little mojibake (chaos); otherwise a wrong guess would index garbage.
    if (
        best is None
        or best.encoding.startswith(("utf_16", "utf_32"))  # no BOM: a guess, never trusted
        or best.percent_chaos > 10.0
        or best.percent_coherence < 10.0
    ):
        raise Skip("undecodable: not UTF-8 and the encoding could not be determined")
    return Decoded(_check_text(str(best)), best.encoding)


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_SHOWN_LINES = 3


def _mostly_utf8(data: bytes) -> Decoded | None:
    """UTF-8 with its invalid sequences replaced, when the valid multi-byte characters are at
    least as many as the invalid sequences (text in a legacy code page has no valid ones, or,
    for the double-byte Asian pages, far fewer than invalid ones); else None."""
    text = data.decode("utf-8-sig", errors="replace")
    # One U+FFFD per invalid sequence, less those the file itself spells in UTF-8.
    replaced = text.count("\ufffd") - data.count("\ufffd".encode())
    valid = len(_NON_ASCII.findall(text)) - text.count("\ufffd")
    if replaced <= 0 or valid < replaced:
        return None
    return Decoded(_check_text(text), "utf-8", replaced, _bad_lines(data))


def _bad_lines(data: bytes) -> tuple[int, ...]:
    """Line numbers of the first few invalid UTF-8 sequences, for the report."""
    lines: list[int] = []
    pos = 0
    while len(lines) < _SHOWN_LINES:
        try:
            data[pos:].decode("utf-8")
            break
        except UnicodeDecodeError as exc:
            lines.append(data.count(b"\n", 0, pos + exc.start) + 1)
            pos += exc.end
    return tuple(dict.fromkeys(lines))


def _western(data: bytes) -> str | None:
    """The text as cp1252 when it decodes and reads like Western European text, else None."""
    try:
        text = data.decode(WESTERN)
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D)
        return None
    letters = [c for c in text if c.isalpha()]
    accented = [c for c in letters if not c.isascii()]
    if not letters or len(accented) > _MAX_ACCENTED_SHARE * len(letters):
        return None
    if not all(unicodedata.name(c, "").startswith("LATIN") for c in accented):
        return None
    return text


def _check_text(text: str) -> str:
    """Refuse decoded text that is mostly control characters (a binary file that happened to
    decode)."""
    controls = len(_CONTROLS.findall(text))
    if controls > max(2, len(text) // 20):
        raise Skip("binary file")
    return text
