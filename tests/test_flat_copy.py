"""Copies of a FlatParams and of an optimizer over one (copy.deepcopy, pickle): the copy's
params are views of its own data block and its optimizer's state entries views of its own
state blocks, so a step on the copy equals the same step on the original bit for bit and
neither changes the other; copy.copy shares the blocks (a FlatParams) or is refused (an
optimizer).  Over a FlatParams a state entry the user rebinds would be ignored by the kernels,
which update the flat blocks: step() refuses it by name and touches nothing."""
import copy
import pickle
from collections.abc import MutableMapping

import numpy as np
import pytest

import fastloss
from fastloss import optim
from fastloss._registry import COMPILED, DTYPES

# 75000 elements (the flat call runs threaded) and odd small ones, a scalar, an empty one
SHAPES = [(300, 250), (17,), (1,), (3, 5, 7), (), (0, 4), (1025,)]

# every optimizer class, with the options that create all of its state arrays
MODES = {
    "sgd_momentum": lambda ps, **kw: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                               weight_decay=0.01, **kw),
    "adam_amsgrad": lambda ps, **kw: optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.125, **kw),
    "adamw_amsgrad": lambda ps, **kw: optim.AdamW(ps, lr=0.01, amsgrad=True, **kw),
    "adagrad": lambda ps, **kw: optim.Adagrad(ps, lr=0.05, lr_decay=0.01,
                                              initial_accumulator_value=0.5, **kw),
    "rmsprop_centered_momentum": lambda ps, **kw: optim.RMSprop(ps, lr=0.01, momentum=0.5,
                                                                centered=True, weight_decay=0.125,
                                                                **kw),
}


def deepcopied(obj):
    return copy.deepcopy(obj)


def pickled(obj):
    return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


COPIES = {"deepcopy": deepcopied, "pickle": pickled}


def _flat(dtype, seed=0):
    rng = np.random.default_rng(seed)
    flat = fastloss.FlatParams.from_arrays([rng.standard_normal(s) for s in SHAPES], dtype=dtype)
    flat.grad[...] = rng.standard_normal(flat.size)
    return flat


def _grads(flat, steps, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(flat.size).astype(flat.dtype) for _ in range(steps)]


def _blocks(opt):
    """The optimizer's flat state blocks that exist, by name."""
    return {k: b for k, b in opt._flat_state.items() if isinstance(b, np.ndarray)}


