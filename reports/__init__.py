"""Reports: pure functions from the tidy results DataFrame to each paper table (md, html, tex, csv)."""

from reports.tables import FORMATS, summarize, write_report  # noqa: F401
