"""The optimizer base class: parameter groups, hyperparameters as attributes, schedules,
state_dict round trips.  Subclasses declare their hyperparameters and state arrays and
implement ``_update(group, index, param, grad, state, step, lr, grad_scale)``, which calls
the backend kernel with already-validated arguments.

Every ``step`` validates all parameters, state arrays, gradients and hyperparameters first and
only then runs the kernels, so a failed call leaves every parameter and buffer untouched.

Over a :class:`fastloss.FlatParams` the optimizer has one parameter group and keeps its state
flat too: ``_flat_state`` holds the step count and one block per state array, and each
parameter's ``state[i]`` holds views into those blocks (so ``state_dict()`` looks the same as
for the same arrays given one by one, and either loads into the other).  ``step()`` then makes
one ``_update`` call, over the whole ``data``/``grad`` blocks.  A state entry the user assigns
(``opt.state[i]['exp_avg'] = a``) would not reach those blocks: step() refuses it by name.
There ``state`` is a list and each ``state[i]`` a dict-like mapping (a
``collections.abc.MutableMapping``, not a ``dict``: ``dict(opt.state[i])`` is one) whose
``'step'`` is read from the flat state, so a step writes nothing per parameter; any change
to the list or to a mapping sets one flag, and only then does step() look at the entries.
The group's ``params`` list notes its changes the same way, so a parameter replaced, added or
removed there, or a group added, is refused by name as over separate arrays, at no cost per
parameter when nothing changed.

Copies: ``copy.deepcopy`` and pickle give an independent optimizer over a copy of its
parameters (an optimizer over a FlatParams: over a copy of the FlatParams, with copies of the
state blocks and state views into them, made anew rather than copied one by one).  Copy the
parameters and the optimizer together (``copy.deepcopy((flat, opt))``, one pickle of both)
to get the copied optimizer over the copied parameters.  ``copy.copy`` is refused.
"""
import bisect
import copy
import numbers
import operator
from collections.abc import Mapping, MutableMapping

import numpy as np

from .. import _config
from .. import _validate as V
from .._fast import entry as _E
from ..flat import ALIGN, FlatParams, aligned_empty

# the kernels count steps in int64: the largest step they take
STEP_MAX = V.INT64_MAX   # the kernels count steps in int64
_is = operator.is_


