"""Job functions the rq tests enqueue (a worker imports them by name)."""


def add(a, b):
    return a + b


def fail():
    raise ValueError("this job fails")
