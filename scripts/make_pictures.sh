#!/bin/sh
# The README's pictures (docs/filters.png, activations.png, gradcam.png, gradcam-class9.png, sobel.png), drawn by
# `cnn show`.
#
#   scripts/make_pictures.sh [MODEL.npz]
#
# With MODEL.npz (for example the shipped pretrained model), the pictures are drawn from it. Without, a model is
# trained first: keras-mnist, 2 epochs on the first 20,000 images of the full Fashion-MNIST (DATA=fashion-mnist-small
# LIMIT=10000 where the full set is not installed), seed 0, one thread, into runs/pictures (about 20 CPU-minutes on a
# loaded 2-core machine). The input of the feature maps and the Grad-CAM is test image 7 of the shipped sample
# (an ankle boot), the same image the Sobel picture uses.
# PYTHON (default .venv/bin/python when present, else python3) runs the checkout's cli.py.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
CNN="$PYTHON cli.py"
MODEL=${1:-}
if [ -z "$MODEL" ]; then
    $CNN train --data "${DATA:-fashion-mnist}" --limit "${LIMIT:-20000}" --epochs 2 --threads 1 \
        --model keras-mnist --seed 0 --out runs/pictures --overwrite
    MODEL=runs/pictures/model.npz
fi
$CNN show filters "$MODEL" --out docs/filters.png
$CNN show activations "$MODEL" --data fashion-mnist-small --index 7 --out docs/activations.png
$CNN show gradcam "$MODEL" --data fashion-mnist-small --index 7 --out docs/gradcam.png
$CNN show gradcam "$MODEL" --data fashion-mnist-small --index 7 --class 9 --out docs/gradcam-class9.png
$CNN show sobel --out docs/sobel.png
