"""Compact fingerprints of page elements, and how alike two of them are.

A fingerprint keeps what tends to survive a redesign, in a few hundred bytes of JSON: the
tag, the class *words* (``q-author`` and ``author`` share ``author``), the attribute names
and short values, the text's shape (``£12.34`` -> ``£9.9``) and first words, the DOM path (tags of up to
six ancestors), the parent and the siblings' tags. The idea is Scrapling's adaptive
relocation; the library itself brings its own fetchers and a per-URL SQLite store, so this
is the small scoring function it rests on, tested by tables of before/after markup.

Pure functions of lxml elements (``parsel.Selector.root``) and dicts.
"""

from __future__ import annotations

import re
from typing import Any

_MAX_ATTRS = 8
_MAX_PATH = 6
_MAX_SIBLINGS = 8
_SHAPE_LEN = 24
_SKIP_ATTRS = {"class", "style"}
_WORDS = re.compile(r"[a-z]+")
_SHAPE_RUNS = re.compile(r"([aA9 ])\1+")

# weights: what a redesign keeps most often counts most
W_TAG, W_CLASS, W_ATTR, W_TEXT, W_PATH, W_PARENT, W_SIBLINGS = 1.0, 1.5, 1.0, 1.5, 1.0, 0.75, 0.5
_TOTAL = W_TAG + W_CLASS + W_ATTR + W_TEXT + W_PATH + W_PARENT + W_SIBLINGS


def class_words(classes: str | None) -> list[str]:
    """``"q-author big"`` -> ``["q", "author", "big"]``: the words a renamed class may keep."""
    return sorted({w for w in _WORDS.findall((classes or "").lower())})


def text_shape(text: str) -> str:
    """Letters -> a/A, digits -> 9, runs collapsed: ``"£12.34"`` -> ``"£9.9"``."""
    out = []
    for ch in text.strip()[:200]:
        if ch.isdigit():
            out.append("9")
        elif ch.isalpha():
            out.append("A" if ch.isupper() else "a")
        elif ch.isspace():
            out.append(" ")
        else:
            out.append(ch)
    return _SHAPE_RUNS.sub(r"\1", "".join(out))[:_SHAPE_LEN]


def _tag(el: Any) -> str:
    tag = el.tag
    return tag.lower() if isinstance(tag, str) else ""


def _label(el: Any) -> str:
    """``div.quote.big``: tag and classes, for paths and parents."""
    classes = (el.get("class") or "").split()
    return ".".join([_tag(el), *classes[:3]])


def own_text(el: Any) -> str:
    text = el.text_content() if hasattr(el, "text_content") else "".join(el.itertext())
    return " ".join(text.split())


def fingerprint(el: Any) -> dict[str, Any]:
    """The element's fingerprint (a JSON-ready dict)."""
    attrs = {}
    for name, value in list(el.attrib.items())[: _MAX_ATTRS + len(_SKIP_ATTRS)]:
        if name not in _SKIP_ATTRS and len(attrs) < _MAX_ATTRS:
            attrs[name] = value[:40]
    text = own_text(el)
    path = []
    parent = el.getparent()
    node = parent
    while node is not None and len(path) < _MAX_PATH:
        path.append(_label(node))
        node = node.getparent()
    siblings = [_tag(s) for s in (parent if parent is not None else [])][:_MAX_SIBLINGS]
    return {
        "tag": _tag(el),
        "cls": class_words(el.get("class")),
        "attrs": attrs,
        "text": text_shape(text),
        "words": _WORDS.findall(text.lower())[:8],
        "path": path,
        "parent": _label(parent) if parent is not None else "",
        "sib": siblings,
    }


def _jaccard(a: list[str] | set[str], b: list[str] | set[str], empty: float = 1.0) -> float:
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return empty
    return len(sa & sb) / len(sa | sb)


def _prefix_ratio(a: str, b: str) -> float:
    """Shared prefix and suffix of two short shapes over the longer one (cheap, order-aware)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    n = max(len(a), len(b))
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    s = 0
    while s < min(len(a), len(b)) - p and a[-1 - s] == b[-1 - s]:
        s += 1
    return (p + s) / n


def _path_ratio(a: list[str], b: list[str]) -> float:
    """Ancestors compared from the nearest up: tags first, class words as a bonus."""
    if not a and not b:
        return 1.0
    n = max(len(a), len(b))
    score = 0.0
    for x, y in zip(a, b):
        tx, _, cx = x.partition(".")
        ty, _, cy = y.partition(".")
        if tx == ty:
            score += 0.6 + 0.4 * _jaccard(class_words(cx), class_words(cy))
    return score / n


def similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    """How alike two fingerprints are, from 0 to 1."""
    score = W_TAG * (a["tag"] == b["tag"])
    score += W_CLASS * _jaccard(a["cls"], b["cls"])
    aa, ba = a["attrs"], b["attrs"]
    if bool(aa) != bool(ba):  # an attribute added or dropped: neither proof nor disproof
        score += W_ATTR * 0.5
    elif aa or ba:
        names = _jaccard(list(aa), list(ba))
        values = _jaccard([f"{k}={v}" for k, v in aa.items()], [f"{k}={v}" for k, v in ba.items()], 0.0)
        score += W_ATTR * (0.6 * names + 0.4 * values)
    else:
        score += W_ATTR
    aw, bw = a.get("words") or [], b.get("words") or []
    shape = _prefix_ratio(a["text"], b["text"])
    score += W_TEXT * (0.7 * shape + 0.3 * _jaccard(aw, bw, 0.0) if aw and bw else shape)
    score += W_PATH * _path_ratio(a["path"], b["path"])
    pt, _, pc = a["parent"].partition(".")
    qt, _, qc = b["parent"].partition(".")
    score += W_PARENT * ((0.5 if pt == qt else 0.0) + 0.5 * _jaccard(class_words(pc), class_words(qc)))
    score += W_SIBLINGS * _jaccard(a["sib"], b["sib"])
    return score / _TOTAL


def best_similarity(fp: dict[str, Any], known: list[dict[str, Any]]) -> float:
    """The candidate's similarity to the closest of the stored fingerprints."""
    return max((similarity(fp, k) for k in known), default=0.0)
