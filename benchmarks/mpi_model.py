"""The scaling model of docs/mpi.md: step time of K machines, compute against the gradient exchange.

    T(K) = B * F / (K * G)  +  (K - 1) * 4P / bw  +  K * 4P / m

B the global batch, F the training FLOPs per image (3x the forward's: the backward costs about twice the
forward, Kaplan et al. 2020, "Scaling laws for neural language models", sec. 2.1), G one machine's sustained
training FLOP/s, P the trainable parameters (float32), bw the network bandwidth in bytes/s (every rank
receives the K-1 other rows of the all-gather), m the memory bandwidth of the in-order sum. Prints, per
network and bandwidth, the K of the shortest step, the speed-up there, the first K under 50 % efficiency,
and the speed-ups at 2, 4 and 8 machines.

    python benchmarks/mpi_model.py [--gflops 100]
"""

import argparse

# Parameters and forward MACs per image from `cnn shape NAME` (2 FLOPs per MAC).
MODELS = {
    "keras-mnist, B=128": (1_199_882, 2 * 11_992_448, 128),
    "resnet20 (CIFAR), B=128": (272_474, 81_626_368, 128),
    "resnet50 (ImageNet), B=256": (25_557_032, 8_178_368_512, 256),
}
NETWORKS = {"1 GbE": 125e6, "10 GbE": 1.25e9, "100 Gb/s": 12.5e9}


def step_seconds(k, batch, flops, gflops, params, bandwidth, memory=10e9):
    return batch * 3 * flops / (k * gflops * 1e9) + (k - 1) * 4 * params / bandwidth + k * 4 * params / memory


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gflops", type=float, default=100.0, help="one machine's sustained training GFLOP/s")
    args = parser.parse_args()
    print("| network | model | compute/step, 1 machine | exchange per extra machine | best K | speed-up there "
          "| efficiency < 50 % from K | S(2) | S(4) | S(8) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for net, bandwidth in NETWORKS.items():
        for name, (params, flops, batch) in MODELS.items():
            def t(k):
                return step_seconds(k, batch, flops, args.gflops, params, bandwidth)
            ks = range(1, 129)
            best = min(ks, key=t)
            half = next(k for k in ks if t(1) / t(k) / k < 0.5)
            print(f"| {net} | {name} | {1e3 * t(1):,.0f} ms | {1e3 * 4 * params / bandwidth:,.1f} ms | {best} | "
                  f"{t(1) / t(best):.1f}x | {half} | {t(1) / t(2):.2f} | {t(1) / t(4):.2f} | {t(1) / t(8):.2f} |")


if __name__ == "__main__":
    main()
