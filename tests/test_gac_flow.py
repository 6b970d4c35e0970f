"""Flow matching conventions (t = 0 data, t = 1 noise), logit-normal t with shift, Euler sampler."""

from __future__ import annotations

import torch

from gac import flow


def test_shift_examples_from_bagel():
    t = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.0, 1.0])
    expected = torch.tensor([0.25, 0.5, 0.75, 0.9, 0.0, 1.0])
    torch.testing.assert_close(flow.shift_t(t, 3.0), expected, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(flow.shift_t(t, 1.0), t)


def test_logit_normal_t_lies_in_open_interval_and_shift_raises_it():
    g = torch.Generator().manual_seed(0)
    t1 = flow.sample_t(4000, 1.0, g)
    t3 = flow.sample_t(4000, 3.0, torch.Generator().manual_seed(0))
    assert ((t1 > 0) & (t1 < 1)).all()
    assert abs(float(t1.median()) - 0.5) < 0.03
    assert float(t3.mean()) > float(t1.mean()) + 0.1


def test_interpolation_endpoints_and_velocity():
    x0, eps = torch.randn(5, 4), torch.randn(5, 4)
    torch.testing.assert_close(flow.interpolate(x0, eps, torch.zeros(5)), x0)
    torch.testing.assert_close(flow.interpolate(x0, eps, torch.ones(5)), eps)
    t = torch.full((5,), 0.3)
    # d x_t / dt = eps - x0 = the velocity target
    d = (flow.interpolate(x0, eps, t + 1e-3) - flow.interpolate(x0, eps, t)) / 1e-3
    torch.testing.assert_close(d, flow.velocity_target(x0, eps), rtol=1e-2, atol=1e-2)


def test_euler_with_the_exact_velocity_recovers_the_data():
    x0 = torch.randn(7, 3)
    schedule = flow.EulerSchedule(steps=5, shift=3.0)
    calls = []

    def oracle(x, t):  # exact velocity of the straight path through x0: v = (x_t - x0) / t
        calls.append(t)
        return (x - x0) / t

    out = schedule.sample(oracle, torch.randn(7, 3))
    torch.testing.assert_close(out, x0, rtol=1e-5, atol=1e-5)
    assert len(calls) == 5 and calls[0] == 1.0  # "steps" counts model evaluations, starting at pure noise


def test_schedule_grid_is_shifted_and_decreasing():
    ts = flow.EulerSchedule(50, 3.0).timesteps()
    assert ts.shape == (51,) and ts[0] == 1 and ts[-1] == 0 and (ts[1:] < ts[:-1]).all()
    assert float(ts[25]) == float(flow.shift_t(torch.tensor(0.5, dtype=torch.float64), 3.0))


def test_flow_loss_is_token_mean_squared_error():
    a, b = torch.zeros(4, 8), torch.ones(4, 8) * 2
    assert float(flow.flow_loss(a, b)) == 4.0