class Optimizer:
    # hyperparameter name -> default; set by subclasses
    _hyper = {}
    # names of per-parameter state arrays (entries may be None until first needed)
    _state_arrays = ()

    def __init__(self, params, defaults, *, backend=None):
        if backend is not None:
            _config._check_name(backend)
        object.__setattr__(self, "backend", backend)
        object.__setattr__(self, "param_groups", [])
        object.__setattr__(self, "state", [])
        # _check_group's memo: id(group) -> (the hyperparameter objects validated, kernel args)
        object.__setattr__(self, "_validated", {})
        object.__setattr__(self, "_hyper_of", operator.itemgetter(*self._hyper))
        flat = params if isinstance(params, FlatParams) else None
        if flat is not None and not flat.params:
            raise ValueError("params: the FlatParams holds no parameters")
        object.__setattr__(self, "_flat", flat)
        object.__setattr__(self, "_flat_state", None)
        groups = [{"params": list(flat.params)}] if flat is not None else self._groups_from(params)
        for g in groups:
            group = dict(defaults)
            extra = set(g) - set(defaults) - {"params"}
            if extra:
                raise ValueError(f"param group: unknown hyperparameters {sorted(extra)}")
            group.update({k: v for k, v in g.items() if k != "params"})
            self._validate_group(group)
            plist = []
            for p in g["params"]:
                V.inplace(p, f"params[{len(self.state)}]")
                plist.append(p)
                self.state.append({"step": 0, **{k: None for k in self._state_arrays}})
            group["params"] = plist
            self.param_groups.append(group)
        if flat is not None:  # views of one block: disjoint by construction
            self._flat_state = {"step": 0, **{k: None for k in self._state_arrays}}
            self._record_params(None)
            return
        ps = self._all_params()
        V.disjoint([(p, f"params[{i}]") for i, p in enumerate(ps)])
        self._record_params(ps)

    # ---- copies -----------------------------------------------------------------------------
    def __getstate__(self):
        """What deepcopy and pickle copy: not the records of the arrays checked (__setstate__
        makes them for the copy's arrays); over a FlatParams, not the views into its blocks
        and into the state blocks either (a view copied on its own becomes an array of its
        own): the group's params are the FlatParams' views (None, made anew for the copy;
        a list holding anything else is kept, and the copy refuses it as the original does),
        and each state entry holding the view it was given is marked _GIVEN, to be given the
        view into the copy's block."""
        state = {k: v for k, v in self.__dict__.items() if k not in _DERIVED}
        if self._flat is not None:
            views = self._flat_views

            def mine(ps):
                return (isinstance(ps, list) and len(ps) == len(views)
                        and all(map(_is, ps, views)))
            state["param_groups"] = [{**g, "params": None} if mine(g.get("params")) else g
                                     for g in self.param_groups]
            given = {k: column for k, (_, column) in zip(self._state_arrays, self._flat_given)}

            def mark(i, st):  # only the optimizer's own mappings hold views it gave
                if type(st) is not _FlatEntries or st._note is not self._flat_note:
                    return st
                return {k: (_GIVEN if v is not None and k in given and i < len(given[k])
                            and v is given[k][i] else v) for k, v in st.items()}
            if isinstance(self.state, list):
                state["state"] = [mark(i, st) for i, st in enumerate(self.state)]
        return state

    def __setstate__(self, state):
        # a copy (copy.deepcopy, pickle) holds new arrays: new ids and addresses to record
        self.__dict__.update(state)
        self._validated = {}
        if self._flat is None:
            self._record_params(self._all_params())
            return
        for g in self.param_groups:
            if g.get("params") is None:  # the views, left out by __getstate__
                g["params"] = list(self._flat.params)
        states = self.state
        if not isinstance(states, list):  # kept as it is: the next step refuses it
            self.state = [{} for _ in self._flat.params]
        self._record_params(None)
        if not isinstance(states, list):
            self.state = states
        for j in range(len(self._state_arrays)):
            self._give_flat_views(j, only_marked=True)
        self._flat_note[0] = True  # the first step checks every entry (one may be the user's)

    def __deepcopy__(self, memo):
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        if self._flat is not None:
            # each state block straight into a new 64-byte-aligned one (numpy's copy would not
            # be aligned, and __setstate__ would copy it again); ours kept alive with the memo
            for k in self._state_arrays:
                b = self._flat_state[k]
                if b is not None and id(b) not in memo:
                    memo[id(b)] = _aligned_copy(b, self._flat.dtype)
                    memo.setdefault(id(memo), []).append(b)
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new

    def __copy__(self):
        raise TypeError(f"copy.copy({type(self).__name__}): a shallow copy would share the state "
                        "arrays and step counts with this optimizer (each step of either would "
                        "update both); use copy.deepcopy for an independent optimizer, over a copy "
                        "of its parameters (deepcopy the parameters and the optimizer together)")

    # ---- parameters ---------------------------------------------------------------------
    @staticmethod
    def _groups_from(params):
        if isinstance(params, np.ndarray):
            raise TypeError("params: must be a list of arrays or of parameter groups, not one array "
                            "(wrap it in a list)")
        try:
            items = list(params)
        except TypeError:
            raise TypeError(f"params: must be a list of arrays or parameter groups, got {type(params).__name__}") from None
        if not items:
            raise ValueError("params: is empty")
        if all(isinstance(x, dict) for x in items):
            for i, g in enumerate(items):
                if "params" not in g:
                    raise ValueError(f"params[{i}]: a parameter group needs a 'params' entry")
                ps = g["params"]
                if isinstance(ps, FlatParams):
                    raise TypeError(f"params[{i}]: a FlatParams is one parameter group: pass it as "
                                    "params itself (per-group hyperparameters need separate arrays)")
                try:
                    ps = [ps] if isinstance(ps, np.ndarray) else list(ps)
                except TypeError:
                    raise TypeError(f"params[{i}]['params']: must be an array or a list of arrays, "
                                    f"got {type(ps).__name__}") from None
                items[i] = {**g, "params": ps}
            return items
        if any(isinstance(x, dict) for x in items):
            raise TypeError("params: mixes arrays and parameter groups")
        return [{"params": items}]

    def _all_params(self):
        return [p for g in self.param_groups for p in g["params"]]

    def _record_params(self, ps):
        """What step() checks the parameters against (they are fixed after construction):
        each one's array, dtype and shape.  No state array is recorded yet: the next step
        verifies them first (_restate).  Over a FlatParams (ps None): its data block's array,
        dtype and shape, and its grad block; and state becomes a _FlatList of _FlatEntries,
        noting changes (_own_entries), no view given yet (_give_flat_views gives them)."""
        if ps is None:
            flat = self._flat
            d = flat.data
            self._flat_layout = (d, d.dtype, d.shape, flat.grad)
            # per state array: the block and the views of it given to the parameters (None)
            self._flat_given = [(None, [None] * len(flat)) for _ in self._state_arrays]
            # set by any change to state, a parameter's entries or the group's params list
            self._flat_note = [False]
            self._own_entries(self.state)
            # the group's params: a list noting any change in _flat_note, holding the views
            # (unless a copy's group holds something else, which its first step then refuses)
            self._flat_views = views = tuple(flat.params)
            plist = _FlatList(views)
            plist._note = self._flat_note
            pg = self.param_groups
            g0 = pg[0] if isinstance(pg, list) and pg and isinstance(pg[0], dict) else None
            if g0 is not None:
                ps = g0.get("params")
                if ps is None or (isinstance(ps, list) and len(ps) == len(views)
                                  and all(map(_is, ps, views))):
                    g0["params"] = plist
            # step()'s quick test: param_groups is [group], group['params'] is plist, unchanged
            self._flat_group = (g0, plist)
            return
        self._pinfo = [(p, p.dtype, p.shape) for p in ps]
        self._state_rec = self._owners = None

    def _restate(self):
        """Verify every state array -- like its parameter, writeable, sharing memory with no
        parameter and no other state array -- and record, for step(), the arrays themselves
        (its quick test: each state entry still holds the recorded array) and, for the
        gradients' overlap test, the ids of the arrays owning the parameters' and states'
        memory and their byte intervals, sorted.  step() calls it when a state entry does not
        hold the recorded array (created, loaded, assigned by the user, or after a copy); an
        error names the array, and nothing is recorded."""
        names = self._state_arrays
        self._check_state_list()
        # (array, parameter index, state name or None for the parameter itself)
        entries = [(p, i, None) for i, (p, _, _) in enumerate(self._pinfo)]
        columns = [[] for _ in names]  # per state name, its array (or None) for each parameter
        for i, (p, dt, shape) in enumerate(self._pinfo):
            st = self.state[i]
            for k, column in zip(names, columns):
                s = st[k]
                if s is not None:
                    # the parameters' quick test; else the full one names what is wrong
                    if not (type(s) is _nd and s.dtype is dt and s.shape == shape and s.flags.carray):
                        V.like(s, _label(i, k), p, f"params[{i}]")
                    entries.append((s, i, k))
                column.append(s)
        # C-contiguous, so [start, start + nbytes) is exact; sorted by start, two of them
        # overlap only if two neighbours do, and when none do the ends are sorted too and one
        # binary search finds the only candidate (_overlapped)
        iv = sorted((lo, lo + a.nbytes, j) for j, (a, _, _) in enumerate(entries) if a.size
                    for lo in (_start(a),))
        for (_, end, j), (start, _, k) in zip(iv, iv[1:]):
            if start < end:  # name the later entry (a state array) first: params are fixed
                (_, *first), (_, *later) = entries[min(j, k)], entries[max(j, k)]
                raise ValueError(f"{_label(*later)} shares memory with {_label(*first)}")
        # a gradient owning its memory can overlap one of these only when it is that array or
        # the array it is a view of -- if each owns its memory or is a view of an array that
        # does (numpy collapses view chains to that array); else None: every gradient takes
        # the interval test
        owners = set()
        for a, _, _ in entries:
            b = a.base
            if not (a.flags.owndata if b is None else type(b) is _nd and b.flags.owndata):
                owners = None
                break
            owners.add(id(a))
            if b is not None:
                owners.add(id(b))
        self._owners = owners
        self._intervals = ([lo for lo, _, _ in iv], [hi for _, hi, _ in iv],
                           [entries[j][1:] for _, _, j in iv])
        self._state_rec = [(operator.itemgetter(k), column) for k, column in zip(names, columns)]
        recorded = [(a, *self._pinfo[i][1:]) for a, i, k in entries if k is not None]
        self._state_fit = tuple(map(list, zip(*recorded))) if recorded else ([], [], [])

    def _state_unchanged(self):
        """True when every state entry holds the array _restate recorded (or None, as then),
        compared by identity: one pass per state name in C, no Python code per parameter, and
        each recorded array still C-contiguous, aligned, writeable and of its dtype and shape
        (made read-only, retyped or reshaped in place since: _restate names it), one C call
        for all of them (entry.c's first_unfit, ~10 ns an array; the same test in Python
        measured ~0.45 us a parameter for Adam with amsgrad, whose whole step takes ~1.3 us a
        parameter of 16 elements).  numpy refuses to resize a recorded array while the record
        holds it (refcheck), so the kernels stay within the memory verified."""
        states = self.state
        if type(states) is not list or len(states) != len(self._pinfo):
            return False  # _restate names what is wrong
        try:
            if not all(all(map(_is, map(get, states), arrays)) for get, arrays in self._state_rec):
                return False
        except (KeyError, TypeError):  # an entry deleted, a state that is no dict: _restate names it
            return False
        return _E.first_unfit(*self._state_fit) < 0

    def _check_state_list(self):
        """The state's structure, before a step over separate arrays: the optimizer's list of
        one dict per parameter, each with its 'step' and every state array entry (None until
        created); raises naming what is wrong."""
        n, states = len(self._pinfo), self.state
        if not isinstance(states, list) or len(states) != n:
            raise ValueError(_bad_state_list(n, states))
        for i, st in enumerate(states):
            if not isinstance(st, dict):
                raise TypeError(f"state[{i}]: must be a dict, got {type(st).__name__}")
            if "step" not in st:
                raise ValueError(f"state[{i}]: has no 'step' entry")
            for k in self._state_arrays:
                if k not in st:
                    raise ValueError(f"state[{i}]: has no {k!r} entry (None: created when needed)")

    def _check_state_entries(self):
        """Before state_dict(): the state's structure, and no entry load_state_dict() would
        refuse (an entry added to a parameter's dict by hand: step() never reads it)."""
        if self._flat is not None:
            return  # its state[i] mappings refuse an assigned entry
        self._check_state_list()
        known = ("step", *self._state_arrays)
        for i, st in enumerate(self.state):
            unknown = next((e for e in st if e not in known), _NONE)
            if unknown is not _NONE:
                raise ValueError(f"state[{i}]: unknown entry {unknown!r} (expected "
                                 f"{', '.join(map(repr, known))}); a state_dict() holding it would "
                                 "not load")

    def _check_group_entries(self, k, group):
        """param_groups[k] is a dict with every hyperparameter and 'params' (the slow path of
        an error step() met reading it); raises naming what is missing."""
        if not isinstance(group, dict):
            raise TypeError(f"param_groups[{k}]: must be a dict, got {type(group).__name__}")
        for h in (*self._hyper, "params"):
            if h not in group:
                raise ValueError(f"param_groups[{k}]: has no {h!r} entry")
        ps = group["params"]
        if not isinstance(ps, (list, tuple)):
            raise TypeError(f"params: param_groups[{k}]['params'] must be a list of arrays, got "
                            f"{type(ps).__name__}")

    def _check_groups(self, pg):
        """param_groups pg is a list of dicts, each with every hyperparameter and its params
        (what an error met reading them means); raises naming what is wrong."""
        if not isinstance(pg, (list, tuple)):
            raise TypeError(f"param_groups: must be a list of parameter groups (dicts), got "
                            f"{type(pg).__name__}")
        for k, g in enumerate(pg):
            self._check_group_entries(k, g)

    def _check_structure(self):
        """After a KeyError, IndexError or TypeError in step()'s checks over separate arrays
        (the slow path: the quick one reads entries without asking): raises naming the group or
        state entry that is missing or of the wrong kind, if one is; else returns, and step()
        raises what it met."""
        self._check_groups(self.param_groups)
        self._check_state_list()

    def _overlapped(self, a):
        """Name of the parameter or state array C-contiguous array a shares memory with, or None."""
        if not a.size:
            return None
        lo = _start(a)
        starts, ends, which = self._intervals
        k = bisect.bisect_left(starts, lo + a.nbytes) - 1  # the last one starting before a ends
        return _label(*which[k]) if k >= 0 and ends[k] > lo else None

    def _check_param(self, i, p):
        """Full check of parameter i before a step (the quick one failed): raises unless it is
        still the writeable, C-contiguous array of the dtype and shape it was at construction
        (it may be unaligned, as then)."""
        q, dt, shape = self._pinfo[i] if i < len(self._pinfo) else (None, None, None)
        if p is not q:  # also when there are more parameters than at construction
            raise ValueError(_changed(i))
        V.inplace(p, f"params[{i}]")
        if p.dtype != dt:
            raise TypeError(f"params[{i}]: dtype changed from {dt} to {p.dtype} after construction")
        if p.shape != shape:
            raise ValueError(f"params[{i}]: shape changed from {shape} to {p.shape} after construction")

    def _check_grad(self, i, g, p):
        """Full check of grads[i] (the quick one failed): like params[i], overlapping no
        parameter and no state array."""
        V.like(g, f"grads[{i}]", p, f"params[{i}]", writeable=False)
        name = self._overlapped(g)
        if name is not None:
            raise ValueError(f"grads[{i}] shares memory with {name}")

    @staticmethod
    def _check_count(s, name):
        """A step count held in state before a step: an int in [0, STEP_MAX), so step + 1
        fits the kernels' int64."""
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (numbers.Integral, np.integer)):
            raise TypeError(f"{name}: must be an int (the number of steps taken), got {type(s).__name__}")
        if not 0 <= s < STEP_MAX:
            raise ValueError(f"{name}: must be in [0, 2**63 - 1) (the next step must fit the kernels' "
                             f"int64), got {s}")
        return int(s)

    # ---- hyperparameters as attributes ------------------------------------------------------
    def __getattr__(self, name):
        if name in type(self)._hyper:
            try:
                vals = [g[name] for g in self.param_groups]
            except (KeyError, TypeError):  # a group edited: named (else what was met)
                self._check_groups(self.param_groups)
                raise
            if not vals:
                raise AttributeError(f"{name}: param_groups is empty")
            if all(v is vals[0] or v == vals[0] for v in vals):
                return vals[0]
            raise AttributeError(f"{name}: differs between parameter groups; read param_groups[i][{name!r}]")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in type(self)._hyper:
            pg = self.param_groups
            try:  # validate every group before changing any
                for g in pg:
                    self._validate_group({**g, name: value})
            except (KeyError, TypeError):  # a group edited: named (else what was met)
                if isinstance(pg, (list, tuple)):
                    pg = [{**g, name: value} if isinstance(g, dict) else g for g in pg]
                self._check_groups(pg)
                raise
            for g in self.param_groups:
                g[name] = value
        elif name == "backend":
            if value is not None:
                _config._check_name(value)
            object.__setattr__(self, name, value)
        else:
            object.__setattr__(self, name, value)

    def _validate_group(self, group):
        raise NotImplementedError

    @staticmethod
    def _check_lr(lr, name="lr"):
        if callable(lr):
            return lr
        return V.nonneg(lr, name)

    @staticmethod
    def _lr_at(lr, t):
        """The learning rate of update number t + 1: a float, or schedule(t)."""
        if callable(lr):
            v = lr(t)
            return V.nonneg(v, f"lr schedule value at step {t}")
        return float(lr)

    # ---- the update ---------------------------------------------------------------------
    def step(self, grads=None, *, grad_scale=1.0):
        """One update of every parameter, in place. ``grads``: a sequence of arrays matching
        the parameters (same order, shapes and dtypes).  Over a FlatParams: None (its
        ``grad`` block) or one flat array like its ``data``, and one kernel call updates
        every parameter.  ``grad_scale`` multiplies every gradient first (clipping or loss
        scaling at no extra pass)."""
        if self._flat is not None:
            return self._step_flat(grads, grad_scale)
        grads = self._grads_list(grads)
        gs = V.finite(grad_scale, "grad_scale")
        info, states = self._pinfo, self.state
        # the state arrays: still the ones recorded (the quick test, by identity); else they
        # are verified and recorded again after the parameters' checks, and every gradient
        # takes the full check
        stale = self._state_rec is None or not self._state_unchanged()
        owners = None if stale else self._owners
        n = len(info)
        plan, slow = [], []
        i = 0
        try:  # free in the common case; an entry missing or of the wrong kind: named below
            for group in self.param_groups:
                self._check_group(group)
                # a float lr is the same for every parameter; a schedule's depends on the step
                sched = group["lr"] if callable(group["lr"]) else None
                lr = float(group["lr"]) if sched is None else None
                for p in group["params"]:
                    if i == n:
                        self._check_param(i, p)  # more parameters than at construction: raises
                    # parameter i: still the array, dtype, shape checked at construction, and
                    # C-contiguous, aligned and writeable (the quick test; else the full one)
                    q, dt, shape = info[i]
                    if not (p is q and p.dtype is dt and p.shape == shape and p.flags.carray):
                        self._check_param(i, p)
                    g = grads[i]
                    # a gradient owning its memory that is no parameter or state array and owns
                    # the memory of none: the quick way; else the full check, after the loop
                    if not (type(g) is _nd and g.dtype is dt and g.shape == shape
                            and owners is not None and (f := g.flags).owndata and f.c_contiguous
                            and id(g) not in owners):
                        slow.append(i)
                    st = states[i]
                    s = st["step"]
                    if not (type(s) is int and 0 <= s < STEP_MAX):
                        s = self._check_count(s, f"state[{i}]['step']")
                    plan.append((group, i, p, g, st, s + 1,
                                 lr if sched is None else self._lr_at(sched, s)))
                    i += 1
        except (KeyError, IndexError, TypeError):
            self._check_structure()  # raises naming the entry, if one is malformed
            raise  # else what was met (a schedule's own error, a step count's type)
        if i != n:
            raise ValueError(_count_changed(i, n))
        if stale:
            self._restate()
        for i in slow:  # every gradient when stale (owners None)
            self._check_grad(i, grads[i], info[i][0])
        self._prepare(plan)  # new state arrays: recorded (verified) at the next step
        kernels = _config.module(self.backend)
        for group, i, p, g, st, step, lr in plan:
            self._update(kernels, group, p, g, st, step, lr, gs)
            st["step"] = step

    def _prepare(self, plan):
        """Allocate state arrays a step needs (after validation, before any write)."""

    def _check_group(self, group):
        """_validate_group, skipped when the group holds the very objects validated last time
        (any change, also one made directly in param_groups, is validated again: compared by
        identity, as ``True == 1.0`` and ``0 == False`` although only one of each pair is
        valid).  Returns the group's ``_kernel_args``, computed once per validated set of
        values."""
        key = self._hyper_of(group)
        hit = self._validated.get(id(group))
        if hit is not None and all(map(_is, key, hit[0])):
            return hit[1]
        self._validate_group(group)
        args = self._kernel_args(group)
        # the memo holds the objects themselves (so their ids stay theirs); a mutable value
        # (betas as a list) can change in place: such a group is validated at every step
        self._validated[id(group)] = (key if all(map(_frozen, key)) else _NEVER, args)
        return args

    def _kernel_args(self, group):
        """A validated group's hyperparameters as the kernel takes them (subclasses)."""
        return None

    def _args(self, group):
        """_kernel_args of a group _check_group passed in this step (for ``_update``)."""
        return self._validated[id(group)][1]

    # ---- FlatParams: one call per step -------------------------------------------------------
    def _step_flat(self, grads, grad_scale):
        flat = self._flat
        data0, dt, shape, grad0 = self._flat_layout
        d = flat.data
        # the data block: still the C-contiguous, aligned, writeable block the state was laid
        # out for (the quick test; else the full one names what changed)
        if not (d is data0 and d.dtype is dt and d.shape == shape and d.flags.carray):
            self._check_flat_data(d)
        if grads is None:
            g = flat.grad
            if g is not grad0:  # rebound: check it as a given array
                g = self._flat_grads(g, "flat.grad")
        else:
            if isinstance(grads, FlatParams):
                raise TypeError("grads: pass None to use this FlatParams' own grad block, or one "
                                "flat array")
            if not isinstance(grads, np.ndarray):
                raise TypeError("grads: an optimizer over a FlatParams takes grads=None (flat.grad) "
                                f"or one flat array like flat.data, got {type(grads).__name__}")
            g = self._flat_grads(grads, "grads")
        gs = V.finite(grad_scale, "grad_scale")
        # param_groups: still [the group], its params the list of views given, unchanged (the
        # quick test, O(1): that list notes any change in _flat_note, as the state does); else
        # the full one names the entry
        note, pg = self._flat_note, self.param_groups
        group, plist = self._flat_group
        if note[0] or not (type(pg) is list and len(pg) == 1 and pg[0] is group
                           and group.get("params") is plist):
            group = self._check_flat_groups()
        try:
            self._check_group(group)
        except (KeyError, TypeError):  # a hyperparameter deleted: named; else what was met
            self._check_group_entries(0, group)
            raise
        st = self._flat_state
        s = st["step"]
        if not (type(s) is int and 0 <= s < STEP_MAX):
            s = self._check_count(s, "state[0]['step']")
        # nothing changed in state or in a parameter's entries since the last step (the quick
        # test, O(1): the list and the mappings set _flat_note on any change; a plain list the
        # user put in place holding the same mappings takes one identity pass); else the full
        # one names a state entry the kernels would ignore
        states = self.state
        checked = note[0] or (states is not self._flat_list and not (
            type(states) is list and len(states) == len(self._flat_entries)
            and all(map(_is, states, self._flat_entries))))
        if checked:
            s = self._check_flat_entries(s)
        lr = self._lr_at(group["lr"], s)
        step = s + 1
        self._prepare([(group, 0, d, g, st, step, lr)])
        self._adopt_flat_state()
        self._update(_config.module(self.backend), group, d, g, st, step, lr, gs)
        st["step"] = step  # every state[i]['step'] reads it
        if checked:  # counts the user set (all equal, taken): read from the flat state again
            for e in self._flat_entries:
                e._d["step"] = _SHARED
            note[0] = False

    def _check_flat_entries(self, s):
        """The full check of the state entries over a FlatParams (the quick one failed):
        returns the step count to take, or raises naming the entry, before anything is written.
        state[i] must still be the optimizer's dict, and each of its state arrays the view
        into flat block k it was given (None while there is no block): the kernels update
        the blocks, so an array (or a dict) put in its place would be ignored, and
        state_dict() would report it.  The step counts may have been set: taken when every
        parameter has the same valid one (as load_state_dict takes them), refused when they
        differ."""
        states, entries = self.state, self._flat_entries
        n = len(entries)
        if not isinstance(states, list) or len(states) != n:
            raise ValueError(_bad_state_list(n, states))
        steps = []
        for i, st in enumerate(states):
            if st is not entries[i]:
                raise ValueError(f"state[{i}]: was replaced, but over a FlatParams it must stay the "
                                 "optimizer's dict, whose entries are views into the flat blocks the "
                                 "kernels update (a dict put in its place would be ignored); change "
                                 f"the entries within it (opt.state[{i}][k][...] = x) or use "
                                 "load_state_dict")
            for k, (_, column) in zip(self._state_arrays, self._flat_given):
                if k not in st:
                    raise ValueError(f"state[{i}]: has no {k!r} entry")
                if st[k] is not column[i]:
                    how = (f"write into that view (opt.state[{i}][{k!r}][...] = x) or use "
                           "load_state_dict" if column[i] is not None else "use load_state_dict")
                    raise ValueError(
                        f"state[{i}][{k!r}]: was assigned, but over a FlatParams it must stay "
                        + ("None until the optimizer creates its flat block" if column[i] is None
                           else "the view into the optimizer's flat block it was given")
                        + f": the kernels update the flat {k!r} block, so an array assigned here "
                        f"would be ignored; {how}")
            if "step" not in st:
                raise ValueError(f"state[{i}]: has no 'step' entry")
            v = st["step"]
            steps.append(v if v is s else self._check_count(v, f"state[{i}]['step']"))
        odd = next((i for i, v in enumerate(steps) if v != steps[0]), None)
        if odd is not None:
            i = 0 if steps[odd] == s else odd  # name a count that was set, not one left as it was
            j = next(j for j, v in enumerate(steps) if v != steps[i])
            raise ValueError(f"state[{i}]['step']: {steps[i]}, while state[{j}]['step'] is "
                             f"{steps[j]}: an optimizer over a FlatParams takes each step for every "
                             "parameter together (set the same count for all, or use load_state_dict)")
        return steps[0]

    def _check_flat_groups(self):
        """The full check of param_groups over a FlatParams (the quick one failed): returns
        the group to step with, or raises naming the entry, before anything is written.  There
        must be one group, a dict with every hyperparameter, whose 'params' holds the
        FlatParams' views, in order, as at construction: the kernel updates the whole data
        block, so a parameter replaced, added or removed there, or another group, would be
        ignored.  A group replaced by a dict holding the same list, or a list put in place
        holding the same views, is taken (the former is recorded for the quick test)."""
        pg = self.param_groups
        if not isinstance(pg, list):
            raise TypeError(f"param_groups: must be a list of parameter groups (dicts), got "
                            f"{type(pg).__name__}")
        if len(pg) != 1:
            raise ValueError(f"param_groups: an optimizer over a FlatParams has one parameter group, "
                             f"got {len(pg)} (its parameters are fixed; build a new one)")
        group = pg[0]
        self._check_group_entries(0, group)
        ps = group["params"]
        plist = self._flat_group[1]
        _check_same(ps, self._flat_views)
        if ps is plist:  # (a group replaced by a dict holding it) the quick test's again
            self._flat_group = (group, plist)
        return group

    def _check_flat_data(self, d):
        data0, dt, shape, _ = self._flat_layout
        if d is not data0:
            raise ValueError("params: the FlatParams' data block was rebound after construction "
                             "(write into it, flat.data[...] = x)")
        V.inplace(d, "params (the FlatParams data block)")
        if d.dtype != dt or d.shape != shape:
            raise ValueError(f"params: the FlatParams data block changed from {dt} {shape} to "
                             f"{d.dtype} {d.shape} after construction")

    def _flat_grads(self, g, name):
        """A gradient block given or rebound: like the data block, sharing memory neither with
        it nor with a state block (when g owns its memory, a block can share it only by being
        g or a view of g)."""
        g = V.like(g, name, self._flat.data, "the FlatParams data block", writeable=False)
        if np.may_share_memory(g, self._flat.data):
            raise ValueError(f"{name} shares memory with the FlatParams data block")
        st, owns = self._flat_state, g.flags.owndata
        for k in self._state_arrays:
            b = st[k]
            if b is not None and (b is g or b.base is g or not owns and np.may_share_memory(g, b)):
                raise ValueError(f"{name} shares memory with the optimizer's {k!r} state (the flat "
                                 f"block that state[i][{k!r}] are views of)")
        return g

    def _adopt_flat_state(self):
        """Give each parameter views into every flat state block that is new since views
        were last given (_prepare or _init_state just created it)."""
        st, given = self._flat_state, self._flat_given
        for j, name in enumerate(self._state_arrays):
            if st[name] is not given[j][0]:
                self._give_flat_views(j)

    def _give_flat_views(self, j, only_marked=False):
        """Set each parameter's state[i][k], k the j-th state array, to its view into flat
        block k (None while there is no block), the block first moved to a 64-byte boundary
        (and to the FlatParams' own dtype object) if it is not there, and record the views
        for step()'s test.  only_marked: only the entries a copy marked _GIVEN (__setstate__);
        an array the user had assigned stays, and the copy refuses it as the original does."""
        name, st, flat = self._state_arrays[j], self._flat_state, self._flat
        blk = st[name]
        if blk is not None and (blk.ctypes.data % ALIGN or blk.dtype is not flat.dtype):
            st[name] = blk = _aligned_copy(blk, flat.dtype)
        column = [None] * len(flat) if blk is None else flat.views(blk)
        for e, v in zip(self._flat_entries, column):
            d = e._d  # the optimizer's own write: not noted
            if not only_marked or d.get(name) is _GIVEN:
                d[name] = v
        self._flat_given[j] = (blk, column)

    def _own_entries(self, states):
        """Make state a _FlatList (the one it is, if it is) of one _FlatEntries per dict in
        states, with its entries, noting changes in _flat_note, and record them (step() checks
        that state holds them).  A step count equal to the flat one is read from the flat state
        (else kept, and the next step checks it).  Something not a dict (in a copy of an
        optimizer whose state was so replaced) stays, and the next step refuses it."""
        note, flat_state = self._flat_note, self._flat_state
        entries = [_FlatEntries(st if isinstance(st, dict) else (), flat_state, note)
                   for st in states]
        new = [e if isinstance(st, dict) else st for e, st in zip(entries, states)]
        lst = self.__dict__.get("_flat_list")
        if lst is None:
            lst = self._flat_list = _FlatList()
            lst._note = note
        list.__setitem__(lst, slice(None), new)
        self.state = lst
        self._flat_entries = tuple(entries)
        n, changed = flat_state["step"], False
        for e, st in zip(entries, states):
            d = e._d
            v = d.get("step")  # None: no count (or not a dict), which the next step refuses
            if v is n or (type(v) is int and v == n):
                d["step"] = _SHARED
            else:
                changed = True
        note[0] = changed

    def _init_state(self, name, value):
        """Create state array ``name`` for every parameter now, filled with value(group)
        (e.g. Adagrad's initial accumulator)."""
        if self._flat is not None:
            blk = aligned_empty(self._flat.size, self._flat.dtype)
            blk[...] = value(self.param_groups[0])
            self._flat_state[name] = blk
            self._adopt_flat_state()
            return
        i = 0
        for g in self.param_groups:
            for p in g["params"]:
                self.state[i][name] = np.full_like(p, value(g))
                i += 1

    def _grads_list(self, grads):
        """grads as a list of one entry per parameter (step() checks each one)."""
        if grads is None:
            raise ValueError("grads: required (a sequence of arrays matching the parameters); only "
                             "an optimizer over a FlatParams takes grads=None")
        if isinstance(grads, np.ndarray):
            grads = [grads]
        grads = list(grads)
        if len(grads) != len(self._pinfo):
            raise ValueError(f"grads: {len(grads)} arrays for {len(self._pinfo)} parameters")
        return grads

    # ---- state --------------------------------------------------------------------------
    def state_dict(self):
        """Copies of the state and the hyperparameters: {'state': {i: {...}}, 'param_groups':
        [{..., 'params': [indices]}]}."""
        self._check_state_entries()
        state = {}
        for i, st in enumerate(self.state):
            state[i] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
        groups, i = [], 0
        for g in self.param_groups:
            n = len(g["params"])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": list(range(i, i + n))})
            i += n
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a state_dict() of an optimizer of the same kind over parameters of the same
        shapes and dtypes: everything is checked before anything changes; arrays are copied.

        The format is torch.optim's: ``param_groups`` holds each group's hyperparameters and,
        in ``params``, the ids of its parameters (distinct ints; state_dict() numbers them 0,
        1, ... in order), and ``state`` maps each id (an int, or its str as after a JSON round
        trip) to that parameter's ``step`` and every state array (None where not created yet),
        nothing else.  As torch does, the ids are matched to this optimizer's parameters by
        position: the j-th id listed, over the groups in order, is ``params[j]``'s."""
        if not (isinstance(state_dict, dict) and "state" in state_dict and "param_groups" in state_dict):
            raise ValueError("state_dict: needs 'state' and 'param_groups' entries (a dict from "
                             f"state_dict()), got {type(state_dict).__name__}")
        groups, state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(groups, (list, tuple)):
            raise TypeError("state_dict: 'param_groups' must be a list of dicts, got "
                            f"{type(groups).__name__}")
        if not isinstance(state, dict):
            raise TypeError(f"state_dict: 'state' must be a dict {{parameter id: {{...}}}}, got "
                            f"{type(state).__name__}")
        # this optimizer's own groups first: the parameters the state is loaded for
        if self._flat is not None:
            self._check_flat_groups()
            params = self._flat_views
        else:
            self._check_list_groups()
            params = [q for q, _, _ in self._pinfo]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict: {len(groups)} parameter groups, this optimizer has {len(self.param_groups)}")
        new_groups = []
        ids, listed = [], {}  # the saved id of each parameter, in order; id -> where it is listed
        for k, (g, mine) in enumerate(zip(groups, self.param_groups)):
            name = f"state_dict: param_groups[{k}]"
            if not isinstance(g, dict):
                raise TypeError(f"{name}: must be a dict, got {type(g).__name__}")
            torch_option = next((t for t in _TORCH_OPTIONS if t in g), None)
            if torch_option is not None:
                raise ValueError(f"{name}: has {torch_option!r}, an option of torch.optim: {_TORCH_SD}")
            if "params" not in g:
                raise ValueError(f"{name}: has no 'params' entry")
            if not isinstance(g["params"], (list, tuple, range)):
                raise TypeError(f"{name}['params']: must be a list of parameter ids, got "
                                f"{type(g['params']).__name__}")
            if len(g["params"]) != len(mine["params"]):
                raise ValueError(f"state_dict: group {k} has {len(g['params'])} parameters, expected {len(mine['params'])}")
            for m, pid in enumerate(g["params"]):
                where = f"{name}['params'][{m}]"
                if isinstance(pid, (bool, np.bool_)) or not isinstance(pid, (int, np.integer)):
                    raise TypeError(f"{where}: must be an int (a parameter id, its key in "
                                    f"state_dict['state']), got {type(pid).__name__} {pid!r}")
                pid = int(pid)
                if pid in listed:
                    raise ValueError(f"{where}: parameter id {pid} is listed twice (also at "
                                     f"{listed[pid]}); each parameter has its own id")
                listed[pid] = where.partition(": ")[2]
                ids.append(pid)
            extra = set(g) - set(self._hyper) - {"params"}
            if extra:  # as the constructor: a misspelt hyperparameter is an error, not ignored
                raise ValueError(f"{name}: unknown hyperparameters {sorted(extra, key=str)}")
            ng = {**mine, **{h: v for h, v in g.items() if h != "params"}}
            try:
                self._validate_group(ng)
            except (TypeError, ValueError) as e:
                raise type(e)(f"{name}: {e}") from None
            new_groups.append(ng)
        # every key of 'state' one of those ids (as an int or its str), each at most once
        keyed = {}  # id -> its key in state, and how errors name it
        for key in state:
            pid = _param_id(key)
            if pid is None:
                raise TypeError(f"state_dict: state[{key!r}]: a key of 'state' must be a parameter "
                                f"id (an int listed in param_groups[...]['params']), got "
                                f"{type(key).__name__}")
            kname = repr(key) if isinstance(key, str) else str(pid)  # (np.int64(3) as 3)
            if pid in keyed:
                raise ValueError(f"state_dict: state[{kname}] and state[{keyed[pid][1]}] are both "
                                 f"parameter id {pid}'s state")
            if pid not in listed:
                raise ValueError(f"state_dict: state[{kname}]: parameter id {pid} is in no parameter "
                                 f"group (param_groups[...]['params'] list {_ids_text(ids)})")
            keyed[pid] = key, kname
        entries = ("step", *self._state_arrays)
        expected = ", ".join(map(repr, entries))
        new_state = []
        for i, (p, pid) in enumerate(zip(params, ids)):
            if pid not in keyed:
                at = "" if pid == i else f" (params[{i}], listed at {listed[pid]})"
                raise ValueError(f"state_dict: no state for parameter {pid}{at}")
            key, kname = keyed[pid]
            sname = f"state_dict: state[{kname}]"
            st = state[key]
            if not isinstance(st, dict):
                raise TypeError(f"{sname} must be a dict, got {type(st).__name__}")
            step = st.get("step")  # (missing: refused below, after torch's is named)
            if type(step).__module__.partition(".")[0] == "torch":  # no import of torch needed
                raise TypeError(f"{sname}['step']: a {type(step).__name__}, as torch.optim "
                                f"keeps it: {_TORCH_SD}")
            unknown = next((e for e in st if e not in entries), _NONE)
            if unknown is not _NONE:  # a misspelt array would be dropped, and start again at zero
                raise ValueError(f"{sname}: unknown entry {unknown!r} (expected {expected})")
            missing = next((e for e in entries if e not in st), None)
            if missing is not None:
                raise ValueError(f"{sname}: has no {missing!r} entry (a state_dict() has "
                                 f"{expected}; None for an array not created yet)")
            if not (type(step) is int and step == 0):
                step = self._check_count(step, f"{sname}['step']")
            ns = {"step": step}
            for name in self._state_arrays:
                v = st[name]
                if v is not None:
                    V.like(np.asarray(v), f"{sname}[{name!r}]", p, f"params[{i}]",
                           writeable=False)
                    v = np.array(v, copy=True)
                ns[name] = v
            new_state.append(ns)
        if self._flat is not None:
            self._check_flat_state(new_state)
        for g, ng in zip(self.param_groups, new_groups):
            g.update(ng)
        if self._flat is not None:
            self._load_flat_state(new_state)
        else:
            if isinstance(self.state, list):
                self.state[:] = new_state
            else:  # one the user put in place (the next step would have refused it)
                self.state = new_state
            self._state_rec = None  # new arrays: the next step verifies and records them

    def _check_list_groups(self):
        """Over separate arrays: param_groups is a list of dicts with every hyperparameter,
        whose 'params' hold, over the groups in order, the parameters given at construction;
        raises naming what is wrong (what step() would refuse)."""
        pg = self.param_groups
        self._check_groups(pg)
        _check_same([p for g in pg for p in g["params"]], [q for q, _, _ in self._pinfo])

    def _check_flat_state(self, new_state):
        steps = {ns["step"] for ns in new_state}
        if len(steps) > 1:
            raise ValueError(f"state_dict: an optimizer over a FlatParams updates every parameter "
                             f"together, but the step counts differ: {sorted(steps)}")
        for name in self._state_arrays:
            have = [ns[name] is not None for ns in new_state]
            if any(have) and not all(have):
                raise ValueError(f"state_dict: {name!r} is present for some parameters only; an "
                                 "optimizer over a FlatParams keeps it for all or none")

    def _load_flat_state(self, new_state):
        """Copy a validated per-parameter state into the flat blocks (allocated if needed);
        every parameter's state entries become new, as for separate arrays: the step count and
        the views into the blocks (whatever had been assigned there is replaced)."""
        st, flat = self._flat_state, self._flat
        st["step"] = step = new_state[0]["step"]
        self._own_entries([{"step": step} for _ in new_state])
        for j, name in enumerate(self._state_arrays):
            if new_state[0][name] is None:
                st[name] = None
            elif st[name] is None:
                st[name] = aligned_empty(flat.size, flat.dtype)
            self._give_flat_views(j)
            for v, ns in zip(self._flat_given[j][1], new_state):
                if v is not None:
                    v[...] = ns[name]


