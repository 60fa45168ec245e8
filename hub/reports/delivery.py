"""Saved reports e-mailed on a schedule through the mail relay, as an attachment.

Each ``ReportSchedule`` has one pending ``reports.email`` job at its ``next_run_at``. The job
builds the report for the day (or week) before, sends it through the e-mail channel's
relay sender (``channels.email.sender.SmtpSender.deliver``, HUB_EMAIL_RELAY_HOST), then
moves ``next_run_at`` on and enqueues the next run in one transaction. A run that finds the
schedule already sent for that time (a retried job) does nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlmodel import Session

from hub.jobs import ClaimedJob, PermanentJobError, enqueue
from hub.reports.export import XLSX_TYPE, to_csv, to_xlsx
from hub.reports.figures import build_report
from hub.reports.params import relative
from hub.reports.rollups import repeat_days
from models import ReportSchedule, utcnow

if TYPE_CHECKING:
    from hub.services import Services

EMAIL_JOB = "reports.email"
EVERY = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}


def schedule_job(db: Session, schedule: ReportSchedule) -> None:
    """Enqueue the schedule's next run (in the caller's transaction)."""
    enqueue(
        db,
        EMAIL_JOB,
        {"schedule_id": schedule.id, "due": schedule.next_run_at.isoformat()},
        schedule.next_run_at,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ReportMailer:
    def __init__(self, services: Services) -> None:
        self.services = services

    def register(self) -> None:
        self.services.jobs.register(EMAIL_JOB, self.run_job)

    async def run_job(self, job: ClaimedJob) -> None:
        settings = self.services.settings
        email = self.services.extras.get("email")
        sender = getattr(email, "sender", None)
        if sender is None:
            raise PermanentJobError("no mail relay: set HUB_EMAIL_RELAY_HOST to send reports")
        due = datetime.fromisoformat(job.payload["due"])

        def build(db: Session) -> tuple[ReportSchedule, bytes, str] | None:
            schedule = db.get(ReportSchedule, job.payload["schedule_id"])
            if schedule is None or _aware(schedule.next_run_at) != due:
                return None  # deleted, or this run was done already
            request = relative(schedule.params, schedule.every, timezone=settings.timezone, now=due)
            report = build_report(db, request, repeat_days(settings.reports_repeat_days))
            if schedule.file_format == "csv":
                return schedule, to_csv(report), "csv"
            return schedule, to_xlsx(report), "xlsx"

        async with self.services.sessionmaker() as adb:
            built = await adb.run_sync(build)
        if built is None:
            return
        schedule, content, ext = built
        message = EmailMessage()
        message_id = f"<report-{schedule.id}-{int(due.timestamp())}@{email.settings.hostname}>"
        message["Message-ID"] = message_id
        message["From"] = email.settings.from_address or f"reports@{email.settings.hostname}"
        message["To"] = schedule.email_to
        message["Subject"] = f"Report: {schedule.name} ({due.date()})"
        message.set_content(
            f"The saved report “{schedule.name}” is attached ({ext.upper()}).\n"
            "Its definitions are on the hub's /reports/definitions page.\n"
        )
        maintype, subtype = ("text", "csv") if ext == "csv" else XLSX_TYPE.split("/")
        filename = f"report-{schedule.id}-{due.date()}.{ext}"
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
        result = await sender.deliver(message, message_id)
        if result.status.value == "failed":
            raise RuntimeError(f"the relay did not take the report: {result.detail}")

        def advance(db: Session) -> None:
            row = db.get(ReportSchedule, schedule.id)
            if row is None or _aware(row.next_run_at) != due:
                return
            row.last_sent_at = utcnow()
            row.next_run_at = due + EVERY.get(row.every, EVERY["daily"])
            db.add(row)
            schedule_job(db, row)

        await self.services.transactions.run(advance)
