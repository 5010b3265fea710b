"""The discrete model is forward Euler of the continuous NM-RNN: first-order convergence."""
from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

import nmrnn_np as nm


def _continuous_rhs(model, p, u_of_t):
    """tau_z dz/dt = -z + W_z tanh z + B_z u;  tau_x dx/dt = -x + L diag(s) R^T tanh x + B_x u."""
    N, M = model.N, model.M

    def rhs(t, v):
        x, z = v[:N], v[N:]
        u = u_of_t(t)
        s = 1.0 / (1.0 + np.exp(-(p["A"] @ z + p["a"])))
        dz = (-z + p["W_z"] @ np.tanh(z) + p["B_z"] @ u) / model.tau_z
        dx = (-x + p["L"] @ (s * (p["R"].T @ np.tanh(x))) + p["B_x"] @ u) / model.tau_x
        return np.concatenate([dx, dz])

    return rhs


def test_euler_converges_at_first_order_to_solve_ivp(backend):
    horizon = 20.0
    base = nm.NMRNN(N=10, K=2, M=3, U=2, O=1, tau_x=2.0, tau_z=5.0)
    raw = base.init_params(3)
    p = base.prepare(raw)

    def u_of_t(t):
        return np.array([np.sin(0.7 * t), np.cos(0.3 * t)])

    x0, z0 = np.linspace(-0.5, 0.5, 10), np.linspace(0.2, -0.2, 3)
    sol = solve_ivp(_continuous_rhs(base, p, u_of_t), (0, horizon), np.concatenate([x0, z0]),
                    method="DOP853", rtol=1e-11, atol=1e-12)
    exact = sol.y[:, -1]

    errors = []
    for dt in (0.2, 0.1, 0.05, 0.025):
        model = nm.NMRNN(N=10, K=2, M=3, U=2, O=1, tau_x=2.0, tau_z=5.0, dt=dt)
        steps = int(round(horizon / dt))
        # step t advances from time (t-1) dt to t dt and sees the input at its end
        u = np.stack([u_of_t(dt * (t + 1)) for t in range(steps)])[None]
        tr = model.simulate(raw, u, x0=x0, z0=z0, backend=backend)
        errors.append(np.max(np.abs(np.concatenate([tr.x[0, -1], tr.z[0, -1]]) - exact)))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    # first order: halving dt halves the error
    assert np.all((ratios > 1.8) & (ratios < 2.2)), (errors, ratios)