# what __getstate__ leaves out: the records of the arrays checked, made anew for a copy's arrays
_DERIVED = frozenset({"_validated", "_pinfo", "_state_rec", "_state_fit", "_owners", "_intervals",
                      "_flat_layout", "_flat_given", "_flat_note", "_flat_entries", "_flat_list", "_flat_group",
                      "_flat_views"})


def _noting(method):
    def noted(self, *args, **kwargs):
        self._note[0] = True
        return method(self, *args, **kwargs)
    noted.__name__ = method.__name__
    return noted


class _FlatList(list):
    """The state list of an optimizer over a FlatParams, and its group's params list: a list
    that notes any change made to it in the optimizer's _flat_note (step() then checks every
    entry).  A copy of it (copy, pickle, list()) is a plain list."""
    __slots__ = ("_note",)
    __setitem__ = _noting(list.__setitem__)
    __delitem__ = _noting(list.__delitem__)
    __iadd__ = _noting(list.__iadd__)
    __imul__ = _noting(list.__imul__)
    append = _noting(list.append)
    extend = _noting(list.extend)
    insert = _noting(list.insert)
    pop = _noting(list.pop)
    remove = _noting(list.remove)
    clear = _noting(list.clear)
    sort = _noting(list.sort)
    reverse = _noting(list.reverse)

    def __reduce__(self):
        return list, (list(self),)


