"""Losses: cross-entropy from logits, negative log-likelihood, mean squared error and the half squared error
(``specs/losses.md``).

Every loss has a ``reduction``: ``'none'`` returns one loss per sample (per element for the squared errors),
``'sum'`` their sum and ``'mean'`` their weighted mean, both as 0-d float64 arrays. The backward takes
``grad_out`` of the forward's output shape (a number or 0-d array for ``'mean'``/``'sum'``).

The losses are written in terms of the per-sample (or per-element) terms and one reduction step, so the
backward of each is "the derivative of one term, times that term's share of ``grad_out``".

The argument checks are the ground floor's (:mod:`cnnbase.losses`), so both engines raise the same errors.
"""

from __future__ import annotations


import numpy as np

from cnnbase.checks import as_float64
from cnnbase.losses import check_class_loss, check_loss_grad_out, check_pointwise_loss, ieee_divide

from .activations import log_softmax, log_softmax_backward

__all__ = [
    "cross_entropy", "cross_entropy_backward",
    "nll_loss", "nll_loss_backward",
    "mse_loss", "mse_loss_backward",
    "half_squared_error", "half_squared_error_backward",
]

# ----------------------------------------------------------------------------------------------------------
# Reductions


def _reduce(terms: np.ndarray, reduction: str, denominator: float) -> np.ndarray:
    """``'none'``: the terms; ``'sum'``: ``sum terms``; ``'mean'``: ``sum terms / denominator``."""
    if reduction == "none":
        return terms
    total = 0.0
    for i in np.ndindex(terms.shape):
        total += float(terms[i])
    if reduction == "mean":
        total = ieee_divide(total, denominator)
    return np.array(total, dtype=np.float64)


def _term_scale(grad_out, reduction: str, index, denominator: float) -> float:
    """d(output)/d(term at ``index``) times ``grad_out``: each term's share of the upstream gradient."""
    if reduction == "none":
        return float(grad_out[index])
    if reduction == "mean":
        return ieee_divide(grad_out, denominator)
    return grad_out


# ----------------------------------------------------------------------------------------------------------
# Negative log-likelihood and cross-entropy


def _kept(target: np.ndarray, ignore_index: int) -> list[int]:
    """The samples whose label is not ``ignore_index``: only they contribute to the loss."""
    return [i for i in range(target.shape[0]) if int(target[i]) != ignore_index]


def _total_weight(target: np.ndarray, w: list[float], kept: list[int]) -> float:
    """``W = sum_i w[y_i]`` over the kept samples: the denominator of ``'mean'`` (their count if unweighted)."""
    total = 0.0
    for i in kept:
        total += w[int(target[i])]
    return total


def nll_loss(
    input: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, *,
    ignore_index: int = -100, reduction: str = "mean",
) -> np.ndarray:
    """Negative log-likelihood of log-probabilities: ``l_i = -w[y_i] * input[i, y_i]`` for each sample ``i``
    whose label ``y_i`` is not ``ignore_index`` (``l_i = 0`` for ignored samples).

    ``'none'`` returns ``l``; ``'sum'`` returns ``sum_i l_i``; ``'mean'`` returns ``sum_i l_i / W`` with
    ``W = sum_i w[y_i]`` over the non-ignored samples (nan when ``W = 0``, e.g. every sample ignored).

    Shape: ``input (N, C)``, ``target (N,)`` ints, ``weight (C,)`` -> ``(N,)`` for ``'none'``, ``()`` else.

    Parameters
    ----------
    input : numpy.ndarray
        Float ``(N, C)``, log-probabilities (e.g. :func:`refcnn.log_softmax` along ``dim=1``).
    target : numpy.ndarray
        Integer ``(N,)`` class labels in ``[0, C)`` or equal to ``ignore_index``.
    weight : numpy.ndarray or None
        Float ``(C,)`` class weights ``w``; ``None`` means all ones.
    ignore_index : int
        Label of samples that contribute nothing, to the loss or to ``W``.
    reduction : {'mean', 'sum', 'none'}
        See above.

    Everything after ``weight`` is keyword-only because PyTorch's fourth positional parameter is the
    deprecated ``size_average``.
    """
    op = "nll_loss"
    args, w = check_class_loss(op, input, target, weight, ignore_index, reduction)
    x = as_float64(input)
    kept = _kept(target, args.ignore_index)
    terms = np.zeros(args.n, dtype=np.float64)
    for i in kept:
        y = int(target[i])
        terms[i] = -w[y] * float(x[i, y])
    return _reduce(terms, args.reduction, _total_weight(target, w, kept))


