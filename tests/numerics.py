"""Error measures and per-dtype tolerances shared by the kernel tests."""

import torch


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ in float64 (0 when both are zero); NaN anywhere gives inf."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return float("inf")
    denom = b.norm().item()
    return (a - b).norm().item() / denom if denom > 0 else (a - b).norm().item()


# Relative-norm tolerances against a float64 oracle fed the same (rounded) inputs: the error left
# is fp32 arithmetic plus rounding the output to the input dtype (fp16 2^-11, bf16 2^-8 per element).
VALUE_TOL = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 8e-3}
# Parameter gradients are reduced in fp32 whatever the input dtype.
PARAM_GRAD_TOL = 1e-4


def assert_compile_matches(model: torch.nn.Module, x: torch.Tensor, backend: str, value_tol: float,
                           grad_tol: float) -> None:
    """`torch.compile(model, fullgraph=True)` gives the eager model's output and parameter gradients
    (of the sum of squares) to the given relative tolerances."""
    eager_out = model(x)
    eager_out.square().sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    out = compiled(x)
    out.square().sum().backward()
    assert rel_err(out, eager_out) < value_tol
    for p, g in zip(model.parameters(), eager_grads):
        assert rel_err(p.grad, g) < grad_tol