class _FlatEntries(MutableMapping):
    """A parameter's state in an optimizer over a FlatParams: a mapping that reads like the
    dict a parameter has over separate arrays (its 'step' and its state arrays, views into the
    flat blocks), but is no dict: its 'step' is the flat state's count, read when asked (a
    step writes nothing per parameter), and any change made to it (also through update, pop,
    setdefault, clear, |=) notes in the optimizer's _flat_note that step() must check every
    entry (the kernels update the flat blocks and would ignore an entry rebound).  The
    optimizer writes its views into _d directly, not noted.  A copy of one (copy, pickle,
    dict(), .copy(), |) is a plain dict with a plain int step."""
    __slots__ = ("_d", "_flat_state", "_note")

    def __init__(self, entries, flat_state, note):
        self._d = dict(entries)  # 'step': _SHARED while it is the flat state's count
        self._flat_state = flat_state
        self._note = note

    def __getitem__(self, k):
        v = self._d[k]
        return self._flat_state["step"] if v is _SHARED else v

    def __setitem__(self, k, v):
        self._note[0] = True
        self._d[k] = v

    def __delitem__(self, k):
        del self._d[k]
        self._note[0] = True

    def __contains__(self, k):
        return k in self._d

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def copy(self):
        return dict(self)

    def __or__(self, other):
        return {**self, **other} if isinstance(other, Mapping) else NotImplemented

    def __ror__(self, other):
        return {**other, **self} if isinstance(other, Mapping) else NotImplemented

    def __ior__(self, other):
        self.update(other)
        return self

    def __reduce__(self):
        return dict, (dict(self),)

    def __repr__(self):
        return repr(dict(self))


