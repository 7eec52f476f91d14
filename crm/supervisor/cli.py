"""Supervisor commands: flask --app wsgi crm rebuild-report-totals."""
import sys
from datetime import date

import click

from ..cli import crm, fail
from ..extensions import db


@crm.command("rebuild-report-totals")
@click.option("--from", "start", help="first day to rebuild (YYYY-MM-DD); default the first contact")
@click.option("--to", "end", help="last day to rebuild (YYYY-MM-DD); default the last contact")
def rebuild_report_totals(start, end):
    """Recompute the daily contact totals the reports read (after a bulk load of contacts)."""
    from .rollup import rebuild_totals

    try:
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
    except ValueError:
        fail("--from and --to take dates as YYYY-MM-DD")
    if first and last and first > last:
        fail("--from must be on or before --to")

    def progress(month, written):
        print(f"  {month:%Y-%m}: {written:,} cells", file=sys.stderr)

    written = rebuild_totals(first, last, progress)
    db.session.commit()
    click.echo(f"rebuilt {written} daily totals")
