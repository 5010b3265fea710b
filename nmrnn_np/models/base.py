"""What every model shares: parameter checks, initial states, the time loop.

A model object holds only sizes and options (plain, JSON-serialisable values);
parameters live in a plain ``dict`` of named float64 arrays that the caller
owns. Each concrete model writes its equations once, in :meth:`step`, with
``autograd.numpy`` so that the same readable code

* runs the NumPy path of :meth:`simulate` (a Python loop over time, vectorised
  over the batch), and
* is differentiated by plain autograd to give the reference gradients.

The numba kernels in :mod:`nmrnn_np._kernels` are a second, fast
implementation of the same equations and are tested against :meth:`step`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Dict, Mapping

import autograd.numpy as anp
import numpy as np
from autograd.core import VJPNode, add_outgrads, vspace
from autograd.tracer import getval, isbox, new_box, trace_stack

from .. import _validation as V
from .._backend import KERNEL_DTYPES, resolve_backend
from .._rng import as_generator

Params = Dict[str, np.ndarray]


# ----------------------------------------------------------------------------
# Nonlinearities (autograd-compatible; the kernels use the same formulas)
# ----------------------------------------------------------------------------
def sigmoid(a):
    """Logistic sigmoid ``1 / (1 + exp(-a))``, written as ``(1 + tanh(a/2)) / 2``.

    The two forms are equal; the tanh form never overflows.
    """
    return 0.5 * (anp.tanh(0.5 * a) + 1.0)


def identity(a):
    """phi(a) = a (the linear network of the rank-1 theory)."""
    return a


NONLINEARITIES = {"tanh": anp.tanh, "linear": identity}


def leaky_euler(state, drive, alpha: float):
    r"""Forward-Euler step of ``tau dv/dt = -v + drive``: :math:`(1-\alpha) v + \alpha\, \mathrm{drive}`,
    with ``alpha = dt / tau``. Every rate equation of the package goes through here."""
    return (1.0 - alpha) * state + alpha * drive


# ----------------------------------------------------------------------------
# What simulate returns
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Trajectory:
    """Arrays produced by :meth:`RecurrentModel.simulate`, each (B, T, .).

    Row ``[b, t]`` is the value *after* the update at input step ``t``; the
    initial state is not included (as in the authors' code).

    Attributes
    ----------
    y : (B, T, O) outputs.
    x : (B, T, N) output-network state (all RNNs); ``None`` for the LSTM.
    z : (B, T, M) neuromodulatory state (NM-RNNs), else ``None``.
    s : (B, T, S) neuromodulatory signal in (0, 1) (NM-RNNs), else ``None``.
    h : (B, T, N) LSTM hidden state, else ``None``.
    c : (B, T, N) LSTM cell state, else ``None``.
    """

    y: np.ndarray
    x: np.ndarray | None = None
    z: np.ndarray | None = None
    s: np.ndarray | None = None
    h: np.ndarray | None = None
    c: np.ndarray | None = None

    def as_dict(self) -> dict[str, np.ndarray]:
        """The arrays that are present, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


# ----------------------------------------------------------------------------
# Base class
# ----------------------------------------------------------------------------
class RecurrentModel:
    """Base class: sizes and options, checks, and the generic time loop.

    Subclasses define ``kind`` (registry name), ``state_names`` (initial-state
    keyword names, e.g. ``("x", "z")``), ``record_names`` (what a step
    records), :meth:`param_shapes`, :meth:`init_params`, :meth:`prepare` and
    :meth:`step`.
    """

    kind: str = ""
    state_names: tuple[str, ...] = ()
    record_names: tuple[str, ...] = ()
    #: initial value of every unit of every state when the caller gives none
    default_initial_value: float = 0.1

    # -- sizes and configuration ------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict (``type(self)(**config)``)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.config().items()))))

    @property
    def n_inputs(self) -> int:
        """U, the number of input channels ``simulate`` expects."""
        return self.U

    @property
    def n_outputs(self) -> int:
        """O, the number of output channels."""
        return self.O

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every parameter array, in a fixed order."""
        raise NotImplementedError

    def state_sizes(self) -> dict[str, int]:
        """Initial-state name (without the trailing 0) -> number of units."""
        raise NotImplementedError

    #: the input weights (the ``"input"`` group); the multitask experiment retrains only these
    input_keys: tuple[str, ...] = ("B_x",)

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Named parameter groups for partial training (``train(..., trainable=...)``).

        ``"input"``: the input weights; ``"output"``: the output-generating
        network (every parameter not in the NM subnetwork, its input weights
        included). :class:`NMRNN` adds ``"nm"``, the neuromodulatory subnetwork.
        """
        keys = tuple(self.param_shapes())
        return {"input": tuple(k for k in keys if k in self.input_keys), "output": keys}

    def n_params(self) -> int:
        """Total number of trainable scalars."""
        return int(sum(math.prod(s) for s in self.param_shapes().values()))

    def init_params(self, rng: None | int | np.random.Generator = None) -> Params:
        """Random parameters with the authors' scales; see the subclass docstring."""
        raise NotImplementedError

    def _draw(self, rng, scales: Mapping[str, float]) -> Params:
        """Draw ``scale * N(0, 1)`` for every parameter, in :meth:`param_shapes` order."""
        gen = as_generator(rng)
        return {name: scales[name] * gen.standard_normal(shape) for name, shape in self.param_shapes().items()}

    # -- checks -------------------------------------------------------------
    def check_params(self, params: Mapping[str, Any], name: str = "params") -> Params:
        """Check keys, shapes and finiteness; return float64 arrays.

        Autograd tracer values are checked through their underlying value and
        returned unchanged, so checking never breaks differentiation.
        """
        if isbox(params) and isinstance(getval(params), Mapping):
            # autograd.grad over the whole dict boxes the dict: unpack it into boxed entries
            params = {k: params[k] for k in getval(params)}
        if not isinstance(params, Mapping):
            raise TypeError(f"{name} must be a dict of arrays keyed by {list(self.param_shapes())}, "
                            f"got {type(params).__name__}")
        shapes = self.param_shapes()
        missing = [k for k in shapes if k not in params]
        extra = [k for k in params if k not in shapes]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if extra:
                parts.append(f"unexpected keys {extra}")
            raise ValueError(f"{name} for the model {type(self).__name__}: " + "; ".join(parts)
                             + f" (expected exactly {list(shapes)})")
        out = {}
        for key, shape in shapes.items():
            value = params[key]
            raw = getval(value)
            if raw is value:
                out[key] = V.float_array(value, f"{name}[{key!r}]", shape=shape)
            else:  # autograd box: check the value, keep the box
                V.float_array(raw, f"{name}[{key!r}]", shape=shape)
                out[key] = value
        return out

    def check_inputs(self, inputs, name: str = "inputs") -> np.ndarray:
        """Return ``inputs`` as a float64 (B, T, U) array, U = :attr:`n_inputs`."""
        arr = V.float_array(inputs, name, shape=(None, None, self.n_inputs))
        if arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"{name} must have at least one trial and one time step, got shape {arr.shape}")
        return arr

    def initial_states(self, batch: int, **given) -> dict[str, np.ndarray]:
        """Initial states as (B, n) arrays, keyed ``x0``, ``z0``, ``h0``, ``c0``...

        Each given state may be (n,) (shared by all trials) or (B, n); a state
        that is not given is filled with :attr:`default_initial_value`
        (0.1, the authors' choice for the timing and multitask experiments).
        """
        sizes = self.state_sizes()
        allowed = [f"{s}0" for s in self.state_names]
        unknown = [k for k in given if k not in allowed]
        if unknown:
            raise TypeError(f"unknown initial state(s) {unknown} for {type(self).__name__}; "
                            f"expected keyword(s) {allowed}")
        out = {}
        for s in self.state_names:
            key, n = f"{s}0", sizes[s]
            value = given.get(key)
            if value is None:
                out[key] = np.full((batch, n), self.default_initial_value)
                continue
            arr = V.float_array(value, key, ndim=(1, 2))
            if arr.ndim == 1:
                if arr.shape != (n,):
                    raise ValueError(f"{key} must have shape ({n},) or ({batch}, {n}), got {arr.shape}")
                arr = np.broadcast_to(arr, (batch, n))
            elif arr.shape != (batch, n):
                raise ValueError(f"{key} must have shape ({n},) or ({batch}, {n}), got {arr.shape}")
            out[key] = np.ascontiguousarray(arr)
        return out

    def init_states(self, rng: None | int | np.random.Generator = None, scheme: str = "fan_in") -> dict[str, np.ndarray]:
        """Random initial states, one per run, as keyword arguments of :meth:`simulate`.

        Parameters
        ----------
        rng : int or numpy.random.Generator, optional
        scheme : {"fan_in", "reference"}
            ``"fan_in"`` (the authors' element-finder code): every state
            N(0, 1)/sqrt(n), n its number of units, drawn from ``rng`` in
            :attr:`state_names` order (x then z; c then h for the LSTM, as
            their ``initialize_carry``). ``"reference"`` (timing and multitask
            code): the constant :attr:`default_initial_value` (0.1) in every
            unit, which is also what :meth:`simulate` uses when no state is given.

        Returns
        -------
        dict
            1-D float64 arrays under their :meth:`simulate` keyword names:
            ``x0`` (N,), ``z0`` (M,) for the NM-RNN; ``x0`` for the LR-RNN and the
            vanilla RNN; ``c0``, ``h0`` (N,) for the LSTM. Pass them on with
            ``model.simulate(params, inputs, **states)`` (each is shared by all trials).
        """
        V.choice(scheme, "scheme", ("fan_in", "reference"))
        sizes = self.state_sizes()
        if scheme == "reference":
            return {f"{s}0": np.full(sizes[s], self.default_initial_value) for s in self.state_names}
        gen = as_generator(rng)
        return {f"{s}0": gen.standard_normal(sizes[s]) / math.sqrt(sizes[s]) for s in self.state_names}

    # -- equations ----------------------------------------------------------
    def prepare(self, params: Params) -> Params:
        """Parameters as the step uses them (e.g. L replaced by its QR factor).

        Written with autograd-differentiable operations. The default is the
        identity.
        """
        return dict(params)

    def step(self, p: Params, state: dict, u):
        """One Euler step for a batch: ``(new_state, record)``; see subclasses."""
        raise NotImplementedError

    # -- the time loop --------------------------------------------------------
    def _simulate_numpy(self, p: Params, inputs, init: dict) -> dict:
        """Run :meth:`step` over time; the NumPy path and the autograd reference.

        No in-place updates, so autograd can differentiate through it.
        """
        state = {s: init[f"{s}0"] for s in self.state_names}
        records = {k: [] for k in self.record_names}
        for t in range(inputs.shape[1]):
            state, rec = self.step(p, state, inputs[:, t, :])
            for k in self.record_names:
                records[k].append(rec[k])
        return {k: anp.stack(v, axis=1) for k, v in records.items()}

    #: prepared-parameter names the numba kernels read (see :mod:`nmrnn_np.primitives`)
    _kernel_keys: tuple[str, ...] = ()

    def _numba_forward(self, p: Params, inputs: np.ndarray, init: dict, *, dtype=np.float64) -> dict:
        """Numba forward kernel in precision ``dtype``: ``"y"`` and the states the backward pass needs."""
        raise NotImplementedError(f"{type(self).__name__} has no numba kernel")

    def _numba_backward(self, p: Params, inputs: np.ndarray, init: dict, fwd: dict, g_y: np.ndarray) -> dict:
        """Numba BPTT kernel (in the precision of ``fwd``): float64 gradient of ``sum(g_y * y)`` w.r.t. each
        ``p[k]``, k in ``_kernel_keys``."""
        raise NotImplementedError(f"{type(self).__name__} has no numba kernel")

    def _simulate_numba(self, p: Params, inputs: np.ndarray, init: dict, dtype=np.float64) -> dict:
        """Run the numba kernel; returns the same dict as :meth:`_simulate_numpy` (float64 arrays)."""
        from autograd.tracer import getval
        fwd = self._numba_forward({k: getval(v) for k, v in p.items()}, inputs, init, dtype=dtype)
        return {k: np.asarray(fwd[k], dtype=np.float64) for k in self.record_names}

    def _outputs_numba(self, p: Params, inputs: np.ndarray, init: dict, dtype=np.float64):
        """y (B, T, O) from the numba kernel, differentiable by autograd w.r.t. ``p``."""
        from ..primitives import numba_outputs
        return numba_outputs(self, p, inputs, init, dtype)

    # -- public API -----------------------------------------------------------
    def _setup(self, params, inputs, initial_states, backend):
        backend = resolve_backend(backend)
        params = self.check_params(params)
        inputs = self.check_inputs(inputs)
        init = self.initial_states(inputs.shape[0], **initial_states)
        return params, inputs, init, backend

    def simulate(self, params: Mapping[str, np.ndarray], inputs, *, backend: str | None = None,
                 **initial_states) -> Trajectory:
        """Simulate a batch of trials.

        Parameters
        ----------
        params : dict of arrays
            As returned by :meth:`init_params` (keys and shapes in
            :meth:`param_shapes`).
        inputs : array (B, T, U)
            Input ``u_t`` for every trial and step.
        backend : {"numba", "numpy", "numba32"}, optional
            Default: numba when installed and not disabled. ``"numba32"``:
            the numba kernels in float32 (opt-in; arrays returned as float64).
        **initial_states : arrays (n,) or (B, n)
            ``x0``, ``z0`` (NM-RNN), ``x0`` (LR-RNN, RNN), ``h0``, ``c0``
            (LSTM); 0.1 in every unit when omitted.

        Returns
        -------
        Trajectory
            ``y`` and the states, each (B, T, .).
        """
        params, inputs, init, backend = self._setup(params, inputs, initial_states, backend)
        p = self.prepare(params)
        if backend in KERNEL_DTYPES:
            out = self._simulate_numba(p, inputs, init, KERNEL_DTYPES[backend])
        else:
            out = self._simulate_numpy(p, inputs, init)
        return Trajectory(**{k: np.asarray(v) for k, v in out.items()})

    def outputs(self, params: Mapping[str, np.ndarray], inputs, *, backend: str | None = None,
                **initial_states):
        """Outputs y (B, T, O), differentiable by autograd with respect to ``params``.

        The numba backend runs the forward kernel wrapped as an autograd
        primitive whose VJP is the numba BPTT kernel; the numpy backend lets
        autograd trace :meth:`step` through a Python loop (the reference).
        """
        params, inputs, init, backend = self._setup(params, inputs, initial_states, backend)
        p = self.prepare(params)
        if backend in KERNEL_DTYPES:
            return self._outputs_numba(p, inputs, init, KERNEL_DTYPES[backend])
        return self._simulate_numpy(p, inputs, init)["y"]

    # -- losses and gradients -------------------------------------------------
    def _check_targets(self, inputs, targets, mask):
        B, T = inputs.shape[:2]
        targets = V.float_array(targets, "targets", ndim=3)
        if targets.shape != (B, T, self.n_outputs):
            raise ValueError(f"targets must have shape ({B}, {T}, {self.n_outputs}) (trials and steps of inputs, "
                             f"O={self.n_outputs} outputs), got {targets.shape}")
        if mask is not None:
            mask = V.float_array(mask, "mask", ndim=(2, 3))
            if mask.ndim == 2:
                mask = mask[:, :, None]
            if mask.shape[:2] != (B, T) or mask.shape[2] not in (1, self.n_outputs):
                raise ValueError(f"mask must have shape ({B}, {T}), ({B}, {T}, 1) or ({B}, {T}, {self.n_outputs}) "
                                 f"(trials and steps of inputs), got {mask.shape}")
            # min/max: one reduction each, no boolean temporaries (mask is finite and non-empty here)
            if mask.min() < 0:
                raise ValueError("mask must be non-negative")
            if not mask.max() > 0:
                raise ValueError("mask is zero everywhere: the masked loss would be 0/0")
        return targets, mask

    def _loss_setup(self, inputs, targets, mask, loss, backend, initial_states):
        """Checked arguments of a loss: ``(loss_fn, inputs, targets, mask, backend, init)``."""
        from ..losses import get_loss
        loss_fn = get_loss(loss)
        inputs = self.check_inputs(inputs)
        targets, mask = self._check_targets(inputs, targets, mask)
        backend = resolve_backend(backend)
        init = self.initial_states(inputs.shape[0], **initial_states)
        return loss_fn, inputs, targets, mask, backend, init

    def _loss_function(self, inputs, targets, mask, loss, backend, initial_states):
        return self._objective(*self._loss_setup(inputs, targets, mask, loss, backend, initial_states))

    def _objective(self, loss_fn, inputs, targets, mask, backend, init):
        """``params -> loss``, traceable by autograd, on checked arguments (see :meth:`_loss_setup`)."""
        def objective(params):
            p = self.prepare(params)
            if backend in KERNEL_DTYPES:
                y = self._outputs_numba(p, inputs, init, KERNEL_DTYPES[backend])
            else:
                y = self._simulate_numpy(p, inputs, init)["y"]
            return loss_fn(y, targets, mask)

        return objective

    def loss(self, params: Mapping[str, np.ndarray], inputs, targets, mask=None, *,
             loss: str = "masked_mse", backend: str | None = None, **initial_states) -> float:
        """Loss of ``params`` on one batch (see :meth:`loss_and_grad` for the arguments)."""
        params = self.check_params(params)
        objective = self._loss_function(inputs, targets, mask, loss, backend, initial_states)
        return float(objective(params))

    def loss_and_grad(self, params: Mapping[str, np.ndarray], inputs, targets, mask=None, *,
                      loss: str = "masked_mse", backend: str | None = None,
                      **initial_states) -> tuple[float, Params]:
        """Loss and its gradient with respect to every parameter.

        Parameters
        ----------
        params : dict of arrays
        inputs : array (B, T, U)
        targets : array (B, T, O)
        mask : array (B, T), (B, T, 1) or (B, T, O), optional
            Weights of the squared errors; ``None`` is all ones.
        loss : {"masked_mse", "mse", "last_step_mse"} or callable(y, targets, mask)
            See :mod:`nmrnn_np.losses`. Default: the authors' masked MSE.
        backend : {"numba", "numpy", "numba32"}, optional
            ``"numba"``: the forward kernel as an autograd primitive whose VJP
            is a numba BPTT kernel. ``"numpy"``: plain autograd through the
            Python loop over :meth:`step` (the slow, readable reference).
            ``"numba32"``: the same kernels in float32 (opt-in, a training step
            ~1.5x faster); the loss, the gradient returned and the parameters
            stay float64.
        **initial_states
            As in :meth:`simulate`; gradients with respect to them are not
            computed.

        Returns
        -------
        loss : float
        grads : dict with the same keys and shapes as ``params``
        """
        params = self.check_params(params)
        return self._checked_loss_and_grad(params, *self._loss_setup(inputs, targets, mask, loss, backend,
                                                                     initial_states))

    def _checked_loss_and_grad(self, params: Params, loss_fn, inputs, targets, mask, backend,
                               init) -> tuple[float, Params]:
        """:meth:`loss_and_grad` on checked arguments (those of :meth:`_loss_setup`, a resolved backend).

        The trainer checks its parameters and each batch once and calls this at
        every step.
        """
        if backend in KERNEL_DTYPES:
            value, grads = self._kernel_loss_and_grad(params, loss_fn, inputs, targets, mask, backend, init)
        else:
            objective = self._objective(loss_fn, inputs, targets, mask, backend, init)
            value, grads = value_and_grad_of_dict(objective, params)
        return float(value), {k: np.asarray(grads[k], dtype=np.float64) for k in params}

    def _kernel_loss_and_grad(self, params: Params, loss_fn, inputs, targets, mask, backend, init):
        r"""The numba path of :meth:`loss_and_grad`: the chain rule in three explicit pieces.

        With :math:`p = \mathrm{prepare}(\theta)` (the QR of L, say), :math:`y` the
        forward kernel's output and :math:`\mathcal{L}(y)` the loss,

        .. math::

            \bar y = \partial \mathcal{L} / \partial y, \qquad
            \bar p = \mathrm{BPTT}(\bar y), \qquad
            \bar\theta = \bar p \, \partial p / \partial \theta,

        the first and last by autograd (:func:`value_and_grad_of_dict` on the
        loss alone, :func:`vjp_of_dict` on :meth:`prepare` alone), the middle
        by the backward kernel. The same operations, in the same order, as
        tracing the whole objective through the kernel primitive of
        :mod:`nmrnn_np.primitives` (:meth:`outputs`), so the same bits
        (``tests/test_numba32.py``), without taping the steps in between
        (~0.1 ms of a 3 ms timing-task step).
        """
        dtype = KERNEL_DTYPES[backend]
        p, prepare_vjp = vjp_of_dict(self.prepare, params)
        kp = {k: p[k] for k in self._kernel_keys}
        fwd = self._numba_forward(kp, inputs, init, dtype=dtype)
        y = np.asarray(fwd["y"], dtype=np.float64)
        value, g = value_and_grad_of_dict(lambda d: loss_fn(d["y"], targets, mask), {"y": y})
        g_p = self._numba_backward(kp, inputs, init, fwd, np.ascontiguousarray(g["y"], dtype=np.float64))
        return value, prepare_vjp(g_p)