class _Shared:
    """In a _FlatEntries: its 'step' is the flat state's count."""

    def __repr__(self):
        return "<the flat step count>"


_SHARED = _Shared()


class _Given:
    """In a copy's state (__getstate__): an entry that held the view into its flat block the
    optimizer gave it, given the view into the copy's block (pickled by name: one object)."""

    def __reduce__(self):
        return "_GIVEN"

    def __repr__(self):
        return "<the view into the flat block>"


_GIVEN = _Given()


def _aligned_copy(a, dtype):
    """A copy of 1-D array a in a new 64-byte-aligned block of dtype."""
    b = aligned_empty(a.size, dtype)
    b[...] = a
    return b


# ---- the functional kernels' array checks ---------------------------------------------------
_nd = np.ndarray
_F32, _F64 = V.F32, V.F64


def _frozen(v):
    """True for a validated hyperparameter that cannot change in place: a number, a bool, a
    schedule (its values are checked at every step) or a tuple of such."""
    if type(v) is tuple:
        return all(map(_frozen, v))
    return isinstance(v, (numbers.Number, np.generic, str)) or callable(v)


def _changed(i):
    """The error for params[i] replaced in (or added to) param_groups after construction."""
    return (f"params[{i}]: param_groups[...]['params'] changed after construction (an optimizer's "
            "parameters are fixed; build a new one)")


