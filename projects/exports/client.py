"""A small Annotator API client for scripts (standard library only; copy this file anywhere).

    from client import AnnotatorClient
    api = AnnotatorClient("https://annotator.example.com", token="...")
    api.export_to_file(12, "data.jsonl", format="jsonl", gold="exclude")   # streamed, resumes
    for row in api.iter_jsonl(12, status="accepted"):
        ...
    job = api.snapshot(12, format="hf", wait=True)
    api.download_snapshot(12, job["id"], "release.jsonl")

``export_to_file`` streams with gzip and, if the connection breaks, continues with
``?after=<last complete task id>`` (jsonl and hf in consolidated mode: one line per task).
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from typing import Any

RESUMABLE = {"jsonl", "hf"}
CHUNK = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        try:
            error = json.loads(body)["error"]
            message = f"{status} {error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            message = f"{status}: {body[:200]!r}"
        super().__init__(message)
        self.status = status


class AnnotatorClient:
    def __init__(self, base_url: str, *, token: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # --- plumbing -------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, params: dict | None = None, body: Any = None, headers=None):
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        url = f"{self.base_url}/api/v1/{path.lstrip('/')}" + (f"?{query}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 (the caller's own server)
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read()) from None

    def _json(self, method: str, path: str, **kwargs) -> Any:
        with self._request(method, path, **kwargs) as response:
            return json.loads(response.read())

    # --- streaming export -----------------------------------------------------------------
    def iter_export(self, project_id: int, *, after: int = 0, **filters) -> Iterator[bytes]:
        """The export as decompressed byte blocks (sent gzip-encoded over the wire)."""
        params = {**filters, "after": after or None}
        response = self._request(
            "GET", f"projects/{project_id}/export/", params=params, headers={"Accept-Encoding": "gzip"}
        )
        gzipped = response.headers.get("Content-Encoding") == "gzip"
        inflater = zlib.decompressobj(31) if gzipped else None
        with response:
            while block := response.read(CHUNK):
                out = inflater.decompress(block) if inflater else block
                if out:
                    yield out
            if inflater:
                yield inflater.flush()

    def iter_jsonl(self, project_id: int, **filters) -> Iterator[dict]:
        """Rows of a JSONL-family export (jsonl, hf, preference, sft, reward, spacy) as dicts."""
        pending = b""
        for block in self.iter_export(project_id, **{"format": "jsonl", **filters}):
            pending += block
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line:
                    yield json.loads(line)
        if pending.strip():
            yield json.loads(pending)

    def export_to_file(self, project_id: int, path: str, *, retries: int = 3, **filters) -> int:
        """Stream an export into ``path``; return bytes written. Resumes broken jsonl/hf downloads."""
        # One line per task (consolidated mode), so "after the last complete line's task" loses nothing.
        resumable = filters.get("format", "jsonl") in RESUMABLE and filters.get("mode", "consolidated") != "raw"
        written, after = 0, 0
        with open(path, "wb") as fh:
            for attempt in range(retries + 1):
                tail = b""  # bytes after the last complete line, not yet written
                try:
                    for block in self.iter_export(project_id, after=after, **filters):
                        if not resumable:
                            fh.write(block)
                            written += len(block)
                            continue
                        block = tail + block
                        cut = block.rfind(b"\n") + 1
                        complete, tail = block[:cut], block[cut:]
                        if complete:
                            fh.write(complete)
                            written += len(complete)
                            last_line = complete[:-1].rsplit(b"\n", 1)[-1]
                            after = json.loads(last_line)["task_id"]
                    fh.write(tail)
                    return written + len(tail)
                except (OSError, zlib.error):
                    if not resumable or attempt == retries:
                        raise
                    time.sleep(min(2**attempt, 10))
        return written

    # --- snapshots ------------------------------------------------------------------------
    def snapshot(
        self, project_id: int, *, wait: bool = False, poll: float = 1.0, idempotency_key: str | None = None, **options
    ) -> dict:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        job = self._json("POST", f"projects/{project_id}/exports/", body=options, headers=headers)
        while wait and job["status"] in ("queued", "running"):
            time.sleep(poll)
            job = self._json("GET", f"projects/{project_id}/exports/{job['id']}/")
        return job

    def snapshots(self, project_id: int) -> list[dict]:
        return self._json("GET", f"projects/{project_id}/exports/")["results"]

    def download_snapshot(self, project_id: int, export_id: int, path: str) -> str:
        """Save a snapshot file; return its sha256 after checking it against the server's."""
        job = self._json("GET", f"projects/{project_id}/exports/{export_id}/")
        digest = hashlib.sha256()
        with (
            self._request("GET", f"projects/{project_id}/exports/{export_id}/download/") as response,
            open(path, "wb") as fh,
        ):
            while block := response.read(CHUNK):
                digest.update(block)
                fh.write(block)
        if digest.hexdigest() != job["sha256"]:
            raise ApiError(0, b"checksum mismatch: the download is incomplete or altered")
        return job["sha256"]

    def diff(self, project_id: int, a: int, b: int) -> dict:
        return self._json("GET", f"projects/{project_id}/exports/{a}/diff/{b}/")