# ----------------------------------------------------------------------------
# Reverse mode over a dict of parameters
# ----------------------------------------------------------------------------
def _reverse_pass(outgrads: dict, roots: Mapping[str, Any], params: Mapping[str, Any]) -> dict:
    """autograd's reverse pass from the nodes in ``outgrads`` (node -> flagged cotangent) down to ``roots``.

    :func:`autograd.core.backward_pass` for several end nodes at once: the
    nodes are visited in reverse topological order of the union of their
    graphs (Kahn's algorithm on child counts, as :func:`autograd.util.toposort`
    does for one end); the gradient arriving at each root is kept.
    """
    ends = list(outgrads)
    child_counts: dict = {}
    stack = list(ends)
    while stack:
        node = stack.pop()
        if node in child_counts:
            child_counts[node] += 1
        else:
            child_counts[node] = 1
            stack.extend(node.parents)
    for node in ends:   # each end was counted once as a starting point, not as a child
        child_counts[node] -= 1
    ready = [node for node in ends if child_counts[node] == 0]
    is_root = set(roots.values())
    while ready:
        node = ready.pop()
        if node not in is_root:   # a root keeps its gradient in outgrads
            g = outgrads.pop(node)[0]
            for parent, ingrad in zip(node.parents, node.vjp(g)):
                outgrads[parent] = add_outgrads(outgrads.get(parent), ingrad)
        for parent in node.parents:
            if child_counts[parent] == 1:
                ready.append(parent)
            else:
                child_counts[parent] -= 1
    return {k: outgrads[node][0] if node in outgrads else vspace(params[k]).zeros() for k, node in roots.items()}


