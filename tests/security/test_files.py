"""Files: user uploads are never served back raw, downloads are attachments with nosniff, and
no model file that we did not train ever reaches a pickle loader."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from tests.api.test_permissions import build_world

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["evil.html", "evil.svg", "imports/1/evil.html", "prelabel/x.joblib"])
def test_media_files_are_not_served_by_the_app(client, name):
    default_storage.save(name, __import__("io").BytesIO(b"<svg onload=alert(1)><script>alert(1)</script></svg>"))
    try:
        assert client.get(f"/media/{name}").status_code == 404
    finally:
        default_storage.delete(name)


def test_export_download_is_an_attachment_with_nosniff():
    world = build_world()
    client = APIClient()
    client.force_authenticate(world.users["admin"])
    for fmt in ("jsonl", "csv", "json"):
        response = client.get(f"/api/v1/projects/{world.project.pk}/export/", {"format": fmt})
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment;")
        assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._-]+"', response["Content-Disposition"])
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "html" not in response["Content-Type"] and "svg" not in response["Content-Type"]


def test_only_the_checked_loader_unpickles():
    """pickle/joblib/torch loads appear only in the sklearn loader, behind its path+checksum guard."""
    loaders = re.compile(r"\b(pickle\.loads?|joblib\.load|torch\.load|dill\.loads?|cloudpickle\.loads?|np\.load)\(")
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in ROOT.joinpath("projects").rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if loaders.search(line)
    ]
    assert [h.split(":")[0] for h in hits] in ([], ["projects/prelabel/labelers/sklearn_model.py"]), hits


def test_swapped_or_foreign_model_files_are_refused(settings, tmp_path):
    sklearn_model = pytest.importorskip("projects.prelabel.labelers.sklearn_model")
    settings.MEDIA_ROOT = tmp_path
    root = sklearn_model.models_root()
    root.mkdir(parents=True, exist_ok=True)
    evil = root / "evil.joblib"
    evil.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle that would run a command
    relative = str(evil.relative_to(tmp_path))
    wrong_sum = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(sklearn_model.ModelIntegrityError):
        sklearn_model.load_artefact(relative, wrong_sum)  # checksum mismatch: never loaded
    for path in ("../../etc/passwd", "prelabel/../../outside.joblib", "prelabel/model.pkl"):
        with pytest.raises(sklearn_model.ModelIntegrityError):
            sklearn_model.load_artefact(path, wrong_sum)
