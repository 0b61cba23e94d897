"""A job queue library end to end: rq 3 (lists, sets, sorted-set
registries, hashes, pipelines with WATCH, streams for results, pub/sub for
worker control) with producers on several threads and a worker draining
the queue; every job runs once with the right result, and a failing job
lands in the failed registry."""

from concurrent.futures import ThreadPoolExecutor

import redis
from rq import Queue, SimpleWorker
from rq.job import Job

import jobs

PRODUCERS = 8
PER_PRODUCER = 25


def test_jobs_run_once_with_their_results(server):
    r = redis.Redis(host="127.0.0.1", port=server.port)
    r.flushall()
    q = Queue("orders", connection=r)

    def produce(p):
        conn = redis.Redis(host="127.0.0.1", port=server.port)
        pq = Queue("orders", connection=conn)
        return [pq.enqueue(jobs.add, p, i).id for i in range(PER_PRODUCER)]

    with ThreadPoolExecutor(PRODUCERS) as ex:
        ids = [i for batch in ex.map(produce, range(PRODUCERS)) for i in batch]
    bad = q.enqueue(jobs.fail)
    assert len(q) == PRODUCERS * PER_PRODUCER + 1

    SimpleWorker([q], connection=r).work(burst=True)

    assert len(q) == 0
    results = [Job.fetch(i, connection=r).return_value() for i in ids]
    assert results == [p + i for p in range(PRODUCERS) for i in range(PER_PRODUCER)]
    assert q.finished_job_registry.count == PRODUCERS * PER_PRODUCER
    assert Job.fetch(bad.id, connection=r).get_status() == "failed"
    assert q.failed_job_registry.count == 1
    assert bad.id in q.failed_job_registry.get_job_ids()