def vjp_of_dict(fun, params: Mapping[str, Any]) -> tuple[dict, Any]:
    r"""``fun(params)`` (a dict of arrays) and its vector-Jacobian product, both with respect to dicts.

    Returns ``(out, vjp)``: ``out`` the unboxed ``fun(params)``, and ``vjp(cot)``,
    which maps cotangents ``cot[k]`` of (some of) the ``out[k]`` to the gradient of
    :math:`\sum_k \langle cot_k, out_k \rangle` with respect to every array of
    ``params`` (zeros for those nothing depends on). Each parameter is boxed on
    its own root node, as in :func:`value_and_grad_of_dict`; an output that *is* a
    parameter (most of a model's :meth:`~RecurrentModel.prepare`) passes its
    cotangent straight through.
    """
    roots = {k: VJPNode.new_root() for k in params}
    with trace_stack.new_trace() as trace:
        boxed_out = fun({k: new_box(v, trace, roots[k]) for k, v in params.items()})
    out = {k: getval(v) for k, v in boxed_out.items()}

    def vjp(cotangents: Mapping[str, Any]) -> dict:
        outgrads: dict = {}
        for k, g in cotangents.items():
            v = boxed_out[k]
            if isbox(v) and v._trace == trace:
                outgrads[v._node] = add_outgrads(outgrads.get(v._node), g)
        return _reverse_pass(outgrads, roots, params)

    return out, vjp