def _count_changed(m, n):
    """The error for m parameters in param_groups, n at construction (m < n)."""
    return (f"params: {m} parameters in param_groups, the optimizer was built over {n} (its "
            "parameters are fixed; build a new one)")


def _check_same(ps, fixed):
    """Raises, naming the first difference, unless sequence ps holds the arrays of fixed (the
    parameters at construction), in order: one identity pass, no Python code per parameter."""
    n = len(fixed)
    if len(ps) == n and all(map(_is, ps, fixed)):
        return
    i = next((i for i, (p, q) in enumerate(zip(ps, fixed)) if p is not q), min(len(ps), n))
    if i < len(ps):  # one replaced, or one more than at construction
        raise ValueError(_changed(i))
    raise ValueError(_count_changed(len(ps), n))


def _param_id(key):
    """A key of a state_dict's 'state' as the parameter id it names (an int, or the str of
    one, as JSON writes the keys), or None."""
    if isinstance(key, (bool, np.bool_)):
        return None
    if isinstance(key, (int, np.integer)):
        return int(key)
    if type(key) is str and key.lstrip("-").isdigit() and key.isascii() and str(int(key)) == key:
        return int(key)
    return None


def _ids_text(ids):
    """The parameter ids of a state_dict's groups, as an error message shows them."""
    if ids == list(range(len(ids))):
        return f"ids 0 to {len(ids) - 1}" if ids else "no ids"
    shown = ", ".join(map(str, sorted(ids)[:8]))
    return f"ids {shown}" + (", ..." if len(ids) > 8 else "")


