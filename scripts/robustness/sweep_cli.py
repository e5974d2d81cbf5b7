"""Throw nonsense at every option of every command (in-process, CliRunner); count tried/clean/bad."""
import os, sys, json, shutil, tempfile
from pathlib import Path
import numpy as np
from click.testing import CliRunner
sys.path.insert(0, os.getcwd())
from cnn.cli import cnn
sys.path.insert(0, "tests")
from test_commands import write_tiny_data, SPEC

root = Path(tempfile.mkdtemp())
tiny = write_tiny_data(root / "tiny.npz")
r = CliRunner().invoke(cnn, ["train", "--model", SPEC, "--data", str(tiny), "--epochs", "1", "--batch-size", "16", "--out", str(root / "run")])
assert r.exit_code == 0, r.output
model = root / "run" / "model.npz"
(root / "empty.txt").write_text("")
(root / "bad.json").write_bytes(b"\xff\xfe{")
(root / "deep.json").write_text("[" * 5000 + "]" * 5000)
(root / "empty_layers.json").write_text(json.dumps({"layers": []}))
(root / "bigint.json").write_text('{"layers": [{"type": "Dense", "units": ' + "9" * 5000 + '}]}')
np.savez(root / "zero_train.npz", x_train=np.zeros((0, 12, 12), np.uint8), y_train=np.zeros(0, np.int64),
         x_test=np.zeros((4, 12, 12), np.uint8), y_test=np.zeros(4, np.int64), class_names=np.array(["a", "b", "c"]))
unread = root / "unreadable.npz"; unread.write_bytes(b"x"); os.chmod(unread, 0)
folder = root / "afolder"; folder.mkdir()

NUMS = ["-1", "0", "1e999", "nan", "inf", "-inf", "", "99999999999999999999999", "1.5", "abc", "2**64"]
PATHS = ["", "/dev/null", "/dev/zero", str(folder), "/proc/self", str(unread), "/nonexistent", "\n\x1b[31m", str(root / "bad.json")]
cases = []
train_base = ["train", "--model", SPEC, "--data", str(tiny), "--epochs", "1", "--batch-size", "16"]
for opt in ["--limit", "--epochs", "--batch-size", "--lr", "--momentum", "--weight-decay", "--rho", "--alpha", "--eps",
            "--validation-split", "--early-stopping", "--seed", "--threads"]:
    for v in NUMS:
        if not (opt == "--epochs" and v.startswith("999")):
            cases.append(("train", train_base + [opt, v]))
for v in ["1.5,0.9", "nan,nan", "0.9", "", "inf,0.1", "-0.1,0.9", "a,b", "0.9,0.999,0.1"]:
    cases.append(("train", train_base + ["--optimizer", "adam", "--betas", v]))
for v in ["exp:inf", "exp:nan", "step:0", "step:-1:0.5", "cosine:0", "cosine:10:inf", "", ":", "step:1e400", "exp:-1", "none:1", "\x1b[2J"]:
    cases.append(("train", train_base + ["--schedule", v]))
for v in ["", "0x0", "1x12", "1x12x12x12", "-1x12x12", "99999999x99999999x99999999", "abc"]:
    cases.append(("train", train_base + ["--input", v]))
for v in ["", "flatten, dense1000000000", "conv1000000k3", "dense3", str(root / "bad.json"), str(root / "deep.json"),
          str(root / "empty_layers.json"), str(root / "bigint.json"), "\x1b[31m", str(folder) + ".json"]:
    cases.append(("train", ["train", "--data", str(tiny), "--epochs", "1", "--model", v]))
for v in PATHS + [str(root / "zero_train.npz"), str(root / "empty.txt")]:
    cases.append(("train", ["train", "--model", SPEC, "--epochs", "1", "--data", v]))
for v in ["", "/etc/hostname/run", "/proc/run", "/dev/null", str(root / "empty.txt"), str(root / "empty.txt") + "/x"]:
    cases.append(("train-out", ["train", "--model", SPEC, "--data", str(tiny), "--epochs", "1", "--out", v]))
cases.append(("train", train_base + ["--resume"]))
cases.append(("train", train_base + ["--resume", "--overwrite", "--out", str(root / "x")]))
cases.append(("train", train_base + ["--dtype", "float16"]))
cases.append(("train", train_base + ["--engine", "torch"]))
ev = ["evaluate", str(model), "--data", str(tiny)]
for opt in ["--limit", "--batch-size", "--threads"]:
    for v in NUMS:
        cases.append(("evaluate", ev + [opt, v]))
