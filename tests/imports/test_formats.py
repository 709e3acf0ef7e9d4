import gzip
import io
import json
import zipfile

import pytest

from projects.assignment.models import Task
from projects.documents.models import Article

pytestmark = pytest.mark.django_db


def jsonl(rows) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


ROWS = [
    {
        "id": "n1",
        "title": "Rates",
        "text": "Helios Bank raised rates.",
        "source": "wire",
        "url": "https://example.com/1",
        "published": "2025-03-04",
        "domain": "business",
        "section": "econ",
    },
    {"id": "n2", "title": "Robots", "text": "Atlas Robotics opened in Lyon.", "domain": "technology"},
]


def test_jsonl_maps_known_fields_and_keeps_others_in_meta(upload, project):
    response = upload("news.jsonl", jsonl(ROWS))
    assert response.status_code == 202, response.content
    job = response.json()
    assert (job["status"], job["format"], job["rows_read"], job["rows_created"], job["tasks_created"]) == (
        "succeeded",
        "jsonl",
        2,
        2,
        2,
    )
    article = Article.objects.get(project=project, external_id="n1")
    assert (article.title, article.source, article.url, article.domain) == (
        "Rates",
        "wire",
        "https://example.com/1",
        "business",
    )
    assert article.published_at.isoformat() == "2025-03-04T00:00:00+00:00"
    assert article.meta == {"section": "econ"}
    task = Task.objects.get(article=article)
    assert task.start_offset is None and task.text == "Helios Bank raised rates."


def test_json_array(upload, project):
    body = upload("news.json", json.dumps(ROWS)).json()
    assert (body["format"], body["status"], body["rows_created"]) == ("json", "succeeded", 2)


def test_utf8_bom_is_accepted(upload, project):
    body = upload("news.jsonl", b"\xef\xbb\xbf" + jsonl(ROWS).encode()).json()
    assert (body["status"], body["rows_created"], body["rows_failed"]) == ("succeeded", 2, 0)
    body = upload("news.csv", "\ufeffid,text\nc1,Caf\u00e9 opens\n".encode()).json()
    assert body["rows_created"] == 1
    assert Article.objects.get(external_id="c1").text == "Caf\u00e9 opens"


def test_csv_with_chosen_text_column_and_quoted_newlines(upload, project):
    content = 'id,headline,story,section\n7,"Big, news","Line one\nline two",world\n8,Other,Second story,sport\n'
    body = upload("news.csv", content, text_field="story").json()
    assert (body["status"], body["rows_created"]) == ("succeeded", 2), body
    article = Article.objects.get(external_id="7")
    assert (article.title, article.text, article.meta) == ("Big, news", "Line one\nline two", {"section": "world"})


def test_csv_row_with_wrong_field_count_reports_its_line(upload, project):
    body = upload("news.csv", "id,text\n1,fine\n2,too,many\n3,also fine\n").json()
    assert (body["rows_created"], body["rows_failed"]) == (2, 1)
    assert body["errors"] == [{"line": 3, "message": "the row has 3 fields, the header has 2"}]


def test_tsv(upload, project):
    body = upload("news.tsv", "id\ttext\tdomain\nt1\tTab separated text\tscience\n").json()
    assert (body["format"], body["rows_created"]) == ("tsv", 1)
    assert Article.objects.get(external_id="t1").domain == "science"


def test_txt_is_one_article_titled_by_file_name(upload, project):
    body = upload("City council.txt", "First paragraph.\n\nSecond paragraph.\n").json()
    assert (body["format"], body["rows_created"]) == ("txt", 1)
    article = Article.objects.get(project=project)
    assert article.title == "City council" and article.external_id.startswith("sha256:")


def test_zip_of_text_files_and_jsonl(upload, project):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("docs/one.txt", "Article one.")
        archive.writestr("docs/two.txt", "Article two.")
        archive.writestr("more.jsonl", jsonl(ROWS))
        archive.writestr("__MACOSX/._one.txt", "junk")
    body = upload("batch.zip", buffer.getvalue()).json()
    assert (body["format"], body["status"], body["rows_created"]) == ("zip", "succeeded", 4), body
    assert Article.objects.get(external_id="docs/one.txt").title == "one"
    assert Article.objects.filter(external_id__in=["n1", "n2"]).count() == 2


