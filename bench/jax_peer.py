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


def init_state(params):
    """AdamW state (count, mu, nu) of zeros for :func:`build`'s ``step``."""
    import jax.numpy as jnp
    zeros = {k: jnp.zeros_like(jnp.asarray(v)) for k, v in params.items()}
    return (jnp.asarray(0.0), zeros, dict(zeros))


def to_device(tree):
    """numpy arrays -> jax arrays (float64), so timing excludes the host-to-device copy."""
    import jax.numpy as jnp
    if isinstance(tree, dict):
        return {k: jnp.asarray(v) for k, v in tree.items()}
    return tuple(jnp.asarray(v) for v in tree)


def block(tree):
    """Wait until every array of ``tree`` is computed (JAX dispatches asynchronously)."""
    import jax
    return jax.block_until_ready(tree)
