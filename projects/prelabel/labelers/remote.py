"""Remote labelers over HTTP: the Label Studio ML backend protocol and OpenAI-compatible chat.

Every request goes through ``http_json``: the URL is vetted by ``check_outbound_url`` and the
connection pinned to the vetted address (no second DNS lookup), redirects are not followed,
timeouts apply, and connection errors, timeouts, 429 and 5xx answers are retried a bounded
number of times with exponential backoff. What still fails raises ``LabelerUnavailable`` with a
message naming the endpoint and the cause; so does a malformed answer. A Label Studio batch is
all-or-nothing: one bad item fails the whole batch, so a half-broken backend stores nothing.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import re
import time
from string import Template
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from projects.core.exceptions import ValidationFailed
from projects.core.netguard import check_outbound_url
from projects.prelabel.labelers.base import (
    BaseLabeler,
    LabelerConfigError,
    LabelerError,
    LabelerOutput,
    LabelerUnavailable,
    TaskInput,
    fields_of,
    register,
    require_dict,
)
from projects.prelabel.lsconfig import MappingError, label_studio_result_to_ours, schema_to_label_config

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 50 * 1024 * 1024
USER_AGENT = "annotator-prelabel/1"


class EndpointError(LabelerUnavailable):
    pass


# --- margins for active learning --------------------------------------------------------------
#
# The queue serves the lowest margin first (``Task.uncertainty``). Local labelers know their
# class probabilities; remote ones say less, so their margin is derived from what they answer:
#
# - per-option probabilities of a choice field (a Label Studio ``choices`` item's ``"scores":
#   {option: p}``, or the alternatives an OpenAI-compatible server gives in ``top_logprobs`` at the
#   token where the option is written): best minus second best; ``|2p - 1|`` at worst over the
#   options of a multiple-choice field (as the scikit-learn model does);
# - a single confidence p for what was chosen (a choice item's or the prediction's ``score``):
#   ``max(0, 2p - 1)``. The other options share at most 1 - p, so best minus second best is at least
#   2p - 1 (exactly that with two options); below p = 0.5 nothing is known and the margin is 0,
#   the least certain.
#
# The prediction's margin is the smallest over its choice fields, else the one from its score.


def margin_from_score(score: float | None) -> float | None:
    return None if score is None else max(0.0, 2.0 * score - 1.0)


def margin_from_probabilities(probabilities: list[float], *, multiple: bool = False) -> float:
    if multiple:
        return min(abs(2.0 * p - 1.0) for p in probabilities)
    ordered = sorted(probabilities, reverse=True)
    return ordered[0] - (ordered[1] if len(ordered) > 1 else 0.0)


def _probability(value: Any) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        return None
    return min(max(float(value), 0.0), 1.0)


def _pinned(url: str, addresses: list[str]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the vetted address, with the Host header and TLS name of the original."""
    parts = urlsplit(url)
    address = addresses[0]
    host_for_url = f"[{address}]" if ":" in address else address
    netloc = host_for_url + (f":{parts.port}" if parts.port else "")
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = parts.hostname + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


def http_json(
    method: str,
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    retries: int = 2,
    backoff: float = 0.5,
) -> Any:
    """Send a JSON request and return the decoded JSON answer, or raise ``EndpointError``."""
    try:
        addresses = check_outbound_url(url)
    except ValidationFailed as exc:
        raise EndpointError(f"{url}: {exc.message}") from None
    pinned, host_headers, extensions = _pinned(url, addresses)
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {}), **host_headers}
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(backoff * 2 ** (attempt - 1), 10.0))
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
                response = client.request(method, pinned, json=body, headers=all_headers, extensions=extensions)
        except httpx.TimeoutException:
            last = f"no answer within {timeout:g}s"
            continue
        except httpx.TransportError as exc:
            last = f"cannot connect ({exc.__class__.__name__}: {exc})"
            continue
        if response.status_code == 429 or response.status_code >= 500:
            last = f"answered HTTP {response.status_code}"
            continue
        if response.status_code >= 300:
            snippet = response.text[:200].replace("\n", " ")
            raise EndpointError(f"{method} {url} answered HTTP {response.status_code}: {snippet}")
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise EndpointError(f"{method} {url} answered more than {MAX_RESPONSE_BYTES} bytes")
        try:
            return response.json()
        except ValueError:
            raise EndpointError(f"{method} {url} answered something that is not JSON (malformed response)") from None
    raise EndpointError(f"{method} {url} is unavailable after {retries + 1} attempt(s): {last}")


