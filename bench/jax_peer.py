"""The NM-RNN written in JAX from the equations, as a speed peer for the benchmarks.

Written for this package from the equations in ``docs/models.md`` (not taken
from the authors' repository), in the style the authors used: one trial is a
``lax.scan`` over time, ``vmap`` over the batch, ``jit`` around everything,
float64 (``jax_enable_x64``), the QR of L inside the jitted function, and the
training step ``value_and_grad`` + element-wise clip(1) + AdamW (b1 0.9,
b2 0.999, eps 1e-8, weight decay 1e-4), as ``optax.chain(optax.clip(1.0),
optax.adamw(lr))`` computes it.

Import this module only when ``jax`` is importable; :func:`available` says so.
"""
from __future__ import annotations

import importlib.util


def available() -> bool:
    """True when jax can be imported."""
    return importlib.util.find_spec("jax") is not None


def build(alpha_x: float, alpha_z: float, lr: float = 1e-2, weight_decay: float = 1e-4):
    """Jitted ``simulate(params, x0, z0, inputs) -> (y, x, z)`` and ``step(params, opt_state, batch)``.

    ``simulate`` returns what the authors' ``batched_nm_rnn`` returns (ys,
    xs, zs; each (B, T, .)), so it does the work of ``model.simulate``;
    ``step`` returns ``(new_params, new_opt_state, loss)``.

    ``params`` uses this package's names (L, R, B_x, C, d, W_z, B_z, A, a);
    the timing-task NM-RNN (signal_dim = K, orthonormalised L, no 1/N).
    ``batch = (x0, z0, inputs, targets, mask)``. ``opt_state = (count, mu, nu)``.
    """
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def trial(params, L, x0, z0, inputs):
        def step(carry, u):
            x, z = carry
            z_new = (1 - alpha_z) * z + alpha_z * (params["W_z"] @ jnp.tanh(z) + params["B_z"] @ u)
            s = jax.nn.sigmoid(params["A"] @ z_new + params["a"])
            x_new = (1 - alpha_x) * x + alpha_x * (L @ (s * (params["R"].T @ jnp.tanh(x))) + params["B_x"] @ u)
            y = params["C"] @ x_new + params["d"]
            return (x_new, z_new), (y, x_new, z_new)

        return jax.lax.scan(step, (x0, z0), inputs)[1]

    def simulate(params, x0, z0, inputs):
        L = jnp.linalg.qr(params["L"])[0]
        return jax.vmap(trial, in_axes=(None, None, 0, 0, 0))(params, L, x0, z0, inputs)

    def loss(params, x0, z0, inputs, targets, mask):
        y = simulate(params, x0, z0, inputs)[0]
        return jnp.sum(mask * (y - targets) ** 2) / jnp.sum(mask)

    b1, b2, eps = 0.9, 0.999, 1e-8

    def train_step(params, opt_state, batch):
        value, grads = jax.value_and_grad(loss)(params, *batch)
        count, mu, nu = opt_state
        count = count + 1
        g = jax.tree_util.tree_map(lambda v: jnp.clip(v, -1.0, 1.0), grads)
        mu = jax.tree_util.tree_map(lambda m, v: (1 - b1) * v + b1 * m, mu, g)
        nu = jax.tree_util.tree_map(lambda n, v: (1 - b2) * v * v + b2 * n, nu, g)
        c1, c2 = 1 - b1 ** count, 1 - b2 ** count
        params = jax.tree_util.tree_map(
            lambda p, m, n: p - lr * ((m / c1) / (jnp.sqrt(n / c2) + eps) + weight_decay * p), params, mu, nu)
        return params, (count, mu, nu), value

    return jax.jit(simulate), jax.jit(train_step)