def _bad_state_list(n, states):
    """The error for a state that is not the optimizer's list of n dicts."""
    got = f"a list of {len(states)}" if isinstance(states, list) else f"a {type(states).__name__}"
    return (f"state: must be the optimizer's list of {n} dicts, one per parameter (its parameters "
            f"are fixed), got {got}")


def _label(i, k):
    """How errors name parameter i (k None) or its state array k."""
    return f"params[{i}]" if k is None else f"state[{i}][{k!r}]"


def _start(a):
    """Address of a's first byte (a C-contiguous array spans [start, start + a.nbytes))."""
    return a.__array_interface__["data"][0]


# parameter-group options torch.optim has and fastloss does not: a state_dict with one is torch's
_TORCH_OPTIONS = ("foreach", "fused", "capturable", "differentiable")
_TORCH_SD = ("this is a torch.optim state_dict, which cannot be loaded (put its tensors' values, "
             "as arrays, and int step counts into this optimizer's own state_dict() and load that)")

_NEVER = (object(),)  # a memo key: its first object is no hyperparameter, so never a hit
_NONE = object()  # "no such state array" (None itself is a missing array: the slow path names it)


def _state_ok(s, dt, shape):
    return (type(s) is _nd and s.dtype is dt and s.base is None and s.shape == shape
            and s.flags.carray)


