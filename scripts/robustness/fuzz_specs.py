"""Random text specs (the test's pieces) on ordinary and huge input shapes: a network or one NetSpecError."""
import random, sys, time, os, signal
sys.path.insert(0, os.getcwd())
from cnnbase import netspec
from cnnbase.netspec import NetSpecError
sys.path.insert(0, "tests")
from test_hostile_models import SPEC_PIECES
shapes = [(1, 8, 8), (3, 5, 7), (2, 9), (10,), (1, 2**40, 3), (1, 2**40), (2**40,), (1, 10**12, 2)]
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
tried = clean = 0; bad = []
def alarm(*_): raise TimeoutError
signal.signal(signal.SIGALRM, alarm)
end = time.time() + (float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
while time.time() < end:
    spec = "".join(rng.choice(SPEC_PIECES) for _ in range(rng.randint(1, 10))); shape = rng.choice(shapes)
    tried += 1
    signal.alarm(2)
    try:
        network = netspec.load_network(spec); summary = netspec.summarize(network.layers, shape)
        netspec.render_table(summary); assert netspec.parse_spec(netspec.to_spec(network.layers)) == list(network.layers)
        clean += 1
    except NetSpecError as e:
        clean += ("\n" not in str(e) and len(str(e)) < 600) or bad.append((spec, shape, "long message")) or 0
    except BaseException as e:
        bad.append((spec, shape, f"{type(e).__name__}: {str(e)[:100]}"))
    finally:
        signal.alarm(0)
print(f"tried {tried} clean {clean} bad {len(bad)}"); [print(b) for b in bad[:10]]
