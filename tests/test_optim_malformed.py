"""Malformed optimizer structures are refused by name, before anything is written: edits to
param_groups over a FlatParams (a parameter replaced, added or removed, a group added), a
state_dict with unknown, missing or misnumbered entries, and state or groups whose entries
are missing or of the wrong kind (which raised KeyError, IndexError or an unnamed TypeError).
Each refusal leaves every parameter, gradient and state array bit-identical."""
import copy
import pickle

import numpy as np
import pytest

import fastloss
from fastloss import optim
from fastloss._registry import COMPILED
from helpers import KINDS

BACKENDS = COMPILED + ("numpy",)
F32 = np.float32
SHAPES = [(3,), (2, 2)]

# every mode whose state_dict() differs in which arrays it holds (None or not)
MODES = {
    **KINDS,
    "sgd_plain": lambda ps, **kw: optim.SGD(ps, lr=0.5, **kw),
    "adam_plain": lambda ps, **kw: optim.Adam(ps, lr=0.5, **kw),
    "rmsprop_plain": lambda ps, **kw: optim.RMSprop(ps, lr=0.5, **kw),
    "rmsprop_centered": lambda ps, **kw: optim.RMSprop(ps, lr=0.5, centered=True, **kw),
}


def grads_like(params, v=0.25):
    return [np.full(p.shape, v, F32) for p in params]


class Setup:
    """An optimizer (over separate arrays or a FlatParams) after two valid steps, and how to
    step it and snapshot everything a step could write."""

    def __init__(self, kind, backend, flat, steps=2, modes=KINDS):
        self.flat = flat
        if flat:
            self.fp = fastloss.FlatParams(SHAPES)
            self.fp.data[...] = 1.0
            self.fp.grad[...] = 0.25
            self.params = list(self.fp.params)
            self.opt = modes[kind](self.fp, backend=backend)
        else:
            self.params = [np.ones(s, F32) for s in SHAPES]
            self.grads = grads_like(self.params)
            self.opt = modes[kind](self.params, backend=backend)
        for _ in range(steps):
            self.step()

    def step(self):
        return self.opt.step() if self.flat else self.opt.step(self.grads)

    def arrays(self):
        """Every array a step reads or writes, as it holds now (keep it before an edit)."""
        opt = self.opt
        arrs = [self.fp.data, self.fp.grad] if self.flat else self.params + self.grads
        for st in opt.state:
            arrs += [v for v in st.values() if isinstance(v, np.ndarray)]
        if opt._flat_state is not None:
            arrs += [v for v in opt._flat_state.values() if isinstance(v, np.ndarray)]
        return arrs

    def snapshot(self, groups=True):
        """Take before an edit: a check that every array holds the same bytes, no step count
        moved (a count the edit deleted is not looked for) and, with groups, that the groups'
        hyperparameters are the same."""
        arrs, states = self.arrays(), list(self.opt.state)
        hyper = [(g, {k: v for k, v in g.items() if k != "params"}) for g in self.opt.param_groups]
        steps = [st.get("step") for st in states]
        flat_step = None if self.opt._flat_state is None else self.opt._flat_state["step"]
        before = [a.tobytes() for a in arrs]

        def unchanged():
            assert [a.tobytes() for a in arrs] == before
            assert all(st.get("step", v) == v for st, v in zip(states, steps))
            if flat_step is not None:
                assert self.opt._flat_state["step"] == flat_step
            if groups:
                assert all({k: v for k, v in g.items() if k != "params"} == h for g, h in hyper)
            return True
        return unchanged


def same_bits(a, b):
    """Two Setups hold the same parameters and state arrays, bit for bit."""
    return [x.tobytes() for x in a.arrays()] == [x.tobytes() for x in b.arrays()]


# ---- 1. an optimizer over a FlatParams refuses edits to param_groups --------------------------

def _replace(opt, fp):
    opt.param_groups[0]["params"][0] = np.ones(3, F32)


def _replace_same_values(opt, fp):
    opt.param_groups[0]["params"][1] = fp.params[1].copy()


def _append_param(opt, fp):
    opt.param_groups[0]["params"].append(np.ones(3, F32))


def _pop_param(opt, fp):
    opt.param_groups[0]["params"].pop()


def _rebind_params(opt, fp):
    opt.param_groups[0]["params"] = [fp.params[0], np.ones((2, 2), F32)]


def _append_group(opt, fp):
    opt.param_groups.append({**opt.param_groups[0], "params": [np.ones(3, F32)], "lr": -5.0})