def arrays_ok(param, grad, s1=_NONE, s2=_NONE, s3=_NONE):
    """The quick test of a functional kernel's arrays (~0.2 us an array): True when all are
    ndarrays of param's dtype (float32/float64) and shape, C-contiguous and aligned, param and
    the states s1..s3 writeable, and each owns its memory and is a distinct object (so no two
    overlap).  False sends the caller to :func:`check_arrays`, which decides and names the
    culprit; views, read-only gradients and the like pass there.  (Written out, not a loop
    over *states: this runs on every call, where ~0.2 us is a tenth of a small update.)"""
    if type(param) is not _nd or type(grad) is not _nd:
        return False
    dt, shape = param.dtype, param.shape
    if ((dt is not _F32 and dt is not _F64) or grad.dtype is not dt or param.base is not None
            or grad.base is not None or grad.shape != shape or param is grad
            or not param.flags.carray or not grad.flags.c_contiguous):
        return False
    if s1 is _NONE:
        return True
    if not _state_ok(s1, dt, shape) or s1 is param or s1 is grad:
        return False
    if s2 is _NONE:
        return True
    if not _state_ok(s2, dt, shape) or s2 is param or s2 is grad or s2 is s1:
        return False
    if s3 is _NONE:
        return True
    return _state_ok(s3, dt, shape) and not (s3 is param or s3 is grad or s3 is s1 or s3 is s2)


def check_arrays(param, grad, states):
    """Full checks of a functional kernel's arrays, each error naming its argument: param
    updated in place, grad read, states [(array, name)] updated in place with param's shape
    and dtype, no two sharing memory."""
    V.inplace(param, "param")
    V.like(grad, "grad", param, "param", writeable=False)
    for a, name in states:
        if a is None:
            raise ValueError(f"{name}: required (a state array like param)")
        V.like(a, name, param, "param")
    V.disjoint([(param, "param"), (grad, "grad"), *states])