def test_gzip_of_jsonl_and_of_csv(upload, project):
    body = upload("news.jsonl.gz", gzip.compress(jsonl(ROWS).encode())).json()
    assert (body["format"], body["compression"], body["rows_created"]) == ("jsonl", "gzip", 2)
    body = upload("more.csv.gz", gzip.compress(b"id,text\ng1,Gzipped CSV\n")).json()
    assert (body["format"], body["rows_created"]) == ("csv", 1)


def test_format_detected_from_content_and_overridable(upload, project):
    body = upload("export.data", json.dumps(ROWS)).json()
    assert body["format"] == "json" and body["rows_created"] == 2
    body = upload("notes.txt", "id,text\nx1,Really a CSV\n", format="csv").json()
    assert body["format"] == "csv" and Article.objects.filter(external_id="x1").exists()


def test_split_by_paragraph_creates_segment_tasks(upload, project):
    text = "First para here.\n\n  Second para.  \n \nThird."
    body = upload("a.jsonl", jsonl([{"id": "p", "text": text}]), split="paragraph").json()
    assert body["tasks_created"] == 3
    tasks = list(Task.objects.filter(article__external_id="p").order_by("segment_index"))
    assert [t.text for t in tasks] == ["First para here.", "Second para.", "Third."]
    assert [t.segment_index for t in tasks] == [0, 1, 2]


def test_payload_fields_skill_column_and_priority(upload, project):
    rows = [
        {
            "id": "r1",
            "text": "Q?",
            "response": "A.",
            "payload": {"prompt": "Q?"},
            "expertise": "medicine",
            "priority": 5,
        },
    ]
    body = upload("a.jsonl", jsonl(rows), skill_field="expertise").json()
    assert body["status"] == "succeeded", body
    task = Task.objects.get(article__external_id="r1")
    assert task.payload == {"prompt": "Q?", "response": "A."}
    assert (task.required_skill, task.priority) == ("medicine", 5)
    assert Article.objects.get(external_id="r1").meta == {}


def test_fixed_skill_and_custom_payload_fields(upload, project):
    rows = [{"id": "r2", "text": "Compare.", "answer_1": "x", "answer_2": "y"}]
    upload("a.jsonl", jsonl(rows), skill="coding", payload_fields="answer_1,answer_2")
    task = Task.objects.get(article__external_id="r2")
    assert task.required_skill == "coding" and task.payload == {"answer_1": "x", "answer_2": "y"}


def test_gold_answers_are_validated_against_the_schema(upload, project):
    rows = [
        {"id": "g1", "text": "Chen Wei spoke.", "gold": {"topic": "politics"}},
        {"id": "g2", "text": "Other.", "gold": {"topic": "cooking"}},
        {"id": "g3", "text": "Plain."},
    ]
    body = upload("a.jsonl", jsonl(rows)).json()
    assert (body["rows_created"], body["rows_failed"]) == (2, 1)
    assert "gold" in body["errors"][0]["message"] and "topic" in body["errors"][0]["message"]
    gold = Task.objects.get(article__external_id="g1")
    assert gold.is_gold and gold.gold_answer == {"topic": "politics"}
    assert not Task.objects.get(article__external_id="g3").is_gold


def test_gold_from_a_csv_column_holding_json(upload, project):
    content = 'id,text,gold\nc1,Some text,"{""topic"": ""business""}"\n'
    upload("a.csv", content)
    assert Task.objects.get(article__external_id="c1").gold_answer == {"topic": "business"}


def test_json_body_for_small_batches(post_json, project):
    response = post_json({"articles": ROWS, "split": "paragraph", "skill": "news"})
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["rows_created"]) == ("succeeded", 2)
    assert set(Task.objects.filter(project=project).values_list("required_skill", flat=True)) == {"news"}
