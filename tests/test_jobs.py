"""Background jobs: several jobs queued after one commit reach Redis together, in one round trip."""
import pytest
import redis

from crm import jobs
from crm.jobs import RedisQueue, queued_together


@pytest.fixture
def redis_queue(redis_url, monkeypatch):
    """A queue of its own on the test Redis, standing in for the product's."""
    queue = RedisQueue("crm-test-gathered", url=redis_url)
    queue.flush()
    monkeypatch.setattr(jobs, "huey", queue)
    yield queue
    queue.flush()


class CountingConnection(redis.Connection):
    """A Redis connection that counts the commands it sends and the round trips they take."""
    round_trips = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.round_trips += 1
        super().send_packed_command(command, check_health)


def test_jobs_queued_together_wait_for_the_end_of_the_block_then_go_in_one_round_trip(redis_url, monkeypatch):
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    queue = RedisQueue("crm-test-gathered", connection_pool=pool)
    queue.flush()
    monkeypatch.setattr(jobs, "huey", queue)
    deliver = queue.task()(lambda n: n)
    try:
        CountingConnection.round_trips = 0
        with queued_together():
            for n in range(50):
                deliver(n)
            assert queue.pending_count() == 0  # nothing has left yet
            trips_inside = CountingConnection.round_trips
        assert CountingConnection.round_trips - trips_inside == 1
        assert [task.args for task in queue.pending()] == [(n,) for n in range(50)]  # in the order queued
    finally:
        queue.flush()


def test_a_job_queued_outside_the_block_goes_at_once(redis_queue):
    deliver = redis_queue.task()(lambda n: n)
    deliver(1)
    assert redis_queue.pending_count() == 1


def test_a_refused_hand_over_raises_at_the_end_of_the_block(monkeypatch):
    queue = RedisQueue("crm-test-gathered", url="redis://127.0.0.1:1/0")  # nothing listens there
    monkeypatch.setattr(jobs, "huey", queue)
    deliver = queue.task()(lambda n: n)
    with pytest.raises(redis.RedisError):
        with queued_together():
            deliver(1)  # gathered: nothing has been tried yet


def test_jobs_queued_before_a_failure_in_the_block_still_go(redis_queue):
    deliver = redis_queue.task()(lambda n: n)
    with pytest.raises(ZeroDivisionError):
        with queued_together():
            deliver(1)
            1 / 0
    assert [task.args for task in redis_queue.pending()] == [(1,)]


def test_without_redis_each_job_is_queued_as_it_comes(tmp_path, monkeypatch):
    queue = jobs.SqliteHuey("crm-test-file", filename=str(tmp_path / "jobs.sqlite3"))
    monkeypatch.setattr(jobs, "huey", queue)
    deliver = queue.task()(lambda n: n)
    with queued_together():
        deliver(1)
        assert queue.pending_count() == 1
