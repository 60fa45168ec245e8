"""Reports: figures from the stored interaction events and presence changes.

- ``facts``: what one interaction's events add to each figure (pure);
- ``rollups``: those facts summed per 15-minute interval in UTC, kept up to date by a job;
- ``figures``: the report rows (periods in the organization's zone, by queue, channel,
  inbox or agent) and the definitions page's formulas;
- ``agents``: agent activity from presence changes;
- ``export`` and ``delivery``: CSV and XLSX files, and saved reports e-mailed on a schedule.
"""
