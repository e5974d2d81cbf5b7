"""Hostile arguments at Model.fit / evaluate / predict (refcnn): each call must return or raise TypeError/ValueError
with a one-line message; prints the calls that do not and the counts. Run from the repository root."""
import sys, os, numpy as np
sys.path.insert(0, os.getcwd())
import cnn
from cnn.train import NonFiniteLossError
m = cnn.Model("conv4k3, relu, flatten, dense3", (1, 6, 6), engine="refcnn", seed=0)
x = np.random.default_rng(0).random((8, 1, 6, 6)).astype(np.float32); y = np.arange(8) % 3
bad = {"x": [None, [1], x[:0], x.astype(np.int32), x[:, :, :3], np.full_like(x, np.nan), x[..., ::-1], x.astype(np.float16)],
       "y": [None, y[:0], y + 5, -y - 1, y.astype(float), y[:4], y.reshape(2, 4), np.array([2**64 - 1] * 8, np.uint64)],
       "epochs": [0, -1, 1.5, 10**30, "a", None], "batch_size": [0, -1, 10**30, 1.5, None, True],
       "lr": [float("nan"), -1.0, float("inf"), "x", 10**400], "optimizer": ["nope", 5, {"name": "sgd", "momentum": 2}],
       "validation_split": [1.0, -0.1, float("nan"), 0.99], "schedule": ["nope", {"name": "step", "gamma": float("inf")}, 5],
       "metrics": [("nope",), 5], "early_stopping": [-1, "x", 0], "seed": [-1, 1.5, "a"], "verbose": [5, -1, "x"]}
counts = {}
for fn in ("fit", "evaluate", "predict"):
    for key, values in bad.items():
        if fn != "fit" and key not in ("x", "y", "batch_size"):
            continue
        if fn == "predict" and key == "y":
            continue
        for v in values:
            kw = {"x": x, "y": y, key: v} if key in ("x", "y") else {"x": x, "y": y, key: v}
            args = [kw.pop("x")] + ([kw.pop("y")] if fn != "predict" else [])
            if fn == "predict": kw.pop("y", None)
            if fn == "fit": kw.setdefault("verbose", 0) if key != "verbose" else None; kw.setdefault("epochs", 1)
            try:
                getattr(m, fn)(*args, **kw); r = "ok"
            except NonFiniteLossError:  # documented: NaN images stop training (specs/training.md)
                r = "clean"
            except (TypeError, ValueError) as e:
                r = "clean"
                if "\n" in str(e): r = "BAD multiline"
            except Exception as e:
                r = f"BAD {type(e).__name__}: {str(e)[:120]}"
            counts[r[:3]] = counts.get(r[:3], 0) + 1
            if r.startswith("BAD"): print(fn, key, repr(v)[:40], r)
print(counts)