def _append_empty_group(opt, fp):
    opt.param_groups.append({**opt.param_groups[0], "params": [], "lr": -5.0})


def _no_group(opt, fp):
    opt.param_groups = []


def _params_other_flat(opt, fp):  # the views of another FlatParams of the same layout
    opt.param_groups[0]["params"][:] = fastloss.FlatParams(SHAPES).params


FLAT_EDITS = [
    (_replace, r"^params\[0\]: param_groups\[\.\.\.\]\['params'\] changed after construction "
               r"\(an optimizer's parameters are fixed; build a new one\)$"),
    (_replace_same_values, r"^params\[1\]: param_groups\[\.\.\.\]\['params'\] changed"),
    (_append_param, r"^params\[2\]: param_groups\[\.\.\.\]\['params'\] changed"),
    (_pop_param, r"^params: 1 parameters in param_groups, the optimizer was built over 2 "),
    (_rebind_params, r"^params\[1\]: param_groups\[\.\.\.\]\['params'\] changed"),
    (_append_group, r"^param_groups: an optimizer over a FlatParams has one parameter group, got 2"),
    (_append_empty_group, r"^param_groups: an optimizer over a FlatParams has one parameter group, "
                          r"got 2"),
    (_no_group, r"^param_groups: an optimizer over a FlatParams has one parameter group, got 0"),
    (_params_other_flat, r"^params\[0\]: param_groups\[\.\.\.\]\['params'\] changed"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("edit, match", FLAT_EDITS, ids=[e.__name__[1:] for e, _ in FLAT_EDITS])
def test_flat_param_groups_edit_refused(edit, match, kind, backend):
    s = Setup(kind, backend, flat=True)
    unchanged = s.snapshot(groups=False)
    edit(s.opt, s.fp)
    with pytest.raises(ValueError, match=match):
        s.step()
    assert unchanged()
    with pytest.raises(ValueError, match=match):  # and again: the error is no one-off
        s.step()
    assert unchanged()


@pytest.mark.parametrize("backend", BACKENDS)
def test_flat_param_groups_as_list_path(backend):
    """The same edits over separate arrays raise the same errors (the list path's)."""
    s = Setup("adam", backend, flat=False)
    unchanged = s.snapshot()
    s.opt.param_groups[0]["params"][0] = np.ones(3, F32)
    with pytest.raises(ValueError, match=r"^params\[0\]: param_groups\[\.\.\.\]\['params'\] changed"):
        s.step()
    assert unchanged()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_flat_edit_undone_is_taken(kind, backend):
    """An edit undone before the next step is no error; the steps are those of an optimizer
    left alone.  Hyperparameters changed in the group (or the group replaced by a dict with
    the same params) are taken, and the params list put back as a plain list of the views."""
    s, ref = Setup(kind, backend, flat=True), Setup(kind, backend, flat=True)
    plist = s.opt.param_groups[0]["params"]
    v = plist[0]
    plist[0] = np.ones(3, F32)
    plist[0] = v
    plist.append(v)
    plist.pop()
    s.step(), ref.step()
    assert same_bits(s, ref)
    for o in (s.opt, ref.opt):
        o.param_groups[0]["lr"] = 0.125
    s.step(), ref.step()
    assert same_bits(s, ref)
    s.opt.param_groups[0] = {**s.opt.param_groups[0], "lr": 0.25}
    ref.opt.lr = 0.25
    s.step(), ref.step()
    assert same_bits(s, ref)
    s.opt.param_groups[0]["params"] = list(s.fp.params)
    s.step(), ref.step()
    assert same_bits(s, ref)
    s.opt.param_groups[0]["params"][1] = np.ones((2, 2), F32)  # a plain list: checked each step
    unchanged = s.snapshot()
    with pytest.raises(ValueError, match=r"^params\[1\]: param_groups"):
        s.step()
    assert unchanged()


@pytest.mark.parametrize("backend", BACKENDS)
def test_flat_lr_edit_still_validated(backend):
    s = Setup("adam", backend, flat=True)
    unchanged = s.snapshot(groups=False)
    s.opt.param_groups[0]["lr"] = -5.0
    with pytest.raises(ValueError, match=r"lr"):
        s.step()
    assert unchanged()


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_flat_copies_refuse_edits_too(how):
    s = Setup("adam", "numpy", flat=True)
    clone = (copy.deepcopy if how == "deepcopy" else lambda x: pickle.loads(pickle.dumps(x)))
    fp2, opt2 = clone((s.fp, s.opt))
    assert all(a is b for a, b in zip(opt2.param_groups[0]["params"], fp2.params))
    opt2.step()  # a valid copy steps
    opt2.param_groups[0]["params"][0] = np.ones(3, F32)  # and notes an edit as the original
    before = fp2.data.tobytes()
    with pytest.raises(ValueError, match=r"^params\[0\]: param_groups"):
        opt2.step()
    assert fp2.data.tobytes() == before
    # a copy of an optimizer whose params were replaced refuses them as the original does
    s.opt.param_groups[0]["params"][1] = np.ones((2, 2), F32)
    fp3, opt3 = clone((s.fp, s.opt))
    before = fp3.data.tobytes()
    # (pickle copies the views in the list as arrays of their own: params[0] is named)
    with pytest.raises(ValueError, match=r"^params\[[01]\]: param_groups"):
        opt3.step()
    assert fp3.data.tobytes() == before


@pytest.mark.parametrize("flat", [False, True], ids=["list", "flat"])
def test_load_state_dict_refuses_changed_param_groups(flat):
    """load_state_dict loads for the parameters the optimizer was built over: with its
    param_groups edited, it refuses as step() does, and changes nothing."""
    s = Setup("adam", "numpy", flat=flat)
    sd = s.opt.state_dict()
    s.opt.param_groups[0]["params"][0] = np.ones(3, F32)
    unchanged = s.snapshot()
    with pytest.raises(ValueError, match=r"^params\[0\]: param_groups"):
        s.opt.load_state_dict(sd)
    assert unchanged()


# ---- 2. load_state_dict refuses malformed state_dicts ----------------------------------------

def _sd_edit(name):
    def f(sd):
        st, g = sd["state"], sd["param_groups"][0]
        if name == "misspelt":
            st[0]["exp_avgg"] = st[0].pop("exp_avg")
        elif name == "extra_entry":
            st[1]["momentum"] = 0.5
        elif name == "int_entry":
            st[1][7] = None
        elif name == "missing_array":
            del st[1]["exp_avg_sq"]
        elif name == "missing_amsgrad_array":
            del st[0]["max_exp_avg_sq"]
        elif name == "missing_step":
            del st[0]["step"]
        elif name == "id_str":
            g["params"] = ["x", 1]
        elif name == "id_float":
            g["params"] = [0, 1.0]
        elif name == "id_bool":
            g["params"] = [0, True]
        elif name == "id_none":
            g["params"] = [None, 1]
        elif name == "id_twice":
            g["params"] = [0, 0]
        elif name == "id_twice_str_key":
            st["1"] = st.pop(1)
            g["params"] = [1, 1]
        elif name == "extra_state":
            st[5] = copy.deepcopy(st[0])
        elif name == "state_key_str":
            st["x"] = st.pop(1)
        elif name == "state_key_float":
            st[1.0] = st.pop(1)
        elif name == "state_key_twice":
            st["1"] = copy.deepcopy(st[1])
        elif name == "state_key_unlisted":  # ids 0, 2 listed: state[1] is no one's
            g["params"] = [0, 2]
        elif name == "ids_missing_state":
            g["params"] = [0, 2]
            st[2] = st.pop(1)
            del st[0]
        return sd
    return f


SD_CASES = [
    ("misspelt", ValueError, r"^state_dict: state\[0\]: unknown entry 'exp_avgg' \(expected 'step', "
                             r"'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'\)$"),
    ("extra_entry", ValueError, r"^state_dict: state\[1\]: unknown entry 'momentum' \(expected"),
    ("int_entry", ValueError, r"^state_dict: state\[1\]: unknown entry 7 \(expected"),
    ("missing_array", ValueError, r"^state_dict: state\[1\]: has no 'exp_avg_sq' entry \(a "
                                  r"state_dict\(\) has 'step', 'exp_avg', 'exp_avg_sq', "
                                  r"'max_exp_avg_sq'; None for an array not created yet\)$"),
    ("missing_amsgrad_array", ValueError, r"^state_dict: state\[0\]: has no 'max_exp_avg_sq' entry"),
    ("missing_step", ValueError, r"^state_dict: state\[0\]: has no 'step' entry"),
    ("id_str", TypeError, r"^state_dict: param_groups\[0\]\['params'\]\[0\]: must be an int \(a "
                          r"parameter id, its key in state_dict\['state'\]\), got str 'x'$"),
    ("id_float", TypeError, r"^state_dict: param_groups\[0\]\['params'\]\[1\]: must be an int .*"
                            r"got float 1.0$"),
    ("id_bool", TypeError, r"^state_dict: param_groups\[0\]\['params'\]\[1\]: must be an int .*got bool"),
    ("id_none", TypeError, r"^state_dict: param_groups\[0\]\['params'\]\[0\]: must be an int .*NoneType"),
    ("id_twice", ValueError, r"^state_dict: param_groups\[0\]\['params'\]\[1\]: parameter id 0 is "
                             r"listed twice \(also at param_groups\[0\]\['params'\]\[0\]\); each "
                             r"parameter has its own id$"),
    ("id_twice_str_key", ValueError, r"^state_dict: param_groups\[0\]\['params'\]\[1\]: parameter id 1 "
                                     r"is listed twice"),
    ("extra_state", ValueError, r"^state_dict: state\[5\]: parameter id 5 is in no parameter group "
                                r"\(param_groups\[\.\.\.\]\['params'\] list ids 0 to 1\)$"),
    ("state_key_str", TypeError, r"^state_dict: state\['x'\]: a key of 'state' must be a parameter "
                                 r"id \(an int listed in param_groups\[\.\.\.\]\['params'\]\), got str$"),
    ("state_key_float", TypeError, r"^state_dict: state\[1\.0\]: a key of 'state' must be a "
                                   r"parameter id .*got float$"),
    ("state_key_twice", ValueError, r"^state_dict: state\['1'\] and state\[1\] are both parameter id "
                                    r"1's state$"),
    ("state_key_unlisted", ValueError, r"^state_dict: state\[1\]: parameter id 1 is in no parameter "
                                       r"group \(param_groups\[\.\.\.\]\['params'\] list ids 0, 2\)$"),
    ("ids_missing_state", ValueError, r"^state_dict: no state for parameter 0$"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("flat", [False, True], ids=["list", "flat"])
@pytest.mark.parametrize("name, exc, match", SD_CASES, ids=[c[0] for c in SD_CASES])
def test_malformed_state_dict_refused(name, exc, match, flat, backend):
    src = Setup("adam", backend, flat=False)
    sd = _sd_edit(name)(src.opt.state_dict())
    s = Setup("adam", backend, flat=flat, steps=1)  # its own state, other than src's
    unchanged = s.snapshot()
    with pytest.raises(exc, match=match):
        s.opt.load_state_dict(sd)
    assert unchanged()


@pytest.mark.parametrize("flat", [False, True], ids=["list", "flat"])
def test_misspelt_array_no_longer_resets_moments(flat):
    """The reviewer's case: a misspelt exp_avg and params ['x'] loaded with no error, and
    state[0]['exp_avg'] became None (the moments silently reset)."""
    src = Setup("adam", "numpy", flat=False)
    sd = src.opt.state_dict()
    sd["state"][0]["exp_avgg"] = sd["state"][0].pop("exp_avg")
    sd["param_groups"][0]["params"] = ["x", 1]
    s = Setup("adam", "numpy", flat=flat)
    unchanged = s.snapshot()
    with pytest.raises((TypeError, ValueError), match=r"^state_dict: "):
        s.opt.load_state_dict(sd)
    assert unchanged() and s.opt.state[0]["exp_avg"] is not None


def _json_keys(sd):
    return {**sd, "state": {str(k): v for k, v in sd["state"].items()}}


@pytest.mark.parametrize("flat_to", [False, True], ids=["to_list", "to_flat"])
@pytest.mark.parametrize("flat_from", [False, True], ids=["from_list", "from_flat"])
@pytest.mark.parametrize("steps", [0, 1, 3])
@pytest.mark.parametrize("mode", MODES)
def test_own_state_dicts_still_load(mode, steps, flat_from, flat_to):
    """Whatever state_dict() gives -- before the first step (arrays None, or Adagrad's sum)
    and after steps, over separate arrays or a FlatParams -- loads, as do deep copies,
    pickles and str keys of it, and the loaded optimizer steps as the one saved."""
    src = Setup(mode, "numpy", flat=flat_from, steps=steps, modes=MODES)
    sd = src.opt.state_dict()
    for variant in (sd, copy.deepcopy(sd), pickle.loads(pickle.dumps(sd)), _json_keys(sd)):
        dst = Setup(mode, "numpy", flat=flat_to, steps=0, modes=MODES)
        dst.opt.load_state_dict(variant)
        assert dst.opt.state_dict()["param_groups"] == sd["param_groups"]
        ref = Setup(mode, "numpy", flat=flat_to, steps=steps, modes=MODES)
        dst.step(), ref.step()
        for st, rt in zip(dst.opt.state, ref.opt.state):
            assert st.keys() == rt.keys() and st["step"] == rt["step"] == steps + 1
            for k in st:
                if isinstance(rt[k], np.ndarray):
                    assert st[k].tobytes() == rt[k].tobytes()
                else:
                    assert st[k] is rt[k] is None or st[k] == rt[k]


@pytest.mark.parametrize("flat", [False, True], ids=["list", "flat"])
def test_ids_matched_by_position_as_torch(flat):
    """Saved ids are any distinct ints, matched to the parameters by position: ids [1, 0]
    give the saved state[1] to params[0] (torch's load_state_dict maps them so)."""
    shapes = [(3,), (3,)]
    a = [np.ones(s, F32) for s in shapes]
    src = optim.Adam(a, lr=0.5)
    src.step([np.full(3, 0.25, F32), np.full(3, -2.0, F32)])
    sd = src.state_dict()
    s0, s1 = sd["state"][0], sd["state"][1]
    for ids, state, want in [([1, 0], {0: s0, 1: s1}, [s1, s0]),
                             ([10, 20], {10: s0, 20: s1}, [s0, s1]),
                             ([np.int64(7), np.int32(3)], {"7": s0, "3": s1}, [s0, s1])]:
        if flat:
            fp = fastloss.FlatParams(shapes)
            opt = optim.Adam(fp, lr=0.5)
        else:
            opt = optim.Adam([np.ones(s, F32) for s in shapes], lr=0.5)
        opt.load_state_dict({"state": state, "param_groups": [{**sd["param_groups"][0], "params": ids}]})
        for st, w in zip(opt.state, want):
            for k in ("exp_avg", "exp_avg_sq"):
                assert st[k].tobytes() == w[k].tobytes()


def test_ids_by_position_match_torch():
    torch = pytest.importorskip("torch")
    p0, p1 = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    t = torch.optim.Adam([p0, p1], lr=0.5)
    p0.grad, p1.grad = torch.full((3,), 0.25), torch.full((3,), -2.0)
    t.step()
    sd = t.state_dict()
    sd["param_groups"][0]["params"] = [1, 0]
    t2 = torch.optim.Adam([torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))])
    t2.load_state_dict(sd)
    theirs = [t2.state[p]["exp_avg"].numpy() for p in t2.param_groups[0]["params"]]
    a = [np.ones(3, F32), np.ones(3, F32)]
    src = optim.Adam(a, lr=0.5)
    src.step([np.full(3, 0.25, F32), np.full(3, -2.0, F32)])
    osd = src.state_dict()
    osd["param_groups"][0]["params"] = [1, 0]
    opt = optim.Adam([np.ones(3, F32), np.ones(3, F32)], lr=0.5)
    opt.load_state_dict(osd)
    for st, th in zip(opt.state, theirs):
        np.testing.assert_array_equal(st["exp_avg"], th)


# ---- 3. malformed state or groups at step(): named errors, nothing written --------------------

def _sched_key_error(t):
    return {}["no such entry"]


STEP_EDITS = {  # name -> (edit(opt), exception, match over separate arrays, over a FlatParams)
    "state_dict_type": (lambda o: setattr(o, "state", {}), ValueError,
                        r"^state: must be the optimizer's list of 2 dicts, one per parameter \(its "
                        r"parameters are fixed\), got a dict$", None),
    "state_empty": (lambda o: setattr(o, "state", []), ValueError,
                    r"^state: must be the optimizer's list of 2 dicts, one per parameter \(its "
                    r"parameters are fixed\), got a list of 0$", None),
    "state_none": (lambda o: setattr(o, "state", None), ValueError,
                   r"^state: must be the optimizer's list of 2 dicts.*got a NoneType$", None),
    "state_longer": (lambda o: o.state.append(dict(o.state[0])), ValueError,
                     r"^state: must be the optimizer's list of 2 dicts.*got a list of 3$", None),
    "state_int_keys": (lambda o: setattr(o, "state", dict(enumerate(o.state))), ValueError,
                       r"^state: must be the optimizer's list of 2 dicts.*got a dict$", None),
    "state_entry_int": (lambda o: o.state.__setitem__(1, 5), TypeError,
                        r"^state\[1\]: must be a dict, got int$",
                        (ValueError, r"^state\[1\]: was replaced")),
    "no_step": (lambda o: o.state[0].__delitem__("step"), ValueError,
                r"^state\[0\]: has no 'step' entry$", None),
    "no_maximize": (lambda o: o.param_groups[0].__delitem__("maximize"), ValueError,
                    r"^param_groups\[0\]: has no 'maximize' entry$", None),
    "no_lr": (lambda o: o.param_groups[0].__delitem__("lr"), ValueError,
              r"^param_groups\[0\]: has no 'lr' entry$", None),
    "no_params": (lambda o: o.param_groups[0].__delitem__("params"), ValueError,
                  r"^param_groups\[0\]: has no 'params' entry$", None),
    "params_int": (lambda o: o.param_groups[0].__setitem__("params", 5), TypeError,
                   r"^params: param_groups\[0\]\['params'\] must be a list of arrays, got int$", None),
    "group_int": (lambda o: o.param_groups.__setitem__(0, 5), TypeError,
                  r"^param_groups\[0\]: must be a dict, got int$", None),
    "groups_none": (lambda o: setattr(o, "param_groups", None), TypeError,
                    r"^param_groups: must be a list of parameter groups \(dicts\), got NoneType$", None),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("flat", [False, True], ids=["list", "flat"])
@pytest.mark.parametrize("name", STEP_EDITS)
def test_malformed_structure_at_step(name, flat, kind, backend):
    edit, exc, match, flat_case = STEP_EDITS[name]
    if flat and flat_case is not None:
        exc, match = flat_case
    s = Setup(kind, backend, flat=flat)
    unchanged = s.snapshot(groups=False)  # (the edit changes a group)
    edit(s.opt)
    with pytest.raises(exc, match=match):
        s.step()
    assert unchanged()


@pytest.mark.parametrize("flat", [False, True], ids=["list", "flat"])
def test_errors_met_in_the_checks_are_not_masked(flat):
    """The slow path names a malformed entry; an error of another kind met on the way (a
    schedule's own, a step count of the wrong type) is raised as it was."""
    s = Setup("adam", "numpy", flat=flat)
    unchanged = s.snapshot(groups=False)
    s.opt.lr = _sched_key_error
    with pytest.raises(KeyError, match="no such entry"):
        s.step()
    assert unchanged()
    s.opt.lr = 0.5
    s.opt.param_groups[0]["betas"] = 5
    with pytest.raises(TypeError, match=r"^betas: must be a pair"):
        s.step()
    assert unchanged()
    s.opt.param_groups[0]["betas"] = (0.9, 0.999)
    if not flat:
        s.opt.state[1]["step"] = "2"
        unchanged = s.snapshot(groups=False)
        with pytest.raises(TypeError, match=r"^state\[1\]\['step'\]: must be an int"):
            s.step()
        assert unchanged()


def test_constructor_group_params_not_iterable():
    with pytest.raises(TypeError, match=r"^params\[0\]\['params'\]: must be an array or a list of "
                                        r"arrays, got int$"):
        optim.SGD([{"params": 5}], lr=0.1)
    with pytest.raises(TypeError, match=r"^params\[1\]\['params'\]: must be an array or a list of "
                                        r"arrays, got NoneType$"):
        optim.Adam([{"params": [np.ones(3, F32)]}, {"params": None}])


@pytest.mark.parametrize("flat", [False, True], ids=["list", "flat"])
def test_hyperparameter_attributes_name_a_malformed_group(flat):
    """opt.lr = x and opt.maximize read the groups too: a missing entry is named there (it
    raised KeyError), and nothing changes."""
    s = Setup("adam", "numpy", flat=flat)
    del s.opt.param_groups[0]["maximize"]
    with pytest.raises(ValueError, match=r"^param_groups\[0\]: has no 'maximize' entry$"):
        s.opt.lr = 0.25
    assert s.opt.param_groups[0]["lr"] == 0.5
    with pytest.raises(ValueError, match=r"^param_groups\[0\]: has no 'maximize' entry$"):
        s.opt.maximize
    s.opt.param_groups[0] = 5
    with pytest.raises(TypeError, match=r"^param_groups\[0\]: must be a dict, got int$"):
        s.opt.eps
    with pytest.raises(TypeError, match=r"^param_groups\[0\]: must be a dict, got int$"):
        s.opt.eps = 1e-6
    s.opt.param_groups = []
    with pytest.raises(AttributeError, match=r"^lr: param_groups is empty$"):
        s.opt.lr
