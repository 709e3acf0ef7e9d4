"""Upload handling for imports: the file streams straight to MEDIA_ROOT/imports/, never into memory,
and a body over ``IMPORT_MAX_UPLOAD_BYTES`` is not read at all."""

from __future__ import annotations

import hashlib
import os

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

from projects.imports.services import new_upload_path

# Multipart framing and the option fields around the file.
BODY_SLACK = 64 * 1024


class StoredUpload(UploadedFile):
    """An upload already written to its final place on disk."""

    def __init__(self, path: str, name: str, size: int) -> None:
        super().__init__(file=open(path, "rb"), name=name, content_type=None, size=size)  # noqa: SIM115
        self.stored_path = path

    def temporary_file_path(self) -> str:
        return self.stored_path


class ImportUploadHandler(FileUploadHandler):
    """Writes the ``file`` field to disk in chunks; other file fields are skipped."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.limit = settings.IMPORT_MAX_UPLOAD_BYTES
        self.too_large = False
        self.path: str | None = None
        self._fh = None
        self._size = 0
        # With an Idempotency-Key, the file's hash (computed as it streams) identifies the request.
        self.digest = hashlib.sha256() if request is not None and request.META.get("HTTP_IDEMPOTENCY_KEY") else None

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.limit + BODY_SLACK:
            self.too_large = True
            return QueryDict(mutable=True), MultiValueDict()  # do not read the body at all
        return None

    def new_file(self, field_name, file_name, *args, **kwargs) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != "file" or self.path is not None or self.too_large:
            raise SkipFile()
        self.path = str(new_upload_path(file_name or ""))
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in file_complete / discard

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self._size += len(raw_data)
        if self._size > self.limit:
            self.too_large = True
            self.discard()
            raise StopUpload(connection_reset=False)
        self._fh.write(raw_data)
        if self.digest is not None:
            self.digest.update(raw_data)
        return None

    def file_complete(self, file_size: int):
        self._fh.close()
        self._fh = None
        return StoredUpload(self.path, self.file_name or "upload", file_size)

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
