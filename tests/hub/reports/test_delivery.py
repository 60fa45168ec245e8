"""A saved report goes out on schedule through the mail relay (a real aiosmtpd server) as
an XLSX attachment, and its next run is booked."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook
from sqlmodel import Session, select

from channels.email.runtime import EmailRuntime
from hub.reports.delivery import EMAIL_JOB, ReportMailer, schedule_job
from hub.reports.rollups import RollupJob
from hub.services import Services
from models import Job, ReportSchedule
from tests.channels.email.conftest import Sink, email_runtime, email_settings, sink  # noqa: F401
from tests.hub.reports.history import Spec, build

DUE = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)


async def test_a_saved_report_is_mailed_as_an_attachment_and_booked_again(
    services: Services,
    email_runtime: EmailRuntime,  # noqa: F811
    sink: Sink,  # noqa: F811
):
    day = DUE - timedelta(days=1)

    def setup(db: Session) -> int:
        build(
            db,
            [
                Spec(day + timedelta(hours=8), "answered", 5, 60, 10),
                Spec(day + timedelta(hours=9), "abandoned", 30, customer="c2"),
                Spec(DUE + timedelta(hours=1), "abandoned", 30, customer="c3"),  # not in range
            ],
        )
        schedule = ReportSchedule(
            name="Daily by queue",
            params={"period": "day", "by": "queue"},
            email_to="boss@example.com",
            every="daily",
            file_format="xlsx",
            next_run_at=DUE,
        )
        db.add(schedule)
        db.flush()
        schedule_job(db, schedule)
        return schedule.id  # type: ignore[return-value]

    schedule_id = await services.transactions.run(setup)
    await RollupJob(services).catch_up()
    ReportMailer(services).register()
    assert await services.jobs.run_due() == 1
    (message,) = await sink.wait_for(1)
    assert message["To"] == "boss@example.com"
    assert message["Subject"] == "Report: Daily by queue (2026-11-04)"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == f"report-{schedule_id}-2026-11-04.xlsx"
    rows = list(load_workbook(io.BytesIO(attachment.get_content())).active.values)
    header = rows[0]
    assert rows[1][:2] == ("2026-11-03 Tue", "General")
    assert rows[-1][header.index("Offered")] == 2  # the day before only
    assert rows[-1][header.index("Abandoned")] == 1

    # The job books the next run once the relay took the mail, then the runner marks it
    # done (two commits, in that order). Each SELECT here sees the latest commit, not one
    # snapshot: the jobs are read first, so a job seen done implies the schedule read after
    # it shows the booking (read the other way round, both commits could land in between).
    for _ in range(1200):
        async with services.sessionmaker() as db:
            jobs = (await db.exec(select(Job).where(Job.kind == EMAIL_JOB).order_by(Job.id))).all()
            schedule = await db.get(ReportSchedule, schedule_id)
        if len(jobs) == 2 and jobs[0].state == "done":
            break
        await asyncio.sleep(0.05)
    assert schedule is not None and schedule.last_sent_at is not None
    assert schedule.next_run_at.replace(tzinfo=UTC) == DUE + timedelta(days=1)
    assert [j.state for j in jobs] == ["done", "pending"]
