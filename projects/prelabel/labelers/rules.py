"""Rules: keyword lists, regular expressions and gazetteers, for choice and span fields.

Config::

    {"rules": [
       {"field": "topic", "value": "business", "keywords": ["bank", "market"], "patterns": ["\\bIPO\\b"]},
       {"field": "entities", "label": "ORG", "gazetteer": ["Quantix", "Helios Bank"], "case_sensitive": true},
       {"field": "entities", "label": "PERSON", "patterns": ["\\b(?:Dr|Mr|Ms)\\. [A-Z][a-z]+"]}
     ],
     "min_hits": 1}

Keywords and gazetteer entries match whole words (case-insensitive unless ``case_sensitive``)
through one Aho-Corasick automaton per case mode, so the cost does not grow with the list size.
Patterns use the ``regex`` module with a per-task time budget, and a length cap, so a
catastrophic pattern costs one task an error instead of a stuck worker. A choice field gets the
option with most hits (``multiple``: every option with at least ``min_hits``); its score is the
best option's share of hits and its margin the gap to the runner-up. Span offsets are code points.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any

import ahocorasick
import regex

from projects.core.schema import MAX_SPANS
from projects.prelabel.labelers.base import (
    BaseLabeler,
    LabelerConfigError,
    LabelerError,
    LabelerOutput,
    TaskInput,
    fields_of,
    register,
    require_dict,
)

MAX_RULES = 1000
MAX_TERMS = 200_000
MAX_TERM_LENGTH = 200
MAX_PATTERN_LENGTH = 500
MAX_PATTERNS = 200
PATTERN_TIMEOUT = 0.25  # seconds of regex time per task
WORD_RE = re.compile(r"\w+")
MAX_ALTERNATION = 50  # above this many keywords, counting all words beats a regex alternation


def _lower_same_length(text: str) -> str:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    # A few characters lower-case to two code points (İ → i̇); keep offsets aligned.
    return "".join(ch.lower()[0] for ch in text)


def _terms(rule: dict, key: str, where: str) -> list[str]:
    value = rule.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise LabelerConfigError(
            f"{where}.{key} must be a list of non-empty strings.", fields={f"{where}.{key}": "bad"}
        )
    if any(len(t) > MAX_TERM_LENGTH for t in value):
        raise LabelerConfigError(
            f"{where}.{key}: entries are limited to {MAX_TERM_LENGTH} characters.", fields={f"{where}.{key}": "long"}
        )
    return [t.strip() for t in value]


@register
class RulesLabeler(BaseLabeler):
    kind = "rules"

    @classmethod
    def validate_config(cls, config: Any, schema: dict) -> dict:
        config = require_dict(config, "config")
        rules = config.get("rules")
        if not isinstance(rules, list) or not rules:
            raise LabelerConfigError("config.rules must be a non-empty list.", fields={"config.rules": "required"})
        if len(rules) > MAX_RULES:
            raise LabelerConfigError(f"At most {MAX_RULES} rules.", fields={"config.rules": "too many"})
        fields = fields_of(schema, "choice", "spans")
        out_rules, term_count, pattern_count = [], 0, 0
        for i, rule in enumerate(rules):
            where = f"config.rules[{i}]"
            rule = require_dict(rule, where)
            field = fields.get(rule.get("field"))
            if field is None:
                raise LabelerConfigError(
                    f"{where}.field must name a choice or spans field of the schema.", fields={f"{where}.field": "bad"}
                )
            out: dict[str, Any] = {"field": field["name"], "case_sensitive": bool(rule.get("case_sensitive", False))}
            if field["type"] == "choice":
                if rule.get("value") not in field["options"]:
                    raise LabelerConfigError(
                        f"{where}.value must be one of {', '.join(field['options'])}.", fields={f"{where}.value": "bad"}
                    )
                out["value"] = rule["value"]
            else:
                if rule.get("label") not in field["labels"]:
                    raise LabelerConfigError(
                        f"{where}.label must be one of {', '.join(field['labels'])}.", fields={f"{where}.label": "bad"}
                    )
                out["label"] = rule["label"]
            weight = rule.get("weight", 1)
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0 < weight <= 1000:
                raise LabelerConfigError(
                    f"{where}.weight must be a number in (0, 1000].", fields={f"{where}.weight": "bad"}
                )
            out["weight"] = float(weight)
            out["terms"] = _terms(rule, "keywords", where) + _terms(rule, "gazetteer", where)
            term_count += len(out["terms"])
            patterns = _terms(rule, "patterns", where)
            for pattern in patterns:
                if len(pattern) > MAX_PATTERN_LENGTH:
                    raise LabelerConfigError(
                        f"{where}.patterns: at most {MAX_PATTERN_LENGTH} characters per pattern.",
                        fields={f"{where}.patterns": "too long"},
                    )
                try:
                    regex.compile(pattern, regex.V1)
                except (regex.error, OverflowError, RecursionError) as exc:
                    raise LabelerConfigError(
                        f"{where}.patterns: {pattern!r} is not a valid regular expression ({exc}).",
                        fields={f"{where}.patterns": "invalid"},
                    ) from None
            pattern_count += len(patterns)
            out["patterns"] = patterns
            if not out["terms"] and not out["patterns"]:
                raise LabelerConfigError(
                    f"{where} needs keywords, gazetteer entries or patterns.", fields={where: "empty rule"}
                )
            out_rules.append(out)
        if term_count > MAX_TERMS or pattern_count > MAX_PATTERNS:
            raise LabelerConfigError(
                f"At most {MAX_TERMS} keywords and {MAX_PATTERNS} patterns in all.", fields={"config.rules": "too big"}
            )
        min_hits = config.get("min_hits", 1)
        if not isinstance(min_hits, int) or isinstance(min_hits, bool) or not 1 <= min_hits <= 1000:
            raise LabelerConfigError(
                "config.min_hits must be an integer from 1 to 1000.", fields={"config.min_hits": "bad"}
            )
        extra = set(config) - {"rules", "min_hits", "model_version"}
        if extra:
            raise LabelerConfigError(
                f"Unknown config keys: {', '.join(sorted(extra))}.", fields={"config": "unknown keys"}
            )
        result = {"rules": out_rules, "min_hits": min_hits}
        if isinstance(config.get("model_version"), str) and config["model_version"].strip():
            result["model_version"] = config["model_version"].strip()[:100]
        return result

    @classmethod
    def default_model_version(cls, *, name: str, config: dict, project_id: int) -> str:
        if config.get("model_version"):
            return config["model_version"]
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
        return f"rules-{digest}"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fields = fields_of(self.context.schema)
        self.rules = self.config["rules"]
        self.min_hits = self.config.get("min_hits", 1)
        # (field, option or None, span label or None, weight) per rule, for the per-hit loop.
        self.targets = [(r["field"], r.get("value"), r.get("label"), r["weight"]) for r in self.rules]
        self.automata: dict[bool, ahocorasick.Automaton] = {}
        # Single-word keywords of choice rules only need counts: the text's words are counted in
        # C (findall + Counter), so frequent keywords cost nothing per occurrence in Python.
        self.word_terms: dict[bool, dict[str, list[int]]] = {}
        self.word_patterns: dict[bool, re.Pattern] = {}
        for case_sensitive in (True, False):
            entries: dict[str, list[int]] = {}
            words: dict[str, list[int]] = {}
            for index, rule in enumerate(self.rules):
                if rule["case_sensitive"] != case_sensitive:
                    continue
                for term in rule["terms"]:
                    key = term if case_sensitive else _lower_same_length(term)
                    if "value" in rule and WORD_RE.fullmatch(key):
                        words.setdefault(key, []).append(index)
                    else:
                        entries.setdefault(key, []).append(index)
            if words:
                self.word_terms[case_sensitive] = words
                if len(words) <= MAX_ALTERNATION:
                    ordered = sorted(words, key=len, reverse=True)
                    self.word_patterns[case_sensitive] = re.compile(rf"\b(?:{'|'.join(map(re.escape, ordered))})\b")
            if entries:
                automaton = ahocorasick.Automaton()
                for key, indexes in entries.items():
                    automaton.add_word(key, (len(key), tuple(indexes)))
                automaton.make_automaton()
                self.automata[case_sensitive] = automaton
        self.patterns = [
            (
                index,
                regex.compile(pattern, regex.V1 | (0 if rule["case_sensitive"] else regex.IGNORECASE)),
            )
            for index, rule in enumerate(self.rules)
            for pattern in rule["patterns"]
        ]

    def _haystack(self, text: str, case_sensitive: bool, cache: dict) -> str:
        if case_sensitive:
            return text
        if "lowered" not in cache:
            cache["lowered"] = _lower_same_length(text)
        return cache["lowered"]

    def _hits(self, text: str, cache: dict) -> list[tuple[int, int, int]]:
        """(rule index, start, end) for every whole-word term and pattern match."""
        hits: list[tuple[int, int, int]] = []
        size = len(text)
        for case_sensitive, automaton in self.automata.items():
            haystack = self._haystack(text, case_sensitive, cache)
            for end_index, (length, indexes) in automaton.iter(haystack):
                # Whole words only (inlined: this loop runs for every match of every term).
                start, end = end_index - length + 1, end_index + 1
                if start > 0:
                    before = text[start - 1]
                    if before.isalnum() or before == "_":
                        continue
                if end < size:
                    after = text[end]
                    if after.isalnum() or after == "_":
                        continue
                for index in indexes:
                    hits.append((index, start, end))
        for index, pattern in self.patterns:
            for match in pattern.finditer(text, timeout=PATTERN_TIMEOUT):
                if match.end() > match.start():
                    hits.append((index, match.start(), match.end()))
                if len(hits) > 4 * MAX_SPANS:
                    break
        return hits

    def _word_counts(self, text: str, cache: dict) -> list[tuple[int, int]]:
        """(rule index, occurrences) for single-word choice keywords."""
        out: list[tuple[int, int]] = []
        for case_sensitive, terms in self.word_terms.items():
            # A few keywords: one alternation finds just them. Many: count every word once.
            finder = self.word_patterns.get(case_sensitive, WORD_RE)
            counts = Counter(finder.findall(self._haystack(text, case_sensitive, cache)))
            small, large = (terms, counts) if len(terms) < len(counts) else (counts, terms)
            for word in small:
                if word in large:
                    for index in terms[word]:
                        out.append((index, counts[word]))
        return out

    def _predict_one(self, task: TaskInput) -> LabelerOutput:
        cache: dict[str, str] = {}
        hits = self._hits(task.text, cache)
        votes: dict[str, dict[str, float]] = {}
        spans: dict[str, list[tuple[int, int, str]]] = {}
        targets = self.targets
        for index, count in self._word_counts(task.text, cache):
            field, value, _, weight = targets[index]
            field_votes = votes.setdefault(field, {})
            field_votes[value] = field_votes.get(value, 0.0) + weight * count
        for index, start, end in hits:
            field, value, label, weight = targets[index]
            if value is not None:
                field_votes = votes.setdefault(field, {})
                field_votes[value] = field_votes.get(value, 0.0) + weight
            else:
                spans.setdefault(field, []).append((start, end, label))
        result: dict[str, Any] = {}
        scores: list[float] = []
        margins: list[float] = []
        for name, field_votes in votes.items():
            total = sum(field_votes.values())
            ranked = sorted(field_votes.items(), key=lambda kv: (-kv[1], kv[0]))
            kept = [(option, hits) for option, hits in ranked if hits >= self.min_hits]
            if not kept:
                continue
            if self.fields[name].get("multiple"):
                result[name] = [option for option, _ in kept]
                scores.append(sum(h for _, h in kept) / total)
            else:
                best = ranked[0][1]
                second = ranked[1][1] if len(ranked) > 1 else 0.0
                result[name] = ranked[0][0]
                scores.append(best / total)
                margins.append((best - second) / total)
        for name, found in spans.items():
            # Longest leftmost match wins where matches overlap.
            found.sort(key=lambda s: (s[0], -s[1], s[2]))
            kept_spans, last_end = [], -1
            for start, end, label in found:
                if start >= last_end:
                    kept_spans.append({"start": start, "end": end, "label": label, "text": task.text[start:end]})
                    last_end = end
                if len(kept_spans) >= MAX_SPANS:
                    break
            result[name] = kept_spans
            scores.append(1.0)
        score = sum(scores) / len(scores) if scores else None
        return LabelerOutput(task.id, result, score, min(margins) if margins else None)

    def predict(self, tasks: list[TaskInput]) -> list[LabelerOutput | LabelerError]:
        out: list[LabelerOutput | LabelerError] = []
        for task in tasks:
            try:
                out.append(self._predict_one(task))
            except TimeoutError:
                out.append(LabelerError(task.id, f"a pattern took longer than {PATTERN_TIMEOUT}s on this task"))
        return out
