"""The stateful optimizers' contract at step() and load_state_dict(): every parameter,
gradient, hyperparameter and step count is checked before anything is written, errors name
the argument, and a rejected call leaves parameters and state byte-identical.  (Audit B:
F7 parameters re-checked at each step, F8 gradients overlapping another parameter, F10 step
counts beyond int64, F11 direct param_groups edits, F12 corrupt state_dicts; then gradients
overlapping a state array, state arrays assigned by the user, torch.optim state_dicts.)"""
import numpy as np
import pytest

import fastloss
from fastloss import optim
from fastloss._registry import COMPILED
from helpers import KINDS

BACKENDS = COMPILED + ("numpy",)
F32 = np.float32


def ones(n=4, v=1.0):
    return np.full(n, v, F32)


def snapshot(opt, params):
    """Bytes of every parameter and state array, and the step counts."""
    st = [{k: (v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in s.items()} for s in opt.state]
    flat = None
    if opt._flat_state is not None:
        flat = {k: (v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in opt._flat_state.items()}
    return [p.tobytes() for p in params], st, flat


def stepped(kind, params, backend):
    """An optimizer over params after one valid step (so its state arrays exist)."""
    opt = KINDS[kind](params, backend=backend)
    opt.step([ones(p.size).reshape(p.shape) * 0.25 for p in params])
    return opt


# ---- F7: parameters are checked at every step, not only at construction ----------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_readonly_param_after_construction(kind, backend):
    p0, p1 = ones(), ones()
    opt = stepped(kind, [p0, p1], backend)
    p1.setflags(write=False)
    before = snapshot(opt, [p0, p1])
    with pytest.raises(ValueError, match=r"params\[1\]: is read-only"):
        opt.step([ones(), ones()])
    assert snapshot(opt, [p0, p1]) == before  # p0 untouched, no step count advanced


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_readonly_param_not_written(backend):
    p = ones()
    opt = optim.SGD([p], lr=0.5, backend=backend)
    p.setflags(write=False)
    with pytest.raises(ValueError, match=r"params\[0\]: is read-only"):
        opt.step([ones()])
    assert p.tobytes() == ones().tobytes() and opt.state[0]["step"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("change, exc, match", [
    (lambda p: setattr(p, "shape", (2, 2)), ValueError, r"params\[1\]: shape changed"),
    (lambda p: setattr(p, "dtype", np.float64), TypeError, r"params\[1\]: dtype changed"),
    (lambda p: setattr(p, "dtype", np.int32), TypeError, r"params\[1\]: dtype must be"),
], ids=["shape", "f64", "int32"])
def test_param_reshaped_or_retyped_after_construction(backend, change, exc, match):
    p0, p1 = ones(), ones()
    opt = stepped("adam", [p0, p1], backend)
    before = snapshot(opt, [p0, p1])
    change(p1)
    with pytest.raises(exc, match=match):
        opt.step([ones(), ones(p1.size).reshape(p1.shape).astype(p1.dtype)])
    assert snapshot(opt, [p0, p1]) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_param_replaced_in_group(backend):
    p0, p1 = ones(), ones()
    opt = stepped("sgd", [p0, p1], backend)
    before = snapshot(opt, [p0, p1])
    q = ones()
    opt.param_groups[0]["params"][1] = q
    with pytest.raises(ValueError, match=r"params\[1\]: .*changed after construction"):
        opt.step([ones(), ones()])
    opt.param_groups[0]["params"][1] = p1
    opt.param_groups[0]["params"].append(q)
    with pytest.raises(ValueError, match=r"params\[2\]: .*changed after construction"):
        opt.step([ones(), ones()])
    assert snapshot(opt, [p0, p1]) == before and q.tobytes() == ones().tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_flat_readonly_data_block(kind, backend):
    flat = fastloss.FlatParams([(3,), (5,)])
    flat.data[...] = 1.0
    flat.grad[...] = 0.5
    opt = KINDS[kind](flat, backend=backend)
    opt.step()
    flat.data.setflags(write=False)
    before = snapshot(opt, [flat.data])
    with pytest.raises(ValueError, match=r"params.*read-only"):
        opt.step()
    assert snapshot(opt, [flat.data]) == before


# ---- F8: a gradient may share memory with no parameter ---------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_grad_is_another_param(kind, backend):
    w, v = ones(), ones(v=2.0)
    opt = stepped(kind, [w, v], backend)
    before = snapshot(opt, [w, v])
    with pytest.raises(ValueError, match=r"grads\[1\] shares memory with params\[0\]"):
        opt.step([ones(), w])
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[1\]"):
        opt.step([v[:], ones()])  # a view of another parameter
    assert snapshot(opt, [w, v]) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_overlaps_param_views_of_one_block(backend):
    blk = np.ones(12, F32)
    w, v = blk[:4], blk[4:8]  # parameters that are views; blk[8:] is no parameter
    opt = stepped("adam", [w, v], backend)
    before = snapshot(opt, [blk])
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[1\]"):
        opt.step([blk[6:10], ones()])  # straddles params[1] and free memory
    with pytest.raises(ValueError, match=r"grads\[1\] shares memory with params\[0\]"):
        opt.step([ones(), blk[:4]])
    big = np.ones(8, F32)
    opt2 = optim.SGD([big[:4].reshape(2, 2)], lr=0.5, backend=backend)
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[0\]"):
        opt2.step([big[:4].reshape(2, 2)])  # a second view of the same memory
    assert snapshot(opt, [blk]) == before and big.tobytes() == np.ones(8, F32).tobytes()
    # adjacent memory is not shared: accepted
    opt.step([blk[8:12], np.ones(4, F32)])
    assert opt.state[0]["step"] == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_owning_the_params_memory(backend):
    """The array the parameters are views of, or another view of it, passed as a gradient."""
    blk = np.ones(8, F32)
    w, v = blk[:4], blk[4:]
    opt = optim.SGD([w, v], lr=0.5, backend=backend)
    with pytest.raises(ValueError, match=r"grads\[1\] shares memory with params\[0\]"):
        opt.step([ones(), blk[:4]])  # a second view of params[0]'s memory
    blk2 = np.ones(4, F32)  # owns the memory of its view params[0]
    opt2 = optim.SGD([blk2[:4]], lr=0.5, backend=backend)
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[0\]"):
        opt2.step([blk2])
    assert blk.tobytes() == np.ones(8, F32).tobytes() and blk2.tobytes() == ones().tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_overlap_params_from_a_buffer(backend):
    """Parameters whose memory comes from a non-array buffer (no quick ownership test)."""
    raw = bytearray(np.ones(8, F32).tobytes())
    mem = np.frombuffer(raw, F32)
    w, v = mem[:4], mem[4:]
    opt = optim.SGD([w, v], lr=0.5, backend=backend)
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[1\]"):
        opt.step([mem[4:], ones()])
    assert bytes(raw) == np.ones(8, F32).tobytes()
    opt.step([ones(), ones()])  # separate gradients: accepted
    assert np.all(mem == 0.5)


def test_many_params_view_grads_accepted_and_correct():
    """200 parameters with gradients that are views of one block: no false overlap, and the
    update equals the functional kernel's."""
    rng = np.random.default_rng(0)
    ps = [rng.random(7, dtype=F32) for _ in range(200)]
    gblk = rng.random(7 * 200, dtype=F32)
    gs = [gblk[7 * i:7 * (i + 1)] for i in range(200)]
    want = [p.copy() for p in ps]
    opt = optim.SGD(ps, lr=0.1)
    opt.step(gs)
    for p, g in zip(want, gs):
        optim.sgd_(p, g, step=1, lr=0.1)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(ps, want))


# ---- F10: step counts the kernels' int64 cannot hold -----------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_load_state_dict_rejects_unincrementable_step(kind, backend):
    w0, w1 = ones(3), ones(3)
    opt = stepped(kind, [w0, w1], backend)
    sd = opt.state_dict()
    before = snapshot(opt, [w0, w1])
    for bad in (2**63 - 1, 2**63, 2**64):
        sd["state"][1]["step"] = bad
        with pytest.raises(ValueError, match=r"state\[1\]\['step'\].*2\*\*63"):
            opt.load_state_dict(sd)
        assert snapshot(opt, [w0, w1]) == before


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_step_rejects_unincrementable_step_count(kind, backend):
    """A step count edited directly in state: step() checks it before any write."""
    w0, w1 = ones(3), ones(3)
    opt = stepped(kind, [w0, w1], backend)
    opt.state[1]["step"] = 2**63 - 1
    before = snapshot(opt, [w0, w1])
    with pytest.raises(ValueError, match=r"state\[1\]\['step'\]"):
        opt.step([ones(3), ones(3)])
    assert snapshot(opt, [w0, w1]) == before
    opt.state[1]["step"] = "3"
    with pytest.raises(TypeError, match=r"state\[1\]\['step'\]"):
        opt.step([ones(3), ones(3)])
    opt.state[1]["step"] = 2**63 - 1
    assert snapshot(opt, [w0, w1]) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_largest_step_count_still_runs(backend):
    w = ones(3)
    opt = stepped("adam", [w], backend)
    sd = opt.state_dict()
    sd["state"][0]["step"] = 2**63 - 2
    opt.load_state_dict(sd)
    opt.step([ones(3)])  # the kernel gets step 2**63 - 1
    assert opt.state[0]["step"] == 2**63 - 1 and np.all(np.isfinite(w))


@pytest.mark.parametrize("backend", BACKENDS)
def test_flat_step_count_checked(backend):
    flat = fastloss.FlatParams([(3,), (2,)])
    opt = optim.Adam(flat, backend=backend)
    opt.step()
    opt._flat_state["step"] = 2**63 - 1
    before = snapshot(opt, [flat.data])
    with pytest.raises(ValueError, match=r"\['step'\]"):
        opt.step()
    assert snapshot(opt, [flat.data]) == before


FUNCTIONAL = {  # name -> (number of arrays: param, grad, states; call(arrays, step, backend))
    "sgd_": (3, lambda a, step, be: optim.sgd_(*a, step=step, lr=0.1, momentum=0.9, backend=be)),
    "adam_": (4, lambda a, step, be: optim.adam_(*a, step=step, backend=be)),
    "adamw_": (4, lambda a, step, be: optim.adamw_(*a, step=step, backend=be)),
    "adagrad_": (3, lambda a, step, be: optim.adagrad_(*a, step=step, backend=be)),
    "rmsprop_": (3, lambda a, step, be: optim.rmsprop_(*a, step=step, backend=be)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn", FUNCTIONAL)
@pytest.mark.parametrize("step", [2**63, 2**64, 10**30])
def test_functional_step_beyond_int64(fn, backend, step):
    n, call = FUNCTIONAL[fn]
    arrs = [ones() for _ in range(n)]
    before = [x.tobytes() for x in arrs]
    with pytest.raises(ValueError, match=r"^step: must be <= 2\*\*63 - 1.*got " + str(step)):
        call(arrs, step, backend)
    assert [x.tobytes() for x in arrs] == before


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn", FUNCTIONAL)
def test_functional_step_int64_max_accepted(fn, backend):
    n, call = FUNCTIONAL[fn]
    arrs = [ones() for _ in range(n)]
    call(arrs, 2**63 - 1, backend)
    assert np.all(np.isfinite(arrs[0]))


# ---- F11: direct param_groups edits are validated again, by type as well as value ------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind, key, good, bad", [
    ("sgd", "lr", 1.0, True),
    ("sgd", "maximize", False, 0),
    ("sgd", "nesterov", False, 0.0),
    ("sgd", "weight_decay", 0.0, False),
    ("adam", "amsgrad", True, 1),
    ("adam", "betas", (0.0, 0.999), (False, 0.999)),
    ("adam", "eps", 1.0, np.True_),
    ("rmsprop", "centered", True, 1.0),
])
def test_direct_group_edit_equal_but_invalid(kind, key, good, bad, backend):
    assert good == bad  # the memo must not take equality for "unchanged"
    p = ones()
    opt = KINDS[kind]([p], backend=backend)
    opt.param_groups[0][key] = good
    opt.step([ones()])
    opt.param_groups[0][key] = bad
    before = snapshot(opt, [p])
    with pytest.raises(TypeError, match=key):
        opt.step([ones()])
    assert snapshot(opt, [p]) == before
    opt.param_groups[0][key] = good  # and back: accepted again
    opt.step([ones()])


def test_direct_group_edit_betas_list_mutated_in_place():
    p = ones()
    opt = optim.Adam([p], betas=[0.9, 0.999])
    opt.step([ones()])
    opt.param_groups[0]["betas"][0] = 1.5
    before = snapshot(opt, [p])
    with pytest.raises(ValueError, match=r"betas\[0\]"):
        opt.step([ones()])
    assert snapshot(opt, [p]) == before


def test_direct_group_edit_equal_and_valid_accepted():
    p, q = ones(), ones()
    a, b = optim.SGD([p], lr=1.0), optim.SGD([q], lr=1.0)
    a.step([ones()])
    b.step([ones()])
    a.param_groups[0]["lr"] = 1  # an int is a valid lr
    a.step([ones()])
    b.step([ones()])
    assert p.tobytes() == q.tobytes()


# ---- F12: corrupt state_dicts name what is wrong; nothing changes -----------------------------

def _corrupt(name):
    def f(sd):
        if name == "state_list":
            sd["state"] = [sd["state"][0], sd["state"][1]]
        elif name == "state_entry_int":
            sd["state"][0] = 5
        elif name == "group_no_params":
            del sd["param_groups"][0]["params"]
        elif name == "groups_int":
            sd["param_groups"] = 5
        elif name == "group_not_dict":
            sd["param_groups"] = [5]
        elif name == "group_params_int":
            sd["param_groups"][0]["params"] = 2
        elif name == "bogus_key":
            sd["param_groups"][0]["bogus"] = 1
        elif name == "not_a_dict":
            return [sd]
        elif name == "bad_lr":
            sd["param_groups"][0]["lr"] = -1.0
        elif name == "step_bool":
            sd["state"][1]["step"] = True
        elif name == "step_negative":
            sd["state"][1]["step"] = -2
        elif name == "array_wrong_shape":
            sd["state"][1]["exp_avg"] = np.zeros(5, F32)
        return sd
    return f


@pytest.mark.parametrize("name, exc, match", [
    ("state_list", TypeError, r"state_dict: 'state' must be a dict.*list"),
    ("state_entry_int", TypeError, r"state_dict: state\[0\] must be a dict.*int"),
    ("group_no_params", ValueError, r"state_dict: param_groups\[0\]: has no 'params'"),
    ("groups_int", TypeError, r"state_dict: 'param_groups' must be a list.*int"),
    ("group_not_dict", TypeError, r"state_dict: param_groups\[0\]: must be a dict"),
    ("group_params_int", TypeError, r"state_dict: param_groups\[0\]\['params'\]"),
    ("bogus_key", ValueError, r"state_dict: param_groups\[0\]: unknown hyperparameters \['bogus'\]"),
    ("not_a_dict", ValueError, r"state_dict: needs 'state' and 'param_groups'"),
    ("bad_lr", ValueError, r"state_dict: param_groups\[0\]: lr"),
    ("step_bool", TypeError, r"state_dict: state\[1\]\['step'\]"),
    ("step_negative", ValueError, r"state_dict: state\[1\]\['step'\]"),
    ("array_wrong_shape", ValueError, r"state_dict: state\[1\]\['exp_avg'\]"),
])
@pytest.mark.parametrize("flat", [False, True], ids=["list", "flat"])
def test_corrupt_state_dict(name, exc, match, flat):
    if flat:
        fp = fastloss.FlatParams([(3,), (3,)])
        fp.grad[...] = 0.5
        opt = optim.Adam(fp, lr=0.1)
        opt.step()
        params = [fp.data]
    else:
        params = [ones(3), ones(3)]
        opt = optim.Adam(params, lr=0.1)
        opt.step([ones(3), ones(3)])
    sd = _corrupt(name)(opt.state_dict())
    before = snapshot(opt, params)
    groups = [dict(g) for g in opt.param_groups]
    with pytest.raises(exc, match=match):
        opt.load_state_dict(sd)
    assert snapshot(opt, params) == before
    assert [dict(g) for g in opt.param_groups] == groups


@pytest.mark.parametrize("flat", [False, True], ids=["list", "flat"])
def test_deepcopy_checks_its_own_params(flat):
    """A copy's parameters are new arrays: its checks are about them, not the original's."""
    import copy
    if flat:
        fp = fastloss.FlatParams([(4,), (4,)])
        opt = copy.deepcopy(optim.SGD(fp, lr=0.5))
        fp2 = opt._flat
        fp2.data.setflags(write=False)
        with pytest.raises(ValueError, match="read-only"):
            opt.step()
        return
    opt = copy.deepcopy(optim.SGD([ones(), ones()], lr=0.5))
    w, v = opt.param_groups[0]["params"]
    with pytest.raises(ValueError, match=r"grads\[1\] shares memory with params\[0\]"):
        opt.step([ones(), w])
    opt.step([ones(), ones()])
    assert np.all(w == 0.5) and np.all(v == 0.5)


# ---- a gradient may share memory with no state array -----------------------------------------
# (the kernels take every array as restrict: a gradient that is a momentum buffer, exp_avg or
# a view of one was accepted and gave undefined results)

# every stateful optimizer in every mode that keeps state arrays
MODES = {
    "sgd_momentum": lambda ps, **kw: optim.SGD(ps, lr=0.5, momentum=0.9, **kw),
    "sgd_nesterov": lambda ps, **kw: optim.SGD(ps, lr=0.5, momentum=0.9, nesterov=True, **kw),
    "adam": lambda ps, **kw: optim.Adam(ps, lr=0.5, **kw),
    "adam_amsgrad": lambda ps, **kw: optim.Adam(ps, lr=0.5, amsgrad=True, **kw),
    "adamw": lambda ps, **kw: optim.AdamW(ps, lr=0.5, **kw),
    "adamw_amsgrad": lambda ps, **kw: optim.AdamW(ps, lr=0.5, amsgrad=True, **kw),
    "adagrad": lambda ps, **kw: optim.Adagrad(ps, lr=0.5, **kw),
    "rmsprop": lambda ps, **kw: optim.RMSprop(ps, lr=0.5, **kw),
    "rmsprop_momentum": lambda ps, **kw: optim.RMSprop(ps, lr=0.5, momentum=0.9, **kw),
    "rmsprop_centered": lambda ps, **kw: optim.RMSprop(ps, lr=0.5, centered=True, **kw),
    "rmsprop_momentum_centered": lambda ps, **kw: optim.RMSprop(ps, lr=0.5, momentum=0.9,
                                                                centered=True, **kw),
}
SHAPE = (2, 3)


def arrays_of(st):
    """Names of the state arrays a parameter's state holds."""
    return [k for k, v in st.items() if isinstance(v, np.ndarray)]


def two_stepped(mode, backend):
    """Two parameters of SHAPE and an optimizer after two valid steps (its state recorded)."""
    w0, w1 = np.full(SHAPE, 1.0, F32), np.full(SHAPE, 2.0, F32)
    opt = MODES[mode]([w0, w1], backend=backend)
    for _ in range(2):
        opt.step([np.full(SHAPE, 0.25, F32), np.full(SHAPE, 0.5, F32)])
    return opt, [w0, w1]


def fresh():
    return np.full(SHAPE, 0.75, F32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["itself", "view", "slice"])
def test_grad_is_a_state_array(mode, how, backend):
    """A state array, a view of it or a slice of it as a gradient, of its own parameter or of
    the other one: refused, naming both, and nothing changes."""
    opt, ws = two_stepped(mode, backend)
    names = arrays_of(opt.state[1])
    assert names and names == arrays_of(opt.state[0])
    before = snapshot(opt, ws)
    for name in names:
        for j in (0, 1):  # state of params[j], given as grads[1]
            s = opt.state[j][name]
            g = {"itself": s, "view": s.view(), "slice": s[:, :]}[how]
            with pytest.raises(ValueError, match=rf"^grads\[1\] shares memory with "
                                                 rf"state\[{j}\]\['{name}'\]$"):
                opt.step([fresh(), g])
            assert snapshot(opt, ws) == before
    opt.step([fresh(), fresh()])  # the same optimizer still takes fresh gradients
    assert opt.state[0]["step"] == opt.state[1]["step"] == 3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["adam_amsgrad", "sgd_momentum", "rmsprop_momentum_centered",
                                  "adagrad"])
def test_grad_is_a_state_array_first_steps(mode, backend):
    """The same at the first steps: Adagrad's sum exists before step 1, the others' arrays
    from step 1 on (step 2 is the first to see them recorded)."""
    w0, w1 = np.ones(SHAPE, F32), np.ones(SHAPE, F32)
    opt = MODES[mode]([w0, w1], backend=backend)
    for _ in range(3):
        before = snapshot(opt, [w0, w1])
        for name in arrays_of(opt.state[0]):
            with pytest.raises(ValueError, match=rf"grads\[0\] shares memory with state\[0\]\['{name}'\]"):
                opt.step([opt.state[0][name], fresh()])
            with pytest.raises(ValueError, match=rf"grads\[0\] shares memory with state\[0\]\['{name}'\]"):
                opt.step([opt.state[0][name][:], fresh()])
        assert snapshot(opt, [w0, w1]) == before
        opt.step([fresh(), fresh()])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["itself", "view"])
