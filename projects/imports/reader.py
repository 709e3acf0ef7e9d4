"""Opening a stored import file: compression, format detection and the whole-file checks.

Pure module (no ORM). ``inspect_file`` reads the file once as a stream before anything is written:
it refuses empty files, binary data, text that is not UTF-8, unsafe or oversized archives (zip
bombs), and finds the format. ``open_sources`` then yields one binary stream per document source
(the file itself, its gunzipped content, or each member of a zip).
"""

from __future__ import annotations

import codecs
import gzip
import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO

from projects.imports.errors import ImportFileError

CHUNK = 1 << 20
FORMATS = ("jsonl", "json", "csv", "tsv", "txt", "zip", "labelstudio", "doccano")
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "txt",
    ".text": "txt",
    ".md": "txt",
    ".zip": "zip",
}
ARCHIVE_EXTENSIONS = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".zst")
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
MAX_ZIP_MEMBERS = 100_000


@dataclass(frozen=True)
class Limits:
    max_uncompressed_bytes: int = 2 * 1024**3
    # A compressed stream may expand at most this many times (once it is past min_ratio_bytes;
    # small repetitive files compress well and are harmless).
    max_ratio: int = 200
    min_ratio_bytes: int = 16 * 1024**2


@dataclass
class FileInfo:
    format: str  # the format of the rows: jsonl, json, csv, tsv, txt, labelstudio, doccano, or zip
    compression: str = ""  # "gzip" or ""
    members: list[tuple[str, str]] = field(default_factory=list)  # zip: (member name, its format)
    uncompressed_bytes: int = 0
    head: bytes = b""  # the first 64 KiB of the (decompressed) content, for header checks


def format_from_name(name: str) -> tuple[str | None, str]:
    """(format or None, compression) from a file name: ``x.jsonl.gz`` -> ("jsonl", "gzip")."""
    lower = name.lower()
    compression = ""
    if lower.endswith(".gz"):
        compression, lower = "gzip", lower[:-3]
    return EXTENSIONS.get(PurePosixPath(lower).suffix), compression


