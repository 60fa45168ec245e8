"""A report as a table of cells, and that table as CSV or XLSX (openpyxl)."""

from __future__ import annotations

import csv
import io

from hub.reports.figures import Dimension, Report, columns

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def table(report: Report) -> list[list[object]]:
    """Header row, one row per (period, dimension value), then the total row."""
    cols = columns(report.repeat_days)
    by = report.request.by
    header: list[object] = ["Period", by.value.capitalize() if by is not Dimension.TOTAL else ""]
    header += [name for name, _ in cols]
    cells: list[list[object]] = [header]
    for row in report.rows:
        cells.append(
            [report.period_label(row.period), row.label] + [read(row.totals) for _, read in cols]  # type: ignore[operator]
        )
    cells.append(["Total", ""] + [read(report.total) for _, read in cols])  # type: ignore[operator]
    return cells


def notes(report: Report) -> list[str]:
    """What the figures were computed with: zone, range and each queue's rules."""
    req = report.request
    lines = [
        f"{req.start} to {req.end} ({req.timezone}), by {req.period.value} and {req.by.value}",
    ]
    for name, rule, target, short in report.rules:
        lines.append(
            f"{name}: service level {target} s, counted = {rule}, short abandon ≤ {short} s"
        )
    return lines


def to_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in table(report):
        writer.writerow(["" if cell is None else cell for cell in row])
    writer.writerow([])
    for line in notes(report):
        writer.writerow([line])
    return out.getvalue().encode("utf-8-sig")  # the BOM lets spreadsheet apps read UTF-8


def to_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "Report"
    for row in table(report):
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "C2"
    info = book.create_sheet("Definitions used")
    for line in notes(report):
        info.append([line])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