def test_flat_grad_is_a_state_block(mode, how, backend):
    """Over a FlatParams the state lives in flat blocks: a block, or a view of it, given as
    grads or bound to flat.grad is refused and nothing changes."""
    flat = fastloss.FlatParams([(2, 3), (5,)])
    flat.data[...] = 1.0
    flat.grad[...] = 0.5
    opt = MODES[mode](flat, backend=backend)
    opt.step()
    opt.step()
    names = [k for k, v in opt._flat_state.items() if isinstance(v, np.ndarray)]
    assert names
    before = snapshot(opt, [flat.data])
    grad0 = flat.grad
    for name in names:
        blk = opt._flat_state[name]
        g = blk if how == "itself" else blk[:]
        with pytest.raises(ValueError, match=rf"^grads shares memory with the optimizer's '{name}' state"):
            opt.step(g)
        flat.grad = g
        with pytest.raises(ValueError, match=rf"^flat.grad shares memory with the optimizer's '{name}' state"):
            opt.step()
        flat.grad = grad0
        assert snapshot(opt, [flat.data]) == before
    opt.step(np.full(flat.size, 0.5, F32))
    assert opt._flat_state["step"] == 3


# ---- state arrays assigned by the user are verified before they are used ----------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["adam_amsgrad", "sgd_momentum", "rmsprop_momentum_centered",
                                  "adagrad"])
