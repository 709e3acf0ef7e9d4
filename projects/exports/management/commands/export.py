"""``manage.py export <project_id> --format jsonl --out file.jsonl [--filter key=value ...]``.

Runs the same streamed export as ``GET /api/v1/projects/{id}/export/`` in-process (no server
needed), or builds a snapshot with ``--snapshot``. ``--out -`` writes to standard output.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from projects.core.exceptions import DomainError
from projects.core.models import Project
from projects.exports import services
from projects.exports.filters import parse_after, parse_options
from projects.exports.formats import FORMAT_NAMES


class Command(BaseCommand):
    help = "Export a project's labeled data to a file (any API export format and filter)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project_id", type=int)
        parser.add_argument("--format", default="jsonl", choices=FORMAT_NAMES)
        parser.add_argument("--mode", default="consolidated", choices=("consolidated", "raw"))
        parser.add_argument("--out", default="-", help="file path, or - for standard output")
        parser.add_argument("--gzip", action="store_true", help="gzip the output")
        parser.add_argument("--after", default=None, help="resume after this task id")
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="status, annotator, skill, since, until, gold, min_agreement, ties, consensus",
        )
        parser.add_argument("--snapshot", action="store_true", help="build a snapshot and print its id and sha256")

    def handle(self, *args, **opts) -> None:
        project = Project.objects.filter(pk=opts["project_id"]).first()
        if project is None:
            raise CommandError(f"No project {opts['project_id']}.")
        params: dict[str, object] = {"format": opts["format"], "mode": opts["mode"]}
        for item in opts["filter"]:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--filter takes KEY=VALUE, got {item!r}.")
            params[key.strip()] = value
        try:
            options = parse_options(params, formats=FORMAT_NAMES)
            after = parse_after(opts["after"])
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if opts["snapshot"]:
            job, _ = services.export_snapshot_start(project=project, actor=None, options=options)
            job = services.export_build(job_id=job.pk) or job
            job.refresh_from_db()
            self.stdout.write(f"export {job.pk} {job.status} rows={job.row_count} sha256={job.sha256} file={job.file}")
            return
        stream = services.export_stream(project=project, options=options, after=after, gzip=opts["gzip"])
        out = sys.stdout.buffer if opts["out"] == "-" else open(opts["out"], "wb")  # noqa: SIM115
        try:
            written = 0
            for block in stream:
                out.write(block)
                written += len(block)
        finally:
            if out is not sys.stdout.buffer:
                out.close()
        if opts["out"] != "-":
            self.stderr.write(f"wrote {written} bytes to {opts['out']}")
