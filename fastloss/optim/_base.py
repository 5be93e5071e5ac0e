"""The optimizer base class: parameter groups, hyperparameters as attributes, schedules,
state_dict round trips.  Subclasses declare their hyperparameters and state arrays and
implement ``_update(group, index, param, grad, state, step, lr, grad_scale)``, which calls
the backend kernel with already-validated arguments.

Every ``step`` validates all parameters, gradients and hyperparameters first and only then
runs the kernels, so a failed call leaves every parameter and buffer untouched.
"""
import numpy as np

from .. import _config
from .. import _validate as V


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
        groups = self._groups_from(params)
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
        ps = self._all_params()
        V.disjoint([(p, f"params[{i}]") for i, p in enumerate(ps)])

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
                ps = [ps] if isinstance(ps, np.ndarray) else list(ps)
                items[i] = {**g, "params": ps}
            return items
        if any(isinstance(x, dict) for x in items):
            raise TypeError("params: mixes arrays and parameter groups")
        return [{"params": items}]

    def _all_params(self):
        return [p for g in self.param_groups for p in g["params"]]

    # ---- hyperparameters as attributes ------------------------------------------------------
    def __getattr__(self, name):
        if name in type(self)._hyper:
            vals = [g[name] for g in self.param_groups]
            if all(v is vals[0] or v == vals[0] for v in vals):
                return vals[0]
            raise AttributeError(f"{name}: differs between parameter groups; read param_groups[i][{name!r}]")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in type(self)._hyper:
            for g in self.param_groups:  # validate every group before changing any
                self._validate_group({**g, name: value})
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
        the parameters (same order, shapes and dtypes).  ``grad_scale`` multiplies every
        gradient first (clipping or loss scaling at no extra pass)."""
        params = self._all_params()
        grads = self._grads_for(grads, params)
        gs = V.finite(grad_scale, "grad_scale")
        plan = []
        i = 0
        for group in self.param_groups:
            self._validate_group(group)
            for p in group["params"]:
                st = self.state[i]
                lr = self._lr_at(group["lr"], st["step"])
                plan.append((group, i, p, grads[i], st, st["step"] + 1, lr))
                i += 1
        self._prepare(plan)
        kernels = _config.module(self.backend)
        for group, i, p, g, st, step, lr in plan:
            self._update(kernels, group, p, g, st, step, lr, gs)
            st["step"] = step

    def _prepare(self, plan):
        """Allocate state arrays a step needs (after validation, before any write)."""

    def _grads_for(self, grads, params):
        if grads is None:
            raise ValueError("grads: required (a sequence of arrays matching the parameters)")
        if isinstance(grads, np.ndarray):
            grads = [grads]
        grads = list(grads)
        if len(grads) != len(params):
            raise ValueError(f"grads: {len(grads)} arrays for {len(params)} parameters")
        for i, (p, g) in enumerate(zip(params, grads)):
            V.like(g, f"grads[{i}]", p, f"params[{i}]", writeable=False)
            if np.may_share_memory(p, g):
                raise ValueError(f"grads[{i}] shares memory with params[{i}]")
        return grads

    # ---- state --------------------------------------------------------------------------
    def state_dict(self):
        """Copies of the state and the hyperparameters: {'state': {i: {...}}, 'param_groups':
        [{..., 'params': [indices]}]}."""
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
        shapes and dtypes: everything is checked before anything changes; arrays are copied."""
        try:
            groups, state = state_dict["param_groups"], state_dict["state"]
        except (TypeError, KeyError):
            raise ValueError("state_dict: needs 'state' and 'param_groups' entries") from None
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict: {len(groups)} parameter groups, this optimizer has {len(self.param_groups)}")
        params = self._all_params()
        new_groups = []
        for k, (g, mine) in enumerate(zip(groups, self.param_groups)):
            if len(g["params"]) != len(mine["params"]):
                raise ValueError(f"state_dict: group {k} has {len(g['params'])} parameters, expected {len(mine['params'])}")
            ng = {**mine, **{h: v for h, v in g.items() if h != "params"}}
            self._validate_group(ng)
            new_groups.append(ng)
        new_state = []
        for i, p in enumerate(params):
            st = state.get(i, state.get(str(i)))
            if st is None:
                raise ValueError(f"state_dict: no state for parameter {i}")
            step = V.step_count(st["step"]) if st.get("step", 0) else 0
            ns = {"step": step}
            for name in self._state_arrays:
                v = st.get(name)
                if v is not None:
                    V.like(np.asarray(v), f"state[{i}][{name!r}]", p, f"params[{i}]", writeable=False)
                    v = np.array(v, copy=True)
                ns[name] = v
            new_state.append(ns)
        for g, ng in zip(self.param_groups, new_groups):
            g.update(ng)
        self.state[:] = new_state