def test_grad_is_a_state_array_assigned_by_the_user(mode, backend):
    """An array assigned into state is the optimizer's state from then on: a gradient that is
    that array (or overlaps it) is refused; adjacent memory is not shared."""
    opt, ws = two_stepped(mode, backend)
    name = arrays_of(opt.state[1])[0]
    big = np.zeros(2 * ws[1].size, F32)
    mine = big[:ws[1].size].reshape(SHAPE)
    mine[...] = opt.state[1][name]
    opt.state[1][name] = mine
    before = snapshot(opt, ws)
    for g in (mine, big[2:2 + ws[1].size].reshape(SHAPE)):
        with pytest.raises(ValueError, match=rf"grads\[0\] shares memory with state\[1\]\['{name}'\]"):
            opt.step([g, fresh()])
        assert snapshot(opt, ws) == before
    own = opt.state[0][name].copy()
    opt.state[0][name] = own
    with pytest.raises(ValueError, match=rf"grads\[1\] shares memory with state\[0\]\['{name}'\]"):
        opt.step([fresh(), own])
    assert snapshot(opt, ws) == before
    opt.step([fresh(), big[ws[1].size:].reshape(SHAPE)])  # adjacent: accepted, and used
    assert opt.state[1][name] is mine and opt.state[1]["step"] == 3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["adam_amsgrad", "rmsprop_momentum_centered"])
