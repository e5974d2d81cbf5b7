"""A relu that raises on every call: conform reports the error, it does not crash."""


def relu(x):
    raise RuntimeError("kernel launch failed")