def _bytes(flat, opt=None):
    """Every value a step reads or writes, as bytes: the parameters, gradients, state blocks,
    every state entry and the step counts."""
    out = [flat.data.tobytes(), flat.grad.tobytes()]
    if opt is not None:
        out += [(k, b.tobytes()) for k, b in _blocks(opt).items()]
        out += [{k: (v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
                for st in opt.state]
        out.append(opt._flat_state["step"])
    return out


def _assert_own_views(flat):
    """flat's params and grads are views of its own 64-byte-aligned blocks, at their offsets."""
    for block, views in ((flat.data, flat.params), (flat.grad, flat.grads)):
        assert block.ctypes.data % 64 == 0 and block.flags.c_contiguous and block.flags.writeable
        assert block.dtype is flat.dtype
        for v, o, n, s in zip(views, flat.offsets, flat.sizes, flat.shapes):
            assert v.shape == s
            if n:
                assert np.shares_memory(v, block)
                assert v.ctypes.data == block.ctypes.data + o * block.itemsize
    assert not np.shares_memory(flat.data, flat.grad)


def _assert_opt_over(opt, flat):
    """opt is an optimizer over flat whose state entries are views of its own state blocks."""
    assert opt._flat is flat
    assert all(p is q for p, q in zip(opt.param_groups[0]["params"], flat.params))
    blocks = _blocks(opt)
    assert blocks  # every mode has state by now
    for k, b in blocks.items():
        assert b.shape == (flat.size,) and b.ctypes.data % 64 == 0 and b.dtype is flat.dtype
        assert not np.shares_memory(b, flat.data) and not np.shares_memory(b, flat.grad)
        for i, st in enumerate(opt.state):
            assert st[k].shape == flat.shapes[i]
            if st[k].size:
                assert np.shares_memory(st[k], b)
                assert st[k].ctypes.data == b.ctypes.data + flat.offsets[i] * b.itemsize


def _assert_disjoint(a, b):
    """No array of one optimizer/FlatParams pair shares memory with one of the other."""
    def arrays(flat, opt):
        out = [flat.data, flat.grad, *flat.params, *flat.grads]
        if opt is not None:
            out += list(_blocks(opt).values())
            out += [v for st in opt.state for v in st.values() if isinstance(v, np.ndarray)]
        return [x for x in out if x.size]
    for x in arrays(*a):
        for y in arrays(*b):
            assert not np.shares_memory(x, y)


# ---- a FlatParams alone -----------------------------------------------------------------------

@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_flatparams_copy(how, dtype):
    flat = _flat(dtype)
    flat.label = ["layer", 1]  # an attribute of the user's: copied with it
    before = _bytes(flat)
    c = COPIES[how](flat)
    assert type(c) is fastloss.FlatParams and c is not flat
    assert (c.shapes, c.offsets, c.sizes, c.size, c.dtype) == (flat.shapes, flat.offsets, flat.sizes,
                                                               flat.size, flat.dtype)
    assert c.label == ["layer", 1] and c.label is not flat.label
    assert _bytes(c) == before
    _assert_own_views(c)
    _assert_disjoint((flat, None), (c, None))
    for p, q in zip(c.params + c.grads, flat.params + flat.grads):
        assert p.tobytes() == q.tobytes()
    # writing through the copy's views changes the copy's blocks, never the original
    c.params[1][...] = 7.0
    c.grads[3][...] = -2.0
    assert (c.data[c.offsets[1]:c.offsets[1] + 17] == 7.0).all()
    assert (c.grad[c.offsets[3]:c.offsets[3] + 105] == -2.0).all()
    c.zero_grad()
    assert all((g == 0).all() for g in c.grads)
    assert _bytes(flat) == before


def test_deepcopy_keeps_other_references_to_the_views():
    """In one deepcopy, a reference to a FlatParams' block or view met after the FlatParams
    itself becomes the copy's (a model holding its FlatParams and named views of it)."""
    flat = _flat(np.float32)
    c, w, g, d = copy.deepcopy((flat, flat.params[0], flat.grads[6], flat.data))
    assert w is c.params[0] and g is c.grads[6] and d is c.data
    assert np.shares_memory(w, c.data) and np.shares_memory(g, c.grad)


def test_flatparams_shallow_copy_shares_the_blocks():
    flat = _flat(np.float32)
    c = copy.copy(flat)
    assert c is not flat and c.data is flat.data and c.grad is flat.grad
    assert c.params is not flat.params and all(p is q for p, q in zip(c.params, flat.params))
    # an optimizer over either updates the one data block
    opt = optim.SGD(c, lr=0.5)
    before = flat.data.copy()
    opt.step()
    np.testing.assert_array_equal(flat.data, before - np.float32(0.5) * flat.grad)


# ---- a FlatParams with its optimizer ---------------------------------------------------------

@pytest.mark.parametrize("steps_before", [0, 3])
@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("mode", MODES)
def test_copy_with_optimizer_steps_bit_for_bit(mode, backend, how, steps_before):
    flat = _flat(np.float32)
    opt = MODES[mode](flat, backend=backend)
    grads = _grads(flat, steps_before + 6)
    for g in grads[:steps_before]:
        flat.grad[...] = g
        opt.step(grad_scale=0.5)
    before = _bytes(flat, opt)
    c, copt = COPIES[how]((flat, opt))
    assert type(copt) is type(opt) and copt.backend == backend
    assert _bytes(c, copt) == before and _bytes(flat, opt) == before
    assert copt.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    _assert_own_views(c)
    if steps_before:
        _assert_opt_over(copt, c)
    _assert_disjoint((flat, opt), (c, copt))

    # the same gradients: the same bits, from the optimizer's flat grad block and given
    for n, g in enumerate(grads[steps_before:steps_before + 3]):
        flat.grad[...] = g
        c.grad[...] = g
        if n % 2:
            opt.step(g.copy(), grad_scale=0.5)
            copt.step(g.copy(), grad_scale=0.5)
        else:
            opt.step(grad_scale=0.5)
            copt.step(grad_scale=0.5)
        assert _bytes(c, copt) == _bytes(flat, opt)
    _assert_opt_over(copt, c)
    _assert_opt_over(opt, flat)
    _assert_disjoint((flat, opt), (c, copt))

    # independent: a step of one leaves the other as it was, and the other catches up
    g = grads[-3]
    flat.grad[...] = g
    c.grad[...] = g
    mine = _bytes(c, copt)
    opt.step(grad_scale=0.5)
    assert _bytes(c, copt) == mine
    theirs = _bytes(flat, opt)
    copt.step(grad_scale=0.5)
    assert _bytes(flat, opt) == theirs
    assert _bytes(c, copt) == theirs
    # and in the other order
    g = grads[-2]
    flat.grad[...] = g
    c.grad[...] = g
    theirs = _bytes(flat, opt)
    copt.step(grad_scale=0.5)
    assert _bytes(flat, opt) == theirs
    opt.step(grad_scale=0.5)
    assert _bytes(c, copt) == _bytes(flat, opt)
    # the state_dicts agree too (and a copy's loads into the original's kind)
    sd, csd = opt.state_dict(), copt.state_dict()
    for i in sd["state"]:
        assert sd["state"][i].keys() == csd["state"][i].keys()
        for k, v in sd["state"][i].items():
            w = csd["state"][i][k]
            assert (v.tobytes() == w.tobytes()) if isinstance(v, np.ndarray) else v == w


@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("mode", MODES)
def test_copy_of_optimizer_alone(mode, backend, how):
    """An optimizer copied without its FlatParams holds a copy of it (as a torch optimizer
    copied alone holds copies of its tensors): its params are views of that copy's block."""
    flat = _flat(np.float64)
    opt = MODES[mode](flat, backend=backend)
    grads = _grads(flat, 4)
    for g in grads[:2]:
        opt.step(g)
    copt = COPIES[how](opt)
    c = copt._flat
    assert c is not flat
    _assert_own_views(c)
    _assert_opt_over(copt, c)
    _assert_disjoint((flat, opt), (c, copt))
    for g in grads[2:]:
        opt.step(g)
        copt.step(g)
    for p, q in zip(copt.param_groups[0]["params"], flat.params):
        assert p.tobytes() == q.tobytes()
    assert _bytes(c, copt) == _bytes(flat, opt)


def test_optimizer_shallow_copy_refused():
    flat = _flat(np.float32)
    for opt in (optim.Adam(flat), optim.SGD([np.ones(3, np.float32)], lr=0.1)):
        with pytest.raises(TypeError, match=r"copy\.copy\(.*share the state.*copy\.deepcopy"):
            copy.copy(opt)


# ---- a state entry rebound over a FlatParams is refused, nothing touched ------------------------

def _reference(mode, backend, flat):
    """The same optimizer over separate arrays of flat's values, stepped the same way: what
    the flat one must equal."""
    arrays = [p.copy() for p in flat.params]
    return MODES[mode](arrays, backend=backend), arrays


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("mode", MODES)
def test_rebound_state_entry_refused(mode, backend):
    flat = _flat(np.float32)
    opt = MODES[mode](flat, backend=backend)
    ref, arrays = _reference(mode, backend, flat)
    grads = _grads(flat, 4)
    for g in grads[:2]:
        opt.step(g)
        ref.step([g[o:o + n].reshape(s) for o, n, s in zip(flat.offsets, flat.sizes, flat.shapes)])
    names = list(_blocks(opt))
    last = len(SHAPES) - 1
    for k in names:
        for i in (0, 3, last):
            view = opt.state[i][k]
            for bad in (view.copy(), np.zeros_like(view), view[...], None):
                opt.state[i][k] = bad
                before = _bytes(flat, opt)
                for call in (lambda: opt.step(), lambda: opt.step(grads[2])):
                    with pytest.raises(ValueError, match=rf"^state\[{i}\]\['{k}'\]: .*ignored"):
                        call()
                    assert _bytes(flat, opt) == before  # nothing touched, the entry left as set
                    assert opt.state[i][k] is bad
                # a copy keeps the entry as set, and refuses it too
                for how in COPIES.values():
                    c, copt = how((flat, opt))
                    with pytest.raises(ValueError, match=rf"^state\[{i}\]\['{k}'\]"):
                        copt.step()
                opt.state[i][k] = view
        del opt.state[last][k]
        with pytest.raises(ValueError, match=rf"state\[{last}\]: has no '{k}' entry"):
            opt.step()
        opt.state[last][k] = opt._flat_state[k][flat.offsets[last]:].reshape(SHAPES[last])
        with pytest.raises(ValueError, match=rf"^state\[{last}\]\['{k}'\]"):  # a view, not the one given
            opt.step()
        # load_state_dict replaces whatever was assigned: the views again
        opt.load_state_dict(opt.state_dict())
        assert opt.state[last][k].base is not None
    # still the reference's trajectory, bit for bit
    ref_grads = [[g[o:o + n].reshape(s) for o, n, s in zip(flat.offsets, flat.sizes, flat.shapes)]
                 for g in grads[2:]]
    for g, rg in zip(grads[2:], ref_grads):
        opt.step(g)
        ref.step(rg)
    _assert_opt_over(opt, flat)
    for i, (p, a) in enumerate(zip(flat.params, arrays)):
        assert p.tobytes() == a.tobytes()
        for k in names:
            assert opt.state[i][k].tobytes() == ref.state[i][k].tobytes()
        assert opt.state[i]["step"] == ref.state[i]["step"] == 4


@pytest.mark.parametrize("backend", COMPILED)
def test_written_through_the_view_is_used(backend):
    """The sound way to set flat state: write into the view.  It equals the same value
    assigned to the state of separate arrays."""
    flat = _flat(np.float32)
    opt = MODES["adam_amsgrad"](flat, backend=backend)
    ref, arrays = _reference("adam_amsgrad", backend, flat)
    g = _grads(flat, 1)[0]
    split = [g[o:o + n].reshape(s) for o, n, s in zip(flat.offsets, flat.sizes, flat.shapes)]
    opt.step(g)
    ref.step(split)
    opt.state[3]["exp_avg"][...] = 0.25
    ref.state[3]["exp_avg"] = np.full(SHAPES[3], 0.25, np.float32)
    opt.step(g)
    ref.step(split)
    for i, (p, a) in enumerate(zip(flat.params, arrays)):
        assert p.tobytes() == a.tobytes()
        assert opt.state[i]["exp_avg"].tobytes() == ref.state[i]["exp_avg"].tobytes()


@pytest.mark.parametrize("mode", ["adam_amsgrad", "sgd_momentum", "rmsprop_centered_momentum"])
def test_assigned_before_the_blocks_exist_refused(mode):
    """Before the first step these optimizers have no state block: an array assigned then
    would not be the state the kernels use either."""
    flat = _flat(np.float32)
    opt = MODES[mode](flat)
    k = opt._state_arrays[0]
    opt.state[2][k] = np.zeros(SHAPES[2], np.float32)
    before = _bytes(flat, opt)
    with pytest.raises(ValueError, match=rf"^state\[2\]\['{k}'\]: .*None until"):
        opt.step()
    assert _bytes(flat, opt) == before and opt._flat_state[k] is None
    opt.state[2][k] = None
    opt.step()
    _assert_opt_over(opt, flat)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("mode", MODES)
def test_step_counts_set_over_a_flatparams(mode, backend):
    """Step counts set in state: taken when every parameter has the same one (as separate
    arrays would take them); refused, naming one, when they differ."""
    flat = _flat(np.float32)
    opt = MODES[mode](flat, backend=backend)
    ref, arrays = _reference(mode, backend, flat)
    g = _grads(flat, 1)[0]
    split = [g[o:o + n].reshape(s) for o, n, s in zip(flat.offsets, flat.sizes, flat.shapes)]
    for _ in range(3):
        opt.step(g)
        ref.step(split)
    opt.state[4]["step"] = 10
    before = _bytes(flat, opt)
    with pytest.raises(ValueError, match=r"^state\[4\]\['step'\]: 10, while state\[0\]\['step'\] is 3"):
        opt.step(g)
    assert _bytes(flat, opt) == before
    opt.state[4]["step"] = "3"
    with pytest.raises(TypeError, match=r"state\[4\]\['step'\]"):
        opt.step(g)
    for st in (opt.state, ref.state):
        for s in st:
            s["step"] = 10
    opt.step(g)
    ref.step(split)
    assert all(s["step"] == 11 for s in opt.state) and opt._flat_state["step"] == 11
    for p, a in zip(flat.params, arrays):
        assert p.tobytes() == a.tobytes()


@pytest.mark.parametrize("backend", COMPILED)
def test_state_dicts_changed_any_way(backend):
    """Every way of changing a parameter's state mapping is seen at the next step: through a
    mapping method, the mapping replaced, the list of them changed; what leaves the entries as
    the optimizer gave them is taken."""
    flat = _flat(np.float32)
    opt = MODES["adam_amsgrad"](flat, backend=backend)
    opt.step()
    st = opt.state[2]
    assert isinstance(st, MutableMapping) and isinstance(opt.state, list)
    view = st["exp_avg_sq"]
    foreign = view.copy()
    changes = [
        (lambda: st.update(exp_avg_sq=foreign), r"^state\[2\]\['exp_avg_sq'\]: was assigned"),
        (lambda: st.__ior__({"exp_avg_sq": foreign}), r"^state\[2\]\['exp_avg_sq'\]"),
        (lambda: st.setdefault("exp_avg", None) and st.__setitem__("exp_avg", foreign),
         r"^state\[2\]\['exp_avg'\]: was assigned"),
        (lambda: st.pop("exp_avg_sq"), r"^state\[2\]: has no 'exp_avg_sq' entry"),
        (lambda: st.__delitem__("exp_avg"), r"^state\[2\]: has no 'exp_avg' entry"),
        (lambda: st.popitem(), r"^state\[2\]: has no '(step|exp_avg|exp_avg_sq|max_exp_avg_sq)' entry"),
        (lambda: st.clear(), r"^state\[2\]: has no 'exp_avg' entry"),
        (lambda: st.__setitem__("step", 5), r"^state\[2\]\['step'\]: 5, while state\[0\]\['step'\] is 1"),
        (lambda: opt.state.__setitem__(2, dict(st)), r"^state\[2\]: was replaced"),
        (lambda: opt.state.__setitem__(slice(2, 3), [dict(st)]), r"^state\[2\]: was replaced"),
        (lambda: opt.state.reverse(), r"^state\[0\]: was replaced"),
        (lambda: opt.state.insert(0, list.pop(opt.state)), r"^state\[0\]: was replaced"),
        (lambda: opt.state.append({}), r"^state: must be the optimizer's list of 7 dicts"),
        (lambda: opt.state.pop(), r"^state: must be the optimizer's list of 7 dicts"),
        (lambda: opt.state.__iadd__([{}]), r"^state: must be the optimizer's list of 7 dicts"),
        (lambda: setattr(opt, "state", list(opt.state)[:6]), r"^state: must be the optimizer's list of 7 dicts"),
        (lambda: setattr(opt, "state", tuple(opt.state)), r"^state: must be the optimizer's list of 7 dicts"),
    ]
    lst = opt.state
    for change, match in changes:
        saved = dict(st), list(opt.state)
        before = _bytes(flat, opt)
        change()
        with pytest.raises(ValueError, match=match):
            opt.step()
        assert flat.data.tobytes() == before[0]
        assert [(k, b.tobytes()) for k, b in _blocks(opt).items()] == before[2:2 + len(_blocks(opt))]
        opt.state = lst
        opt.state[:] = saved[1]
        st.clear()
        st.update(saved[0])
        assert _bytes(flat, opt) == before
    # changes that leave every entry as given: taken
    st.setdefault("exp_avg", None)
    st["exp_avg"] = st["exp_avg"]
    st["step"] = st["step"]
    st["note"] = "mine"  # an entry of the user's own: kept, as for separate arrays
    opt.state = list(opt.state)  # the same mappings in a new list
    opt.step()
    assert opt.state[2] is st and st["note"] == "mine" and st["exp_avg_sq"] is view
    assert all(s["step"] == 2 for s in opt.state)
    _assert_opt_over(opt, flat)
    opt.state[2] = dict(st)  # that list changed too: seen (it is checked by identity)
    with pytest.raises(ValueError, match=r"^state\[2\]: was replaced"):
        opt.step()
    opt.state[2] = st
    opt.step()
    assert all(s["step"] == 3 for s in opt.state)


@pytest.mark.parametrize("mode", MODES)
def test_state_over_a_flatparams_reads_as_dicts(mode):
    """Each state[i] over a FlatParams is a mapping whose copies, and state_dict(), are plain
    dicts with a plain int step (the step count followed without being written per
    parameter), the same as the state of separate arrays."""
    flat = _flat(np.float32)
    opt = MODES[mode](flat)
    ref, _ = _reference(mode, None, flat)
    g = _grads(flat, 1)[0]
    split = [g[o:o + n].reshape(s) for o, n, s in zip(flat.offsets, flat.sizes, flat.shapes)]
    for n in range(1, 4):
        opt.step(g)
        ref.step(split)
        assert [s["step"] for s in opt.state] == [n] * len(SHAPES)
    for i, (st, rs) in enumerate(zip(opt.state, ref.state)):
        assert list(st) == list(rs) and len(st) == len(rs) and "step" in st and "x" not in st
        assert st.get("x") is None and st.keys() == rs.keys()
        for plain in (dict(st), st.copy(), copy.copy(st), {**st}, st | {}, {} | st,
                      pickled(st), copy.deepcopy(st)):
            assert type(plain) is dict and list(plain) == list(rs)
            assert type(plain["step"]) is int and plain["step"] == 3
        assert repr(st) == repr(dict(st))
        assert (st == dict(st)) is True
    sd = opt.state_dict()
    assert type(sd["state"][0]) is dict and type(sd["state"][0]["step"]) is int
    assert sd["state"].keys() == ref.state_dict()["state"].keys()
    assert type(copy.copy(opt.state)) is list and type(pickled(opt.state)) is list
