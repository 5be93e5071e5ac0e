"""The stateful optimizers' contract at step() and load_state_dict(): every parameter,
gradient, hyperparameter and step count is checked before anything is written, errors name
the argument, and a rejected call leaves parameters and state byte-identical.  (Audit B:
F7 parameters re-checked at each step, F8 gradients overlapping another parameter, F10 step
counts beyond int64, F11 direct param_groups edits, F12 corrupt state_dicts.)"""
import numpy as np
import pytest

import fastloss
from fastloss import optim
from fastloss._registry import COMPILED

BACKENDS = COMPILED + ("numpy",)
F32 = np.float32

# every stateful optimizer, with options that create all of its state arrays
KINDS = {
    "sgd": lambda ps, **kw: optim.SGD(ps, lr=0.5, momentum=0.9, **kw),
    "adam": lambda ps, **kw: optim.Adam(ps, lr=0.5, amsgrad=True, **kw),
    "adamw": lambda ps, **kw: optim.AdamW(ps, lr=0.5, **kw),
    "adagrad": lambda ps, **kw: optim.Adagrad(ps, lr=0.5, **kw),
    "rmsprop": lambda ps, **kw: optim.RMSprop(ps, lr=0.5, momentum=0.9, centered=True, **kw),
}


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