def _number(config: dict, key: str, default: float, lo: float, hi: float, *, integer: bool = False) -> float | int:
    value = config.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
        raise LabelerConfigError(
            f"config.{key} must be a number from {lo:g} to {hi:g}.", fields={f"config.{key}": "bad"}
        )
    if integer and int(value) != value:
        raise LabelerConfigError(f"config.{key} must be an integer.", fields={f"config.{key}": "bad"})
    return int(value) if integer else float(value)


def _common_config(config: Any, *, allowed: set[str]) -> dict:
    config = require_dict(config, "config")
    extra = set(config) - allowed - {"url", "api_key", "timeout", "retries", "model_version", "batch_size"}
    if extra:
        raise LabelerConfigError(f"Unknown config keys: {', '.join(sorted(extra))}.", fields={"config": "unknown"})
    url = config.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2000:
        raise LabelerConfigError("config.url must be an http(s) URL.", fields={"config.url": "bad"})
    try:
        check_outbound_url(url)
    except ValidationFailed as exc:
        raise LabelerConfigError(f"config.url: {exc.message}", fields={"config.url": "refused"}) from None
    out: dict[str, Any] = {
        "url": url.rstrip("/"),
        "timeout": _number(config, "timeout", 30, 0.1, 600),
        "retries": _number(config, "retries", 2, 0, 10, integer=True),
        "batch_size": _number(config, "batch_size", 50, 1, 1000, integer=True),
    }
    for key in ("api_key", "model_version"):
        if key in config and config[key] not in (None, ""):
            if not isinstance(config[key], str) or len(config[key]) > 500:
                raise LabelerConfigError(f"config.{key} must be a string.", fields={f"config.{key}": "bad"})
            out[key] = config[key]
    return out


class RemoteLabeler(BaseLabeler):
    remote = True

    @classmethod
    def cache_token(cls, context) -> str | None:
        return None  # nothing costly to build: a fresh client per chunk

    @classmethod
    def default_model_version(cls, *, name: str, config: dict, project_id: int) -> str:
        return config.get("model_version") or f"{cls.kind}-{name}"

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        return http_json(
            method,
            self.config["url"] + path,
            body=body,
            headers=self.auth_headers(),
            timeout=self.config["timeout"],
            retries=self.config["retries"],
            backoff=getattr(settings, "PRELABEL_RETRY_BACKOFF", 0.5),
        )

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config['api_key']}"} if self.config.get("api_key") else {}