def nll_loss_backward(
    grad_out, input: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, *,
    ignore_index: int = -100, reduction: str = "mean",
) -> np.ndarray:
    """Gradient of :func:`nll_loss` with respect to ``input``: ``grad_input[i, y_i] = -w[y_i] * s_i`` for
    every non-ignored sample ``i`` and 0 elsewhere, where ``s_i = grad_out[i]`` (``'none'``), ``grad_out``
    (``'sum'``) or ``grad_out / W`` (``'mean'``). ``target`` and ``weight`` get no gradient.

    Shape: ``grad_out (N,)`` for ``'none'``, a number or ``()`` else -> ``grad_input (N, C)``.
    """
    op = "nll_loss_backward"
    args, w = check_class_loss(op, input, target, weight, ignore_index, reduction)
    g = check_loss_grad_out(op, grad_out, args.reduction, (args.n,))
    kept = _kept(target, args.ignore_index)
    total_weight = _total_weight(target, w, kept)
    grad_input = np.zeros((args.n, args.c), dtype=np.float64)
    for i in kept:
        y = int(target[i])
        grad_input[i, y] = -w[y] * _term_scale(g, args.reduction, i, total_weight)
    return grad_input


def cross_entropy(
    input: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, *,
    ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0,
) -> np.ndarray:
    """Softmax cross-entropy from logits, PyTorch's formula: with ``q = log_softmax(input, dim=1)`` and
    smoothing ``e = label_smoothing``, each non-ignored sample ``i`` has

    ``l_i = (1 - e) * (-w[y_i] * q[i, y_i]) + (e / C) * (-sum_c w[c] * q[i, c])``

    and ignored samples have ``l_i = 0``. ``'none'`` returns ``l``, ``'sum'`` ``sum_i l_i``, ``'mean'``
    ``sum_i l_i / W`` with ``W = sum_i w[y_i]`` over the non-ignored samples (nan when ``W = 0``). With
    ``e = 0`` this is ``nll_loss(log_softmax(input, dim=1), target, weight, ...)``.

    Shape: ``input (N, C)``, ``target (N,)`` ints, ``weight (C,)`` -> ``(N,)`` for ``'none'``, ``()`` else.

    Parameters
    ----------
    input : numpy.ndarray
        Float ``(N, C)`` unnormalised scores (logits).
    target : numpy.ndarray
        Integer ``(N,)`` class labels in ``[0, C)`` or equal to ``ignore_index`` (class probabilities as
        targets, which PyTorch also accepts, are not supported).
    weight : numpy.ndarray or None
        Float ``(C,)`` class weights ``w``; ``None`` means all ones.
    ignore_index : int
        Label of samples that contribute nothing.
    reduction : {'mean', 'sum', 'none'}
        See above.
    label_smoothing : float
        ``e`` in ``[0, 1]``: the target becomes ``(1 - e) * onehot(y_i) + e / C``.

    Everything after ``weight`` is keyword-only because PyTorch's fourth positional parameter is the
    deprecated ``size_average``.
    """
    op = "cross_entropy"
    args, w = check_class_loss(op, input, target, weight, ignore_index, reduction, label_smoothing)
    q = log_softmax(as_float64(input), dim=1)
    e = args.label_smoothing
    kept = _kept(target, args.ignore_index)
    terms = np.zeros(args.n, dtype=np.float64)
    for i in kept:
        y = int(target[i])
        smooth = 0.0
        for c in range(args.c):
            smooth -= w[c] * float(q[i, c])
        terms[i] = (1.0 - e) * (-w[y] * float(q[i, y])) + (e / args.c) * smooth
    return _reduce(terms, args.reduction, _total_weight(target, w, kept))


def cross_entropy_backward(
    grad_out, input: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, *,
    ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0,
) -> np.ndarray:
    """Gradient of :func:`cross_entropy` with respect to ``input``. Through ``q = log_softmax(input)``:
    ``dL/dq[i, c] = -s_i * ((1 - e) * w[y_i] * [c = y_i] + (e / C) * w[c])`` for non-ignored ``i`` (0 for
    ignored), then ``grad_input = log_softmax_backward(dL/dq, input, dim=1)``, i.e.
    ``grad_input[i, c] = dL/dq[i, c] - p[i, c] * sum_k dL/dq[i, k]`` with ``p = softmax(input, dim=1)``.
    ``s_i`` is ``grad_out[i]`` (``'none'``), ``grad_out`` (``'sum'``) or ``grad_out / W`` (``'mean'``).
    Without weights or smoothing this is the familiar ``s_i * (p[i, c] - [c = y_i])``.

    Shape: ``grad_out (N,)`` for ``'none'``, a number or ``()`` else -> ``grad_input (N, C)``.
    """
    op = "cross_entropy_backward"
    args, w = check_class_loss(op, input, target, weight, ignore_index, reduction, label_smoothing)
    g = check_loss_grad_out(op, grad_out, args.reduction, (args.n,))
    e = args.label_smoothing
    kept = _kept(target, args.ignore_index)
    total_weight = _total_weight(target, w, kept)
    grad_q = np.zeros((args.n, args.c), dtype=np.float64)
    for i in kept:
        y = int(target[i])
        s = _term_scale(g, args.reduction, i, total_weight)
        for c in range(args.c):
            one_hot = (1.0 - e) * w[y] if c == y else 0.0
            grad_q[i, c] = -s * (one_hot + (e / args.c) * w[c])
    return log_softmax_backward(grad_q, as_float64(input), dim=1)