@pytest.mark.parametrize("change, exc, match", [
    ("shape", ValueError, r"^state\[1\]\['{0}'\]: shape must be params\[1\]'s shape"),
    ("dtype", TypeError, r"^state\[1\]\['{0}'\]: dtype must be params\[1\]'s dtype"),
    ("readonly", ValueError, r"^state\[1\]\['{0}'\]: is read-only"),
    ("strided", ValueError, r"^state\[1\]\['{0}'\]: must be C-contiguous"),
    ("list", TypeError, r"^state\[1\]\['{0}'\]: must be a numpy.ndarray"),
    ("other_slot", ValueError, r"^state\[1\]\['{1}'\] shares memory with state\[1\]\['{0}'\]$"),
    ("other_param_state", ValueError, r"^state\[1\]\['{0}'\] shares memory with state\[0\]\['{0}'\]$"),
    ("param", ValueError, r"^state\[1\]\['{0}'\] shares memory with params\[0\]$"),
    ("own_param", ValueError, r"^state\[1\]\['{0}'\] shares memory with params\[1\]$"),
    ("deleted", ValueError, r"^state\[1\]: has no '{0}' entry"),
])
def test_invalid_state_assigned_by_the_user(mode, change, exc, match, backend):
    """Whatever replaces a state array is checked like the array it replaces before anything
    is written (params[0] would be updated first): each error names the entry."""
    opt, ws = two_stepped(mode, backend)
    first, second = arrays_of(opt.state[1])[:2]
    st = opt.state[1]
    if change == "shape":
        st[first] = np.zeros(ws[1].size - 1, F32)
    elif change == "dtype":
        st[first] = np.zeros(SHAPE, np.float64)
    elif change == "readonly":
        st[first] = st[first].copy()
        st[first].setflags(write=False)
    elif change == "strided":
        st[first] = np.zeros((2, 6), F32)[:, ::2]
    elif change == "list":
        st[first] = st[first].tolist()
    elif change == "other_slot":
        st[second] = st[first]
    elif change == "other_param_state":
        st[first] = opt.state[0][first]
    elif change == "param":
        st[first] = ws[0]
    elif change == "own_param":
        st[first] = ws[1]
    else:
        del st[first]
    before = snapshot(opt, ws)
    with pytest.raises(exc, match=match.format(first, second)):
        opt.step([fresh(), fresh()])
    assert snapshot(opt, ws) == before


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_valid_state_assigned_by_the_user_is_used(mode, backend):
    """A valid array assigned into state is taken (and updated in place) as if the optimizer
    had it: the same bits as an optimizer left alone."""
    opt, ws = two_stepped(mode, backend)
    ref, rws = two_stepped(mode, backend)
    for st in opt.state:
        for name in arrays_of(st):
            st[name] = st[name].copy()
    mine = opt.state[1][arrays_of(opt.state[1])[0]]
    for _ in range(2):
        opt.step([fresh(), fresh()])
        ref.step([fresh(), fresh()])
    assert snapshot(opt, ws) == snapshot(ref, rws)
    assert opt.state[1][arrays_of(opt.state[1])[0]] is mine


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_dict_missing_one_adam_array(backend):
    """A loaded state with exp_avg but no exp_avg_sq: the missing one starts at zeros (it was
    handed to the kernels as None, after params[0] had been updated)."""
    opt, ws = two_stepped("adam", backend)
    ref, rws = two_stepped("adam", backend)
    sd = opt.state_dict()
    sd["state"][1]["exp_avg_sq"] = None
    opt.load_state_dict(sd)
    ref.state[1]["exp_avg_sq"][...] = 0.0
    opt.step([fresh(), fresh()])
    ref.step([fresh(), fresh()])
    assert snapshot(opt, ws) == snapshot(ref, rws)


