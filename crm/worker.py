"""Run the background job worker: python -m crm.worker (outbound mail, SLA checks, notifications)."""
import logging
import sys
import threading

from huey.consumer import Consumer

from config import SettingError
from crm import create_app, outbox
from crm.jobs import huey


def main():
    """Start the Huey consumer with the app's tasks loaded, and the outbox sweeper beside it."""
    try:
        app = create_app()  # imports every area, so every task is registered, and binds the app
    except SettingError as error:
        sys.exit(f"crm: {error}")
    logging.getLogger("huey").setLevel(logging.INFO)
    # A thread, not a Huey periodic task: it runs owed work every few seconds even while Redis is away.
    interval = app.config["OUTBOX_SWEEP_SECONDS"]
    threading.Thread(target=outbox.sweep_forever, args=(app, interval), name="outbox-sweep", daemon=True).start()
    Consumer(huey, workers=2, worker_type="thread", periodic=True, check_worker_health=True).run()


if __name__ == "__main__":
    main()
