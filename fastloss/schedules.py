"""Learning-rate schedules: plain callables ``schedule(t) -> lr``, equal to torch's lr_scheduler.

``schedule(t)``, for t = 0, 1, 2, ..., is the learning rate of update number t + 1: the value
torch's scheduler leaves in ``optimizer.param_groups[0]["lr"]`` after t calls of
``scheduler.step()`` (t = 0: right after the scheduler is built).  That is how
``fastloss.optim`` calls a schedule given as ``lr``: ``lr(state["step"])`` before each update.

Bit-exact, not merely close.  Most torch schedulers are *chainable*: each ``step()`` multiplies
or shifts the lr the optimizer currently holds, and that recursion is what torch's users get.
Each also has a closed form (``_get_closed_form_lr``, used only by the deprecated
``step(epoch)``), which differs from the recursion in the last bits: ``lr * gamma**k`` against
k multiplications by gamma, and for cosine annealing a product of ratios of ``1 + cos`` terms
against the formula (measured with torch 2.13: up to 9e-15 relative over 20000 steps, 4e-13
in the second period with min_lr > 0).  The schedules here replay torch's recursion,
operation for operation, so ``schedule(t)`` is the very float torch holds (tests compare with
``==``).  The replay is cached (every 256th value plus the last one computed):
stepping through t = 0, 1, 2, ... costs O(1) per call; any other t costs at most 256 steps
once its neighbourhood has been reached, and the first visit to a large t costs O(t).

Schedules are immutable and pure: ``schedule(t)`` depends on t alone, in any call order.
The exception is :class:`ReduceLROnPlateau`, which is driven by the metrics fed to ``step``.

Every constructor validates its arguments: ``TypeError`` for a wrong type (a float where an
int is needed, a string where a number is), ``ValueError`` for a bad value; each message names
the argument.  Nothing here imports torch.
"""
import bisect
import math
import numbers
import threading

import numpy as np

from . import _validate as V

__all__ = [
    "Schedule", "constant", "step_decay", "multistep", "exponential", "cosine",
    "linear_warmup", "one_cycle", "ReduceLROnPlateau",
]


