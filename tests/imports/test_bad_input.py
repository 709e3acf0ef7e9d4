"""Each kind of bad file gets a clear message, and nothing stored before changes."""

import gzip
import io
import json
import os
import zipfile

import pytest

from projects.assignment.models import Task
from projects.documents.models import Article
from projects.imports.models import ImportJob
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def existing(project):
    return factories.ArticleFactory(project=project, external_id="keep", text="Untouched text.")


def assert_refused(response, code: str, existing, media) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code, error
    existing.refresh_from_db()
    assert existing.text == "Untouched text." and Article.objects.count() == 1
    assert not ImportJob.objects.exists()
    leftovers = os.listdir(media / "imports") if (media / "imports").exists() else []
    assert leftovers == [], "a refused upload must not stay on disk"
    return error


def test_non_utf8_file(upload, existing, media):
    error = assert_refused(
        upload("news.csv", "id,text\n1,caf\u00e9\n".encode("latin-1")), "bad_encoding", existing, media
    )
    assert "not valid UTF-8" in error["message"] and "line 2" in error["message"]


def test_binary_garbage(upload, existing, media):
    garbage = bytes(range(256)) * 40
    error = assert_refused(upload("news.jsonl", garbage), "binary_file", existing, media)
    assert "binary" in error["message"]


def test_png_named_txt_is_binary(upload, existing, media):
    assert_refused(upload("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "binary_file", existing, media)


def test_empty_file_and_whitespace_only_file(upload, existing, media):
    assert "empty" in assert_refused(upload("news.jsonl", b""), "empty_file", existing, media)["message"]
    assert_refused(upload("news.jsonl", b"\n \n"), "empty_file", existing, media)


def test_csv_missing_text_column_names_the_columns(upload, existing, media):
    error = assert_refused(upload("news.csv", "id,headline,body_html\n1,x,y\n"), "missing_column", existing, media)
    assert "'headline'" in error["message"] and "text_field" in error["message"]


def test_zip_bomb_by_ratio(upload, existing, media, settings):
    settings.IMPORT_MAX_COMPRESSION_RATIO = 10
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.txt", b"a" * (20 * 1024 * 1024))
    assert len(buffer.getvalue()) < 100_000
    assert_refused(upload("bomb.zip", buffer.getvalue()), "zip_bomb", existing, media)


def test_zip_bomb_by_total_size(upload, existing, media, settings):
    settings.IMPORT_MAX_UNCOMPRESSED_BYTES = 1_000_000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(3):
            archive.writestr(f"part{i}.txt", b"word " * 100_000)
    assert_refused(upload("big.zip", buffer.getvalue()), "zip_bomb", existing, media)


def test_gzip_bomb(upload, existing, media, settings):
    settings.IMPORT_MAX_UNCOMPRESSED_BYTES = 1_000_000
    assert_refused(upload("x.jsonl.gz", gzip.compress(b"\n" * 5_000_000)), "zip_bomb", existing, media)


def test_zip_with_parent_path_and_nested_archive(upload, existing, media):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../etc/evil.txt", "x")
    assert_refused(upload("evil.zip", buffer.getvalue()), "unsafe_path", existing, media)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inner.zip", b"PK\x03\x04")
    assert_refused(upload("nested.zip", buffer.getvalue()), "nested_archive", existing, media)


def test_corrupt_gzip(upload, existing, media):
    assert_refused(upload("x.jsonl.gz", b"\x1f\x8b\x08\x00garbage"), "bad_archive", existing, media)


def test_json_that_is_not_an_array(upload, existing, media):
    assert_refused(upload("x.json", json.dumps({"text": "x"}), format="json"), "bad_format", existing, media)


def test_unknown_format_and_option(upload, existing, media):
    response = upload("x.jsonl", '{"text": "x"}\n', format="xml")
    assert response.status_code == 400 and "format" in response.json()["error"]["fields"]
    response = upload("x.jsonl", '{"text": "x"}\n', colour="blue")
    assert response.status_code == 400 and "colour" in response.json()["error"]["fields"]
    existing.refresh_from_db()
    assert Article.objects.count() == 1


def test_bad_rows_are_reported_and_the_rest_imported(upload, existing, project):
    rows = [
        '{"id": "a", "text": "Fine."}',
        '{"id": "b", "text": 42}',
        "{not json",
        '{"id": "c", "text": ["list"]}',
        '{"id": "a", "text": "Same id again."}',
        "[1, 2]",
        '{"id": "d", "text": "   "}',
        '{"id": "e", "text": "Bad date", "published": "yesterday"}',
        '{"id": "f", "text": "Bad url", "url": "javascript:alert(1)"}',
        '{"id": "g", "text": "NUL \\u0000 inside"}',
        '{"id": "h", "text": "Also fine."}',
    ]
    body = upload("news.jsonl", "\n".join(rows)).json()
    assert (body["status"], body["rows_read"], body["rows_created"], body["rows_failed"]) == ("succeeded", 11, 2, 9)
    messages = {e["line"]: e["message"] for e in body["errors"]}
    assert messages[2] == "text must be a string, got int"
    assert messages[3].startswith("invalid JSON")
    assert messages[4] == "text must be a string, got list"
    assert messages[5].startswith("duplicate id 'a'")
    assert "JSON object" in messages[6]
    assert messages[7] == "text is empty"
    assert "ISO 8601" in messages[8]
    assert "http(s)" in messages[9]
    assert "NUL" in messages[10]
    assert Article.objects.get(external_id="a").text == "Fine."
    assert set(Article.objects.values_list("external_id", flat=True)) == {"keep", "a", "h"}


def test_duplicate_ids_inside_one_file_keep_the_first_row(upload, project):
    body = upload("a.csv", "id,text\n1,first\n2,other\n1,second\n").json()
    assert body["errors"] == [{"line": 4, "message": "duplicate id '1': an earlier row of this file has it"}]
    assert Article.objects.get(external_id="1").text == "first"


def test_invalid_json_in_an_array_keeps_the_items_before(upload, project):
    body = upload("a.json", '[{"id": "1", "text": "ok"}, {"id": "2", "text": }]').json()
    assert (body["rows_created"], body["rows_failed"]) == (1, 1)
    assert "invalid JSON after item 1" in body["errors"][0]["message"]


def test_stored_errors_are_capped_and_the_rest_counted(upload, project, monkeypatch):
    monkeypatch.setattr("projects.imports.services.MAX_STORED_ERRORS", 5)
    body = upload("a.jsonl", '{"text": 1}\n' * 12).json()
    assert (body["rows_failed"], len(body["errors"]), body["errors_truncated"]) == (12, 5, 7)


def test_priority_beyond_32_bits_is_an_error_of_its_row(upload, project):
    rows = [
        {"id": "a", "text": "First.", "priority": 2**31 - 1},
        {"id": "b", "text": "Too high.", "priority": 2**31},
        {"id": "c", "text": "Too low.", "priority": -(2**31) - 1},
        {"id": "d", "text": "Last.", "priority": -(2**31)},
    ]
    body = upload("p.jsonl", "\n".join(json.dumps(r) for r in rows)).json()
    assert (body["status"], body["rows_created"], body["rows_failed"]) == ("succeeded", 2, 2)
    assert [e["line"] for e in body["errors"]] == [2, 3]
    assert body["errors"][0]["message"] == "priority must be from -2147483648 to 2147483647"
    assert dict(Task.objects.filter(project=project).values_list("article__external_id", "priority")) == {
        "a": 2**31 - 1,
        "d": -(2**31),
    }