@register
class LabelStudioBackendLabeler(RemoteLabeler):
    """A Label Studio ML backend: ``POST /setup``, ``POST /predict``, ``GET /health``."""

    kind = "ls_backend"

    @classmethod
    def validate_config(cls, config: Any, schema: dict) -> dict:
        return _common_config(config, allowed=set())

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.config['api_key']}"} if self.config.get("api_key") else {}

    @property
    def label_config(self) -> str:
        return schema_to_label_config(self.context.schema)

    def health(self) -> Any:
        return self._request("GET", "/health")

    def setup(self) -> None:
        self._request(
            "POST",
            "/setup",
            {
                "project": str(self.context.project_id),
                "schema": self.label_config,
                "hostname": getattr(settings, "SITE_URL", ""),
                "access_token": "",
                "model_version": self.context.model_version,
            },
        )

    def _batch(self, tasks: list[TaskInput]) -> list[LabelerOutput]:
        body = {
            "tasks": [{"id": t.id, "data": {**t.payload, "text": t.text}} for t in tasks],
            "model_version": self.context.model_version,
            "project": str(self.context.project_id),
            "label_config": self.label_config,
            "params": {"context": None},
        }
        answer = self._request("POST", "/predict", body)
        results = answer.get("results") if isinstance(answer, dict) else answer
        where = f"{self.config['url']}/predict"
        if not isinstance(results, list):
            raise EndpointError(f'{where}: malformed response, expected {{"results": [...]}}')
        if len(results) != len(tasks):
            raise EndpointError(f"{where}: malformed response, {len(results)} results for {len(tasks)} tasks")
        out = []
        for task, prediction in zip(tasks, results, strict=True):
            if not isinstance(prediction, dict):
                raise EndpointError(f"{where}: malformed prediction for task {task.id}: not an object")
            try:
                result = label_studio_result_to_ours(self.context.schema, prediction.get("result"))
            except MappingError as exc:
                raise EndpointError(f"{where}: malformed prediction for task {task.id}: {exc}") from None
            score = prediction.get("score")
            if score is not None and _probability(score) is None:
                raise EndpointError(f"{where}: malformed prediction for task {task.id}: score is not a number")
            score = _probability(score)
            try:
                margins = self._choice_margins(prediction["result"])
            except ValueError as exc:
                raise EndpointError(f"{where}: malformed prediction for task {task.id}: {exc}") from None
            margin = min(margins) if margins else margin_from_score(score)
            out.append(LabelerOutput(task.id, result, score, margin))
        return out

    def _choice_margins(self, items: list) -> list[float]:
        """A margin per ``choices`` item of a choice field, from its per-option ``scores`` or its ``score``."""
        choice_fields = fields_of(self.context.schema, "choice")
        margins = []
        for i, item in enumerate(items):
            field = choice_fields.get(item.get("from_name"))
            if field is None:
                continue
            scores = item.get("scores", item["value"].get("scores"))
            if scores is not None:
                if not isinstance(scores, dict) or not scores:
                    raise ValueError(f"result[{i}].scores must map options to probabilities")
                probabilities = [_probability(p) for p in scores.values()]
                if any(p is None for p in probabilities) or not set(scores) <= set(field["options"]):
                    raise ValueError(f"result[{i}].scores must map options of {field['name']} to numbers")
                margins.append(margin_from_probabilities(probabilities, multiple=bool(field.get("multiple"))))
            elif item.get("score") is not None:
                probability = _probability(item["score"])
                if probability is None:
                    raise ValueError(f"result[{i}].score is not a number")
                margins.append(margin_from_score(probability))
        return margins

    def predict(self, tasks: list[TaskInput]) -> list[LabelerOutput | LabelerError]:
        size = self.config["batch_size"]
        out: list[LabelerOutput | LabelerError] = []
        for i in range(0, len(tasks), size):
            out += self._batch(tasks[i : i + size])
        return out


DEFAULT_PROMPT = (
    "Label the text below. Answer with one JSON object that maps each field name to its value and "
    "nothing else.\n\nFields:\n$fields\n\nText:\n$text"
)
TOP_LOGPROBS = 5
FENCE_RE = re.compile(r"^```(?:json)?\s*|\s*```$")