def build_train_step(model, lr: float = 1e-2, weight_decay: float = 1e-4):
    """Jitted ``step(params, opt_state, batch) -> (new_params, new_opt_state, loss)`` for any model.

    The same equations as ``model.step`` (NM-RNN and LR-RNN with their
    options ``scale`` = c, the QR of L, readout bias; vanilla RNN; LSTM), one
    trial a ``lax.scan``, ``vmap`` over trials, masked MSE, clip(1) + AdamW
    as in :func:`build`. ``batch = (init, inputs, targets, mask)`` where
    ``init`` is the dict of initial states (``model.initial_states(B)``).
    """
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    kind = type(model).__name__
    cfg = model.config()
    sig = jax.nn.sigmoid

    if kind in ("NMRNN", "LowRankRNN"):
        nm = kind == "NMRNN"
        ax = model.alpha_x if nm else model.alpha
        az = model.alpha_z if nm else 0.0
        c = model.recurrent_scale

        def trial(p, L, init, inputs):
            def step(carry, u):
                x, z = carry
                if nm:
                    z = (1 - az) * z + az * (p["W_z"] @ jnp.tanh(z) + p["B_z"] @ u)
                    s = sig(p["A"] @ z + p["a"])
                    rec = L @ (s * (p["R"].T @ jnp.tanh(x)))
                else:
                    rec = L @ (p["R"].T @ jnp.tanh(x))
                x = (1 - ax) * x + ax * (c * rec + p["B_x"] @ u)
                y = p["C"] @ x + (p["d"] if cfg.get("readout_bias", True) else 0.0)
                return (x, z), y

            return jax.lax.scan(step, (init["x0"], init.get("z0", jnp.zeros(0))), inputs)[1]

        def outputs(p, init, inputs):
            L = jnp.linalg.qr(p["L"])[0] if cfg["orthonormalize"] else p["L"]
            return jax.vmap(trial, in_axes=(None, None, 0, 0))(p, L, init, inputs)
    elif kind == "VanillaRNN":
        a, c = model.alpha, model.recurrent_scale

        def trial(p, init, inputs):
            def step(x, u):
                x = (1 - a) * x + a * (c * (p["W"] @ jnp.tanh(x)) + p["B_x"] @ u)
                return x, p["C"] @ x + p["d"]

            return jax.lax.scan(step, init["x0"], inputs)[1]

        def outputs(p, init, inputs):
            return jax.vmap(trial, in_axes=(None, 0, 0))(p, init, inputs)
    elif kind == "LSTM":
        def trial(p, init, inputs):
            def step(carry, u):
                c, h = carry

                def pre(q):
                    return p[f"W_{q}u"] @ u + p[f"W_{q}h"] @ h + p[f"b_{q}"]

                i, f, g, o = sig(pre("i")), sig(pre("f")), jnp.tanh(pre("g")), sig(pre("o"))
                c = f * c + i * g
                h = o * jnp.tanh(c)
                return (c, h), p["C"] @ h

            return jax.lax.scan(step, (init["c0"], init["h0"]), inputs)[1]

        def outputs(p, init, inputs):
            return jax.vmap(trial, in_axes=(None, 0, 0))(p, init, inputs)
    else:
        raise ValueError(f"no JAX peer for {kind}")

    def loss(p, init, inputs, targets, mask):
        y = outputs(p, init, inputs)
        m = jnp.broadcast_to(mask if mask.ndim == 3 else mask[..., None], y.shape)
        return jnp.sum(m * (y - targets) ** 2) / jnp.sum(m)

    b1, b2, eps = 0.9, 0.999, 1e-8

    def train_step(params, opt_state, batch):
        value, grads = jax.value_and_grad(loss)(params, *batch)
        count, mu, nu = opt_state
        count = count + 1
        g = jax.tree_util.tree_map(lambda v: jnp.clip(v, -1.0, 1.0), grads)
        mu = jax.tree_util.tree_map(lambda m, v: (1 - b1) * v + b1 * m, mu, g)
        nu = jax.tree_util.tree_map(lambda n, v: (1 - b2) * v * v + b2 * n, nu, g)
        c1, c2 = 1 - b1 ** count, 1 - b2 ** count
        params = jax.tree_util.tree_map(
            lambda p, m, n: p - lr * ((m / c1) / (jnp.sqrt(n / c2) + eps) + weight_decay * p), params, mu, nu)
        return params, (count, mu, nu), value

    return jax.jit(train_step)


def init_state(params):
    """AdamW state (count, mu, nu) of zeros for :func:`build`'s ``step``, in the parameters' precision."""
    import jax.numpy as jnp
    zeros = {k: jnp.zeros_like(jnp.asarray(v)) for k, v in params.items()}
    dtype = next(iter(zeros.values())).dtype if zeros else jnp.float64
    return (jnp.asarray(0.0, dtype=dtype), zeros, dict(zeros))


def to_device(tree, dtype=None):
    """numpy arrays -> jax arrays (float64, or ``dtype``: float32 for the peer of ``backend="numba32"``),
    so timing excludes the host-to-device copy. Every jitted function then runs in that precision."""
    import jax.numpy as jnp
    if isinstance(tree, dict):
        return {k: jnp.asarray(v, dtype=dtype) for k, v in tree.items()}
    return tuple(jnp.asarray(v, dtype=dtype) for v in tree)


def block(tree):
    """Wait until every array of ``tree`` is computed (JAX dispatches asynchronously)."""
    import jax
    return jax.block_until_ready(tree)