for v in PATHS:
    cases.append(("evaluate", ["evaluate", v, "--data", str(tiny)]))
    cases.append(("evaluate", ["evaluate", str(model), "--data", v]))
pr = ["predict", str(model), "--data", str(tiny)]
for opt in ["--limit", "--top-k", "--threads"]:
    for v in NUMS:
        cases.append(("predict", pr + [opt, v]))
for v in PATHS:
    cases.append(("predict", ["predict", str(model), v]))
    cases.append(("predict", ["predict", v, "--data", str(tiny)]))
    cases.append(("predict", ["predict", str(model), "--data", v]))
for v in ["", "0x0", "abc", "99999999x99999999x9999999"]:
    cases.append(("shape", ["shape", "keras-mnist", "--input", v]))
for opt in ["--batch-size", "--dtype-bytes"]:
    for v in NUMS:
        cases.append(("shape", ["shape", "keras-mnist", opt, v]))
for v in PATHS + ["", str(root / "deep.json"), str(root / "empty_layers.json"), str(root / "bigint.json"), "dense1000000000000"]:
    cases.append(("shape", ["shape", v]))
for opt in ["--tolerance", "--examples", "--seed"]:
    for v in NUMS:
        if not (opt == "--examples" and v == "1e999"):
            cases.append(("conform", ["conform", "refcnn", "--ops", "relu", opt, v]))
for v in ["", "nope", "relu,,", "\n"]:
    cases.append(("conform", ["conform", "refcnn", "--ops", v, "--examples", "0"]))
for v in PATHS + ["", "os", "sys:exit"]:
    cases.append(("conform", ["conform", v, "--ops", "relu", "--examples", "0"]))
for opt in ["--batches", "--batch-size", "--warmup", "--threads"]:
    for v in ["-1", "0", "nan", "", "abc", "99999999999999999999999"]:
        cases.append(("bench", ["bench", "train", "--data", "fashion-mnist-small", opt, v]))
for v in PATHS:
    cases.append(("bench", ["bench", "train", "--data", v]))
for opt in ["--repeats", "--threads"]:
    for v in ["-1", "0", "nan", "", "abc", "99999999999999999999999"]:
        cases.append(("bench", ["bench", "ops", opt, v]))
for v in ["", "nope", ",", "\n"]:
    cases.append(("bench", ["bench", "ops", "--ops", v]))
for v in ["-1", "0", "nan", ""]:
    cases.append(("bench", ["bench", "startup", "--runs", v]))

only = sys.argv[1:] 
stats = {}
for kind, args in cases:
    if only and kind.split("-")[0] not in only:
        continue
    out = root / "o" / f"case{len(stats.get(kind, [0,0,0]))}"
    cwd_out = kind == "train"
    if kind == "train":
        args = args + ["--out", str(root / "o" / "t")]
    before = set(os.listdir(os.getcwd()))
    print("CASE", repr(args[-3:]), flush=True) if os.environ.get("TRACE") else None
    res = CliRunner().invoke(cnn, args)
    s = stats.setdefault(kind, [0, 0, 0])
    s[0] += 1
    bad = res.exception is not None and not isinstance(res.exception, SystemExit)
    err = res.stderr.strip().splitlines()
    if res.exit_code == 2 and (len(err) != 1 and not any("Usage:" in l for l in err)):
        bad = True
    if "Traceback" in res.output:
        bad = True
    if kind == "train" and res.exit_code == 2 and (root / "o" / "t").exists():
        bad = True; print("WROTE", args)
    if set(os.listdir(os.getcwd())) != before:
        bad = True; print("CWD CHANGED", set(os.listdir(os.getcwd())) - before)
    shutil.rmtree(root / "o", ignore_errors=True)
    if bad:
        s[2] += 1
        print("BAD", res.exit_code, repr(args[-4:]), type(res.exception).__name__, res.exception, res.output[-300:])
    else:
        s[1] += 1
        if os.environ.get("SHOW"):
            print(res.exit_code, repr(args[-2:]), err[-1:] )
print(json.dumps(stats))
total = [sum(v[i] for v in stats.values()) for i in range(3)]
print("tried/clean/bad", total)