# ---- the functional kernels: no two arrays may share memory -----------------------------------

FUNCTIONAL_MODES = {  # name -> (the arrays in use: param, grad, states...; call)
    "sgd_": (3, lambda a, be: optim.sgd_(*a, step=2, lr=0.1, momentum=0.9, backend=be)),
    "sgd_nesterov": (3, lambda a, be: optim.sgd_(*a, step=2, lr=0.1, momentum=0.9, nesterov=True,
                                                 backend=be)),
    "adam_": (4, lambda a, be: optim.adam_(*a, step=1, backend=be)),
    "adam_amsgrad": (5, lambda a, be: optim.adam_(*a, step=1, amsgrad=True, backend=be)),
    "adamw_amsgrad": (5, lambda a, be: optim.adamw_(*a, step=1, amsgrad=True, backend=be)),
    "adagrad_": (3, lambda a, be: optim.adagrad_(*a, step=1, backend=be)),
    "rmsprop_": (3, lambda a, be: optim.rmsprop_(*a, step=1, backend=be)),
    "rmsprop_momentum": (4, lambda a, be: optim.rmsprop_(*a, step=1, momentum=0.9, backend=be)),
    "rmsprop_momentum_centered": (5, lambda a, be: optim.rmsprop_(*a, step=1, momentum=0.9,
                                                                  centered=True, backend=be)),
    "rmsprop_centered": (5, lambda a, be: optim.rmsprop_(a[0], a[1], a[2], None, a[4], step=1,
                                                         centered=True, backend=be)),
}


