"""Task manager search: both plan shapes (``COMMON`` walk, ``RARE`` GIN array) and the automatic
choice give exactly the rows and order of a reference computed without the search machinery
(PostgreSQL: each article's document computed on the fly, no stored column, no index; SQLite:
substring match in Python), for words, phrases, negation, ``or``, not-yet-indexed articles,
filters, orderings, small pages and deep pages."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotator.api import CappedCountPaginator
from projects.assignment import manager, search
from projects.assignment.models import Task
from tests import factories

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(not settings.IS_POSTGRES, reason="plan shapes are PostgreSQL only")

TOPICS = ["vaccines", "markets", "football", "chips"]
N = 60


@pytest.fixture
def mgr(client_for, manager):
    return client_for(manager)


@pytest.fixture
def corpus(project):
    """60 articles (one in 7 with a second task), some indexed, some not yet; a foreign project
    whose articles match every query and must never show up."""
    articles = []
    for i in range(N):
        topic, other = TOPICS[i % 4], TOPICS[(i // 4) % 4]
        text = f"Analysts discussed {topic} and {other} on day {i}. Officials in Lyon expect changes."
        if i == 37:
            text += " A zeppelin was seen."
        article = factories.ArticleFactory(project=project, title=f"Report {i} on {topic}", text=text)
        articles.append(article)
        fields = {
            "priority": i % 3,
            "is_gold": i % 5 == 0,
            "required_skill": "medicine" if i % 4 == 0 else "",
            "is_complete": i % 3 == 0,
            "submitted_count": 1 if i % 3 == 0 else 0,
            "uncertainty": None if i % 6 == 0 else (i * 7 % 11) / 10,
            "agreement": None if i % 5 == 1 else (i * 3 % 7) / 10,
        }
        factories.TaskFactory(article=article, segment_index=0, **fields)
        if i % 7 == 0:
            factories.TaskFactory(article=article, segment_index=1, **{**fields, "priority": 5})
    other = factories.ProjectFactory()
    for _ in range(3):
        factories.TaskFactory(
            article__project=other, article__title="vaccines zeppelin", article__text="football and chips markets"
        )
    if settings.IS_POSTGRES:
        search.index_pending()
        # Not indexed yet: every sixth article (changed since, or imported a moment ago).
        search.reset_documents(project.pk, [a.external_id for a in articles[::6]])
    return articles


def reference_ids(project, query: str, params: dict) -> list[int]:
    """The list without search (same filters and order), kept to tasks whose article matches."""
    listed = list(manager.task_ids_for_manager(project=project, params=params))
    if settings.IS_POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM documents_article WHERE project_id = %s AND to_tsvector('english', "
                "title || ' ' || text) @@ websearch_to_tsquery('english', %s)",
                [project.pk, query],
            )
            matching = {row[0] for row in cursor.fetchall()}
    else:
        needle = query.lower()
        matching = {a.pk for a in project.articles.all() if needle in a.title.lower() or needle in a.text.lower()}
    article_of = dict(Task.objects.filter(pk__in=listed).values_list("pk", "article_id"))
    return [pk for pk in listed if article_of[pk] in matching]


def listed_ids(client, project, query: str, params: dict, page_size: int = 200) -> tuple[list[int], dict]:
    found, page, body = [], 1, {}
    while True:
        response = client.get(
            f"/api/v1/projects/{project.pk}/tasks/", {**params, "search": query, "page_size": page_size, "page": page}
        )
        assert response.status_code == 200, response.content
        body = response.json()
        found += [row["id"] for row in body["results"]]
        if not body["next"]:
            return found, body
        page += 1


PG_QUERIES = [
    "vaccines",  # a quarter of the articles
    "zeppelin",  # one article
    '"football and chips"',  # a phrase
    "-vaccines",  # negation alone
    "vaccines or zeppelin",
    "markets -football",
    "lyon",  # every article
    "quetzalcoatl",  # none
]
SQLITE_QUERIES = ["vaccines", "zeppelin", "Lyon", "quetzalcoatl"]
PARAMS = [
    {},
    {"status": "completed"},
    {"is_gold": "true"},
    {"ordering": "-priority"},
    {"ordering": "uncertainty"},
    {"ordering": "-agreement"},  # no index: a sort
    {"required_skill": "medicine", "ordering": "-uncertainty"},
]


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "plain")
def test_search_matches_the_reference_in_every_shape(project, corpus, mgr, monkeypatch, params):
    queries = PG_QUERIES if settings.IS_POSTGRES else SQLITE_QUERIES
    # "rare-array": the rare shape past RARE_IDS matching articles (the ids stay in the database).
    shapes = [None, search.COMMON, search.RARE, "rare-array"] if settings.IS_POSTGRES else [None]
    # A small probe, so the automatic choice goes both ways on 60 articles.
    monkeypatch.setattr(search, "PROBE_ROWS", 20)
    monkeypatch.setattr(search, "PROBE_MATCHES", 5)
    choose, chosen = search.search_shape, set()

    def recorded(*args, **kwargs):
        shape = choose(*args, **kwargs)
        chosen.add(shape)
        return shape

    for shape in shapes:
        monkeypatch.setattr(search, "RARE_IDS", 1 if shape == "rare-array" else 10_000)
        if shape is not None:
            forced = search.RARE if shape == "rare-array" else shape
            monkeypatch.setattr(search, "search_shape", lambda *args, _shape=forced, **kwargs: _shape)
        else:
            monkeypatch.setattr(search, "search_shape", recorded)
        for query in queries:
            expected = reference_ids(project, query, params)
            assert bool(expected) == (query != "quetzalcoatl") or params, query  # the cases find something
            found, body = listed_ids(mgr, project, query, params)
            assert found == expected, (shape, query, params)
            assert (body["count"], body["count_is_estimate"]) == (len(expected), False)
    if settings.IS_POSTGRES and not params:
        assert chosen == {search.COMMON, search.RARE}  # the automatic choice went both ways


@pytest.mark.parametrize("shape", [None, "common", "rare", "rare-array"])
def test_small_and_deep_pages_match_the_reference(project, corpus, mgr, monkeypatch, shape):
    if shape and not settings.IS_POSTGRES:
        pytest.skip("plan shapes are PostgreSQL only")
    if shape:
        monkeypatch.setattr(search, "RARE_IDS", 1 if shape == "rare-array" else 10_000)
        forced = search.RARE if shape == "rare-array" else shape
        monkeypatch.setattr(search, "search_shape", lambda *args, **kwargs: forced)
    monkeypatch.setattr(CappedCountPaginator, "DEFERRED_FROM", 6)  # the first pages loaded directly, then on ids
    for params in ({}, {"ordering": "-priority"}, {"ordering": "agreement"}):
        for query in ("vaccines", "Lyon") if not settings.IS_POSTGRES else ("vaccines", "-vaccines", "lyon"):
            found, _ = listed_ids(mgr, project, query, params, page_size=4)
            assert found == reference_ids(project, query, params), (query, params)


@postgres_only
def test_not_indexed_articles_are_found_in_both_shapes(project, corpus, mgr, monkeypatch):
    pending = set(search.pending_ids(project.pk))
    assert pending and len(pending) < N
    for shape, rare_ids in ((search.COMMON, 10_000), (search.RARE, 10_000), (search.RARE, 1)):
        monkeypatch.setattr(search, "RARE_IDS", rare_ids)
        monkeypatch.setattr(search, "search_shape", lambda *args, _shape=shape, **kwargs: _shape)
        found, _ = listed_ids(mgr, project, "vaccines", {})
        externals = set(Task.objects.filter(pk__in=found).values_list("article__external_id", flat=True))
        assert externals & pending, shape  # some of the matches have no stored document yet
        assert found == reference_ids(project, "vaccines", {})


@postgres_only
def test_probe_decides_on_the_list_as_shown(project, corpus, monkeypatch):
    monkeypatch.setattr(search, "PROBE_ROWS", 20)
    monkeypatch.setattr(search, "PROBE_MATCHES", 5)
    tasks = Task.objects.filter(project=project).order_by("id")
    assert search.probe_is_common(tasks, "vaccines")  # 1 in 4
    assert search.probe_is_common(tasks, "-vaccines")
    assert not search.probe_is_common(tasks, "zeppelin")  # 1 in 60
    assert not search.probe_is_common(tasks, '"vaccines and vaccines"')  # 1 in 16 within 20 rows: 1 or 2
    # A list shorter than the probe is walked whatever the word: the walk cannot cost more.
    assert search.probe_is_common(tasks.filter(is_gold=True, priority=0), "zeppelin")
    # Articles without a stored document are tested on the fly by the probe too.
    search.reset_documents(project.pk, list(project.articles.values_list("external_id", flat=True)))
    assert search.probe_is_common(tasks, "vaccines")
    assert not search.probe_is_common(tasks, "zeppelin")


@postgres_only
def test_planner_estimate_skips_the_probe_for_rare_words(project, corpus, monkeypatch):
    search.index_pending()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE documents_article")  # statistics of the stored documents
    tasks = Task.objects.filter(project=project).order_by("id")
    # 63 articles: the planner never expects fewer than one row, so the threshold is 5 % here.
    monkeypatch.setattr(search, "PROBE_ROWS", 100)
    monkeypatch.setattr(search, "PROBE_MATCHES", 5)
    assert search.expected_share("quetzalcoatl") < 0.05 < search.expected_share("vaccines")
    probed = []
    monkeypatch.setattr(search, "probe_is_common", lambda tasks, query: probed.append(query) or True)
    assert search.search_shape("quetzalcoatl", project_id=project.pk, tasks=tasks) == search.RARE
    assert probed == []
    assert search.search_shape("vaccines", project_id=project.pk, tasks=tasks) == search.COMMON
    assert probed == ["vaccines"]
    # Many articles waiting for their document: the rare shape would compute them all, so probe.
    monkeypatch.setattr(search, "PROBE_ROWS", 5)
    monkeypatch.setattr(search, "PROBE_MATCHES", 1)  # keeps the 1/5 = 20 % threshold above the estimate
    search.reset_documents(project.pk, list(project.articles.values_list("external_id", flat=True))[:5])
    assert search.search_shape("quetzalcoatl", project_id=project.pk, tasks=tasks) == search.COMMON
    assert probed == ["vaccines", "quetzalcoatl"]


@postgres_only
def test_rare_shape_stays_in_the_project(project, corpus, monkeypatch):
    tasks = Task.objects.filter(project=project)
    q = search.task_search_q("zeppelin", project_id=project.pk, shape=search.RARE)
    assert list(tasks.filter(q).values_list("article__external_id", flat=True)) == [corpus[37].external_id]
    assert q.children == [("article_id__in", [corpus[37].pk])]  # collected once, passed on as ids
    # Without a project the ids span every project; the task filter still keeps to this one.
    q = search.task_search_q("zeppelin", shape=search.RARE)
    assert len(q.children[0][1]) == 4 and tasks.filter(q).count() == 1
    monkeypatch.setattr(search, "RARE_IDS", 1)  # past it, the ids stay in the database
    q = search.task_search_q("zeppelin", shape=search.RARE)
    assert "ARRAY(SELECT id" in str(tasks.filter(q).query) and tasks.filter(q).count() == 1


@postgres_only
def test_word_found_nowhere_costs_no_list_query(project, corpus, mgr, monkeypatch):
    monkeypatch.setattr(search, "PROBE_ROWS", 20)  # the list is longer than the probe: a rare word
    monkeypatch.setattr(search, "PROBE_MATCHES", 5)
    url = f"/api/v1/projects/{project.pk}/tasks/"
    with CaptureQueriesContext(connection) as captured:
        body = mgr.get(url, {"search": "quetzalcoatl"}).json()
    assert (body["count"], body["results"], body["count_is_estimate"]) == (0, [], False)
    listed = [q for q in captured.captured_queries if "assignment_task" in q["sql"] and "LIMIT 20" not in q["sql"]]
    assert not listed  # the search's own statements and the probe, no count or page


@postgres_only
@pytest.mark.parametrize("shape", ["common", "rare", "rare-array"])
def test_bulk_filter_with_search_touches_the_matching_tasks(project, corpus, mgr, monkeypatch, shape):
    monkeypatch.setattr(search, "RARE_IDS", 1 if shape == "rare-array" else 10_000)
    forced = search.RARE if shape == "rare-array" else shape
    monkeypatch.setattr(search, "search_shape", lambda *args, **kwargs: forced)
    expected = reference_ids(project, "zeppelin or football", {})
    body = {"action": "set_priority", "priority": 9, "filter": {"search": "zeppelin or football"}}
    response = mgr.post(f"/api/v1/projects/{project.pk}/tasks/bulk/", body, format="json")
    assert response.json()["matched"] == len(expected)
    assert sorted(Task.objects.filter(priority=9).values_list("pk", flat=True)) == sorted(expected)


@pytest.mark.parametrize("query", ["vaccines", "zeppelin"])
def test_search_makes_no_per_row_queries(project, corpus, mgr, query):
    url = f"/api/v1/projects/{project.pk}/tasks/"
    with CaptureQueriesContext(connection) as few:
        assert mgr.get(url, {"search": query, "page_size": 2}).status_code == 200
    with CaptureQueriesContext(connection) as many:
        assert mgr.get(url, {"search": query, "page_size": 200}).status_code == 200
    assert len(many) == len(few)


def test_search_page_shows_the_same_tasks(project, corpus, client, manager):
    client.force_login(manager)
    response = client.get(f"/projects/{project.pk}/tasks/", {"search": "zeppelin"})
    assert response.status_code == 200
    assert [row[0].pk for row in response.context["rows"]] == reference_ids(project, "zeppelin", {})