# ---- argument checks: every error names the argument --------------------------------------
def _int(x, name, minimum):
    """x as a Python int >= minimum (TypeError for bools, floats and non-numbers)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name}: must be an int, got {type(x).__name__}")
    x = int(x)
    if x < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {x}")
    return x


def _step_index(t):
    """t, the number of updates already made: an int >= 0."""
    if type(t) is int and t >= 0:
        return t
    if isinstance(t, bool) or not isinstance(t, numbers.Integral):
        raise TypeError(f"t: must be an int (the number of updates already made), "
                        f"got {type(t).__name__}")
    t = int(t)
    if t < 0:
        raise ValueError(f"t: must be >= 0 (the number of updates already made), got {t}")
    return t


def _rate(x, name):
    """A learning rate: a finite real >= 0, as a float."""
    v = V.nonneg(x, name)
    if v == math.inf:
        raise ValueError(f"{name}: must be finite, got {x!r}")
    return v


def _factor(x, name):
    """A multiplicative factor: a finite real > 0, as a float."""
    v = V.positive(x, name)
    if v == math.inf:
        raise ValueError(f"{name}: must be finite, got {x!r}")
    return v


def _choice(x, name, options):
    if not isinstance(x, str):
        raise TypeError(f"{name}: must be a str, one of {options}, got {type(x).__name__}")
    if x not in options:
        raise ValueError(f"{name}: must be one of {options}, got {x!r}")
    return x


def _flag(x, name):
    if isinstance(x, bool):
        return x
    raise TypeError(f"{name}: must be a bool, got {type(x).__name__}")


# ---- replaying a recursion --------------------------------------------------------------------
class _Replay:
    """x(k) for x(0) = x0, x(k) = advance(x(k-1), k), computed in exactly that order.

    Every STRIDE-th value is kept the first time it is reached, and so is the last value
    computed: a caller walking k = 0, 1, 2, ... pays one ``advance`` per call, any other k
    costs at most STRIDE of them once k's neighbourhood has been reached.  ``stationary``
    says ``advance`` ignores k; then the first k with x(k) == x(k-1) ends the replay, every
    later value being the same (lr * gamma**k that has reached 0, or gamma == 1).
    """
    STRIDE = 256

    def __init__(self, x0, advance, stationary=False):
        self._advance = advance
        self._stationary = stationary
        self._marks = [x0]        # x(i * STRIDE) for i < len(_marks)
        self._last = (0, x0)
        self._fixed = None        # (k0, x): x(k) == x for every k >= k0
        self._lock = threading.Lock()

    def __call__(self, k):
        with self._lock:
            if self._fixed is not None and k >= self._fixed[0]:
                return self._fixed[1]
            j, x = self._last
            i = min(k // self.STRIDE, len(self._marks) - 1)
            if j > k or i * self.STRIDE > j:
                j, x = i * self.STRIDE, self._marks[i]
            x = self._run(j, x, k)
            self._last = (k, x)
            return x

    def _run(self, j, x, k):
        advance, marks, stride = self._advance, self._marks, self.STRIDE
        while j < k:
            j += 1
            y = advance(x, j)
            if self._stationary and y == x:
                self._fixed = (j - 1, x)
                return x
            x = y
            if j % stride == 0 and j // stride == len(marks):
                marks.append(x)
        return x


# ---- the schedules ----------------------------------------------------------------------------
class Schedule:
    """Base class of the step-indexed schedules: ``schedule(t) -> float``, immutable.

    Subclasses set ``_name`` (the factory function), ``_fields`` (its arguments, in order),
    ``base_lr`` (the lr torch keeps as ``param_group["initial_lr"]``) and implement ``_at(t)``.
    ``repr`` is the factory call that rebuilds the schedule; pickling rebuilds it the same way.
    """
    _name = "schedule"
    _fields = ()

    def __call__(self, t):
        return self._at(_step_index(t))

    def _at(self, t):
        raise NotImplementedError

    def _set(self, **fields):
        for k, v in fields.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name, value):
        raise AttributeError(f"{self._name}: schedules are immutable; build a new one")

    def _arguments(self):
        return {f: getattr(self, f) for f in self._fields}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._arguments().items())
        return f"{self._name}({args})"

    def __reduce__(self):
        return (_rebuild, (self._name, self._arguments()))

    def _resumed(self):
        """This schedule as torch's SequentialLR resumes it at a milestone: ``_update_lr(0)``
        sets its lr to its closed form at epoch 0, and its recursion continues from there.
        The closed form at 0 is exactly the initial lr for every schedule but cosine."""
        return self


class _Constant(Schedule):
    _name, _fields = "constant", ("lr",)

    def __init__(self, lr):
        self._set(lr=lr, base_lr=lr)

    def _at(self, t):
        return self.lr


class _StepDecay(Schedule):
    _name, _fields = "step_decay", ("lr", "step_size", "gamma")

    def __init__(self, lr, step_size, gamma):
        g = gamma
        self._set(lr=lr, step_size=step_size, gamma=gamma, base_lr=lr,
                  _decays=_Replay(lr, lambda x, k: x * g, stationary=True))

    def _at(self, t):
        return self._decays(t // self.step_size)


class _MultiStep(Schedule):
    _name, _fields = "multistep", ("lr", "milestones", "gamma")

    def __init__(self, lr, milestones, gamma):
        # torch counts repeated milestones and multiplies once by gamma**count at each
        # distinct one (a milestone at 0 already applies at t = 0).
        at, values, x = [], [lr], lr
        for m in sorted(set(milestones)):
            x = x * gamma ** milestones.count(m)
            at.append(m)
            values.append(x)
        self._set(lr=lr, milestones=milestones, gamma=gamma, base_lr=lr,
                  _at_steps=tuple(at), _values=tuple(values))

    def _at(self, t):
        return self._values[bisect.bisect_right(self._at_steps, t)]


class _Exponential(Schedule):
    _name, _fields = "exponential", ("lr", "gamma")

    def __init__(self, lr, gamma):
        g = gamma
        self._set(lr=lr, gamma=gamma, base_lr=lr,
                  _replay=_Replay(lr, lambda x, k: x * g, stationary=True))

    def _at(self, t):
        return self._replay(t)


class _Cosine(Schedule):
    _name, _fields = "cosine", ("lr", "total_steps", "min_lr")

    def __init__(self, lr, total_steps, min_lr, start=None):
        self._set(lr=lr, total_steps=total_steps, min_lr=min_lr, base_lr=lr,
                  _replay=_Replay(lr if start is None else start, self._advance))

    def _resumed(self):
        # torch's closed form at epoch 0: min_lr + (lr - min_lr) * (1 + cos(0)) / 2, which is
        # 1 ulp away from lr for some pairs (lr=0.01, min_lr=0.001 gives 0.010000000000000002).
        lo, T = self.min_lr, self.total_steps
        start = lo + (self.lr - lo) * (1 + math.cos(math.pi * 0 / T)) / 2
        return _Cosine(self.lr, T, lo, start)

    def _advance(self, x, t):
        # torch's CosineAnnealingLR.get_lr, operation for operation.  The general step scales
        # (x - min_lr) by the ratio of consecutive (1 + cos) terms; one step past each trough
        # (where that ratio's denominator is 1 + cos(pi) = 0) it adds the first rise instead.
        T, lo = self.total_steps, self.min_lr
        if (t - 1 - T) % (2 * T) == 0:
            return x + (self.lr - lo) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (x - lo) + lo)

    def _at(self, t):
        return self._replay(t)


class _LinearWarmup(Schedule):
    _name, _fields = "linear_warmup", ("schedule", "warmup_steps", "start_factor")

    def __init__(self, schedule, warmup_steps, start_factor, base_lr):
        after = schedule._resumed() if warmup_steps and isinstance(schedule, Schedule) else schedule
        self._set(schedule=schedule, warmup_steps=warmup_steps, start_factor=start_factor,
                  base_lr=base_lr, _ramp=_Replay(base_lr * start_factor, self._advance),
                  _after=after)

    def _advance(self, x, t):
        # torch's LinearLR.get_lr with end_factor = 1.0, operation for operation.
        s, n = self.start_factor, self.warmup_steps
        return x * (1.0 + (1.0 - s) / (n * s + (t - 1) * (1.0 - s)))

    def _at(self, t):
        if t < self.warmup_steps:
            return self._ramp(t)
        return self._after(t - self.warmup_steps)


class _OneCycle(Schedule):
    _name = "one_cycle"
    _fields = ("max_lr", "total_steps", "pct_start", "anneal_strategy", "div_factor",
               "final_div_factor", "three_phase")

    def __init__(self, max_lr, total_steps, pct_start, anneal_strategy, div_factor,
                 final_div_factor, three_phase):
        initial = max_lr / div_factor
        final = initial / final_div_factor
        # (last step of the phase, lr at its start, lr at its end), as torch's OneCycleLR.
        T = total_steps
        if three_phase:
            phases = ((float(pct_start * T) - 1, initial, max_lr),
                      (float(2 * pct_start * T) - 2, max_lr, initial),
                      (T - 1, initial, final))
        else:
            phases = ((float(pct_start * T) - 1, initial, max_lr),
                      (T - 1, max_lr, final))
        self._set(max_lr=max_lr, total_steps=T, pct_start=pct_start,
                  anneal_strategy=anneal_strategy, div_factor=div_factor,
                  final_div_factor=final_div_factor, three_phase=three_phase,
                  base_lr=initial, _phases=phases)

    def _at(self, t):
        if t >= self.total_steps:
            raise ValueError(f"t: must be < total_steps={self.total_steps} "
                             f"(one_cycle defines {self.total_steps} updates), got {t}")
        start = 0.0
        last = len(self._phases) - 1
        for i, (end, lr_start, lr_end) in enumerate(self._phases):
            if t <= end or i == last:
                return self._anneal(lr_start, lr_end, (t - start) / (end - start))
            start = end

    def _anneal(self, start, end, pct):
        # torch's OneCycleLR._annealing_cos / _annealing_linear, operation for operation.
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start


_FACTORIES = {}


def _rebuild(name, arguments):
    return _FACTORIES[name](**arguments)


def _factory(f):
    _FACTORIES[f.__name__] = f
    return f


@_factory
def constant(lr):
    """The constant schedule: ``lr(t) = lr``.

    Args:
      lr: learning rate, finite and >= 0.
    Equals: no scheduler, or ``torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)``.
    """
    return _Constant(_rate(lr, "lr"))


@_factory
def step_decay(lr, step_size, *, gamma=0.1):
    """Step decay: ``lr(t) = lr * gamma**(t // step_size)``.

    gamma is applied by one multiplication per decay, as torch's recursive ``get_lr`` does (not
    by ``gamma**k``, torch's closed form, which can differ in the last bit).

    Args:
      lr: initial learning rate, finite and >= 0.
      step_size: int >= 1, updates between decays.
      gamma: finite factor > 0 (1 gives a constant; > 1 grows).
    Equals: ``torch.optim.lr_scheduler.StepLR(opt, step_size, gamma)``.
    """
    return _StepDecay(_rate(lr, "lr"), _int(step_size, "step_size", 1), _factor(gamma, "gamma"))


@_factory
def multistep(lr, milestones, *, gamma=0.1):
    """Decay at milestones: ``lr(t) = lr * gamma**(number of milestones <= t)``.

    A milestone listed n times multiplies by ``gamma**n`` at once, as torch does; a milestone
    at 0 applies from t = 0.

    Args:
      lr: initial learning rate, finite and >= 0.
      milestones: ints >= 0, non-decreasing (repeats allowed); may be empty.
      gamma: finite factor > 0.
    Equals: ``torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma)``.
    """
    if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
        raise TypeError(f"milestones: must be a sequence of ints, got {type(milestones).__name__}")
    ms = tuple(_int(m, f"milestones[{i}]", 0) for i, m in enumerate(milestones))
    for i in range(1, len(ms)):
        if ms[i] < ms[i - 1]:
            raise ValueError(f"milestones: must be increasing (repeats allowed), got {list(ms)}")
    return _MultiStep(_rate(lr, "lr"), ms, _factor(gamma, "gamma"))


@_factory
def exponential(lr, gamma):
    """Exponential decay: ``lr(t) = lr * gamma**t``, one multiplication per step as torch does.

    Args:
      lr: initial learning rate, finite and >= 0.
      gamma: finite factor > 0.
    Equals: ``torch.optim.lr_scheduler.ExponentialLR(opt, gamma)``.
    """
    return _Exponential(_rate(lr, "lr"), _factor(gamma, "gamma"))


@_factory
def cosine(lr, total_steps, *, min_lr=0.0):
    """Cosine annealing from lr to min_lr over total_steps updates.

    Closed form ``lr(t) = min_lr + (lr - min_lr) * (1 + cos(pi * t / total_steps)) / 2``; the
    value returned is torch's recursion, which is what CosineAnnealingLR actually holds:
    ``lr(0) = lr``, ``lr(t) = (1 + cos(pi t/T)) / (1 + cos(pi (t-1)/T)) * (lr(t-1) - min_lr)
    + min_lr``, and at t = T+1, 3T+1, ... (just past a trough, where that ratio is 0/0 ... 1/0)
    ``lr(t) = lr(t-1) + (lr - min_lr) * (1 - cos(pi/T)) / 2``.  It differs from the closed form
    in the last bits (~1e-14 relative; see the module docstring).  As in torch, the lr reaches
    min_lr at t = total_steps and then rises again (period 2 * total_steps).

    Args:
      lr: initial (maximum) learning rate, finite and >= 0.
      total_steps: int >= 1, torch's T_max.
      min_lr: finite and >= 0, torch's eta_min.
    Equals: ``torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps,
    eta_min=min_lr)``.
    """
    return _Cosine(_rate(lr, "lr"), _int(total_steps, "total_steps", 1), _rate(min_lr, "min_lr"))


@_factory
def linear_warmup(schedule, warmup_steps, start_factor):
    """Linear warm-up for warmup_steps updates, then ``schedule`` from its beginning.

    ``lr(t) = base * (start_factor + (1 - start_factor) * t / warmup_steps)`` for
    t < warmup_steps (computed by torch LinearLR's recursion), then
    ``lr(t) = schedule(t - warmup_steps)``.  ``base`` is ``schedule.base_lr`` for the schedules
    of this module (the lr torch stores as ``initial_lr``: ``lr``, or ``max_lr / div_factor``
    for one_cycle) and ``schedule(0)`` for any other callable.  warmup_steps = 0 returns
    ``schedule``'s values unchanged.

    Args:
      schedule: a schedule of this module or any callable ``t -> lr`` (not ReduceLROnPlateau,
        which follows metrics, not steps).
      warmup_steps: int >= 0.
      start_factor: in (0, 1], the fraction of base used at t = 0.
    Equals: ``torch.optim.lr_scheduler.SequentialLR(opt, [LinearLR(opt, start_factor,
    end_factor=1.0, total_iters=warmup_steps), S], milestones=[warmup_steps])`` where S is
    schedule's torch scheduler, built on the same optimizer after the LinearLR.  (Not
    ChainedScheduler, which would multiply the two and let S's clock run during the warm-up.)
    One last-bit detail, reproduced: at the milestone SequentialLR restarts S from S's
    closed form at epoch 0, not from its initial lr.  For cosine with min_lr > 0 that is
    ``min_lr + (lr - min_lr)``, 1 ulp above lr for e.g. lr=0.01, min_lr=0.001, and torch's
    later values carry that ulp; so do these (for t >= warmup_steps the value is then
    ``schedule(t - warmup_steps)`` within ~1e-16 relative, not bit for bit).
    """
    if isinstance(schedule, ReduceLROnPlateau):
        raise TypeError("schedule: ReduceLROnPlateau follows metrics, not steps; it cannot "
                        "follow a warm-up (torch's SequentialLR refuses it too)")
    if not callable(schedule):
        raise TypeError(f"schedule: must be callable t -> lr, got {type(schedule).__name__}")
    n = _int(warmup_steps, "warmup_steps", 0)
    s = V.real(start_factor, "start_factor")
    if not 0.0 < s <= 1.0:
        raise ValueError(f"start_factor: must be in (0, 1], got {start_factor!r}")
    if isinstance(schedule, Schedule):
        base = schedule.base_lr
    else:
        base = _rate(schedule(0), "schedule(0)")
    return _LinearWarmup(schedule, n, s, base)


@_factory
def one_cycle(max_lr, total_steps, *, pct_start=0.3, anneal_strategy="cos", div_factor=25.0,
              final_div_factor=1e4, three_phase=False):
    """The 1cycle policy: up from ``max_lr / div_factor`` to max_lr, then down to
    ``max_lr / div_factor / final_div_factor``, over total_steps updates.

    With ``initial = max_lr / div_factor``, ``final = initial / final_div_factor`` and
    ``p = pct_start * total_steps``: two phases (default) anneal initial -> max_lr over steps
    [0, p - 1] and max_lr -> final over [p - 1, total_steps - 1]; three_phase anneals
    initial -> max_lr over [0, p - 1], max_lr -> initial over [p - 1, 2p - 2] and initial ->
    final over [2p - 2, total_steps - 1].  Within a phase from a to b at fraction f,
    "cos": ``b + (a - b) / 2 * (1 + cos(pi f))``, "linear": ``(b - a) * f + a``.

    Defined for t < total_steps only: ``schedule(total_steps)`` raises ValueError (torch
    computes an extrapolated value after the last update and raises one step later).

    Args:
      max_lr: peak learning rate, finite and >= 0.
      total_steps: int >= 1, the number of updates.
      pct_start: in [0, 1], the fraction of steps spent rising; ``pct_start * total_steps``
        must not be exactly 1 (a zero-length first phase: torch divides by zero).
      anneal_strategy: "cos" or "linear".
      div_factor, final_div_factor: finite, > 0.
      three_phase: bool.
    Equals: ``torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps, ...)``'s lr
    (momentum cycling is not modelled).
    """
    max_lr = _rate(max_lr, "max_lr")
    total_steps = _int(total_steps, "total_steps", 1)
    pct_start = V.real(pct_start, "pct_start")
    if not 0.0 <= pct_start <= 1.0:
        raise ValueError(f"pct_start: must be in [0, 1], got {pct_start!r}")
    if float(pct_start * total_steps) == 1.0:
        raise ValueError(f"pct_start: pct_start * total_steps == 1 leaves the first phase no "
                         f"length (torch's OneCycleLR divides by zero), got pct_start="
                         f"{pct_start!r}, total_steps={total_steps}")
    return _OneCycle(max_lr, total_steps, pct_start,
                     _choice(anneal_strategy, "anneal_strategy", ("cos", "linear")),
                     _factor(div_factor, "div_factor"),
                     _factor(final_div_factor, "final_div_factor"),
                     _flag(three_phase, "three_phase"))


# ---- reduce on plateau ------------------------------------------------------------------------
class ReduceLROnPlateau:
    """Multiply the lr by ``factor`` when a metric stops improving; torch's decisions exactly.

    Each ``step(metric)``: the metric improves on ``best`` when it is below
    ``best * (1 - threshold)`` ("min", "rel"), below ``best - threshold`` ("min", "abs"), above
    ``best * (1 + threshold)`` ("max", "rel") or above ``best + threshold`` ("max", "abs");
    ``best`` starts at +inf ("min") or -inf ("max").  An improvement sets best and clears the
    count of bad steps, anything else (NaN included) adds one.  While a cooldown runs it
    counts down and bad steps are forgotten.  When the count exceeds ``patience`` the lr
    becomes ``max(lr * factor, min_lr)`` -- unless that lowers it by no more than ``eps`` --
    and the cooldown restarts at ``cooldown``.

    ``sched.lr`` is the current lr; ``sched(t)`` returns it whatever t is, so the object can
    be given wherever a schedule is expected (feed it metrics between updates).
    ``state_dict()`` / ``load_state_dict()`` round-trip the hyperparameters and the state.

    Args:
      lr: initial learning rate, finite and >= 0.
      mode: "min" or "max".
      factor: in [0, 1).
      patience, cooldown: ints >= 0.
      threshold: finite, >= 0.  threshold_mode: "rel" or "abs".
      min_lr, eps: finite, >= 0.
    Equals: ``torch.optim.lr_scheduler.ReduceLROnPlateau`` with the same arguments (one
    parameter group, a scalar min_lr).
    """
    _hyper = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
              "min_lr", "eps")
    _state = ("lr", "best", "num_bad_epochs", "cooldown_counter", "last_epoch")

    def __init__(self, lr, *, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        hyper = self._check(dict(mode=mode, factor=factor, patience=patience,
                                 threshold=threshold, threshold_mode=threshold_mode,
                                 cooldown=cooldown, min_lr=min_lr, eps=eps))
        self.__dict__.update(hyper)
        self.lr = _rate(lr, "lr")
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0      # steps since the last improvement (outside cooldowns)
        self.cooldown_counter = 0    # steps of cooldown left
        self.last_epoch = 0          # metrics seen

    @staticmethod
    def _check(h):
        factor = V.real(h["factor"], "factor")
        if not 0.0 <= factor < 1.0:
            raise ValueError(f"factor: must be in [0, 1), got {h['factor']!r}")
        return dict(mode=_choice(h["mode"], "mode", ("min", "max")),
                    factor=factor,
                    patience=_int(h["patience"], "patience", 0),
                    threshold=_rate(h["threshold"], "threshold"),
                    threshold_mode=_choice(h["threshold_mode"], "threshold_mode", ("rel", "abs")),
                    cooldown=_int(h["cooldown"], "cooldown", 0),
                    min_lr=_rate(h["min_lr"], "min_lr"),
                    eps=_rate(h["eps"], "eps"))

    def _is_better(self, a):
        # torch's comparisons, operation for operation (rel: best scaled by 1 -/+ threshold).
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < self.best * (1.0 - self.threshold)
            return a < self.best - self.threshold
        if self.threshold_mode == "rel":
            return a > self.best * (self.threshold + 1.0)
        return a > self.best + self.threshold

    def step(self, metric):
        """Feed one metric value (after an epoch or an evaluation); return the new lr."""
        if isinstance(metric, (str, bytes, bool, np.bool_)):  # a bool: a comparison passed by mistake
            raise TypeError(f"metric: must be a real number, got {type(metric).__name__}")
        try:
            current = float(metric)  # also a 0-d array or a one-element tensor, as torch takes
        except (TypeError, ValueError):
            raise TypeError(f"metric: must be a real number, got {type(metric).__name__}") from None
        except OverflowError:
            raise ValueError("metric: an integer too large for a float") from None
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.lr

    def _reduce(self):
        new = max(self.lr * self.factor, self.min_lr)
        if self.lr - new > self.eps:  # reductions of eps or less are skipped, as in torch
            self.lr = new

    def __call__(self, t):
        _step_index(t)
        return self.lr

    def state_dict(self):
        """Hyperparameters and state as a plain dict (floats, ints and strs)."""
        return {k: getattr(self, k) for k in self._hyper + self._state}

    def load_state_dict(self, state):
        """Restore from ``state_dict()``; everything is validated before anything changes."""
        if not isinstance(state, dict):
            raise TypeError(f"state: must be a dict, got {type(state).__name__}")
        keys = set(self._hyper + self._state)
        if set(state) != keys:
            raise ValueError(f"state: keys must be {sorted(keys)}; missing "
                             f"{sorted(keys - set(state))}, unknown {sorted(set(state) - keys)}")
        hyper = self._check({k: state[k] for k in self._hyper})
        lr = _rate(state["lr"], "state['lr']")
        best = V.real(state["best"], "state['best']")
        counters = {k: _int(state[k], f"state[{k!r}]", 0)
                    for k in ("num_bad_epochs", "cooldown_counter", "last_epoch")}
        self.__dict__.update(hyper, lr=lr, best=best, **counters)

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in ("lr",) + self._hyper)
        return f"ReduceLROnPlateau({args})"
