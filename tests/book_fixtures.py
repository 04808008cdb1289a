"""What the order-book tests share: the verify-book report's counts as one printable JSON line."""

from __future__ import annotations

import json

from marketlake.verify_book import VerifyReport

REPORT_KEYS = ("frames", "updates_applied", "resyncs", "gaps", "checksum_checked", "checksum_failures", "bbo_checked",
               "bbo_mismatches", "crossed_books", "unsynced_books")  # fmt: skip


def counts(report: VerifyReport) -> str:
    """The report's counts (REPORT_KEYS), as the tests print them."""
    d = report.to_dict()
    return json.dumps({k: d[k] for k in REPORT_KEYS})