def value_and_grad_of_dict(fun, params: Mapping[str, Any]) -> tuple[Any, dict]:
    r"""``fun(params)`` (a scalar) and its gradient with respect to every array of the dict ``params``.

    The same numbers as ``autograd.value_and_grad(fun)(params)``, by autograd's
    own reverse pass, without boxing the dict: that makes every ``params[k]``
    a primitive whose VJP builds a zero dict of *all* the parameters, so a
    model with P parameter arrays paid P^2 array additions and ~2P extra graph
    nodes per gradient (~0.35 ms of the 3.7 ms timing-task training step).
    Here each array is boxed on its own root node; the reverse pass is
    :func:`autograd.core.backward_pass` except that it keeps the gradients
    arriving at the roots instead of returning the one of a single start node.

    Returns
    -------
    value : the unboxed ``fun(params)``
    grads : dict, the keys of ``params``; zeros for an array ``fun`` does not use
    """
    roots = {k: VJPNode.new_root() for k in params}
    with trace_stack.new_trace() as trace:
        end = fun({k: new_box(v, trace, roots[k]) for k, v in params.items()})
    if not (isbox(end) and end._trace == trace):   # the value does not depend on params
        return end, {k: vspace(v).zeros() for k, v in params.items()}
    value, end_node = end._value, end._node
    if vspace(value).size != 1:
        raise TypeError(f"the loss must be a scalar, got shape {np.shape(value)}")
    return value, _reverse_pass({end_node: (vspace(value).ones(), False)}, roots, params)
