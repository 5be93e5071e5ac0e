"""C backend: classification losses (csrc/classification_tmpl.h)."""
from ._lib import PI64, from_buffer, pick, ptr


def cross_entropy(grad, loss, logits, target, weight, n, c, s, ignore_index, label_smoothing, reduction):
    f, ct = pick("cross_entropy", logits.dtype)
    return f(ptr(grad, ct), ptr(loss, ct), from_buffer(ct, logits), from_buffer(PI64, target),
             ptr(weight, ct), n, c, s, ignore_index, label_smoothing, reduction)


def cross_entropy_prob(grad, loss, logits, target, weight, n, c, s, label_smoothing, reduction):
    f, ct = pick("cross_entropy_prob", logits.dtype)
    return f(ptr(grad, ct), ptr(loss, ct), from_buffer(ct, logits), from_buffer(ct, target),
             ptr(weight, ct), n, c, s, label_smoothing, reduction)


def binary_cross_entropy(grad, loss, prob, target, weight, reduction):
    f, ct = pick("binary_cross_entropy", prob.dtype)
    return f(ptr(grad, ct), ptr(loss, ct), from_buffer(ct, prob), from_buffer(ct, target), ptr(weight, ct),
             prob.size, reduction)


def binary_cross_entropy_with_logits(grad, loss, logits, target, weight, pos_weight, c, reduction):
    f, ct = pick("binary_cross_entropy_with_logits", logits.dtype)
    return f(ptr(grad, ct), ptr(loss, ct), from_buffer(ct, logits), from_buffer(ct, target), ptr(weight, ct),
             ptr(pos_weight, ct), logits.size, c, reduction)


def hinge(grad, loss, scores, target, weight, margin, reduction):
    f, ct = pick("hinge", scores.dtype)
    return f(ptr(grad, ct), ptr(loss, ct), from_buffer(ct, scores), from_buffer(ct, target), ptr(weight, ct),
             scores.size, margin, reduction)


def squared_hinge(grad, loss, scores, target, weight, margin, reduction):
    f, ct = pick("squared_hinge", scores.dtype)
    return f(ptr(grad, ct), ptr(loss, ct), from_buffer(ct, scores), from_buffer(ct, target), ptr(weight, ct),
             scores.size, margin, reduction)


def multi_margin(grad, loss, logits, target, weight, n, c, p, margin, reduction):
    f, ct = pick("multi_margin", logits.dtype)
    return f(ptr(grad, ct), ptr(loss, ct), from_buffer(ct, logits), from_buffer(PI64, target),
             ptr(weight, ct), n, c, p, margin, reduction)