# ----------------------------------------------------------------------------------------------------------
# Squared errors: one pointwise term k * (input - target)^2, reduced


def _squared_error(op: str, input, target, reduction, k: float) -> np.ndarray:
    """``k * (input - target)^2`` per element, reduced; ``'mean'`` divides by the element count."""
    args = check_pointwise_loss(op, input, target, reduction)
    x, t = as_float64(input), as_float64(target)
    terms = np.empty(args.shape, dtype=np.float64)
    for i in np.ndindex(args.shape):
        diff = float(x[i]) - float(t[i])
        terms[i] = k * diff * diff
    return _reduce(terms, args.reduction, float(x.size))


def _squared_error_backward(op: str, grad_out, input, target, reduction, k: float):
    """``grad_input = 2k * (input - target) * s``, ``grad_target = -grad_input``."""
    args = check_pointwise_loss(op, input, target, reduction)
    g = check_loss_grad_out(op, grad_out, args.reduction, args.shape)
    x, t = as_float64(input), as_float64(target)
    grad_input = np.empty(args.shape, dtype=np.float64)
    grad_target = np.empty(args.shape, dtype=np.float64)
    for i in np.ndindex(args.shape):
        d = 2.0 * k * (float(x[i]) - float(t[i])) * _term_scale(g, args.reduction, i, float(x.size))
        grad_input[i] = d
        grad_target[i] = -d
    return grad_input, grad_target


def mse_loss(input: np.ndarray, target: np.ndarray, *, reduction: str = "mean") -> np.ndarray:
    """Mean squared error: ``l_j = (input_j - target_j)^2`` for every element ``j``; ``'mean'`` returns
    ``sum_j l_j / M`` (``M`` the number of elements; nan when ``M = 0``), ``'sum'`` ``sum_j l_j``, ``'none'``
    ``l``.

    Shape: ``input`` and ``target`` of one shape (any; no broadcasting) -> that shape for ``'none'``, ``()``
    else.

    ``reduction`` is keyword-only because PyTorch's third positional parameter is the deprecated
    ``size_average``.
    """
    return _squared_error("mse_loss", input, target, reduction, 1.0)


def mse_loss_backward(grad_out, input: np.ndarray, target: np.ndarray, *, reduction: str = "mean"):
    """Gradients of :func:`mse_loss`: ``grad_input_j = 2 * (input_j - target_j) * s_j`` and
    ``grad_target_j = -grad_input_j``, with ``s_j = grad_out_j`` (``'none'``), ``grad_out`` (``'sum'``) or
    ``grad_out / M`` (``'mean'``).

    Shape: ``grad_out`` of the loss's output shape -> ``(grad_input, grad_target)`` of ``input``'s shape.
    """
    return _squared_error_backward("mse_loss_backward", grad_out, input, target, reduction, 1.0)


def half_squared_error(input: np.ndarray, target: np.ndarray, *, reduction: str = "sum") -> np.ndarray:
    """The classic backpropagation "total error": ``E = sum_j 1/2 * (target_j - input_j)^2``.

    ``'sum'`` (the default) is that total; ``'mean'`` divides it by the element count ``M``; ``'none'``
    returns the terms ``1/2 * (target_j - input_j)^2``. The 1/2 makes the derivative
    ``dE/dinput_j = input_j - target_j``. Not a PyTorch function: ``mse_loss(..., reduction='sum') / 2``.

    Shape: ``input`` and ``target`` of one shape (any) -> that shape for ``'none'``, ``()`` else.
    """
    return _squared_error("half_squared_error", input, target, reduction, 0.5)


def half_squared_error_backward(grad_out, input: np.ndarray, target: np.ndarray, *, reduction: str = "sum"):
    """Gradients of :func:`half_squared_error`: ``grad_input_j = (input_j - target_j) * s_j`` and
    ``grad_target_j = -grad_input_j``, ``s_j`` as in :func:`mse_loss_backward`.

    Shape: ``grad_out`` of the loss's output shape -> ``(grad_input, grad_target)`` of ``input``'s shape.
    """
    return _squared_error_backward("half_squared_error_backward", grad_out, input, target, reduction, 0.5)
