from django.core.management.base import BaseCommand, CommandError

from mailbox import verify


class Command(BaseCommand):
    help = (
        "Hash every stored message and attachment file against its SHA-256. Reports each missing or corrupt "
        "file with the messages that need it; exit status 1 when something is damaged (after --repair: when "
        "something is still damaged). Pages say a damaged message's original is damaged instead of serving it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--repair",
            action="store_true",
            help="fetch damaged messages again from their POP3 servers (by UIDL, where the server still has "
            "them; nothing is deleted there) and cut damaged attachments again from their whole messages",
        )
        parser.add_argument("--batch", type=int, default=verify.BATCH, help="files per batch (default %(default)s)")
        parser.add_argument("--jobs", type=int, default=4, help="files read and hashed at once (default %(default)s)")
        parser.add_argument("--quiet", action="store_true", help="no progress lines (on stderr)")

    def handle(self, *args, repair, batch, jobs, quiet, **options):
        if batch < 1 or jobs < 1:
            raise CommandError("--batch and --jobs must be at least 1.")
        report = verify.verify(batch=batch, jobs=jobs, progress=None if quiet else self._progress)
        for item in report.damaged:
            self.stdout.write(f"{item.kind} {item.relpath}")
            for row in verify.affected(item):
                self.stdout.write(f"  {verify.describe(row)}")
        if repair and report.damaged:
            verify.repair(report.damaged)
            for item in report.damaged:
                if item.repaired:
                    source = "the POP3 server" if item.repaired == "server" else "its stored message"
                    self.stdout.write(f"repaired {item.relpath} from {source}")
                else:
                    self.stdout.write(f"not repaired {item.relpath}: {item.why}")
        left = [item for item in report.damaged if not item.repaired]
        self.stdout.write(
            f"checked {report.files} files, {report.bytes} bytes in {report.seconds:.1f} s: "
            f"{sum(i.kind == 'missing' for i in report.damaged)} missing, "
            f"{sum(i.kind == 'corrupt' for i in report.damaged)} corrupt"
            + (f", {len(report.damaged) - len(left)} repaired" if repair else "")
        )
        if left:
            raise SystemExit(1)

    _shown_at = None

    def _progress(self, report: verify.Report) -> None:
        if self._shown_at is not None and report.seconds - self._shown_at < 2:
            return  # a line every two seconds at most, however small the batches
        self._shown_at = report.seconds
        rate = report.files / report.seconds if report.seconds else 0.0
        self.stderr.write(
            f"checked {report.files} files, {report.bytes / 1e6:.1f} MB, {len(report.damaged)} damaged "
            f"({rate:.0f} files/s)",
            style_func=str,  # progress, not an error: no red
        )
