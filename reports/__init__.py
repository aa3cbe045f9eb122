"""Reports: pure functions from the tidy results DataFrame to each paper table (md, html, tex, csv, png),
the verdicts on each paper's claims (reports.stats), and a paper's report of several tables."""

from reports.tables import (FORMATS, evaluate_claims, summarize, write_paper_report, write_report,  # noqa: F401
                            write_reports)
