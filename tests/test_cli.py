"""The crm command group: users, tokens and demo data, with clear errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import ApiToken, Case, Contact, Customer, Service, User

ROOT = Path(__file__).resolve().parent.parent


def test_create_user_and_token_then_use_it(runner, client):
    result = runner.invoke(args=["crm", "create-user", "Ops@Council.example", "--role", "supervisor",
                                 "--name", "Ops Person", "--password", "long-enough-pass"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "ops@council.example"))
    assert user.role == "supervisor"
    result = runner.invoke(args=["crm", "create-token", "ops@council.example"])
    assert result.exit_code == 0
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("crm_")
    assert db.session.scalar(select(ApiToken.token_hash)) != token  # stored hashed
    assert client.get("/api/v1/customers?q=a", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_cli_errors_are_clear_not_tracebacks(runner):
    bad_role = runner.invoke(args=["crm", "create-user", "a@b.example", "--role", "king", "--name", "A",
                                   "--password", "long-enough-pass"])
    assert bad_role.exit_code == 2 and "Traceback" not in bad_role.output
    short = runner.invoke(args=["crm", "create-user", "a@b.example", "--role", "agent", "--name", "A",
                                "--password", "short"])
    assert short.exit_code == 1 and "Password too short" in short.output
    missing = runner.invoke(args=["crm", "create-token", "nobody@b.example"])
    assert missing.exit_code == 1 and "No user" in missing.output
    runner.invoke(args=["crm", "create-user", "a@b.example", "--role", "agent", "--name", "A",
                        "--password", "long-enough-pass"])
    twice = runner.invoke(args=["crm", "create-user", "A@b.example", "--role", "agent", "--name", "A",
                                "--password", "long-enough-pass"])
    assert twice.exit_code == 1 and "already exists" in twice.output



def test_values_too_long_for_their_columns_are_refused_clearly_and_nothing_is_stored(runner):
    long_name = runner.invoke(args=["crm", "create-user", "a@b.example", "--role", "agent", "--name", "N" * 201,
                                    "--password", "long-enough-pass"])
    assert long_name.exit_code == 1 and "The name is too long" in long_name.output
    runner.invoke(args=["crm", "create-user", "a@b.example", "--role", "agent", "--name", "A",
                        "--password", "long-enough-pass"])
    long_label = runner.invoke(args=["crm", "create-token", "a@b.example", "--label", "L" * 101])
    assert long_label.exit_code == 1 and "The label is too long" in long_label.output
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0
    assert db.session.scalar(select(func.count()).where(User.email == "a@b.example")) == 1


def test_a_record_id_no_column_can_hold_is_refused_before_the_database_sees_it(runner):
    for command in (["restrict-customer"], ["erase-customer", "--reason", "test"], ["subject-access", "--out", "x.zip"]):
        result = runner.invoke(args=["crm", command[0], "99999999999999999999", *command[1:]])
        assert result.exit_code == 2 and "is not in the range 1<=x<=2147483647" in result.output, command


def test_a_value_the_database_refuses_ends_any_command_in_one_line(runner, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite keeps text of any length: there is nothing for it to refuse here")
    customer = Customer(name="Rita Resident")
    db.session.add(customer)
    db.session.commit()
    result = runner.invoke(args=["crm", "erase-customer", str(customer.id), "--reason", "request",
                                 "--reference", "R" * 600])
    assert result.exit_code == 1 and result.output.strip().endswith(
        "Error: the database refused a value: value too long for type character varying(100)")
    assert db.session.get(Customer, customer.id).name == "Rita Resident"  # nothing erased


def test_revoke_tokens(runner, client):
    runner.invoke(args=["crm", "create-user", "t@b.example", "--role", "agent", "--name", "T",
                        "--password", "long-enough-pass"])
    token = runner.invoke(args=["crm", "create-token", "t@b.example"]).stdout.strip().splitlines()[-1]
    result = runner.invoke(args=["crm", "revoke-tokens", "t@b.example"])
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"revoked": 1}
    assert client.get("/api/v1/customers", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_seed_demo_loads_cumbrian_services_and_history_once(runner):
    result = runner.invoke(args=["crm", "seed-demo", "--customers", "30"])
    assert result.exit_code == 0, result.output
    codes = set(db.session.scalars(select(Service.code)))
    assert {"highways", "waste", "adult_social_care", "libraries", "archives", "council_tax"} <= codes
    assert db.session.scalar(select(func.count(Customer.id))) == 30
    assert db.session.scalar(select(func.count(Contact.id))) >= 30
    # Resolved demo cases went through the lifecycle: worked first, then resolved, each an event.
    resolved = db.session.scalars(select(Case).where(Case.status == "resolved")).all()
    assert resolved
    for case in resolved:
        moves = [(e.from_value, e.to_value) for e in case.events if e.kind == "status_changed"]
        assert moves == [("new", "in_progress"), ("in_progress", "resolved")]
        assert case.resolved_at == max(e.occurred_at for e in case.events)
    again = runner.invoke(args=["crm", "seed-demo"])
    assert again.exit_code == 1 and "already has data" in again.output
    quiet = runner.invoke(args=["crm", "seed-demo", "--if-empty"])
    assert quiet.exit_code == 0


def test_a_bulk_command_collects_garbage_between_batches_only_and_gives_the_collector_back():
    import gc

    from crm.cli import collect_between_batches

    with collect_between_batches() as collect:
        assert not gc.isenabled() and gc.get_freeze_count() > 0  # start-up objects out of every pass
        cycle = []
        cycle.append(cycle)
        del cycle
        assert collect() >= 1  # the batch's cyclic garbage goes when the command says so
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_console_script_names_itself_once_and_lists_every_areas_commands(tmp_path):
    environment = dict(os.environ, CRM_NO_MONKEY_PATCH="1", DATABASE_URL=f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    script = "import sys; from crm.cli import main; sys.argv = ['crm', *sys.argv[1:]]; main()"
    listing = subprocess.run([sys.executable, "-c", script, "--help"], cwd=ROOT, env=environment,
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and listing.stdout.startswith("Usage: crm [OPTIONS] COMMAND")
    assert {"ingest-email", "sla-sweep", "subject-access", "create-user"} <= set(listing.stdout.split())
    one = subprocess.run([sys.executable, "-c", script, "create-user", "--help"], cwd=ROOT, env=environment,
                         capture_output=True, text=True, timeout=60)
    assert one.returncode == 0 and one.stdout.startswith("Usage: crm create-user [OPTIONS] EMAIL")