def _check_text_chunks(chunks: Iterator[bytes], where: str) -> tuple[int, bytes]:
    """Stream through decoded bytes: refuse NUL bytes (binary) and invalid UTF-8.

    Returns (byte count, the first 64 KiB) for format sniffing.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    total = 0
    head = b""
    lines = 1
    for chunk in chunks:
        if len(head) < 65536:
            head += chunk[: 65536 - len(head)]
        if b"\x00" in chunk:
            raise ImportFileError(
                f"{where} looks like a binary file (it contains NUL bytes), not text.", code="binary_file"
            )
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = lines + chunk.count(b"\n", 0, exc.start)
            raise ImportFileError(
                f"{where} is not valid UTF-8 (byte 0x{chunk[exc.start]:02x} on line {line}). "
                "Save it as UTF-8 and upload it again.",
                code="bad_encoding",
            ) from None
        lines += chunk.count(b"\n")
        total += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ImportFileError(f"{where} ends in the middle of a UTF-8 character.", code="bad_encoding") from None
    return total, head


def _counted(stream: BinaryIO, compressed_size: int, limits: Limits, where: str) -> Iterator[bytes]:
    total = 0
    while chunk := stream.read(CHUNK):
        total += len(chunk)
        if total > limits.max_uncompressed_bytes:
            raise ImportFileError(
                f"{where} expands to more than {limits.max_uncompressed_bytes} bytes; refusing it.", code="zip_bomb"
            )
        if total > limits.min_ratio_bytes and total > limits.max_ratio * max(compressed_size, 1):
            raise ImportFileError(
                f"{where} expands more than {limits.max_ratio} times; refusing a likely zip bomb.", code="zip_bomb"
            )
        yield chunk


def _sniff(head: bytes, name: str) -> str:
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    if not text:
        raise ImportFileError(f"{name} is empty.", code="empty_file")
    if text[0] == "[":
        return "json"
    if text[0] == "{":
        return "jsonl"
    first_line = text.split("\n", 1)[0]
    if "\t" in first_line:
        return "tsv"
    return "txt"


def _refine_json(fmt: str, head: bytes) -> str:
    """Tell Label Studio task lists and doccano JSONL apart from plain JSON/JSONL by the first row."""
    import json

    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    first = None
    if fmt == "jsonl":
        try:
            first = json.loads(text.split("\n", 1)[0])
        except ValueError:
            return fmt
    else:
        import ijson

        try:
            first = next(ijson.items(io.BytesIO(text.encode()), "item"), None)
        except (ijson.JSONError, ijson.IncompleteJSONError):
            return fmt
    if not isinstance(first, dict):
        return fmt
    if fmt == "json" and isinstance(first.get("data"), dict):
        return "labelstudio"
    label = first.get("label", first.get("labels"))
    if fmt == "jsonl" and "text" in first and isinstance(label, list):
        return "doccano"
    return fmt


def _open_decompressed(path: str, compression: str) -> BinaryIO:
    if compression == "gzip":
        return gzip.open(path, "rb")
    return open(path, "rb")  # noqa: SIM115 - closed by the caller


def inspect_file(path: str, *, name: str, size: int, fmt: str | None = None, limits: Limits | None = None) -> FileInfo:
    """Check the whole file as a stream and find its format; raise ``ImportFileError`` if it is unusable."""
    limits = limits or Limits()
    if size == 0:
        raise ImportFileError(f"{name or 'The file'} is empty.", code="empty_file")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    by_name, compression = format_from_name(name)
    if magic.startswith(GZIP_MAGIC):
        compression = "gzip"
    elif compression == "gzip":
        raise ImportFileError(f"{name} is named .gz but is not gzip-compressed.", code="bad_archive")
    if magic == ZIP_MAGIC or (fmt or by_name) == "zip":
        return _inspect_zip(path, name=name, size=size, limits=limits)
    where = name or "The file"
    try:
        with _open_decompressed(path, compression) as stream:
            total, head = _check_text_chunks(_counted(stream, size, limits, where), where)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ImportFileError(f"{where} is not a readable gzip file ({exc}).", code="bad_archive") from None
    if not head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n"):
        raise ImportFileError(f"{where} is empty.", code="empty_file")
    detected = fmt or by_name or _sniff(head, where)
    if detected in ("json", "jsonl") and not fmt:
        detected = _refine_json(detected, head)
    return FileInfo(format=detected, compression=compression, uncompressed_bytes=total, head=head)


def _member_ok(info: zipfile.ZipInfo) -> bool:
    base = PurePosixPath(info.filename).name
    return not (info.is_dir() or info.filename.startswith("__MACOSX/") or base.startswith("."))


def _inspect_zip(path: str, *, name: str, size: int, limits: Limits) -> FileInfo:
    where = name or "The zip file"
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFileError(f"{where} is not a readable zip file ({exc}).", code="bad_archive") from None
    members: list[tuple[str, str]] = []
    total = 0
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ImportFileError(f"{where} holds more than {MAX_ZIP_MEMBERS} files.", code="zip_bomb")
        for info in infos:
            member = info.filename
            parts = PurePosixPath(member.replace("\\", "/")).parts
            if member.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise ImportFileError(f"{where} holds an unsafe path {member!r}; refusing it.", code="unsafe_path")
            if not _member_ok(info):
                continue
            if member.lower().endswith(ARCHIVE_EXTENSIONS):
                raise ImportFileError(
                    f"{where} holds another archive ({member}); nested archives are not imported.",
                    code="nested_archive",
                )
            total += info.file_size
            if total > limits.max_uncompressed_bytes:
                raise ImportFileError(
                    f"{where} expands to more than {limits.max_uncompressed_bytes} bytes; refusing it.", code="zip_bomb"
                )
            if info.file_size > limits.min_ratio_bytes and info.file_size > limits.max_ratio * max(
                info.compress_size, 1
            ):
                raise ImportFileError(
                    f"{member} in {where} expands more than {limits.max_ratio} times; refusing a likely zip bomb.",
                    code="zip_bomb",
                )
            member_fmt, _ = format_from_name(member)
            if member_fmt is None:
                member_fmt = "txt"
            try:
                with archive.open(info) as stream:
                    _, head = _check_text_chunks(_counted(stream, info.compress_size, limits, member), member)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ImportFileError(f"{member} in {where} cannot be read ({exc}).", code="bad_archive") from None
            if member_fmt in ("json", "jsonl"):
                member_fmt = _refine_json(member_fmt, head)
            members.append((member, member_fmt))
    if not members:
        raise ImportFileError(f"{where} holds no files to import.", code="empty_file")
    return FileInfo(format="zip", members=members, uncompressed_bytes=total)


def zip_members(path: str) -> list[tuple[str, str]]:
    """(member name, format) of the importable members, in archive order (no content checks)."""
    with zipfile.ZipFile(path) as archive:
        return [
            (info.filename, format_from_name(info.filename)[0] or "txt")
            for info in archive.infolist()
            if _member_ok(info)
        ]


@contextmanager
def open_source(path: str, info: FileInfo) -> Iterator[BinaryIO]:
    with _open_decompressed(path, info.compression) as stream:
        yield stream


def iter_zip_members(path: str, info: FileInfo) -> Iterator[tuple[str, str, BinaryIO]]:
    """(member name, format, binary stream) for each importable member, in archive order."""
    with zipfile.ZipFile(path) as archive:
        for member, member_fmt in info.members:
            with archive.open(member) as stream:
                yield member, member_fmt, stream