def describe_fields(schema: dict) -> str:
    lines = []
    for field in schema.get("fields", []):
        name, ftype = field["name"], field["type"]
        if ftype == "choice":
            kind = "a list of any of" if field.get("multiple") else "one of"
            lines.append(f"- {name}: {kind} {json.dumps(field['options'])}")
        elif ftype == "spans":
            labels = json.dumps(field["labels"])
            lines.append(f'- {name}: a list of {{"text": exact substring of the text, "label": one of {labels}}}')
        elif ftype == "text":
            lines.append(f"- {name}: a string")
        elif ftype == "rating":
            lo, hi = field.get("scale", [1, 5])
            lines.append(f"- {name}: an object mapping each of {json.dumps(field['criteria'])} to an integer {lo}-{hi}")
        elif ftype == "pairwise":
            lines.append(f'- {name}: {{"choice": one of "a", "b", "tie", "both_bad"}}')
        if field.get("description"):
            lines[-1] += f" ({field['description']})"
    return "\n".join(lines)


def locate_spans(text: str, spans: Any) -> list[dict]:
    """LLMs quote spans rather than count offsets: find each quoted text (every occurrence)."""
    if not isinstance(spans, list):
        raise ValueError("spans must be a list")
    out, seen = [], set()
    for span in spans:
        if not isinstance(span, dict) or not isinstance(span.get("text"), str) or not span["text"]:
            raise ValueError('each span needs a "text"')
        start, end = span.get("start"), span.get("end")
        if isinstance(start, int) and isinstance(end, int) and text[start:end] == span["text"]:
            positions = [start]
        else:
            positions = [m.start() for m in re.finditer(re.escape(span["text"]), text)]
        for pos in positions:
            key = (pos, pos + len(span["text"]), span.get("label"))
            if key not in seen:
                seen.add(key)
                out.append({"start": key[0], "end": key[1], "label": key[2], "text": span["text"]})
    return out


