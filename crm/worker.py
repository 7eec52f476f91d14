"""Run the background job worker: python -m crm.worker (outbound mail, SLA checks, notifications)."""
import logging

from huey.consumer import Consumer

from crm import create_app
from crm.jobs import huey


def main():
    """Start the Huey consumer with the app's tasks loaded."""
    create_app()  # imports every area, so every task is registered, and binds the app
    logging.getLogger("huey").setLevel(logging.INFO)
    Consumer(huey, workers=2, worker_type="thread", periodic=True, check_worker_health=True).run()


if __name__ == "__main__":
    main()
