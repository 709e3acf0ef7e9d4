"""Deterministic synthetic news articles, for the demo project, tests and benchmarks.

Same idea as the shared benchmark set: Zipf-weighted English words taken from the Python
standard library's source, with names, organisations and places mixed in so entity labels have
something to find. The same seed always yields the same articles.
"""

from __future__ import annotations

import itertools
import pathlib
import random
import re
import sysconfig
from collections.abc import Iterator
from functools import lru_cache

NAMES = [
    "Elena Marchetti",
    "Omar Haddad",
    "Priya Raman",
    "Lukas Berger",
    "Chen Wei",
    "Amara Okafor",
    "Sofia Lindqvist",
    "Diego Alvarez",
    "Hannah Kowalski",
    "Kenji Sato",
]
ORGS = [
    "Northwind Labs",
    "Helios Bank",
    "Medora Health",
    "Quantix",
    "Union Press",
    "Atlas Robotics",
    "Verdant Energy",
    "Civic Data Trust",
]
PLACES = ["Lyon", "Nairobi", "Toronto", "Osaka", "Valparaiso", "Krakow", "Austin", "Mumbai"]
DOMAINS = ["politics", "business", "technology", "science", "health", "sports"]


@lru_cache(maxsize=1)
def vocabulary() -> tuple[list[str], list[float]]:
    counts: dict[str, int] = {}
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py"))[:400]:
        for word in re.findall(r"\b[a-z]{3,12}\b", path.read_text(errors="ignore")):
            counts[word] = counts.get(word, 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))[:8000]
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(words))))
    return words, cumulative


def article(i: int, rng: random.Random) -> dict:
    words, cum = vocabulary()
    paragraphs = []
    for _ in range(rng.randint(3, 6)):
        sentences = []
        for _ in range(rng.randint(3, 6)):
            tokens = rng.choices(words, cum_weights=cum, k=rng.randint(10, 24))
            if rng.random() < 0.5:
                tokens.insert(rng.randrange(len(tokens)), rng.choice(NAMES))
            if rng.random() < 0.4:
                tokens.insert(rng.randrange(len(tokens)), rng.choice(ORGS))
            if rng.random() < 0.3:
                tokens.insert(rng.randrange(len(tokens)), "in " + rng.choice(PLACES))
            sentence = " ".join(tokens)
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
        paragraphs.append(" ".join(sentences))
    title = " ".join(rng.choices(words[:2000], k=rng.randint(5, 9))).capitalize()
    return {
        "id": f"a{i:07d}",
        "title": title,
        "text": "\n\n".join(paragraphs),
        "source": rng.choice(["wire", "daily", "weekly", "blog"]),
        "published": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "domain": DOMAINS[i % len(DOMAINS)],
    }


def articles(n: int, *, seed: int = 7) -> Iterator[dict]:
    rng = random.Random(seed)
    for i in range(n):
        yield article(i, rng)
