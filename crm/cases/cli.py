"""Case commands: flask --app wsgi crm sla-sweep."""
import json

import click

from ..cli import crm


@crm.command("sla-sweep")
def sla_sweep_command():
    """Mark SLA breaches and at-risk cases now (the worker does this every five minutes)."""
    from .jobs import sweep_cases

    click.echo(json.dumps(sweep_cases()))