@pytest.mark.parametrize("checked", [False, True], ids=["fast", "checked"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn", FUNCTIONAL_MODES)
def test_functional_every_overlapping_pair_refused(fn, backend, checked):
    """Every pair of the arrays a functional kernel uses, as one array, a view of it, or two
    overlapping views of one block: refused and nothing written (the C fast path and the
    checked Python path alike)."""
    import contextlib
    from fastloss._fast import checked_only
    n, call = FUNCTIONAL_MODES[fn]
    used = [k for k in range(n) if not (fn == "rmsprop_centered" and k == 3)]
    for a in used:
        for b in used:
            if b <= a:
                continue
            for how in ("same", "view", "partial"):
                arrs = [np.full(8, 0.5, F32) for _ in range(n)]
                blk = np.full(12, 0.5, F32)
                if how == "same":
                    arrs[b] = arrs[a]
                elif how == "view":
                    arrs[b] = arrs[a][:]
                else:
                    arrs[a], arrs[b] = blk[:8], blk[4:]
                before = [x.tobytes() for x in arrs] + [blk.tobytes()]
                with checked_only() if checked else contextlib.nullcontext():
                    with pytest.raises(ValueError, match="share memory"):
                        call(arrs, backend)
                assert [x.tobytes() for x in arrs] + [blk.tobytes()] == before, (a, b, how)


# ---- torch.optim state_dicts: said so, not an unknown key ------------------------------------

TORCH_GROUP = {  # mode -> the group keys torch.optim (2.x) adds to this optimizer's
    "sgd_momentum": ["foreach", "differentiable", "fused"],
    "adam": ["foreach", "capturable", "differentiable", "fused"],
    "adamw": ["foreach", "capturable", "differentiable", "fused"],
    "adagrad": ["foreach", "differentiable", "fused"],
    "rmsprop": ["capturable", "foreach", "differentiable"],
}


class _FakeTensor:
    """Stands in for a torch.Tensor step count (the library must not need torch to say so)."""


_FakeTensor.__module__ = "torch"
_FakeTensor.__name__ = _FakeTensor.__qualname__ = "Tensor"


@pytest.mark.parametrize("mode", TORCH_GROUP)
def test_torch_state_dict_group_keys(mode):
    opt, ws = two_stepped(mode, "numpy")
    for key in TORCH_GROUP[mode]:
        sd = opt.state_dict()
        sd["param_groups"][0][key] = None if key in ("foreach", "fused") else False
        before = snapshot(opt, ws)
        with pytest.raises(ValueError, match=rf"^state_dict: param_groups\[0\]: has '{key}', an option "
                                             r"of torch.optim: this is a torch.optim state_dict, which "
                                             r"cannot be loaded"):
            opt.load_state_dict(sd)
        assert snapshot(opt, ws) == before
    sd = opt.state_dict()
    sd["state"][1]["step"] = _FakeTensor()
    with pytest.raises(TypeError, match=r"^state_dict: state\[1\]\['step'\]: a Tensor, as torch.optim "
                                        r"keeps it: this is a torch.optim state_dict"):
        opt.load_state_dict(sd)
    assert snapshot(opt, ws) == before


@pytest.mark.parametrize("mode", TORCH_GROUP)
def test_real_torch_state_dict(mode):
    torch = pytest.importorskip("torch")
    cls = {"sgd_momentum": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}[mode]
    p = torch.nn.Parameter(torch.ones(SHAPE))
    t = cls([p], lr=0.5, **({"momentum": 0.9} if mode == "sgd_momentum" else {}))
    p.grad = torch.ones(SHAPE)
    t.step()
    sd = t.state_dict()
    assert sorted(set(sd["param_groups"][0]) & {"foreach", "fused", "capturable", "differentiable"}) \
        == sorted(TORCH_GROUP[mode])
    w = np.ones(SHAPE, F32)
    opt = MODES[mode]([w])
    with pytest.raises(ValueError, match=r"has '\w+', an option of torch.optim: this is a torch.optim "
                                         r"state_dict, which cannot be loaded"):
        opt.load_state_dict(sd)