def _token_table(logprobs: Any) -> tuple[str, list[int], list[dict]] | None:
    """(the tokens joined, each token's start offset, the tokens) or ``None`` when unusable."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content:
        return None
    starts, parts, position = [], [], 0
    for token in content:
        if not (
            isinstance(token, dict)
            and isinstance(token.get("token"), str)
            and isinstance(token.get("logprob"), (int, float))
            and isinstance(token.get("top_logprobs", []), list)
        ):
            return None
        starts.append(position)
        parts.append(token["token"])
        position += len(token["token"])
    return "".join(parts), starts, content


def _token_probabilities(token: dict) -> list[float]:
    """The probabilities of the alternatives at a token (the chosen one included)."""
    found = {token["token"]: math.exp(min(token["logprob"], 0.0))}
    for alternative in token.get("top_logprobs") or []:
        if isinstance(alternative, dict) and isinstance(alternative.get("logprob"), (int, float)):
            found.setdefault(str(alternative.get("token")), math.exp(min(alternative["logprob"], 0.0)))
    return list(found.values())


def logprob_confidence(schema: dict, result: dict, logprobs: Any) -> tuple[float | None, float | None]:
    """(score, margin) of a chat answer from its token log-probabilities, or (None, None).

    For each choice field the answer holds, the token where each chosen option starts is where
    the model decided: its probability is the confidence, and the gap to the best alternative
    token the margin. Without choice fields the score is the geometric-mean token probability.
    """
    table = _token_table(logprobs)
    if table is None:
        return None, None
    text, starts, tokens = table
    scores, margins = [], []
    for name in fields_of(schema, "choice"):
        chosen = result.get(name)
        values = chosen if isinstance(chosen, list) else [chosen]
        key = re.search(rf'"{re.escape(name)}"\s*:\s*', text)
        if key is None or not all(isinstance(v, str) for v in values):
            continue
        field_margins = []
        for value in values:
            at = text.find(json.dumps(value)[1:-1], key.end())
            if at < 0:
                continue
            token = tokens[bisect.bisect_right(starts, at) - 1]
            probabilities = _token_probabilities(token)
            scores.append(probabilities[0])
            field_margins.append(margin_from_probabilities(probabilities))
        if field_margins:
            margins.append(min(field_margins))
    if scores:
        return sum(scores) / len(scores), min(margins)
    score = math.exp(sum(min(t["logprob"], 0.0) for t in tokens) / len(tokens))
    return score, margin_from_score(score)


@register
class OpenAIChatLabeler(RemoteLabeler):
    """An OpenAI-compatible ``/chat/completions`` endpoint prompted to answer in JSON."""

    kind = "openai"

    @classmethod
    def validate_config(cls, config: Any, schema: dict) -> dict:
        out = _common_config(
            config, allowed={"model", "prompt", "system", "temperature", "max_tokens", "json_mode", "logprobs"}
        )
        model = config.get("model")
        if not isinstance(model, str) or not model.strip() or len(model) > 200:
            raise LabelerConfigError("config.model must name the model.", fields={"config.model": "required"})
        out["model"] = model
        for key in ("prompt", "system"):
            value = config.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or len(value) > 20_000:
                raise LabelerConfigError(f"config.{key} must be a string.", fields={f"config.{key}": "bad"})
            try:
                Template(value).substitute(text="", fields="", payload="", schema="")
            except (KeyError, ValueError) as exc:
                raise LabelerConfigError(
                    f"config.{key}: unknown placeholder {exc}; use $text, $fields, $payload, $schema.",
                    fields={f"config.{key}": "bad placeholder"},
                ) from None
            out[key] = value
        out["temperature"] = _number(config, "temperature", 0, 0, 2)
        out["max_tokens"] = _number(config, "max_tokens", 1024, 1, 100_000, integer=True)
        out["json_mode"] = bool(config.get("json_mode", True))
        out["logprobs"] = bool(config.get("logprobs", False))
        return out

    def _endpoint(self) -> str:
        url = self.config["url"]
        return "" if url.endswith("/chat/completions") else "/chat/completions"

    def _messages(self, task: TaskInput) -> list[dict]:
        values = {
            "text": task.text,
            "fields": describe_fields(self.context.schema),
            "payload": json.dumps(task.payload, ensure_ascii=False),
            "schema": json.dumps(self.context.schema, ensure_ascii=False),
        }
        messages = []
        if self.config.get("system"):
            messages.append({"role": "system", "content": Template(self.config["system"]).substitute(values)})
        messages.append(
            {"role": "user", "content": Template(self.config.get("prompt", DEFAULT_PROMPT)).substitute(values)}
        )
        return messages

    def _parse(self, task: TaskInput, content: Any) -> dict:
        if not isinstance(content, str):
            raise ValueError("the answer has no text content")
        body = FENCE_RE.sub("", content.strip())
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end < start:
            raise ValueError("the answer holds no JSON object")
        result = json.loads(body[start : end + 1])
        if not isinstance(result, dict):
            raise ValueError("the answer is not a JSON object")
        for name in fields_of(self.context.schema, "spans"):
            if name in result:
                result[name] = locate_spans(task.text, result[name])
        return result

    def predict(self, tasks: list[TaskInput]) -> list[LabelerOutput | LabelerError]:
        out: list[LabelerOutput | LabelerError] = []
        for task in tasks:
            body: dict[str, Any] = {
                "model": self.config["model"],
                "messages": self._messages(task),
                "temperature": self.config["temperature"],
                "max_tokens": self.config["max_tokens"],
            }
            if self.config.get("json_mode", True):
                body["response_format"] = {"type": "json_object"}
            if self.config.get("logprobs"):
                body["logprobs"], body["top_logprobs"] = True, TOP_LOGPROBS
            answer = self._request("POST", self._endpoint(), body)
            try:
                content = answer["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                raise EndpointError(
                    f"{self.config['url']}: malformed chat completion (no choices[0].message.content)"
                ) from None
            try:
                result = self._parse(task, content)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                out.append(LabelerError(task.id, f"the model's answer is not usable JSON: {exc}"))
                continue
            score = margin = None
            if self.config.get("logprobs"):
                score, margin = logprob_confidence(self.context.schema, result, answer["choices"][0].get("logprobs"))
            out.append(LabelerOutput(task.id, result, score, margin))
        return out
