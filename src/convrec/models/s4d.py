"""S4D (Gu, Gupta, Goel & Ré 2022, "On the Parameterization and Initialization of Diagonal
State Space Models"): per channel, a linear state space with a diagonal complex state matrix,

  x_t = exp(dt A) x_(t-1) + u_t,   y_t = 2 Re(C' x_t) + D u_t,   C' = C (exp(dt A) - 1) / A

(zero-order hold), A_n = -1/2 + i pi n (S4D-Lin). Unrolled, y is u convolved with the kernel
K_l = 2 Re(C' exp(dt A l)): training computes it for the whole sequence at once with an FFT,
inference can run the recurrence one step at a time. Stacked in the blocks of
convrec.models.scan (pre-norm, residual, feed-forward), as the paper's reference code stacks
its layers; GELU after the layer, as there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from convrec.models import MODELS
from convrec.models.scan import ScanNet


class S4DLayer(nn.Module):
    """(N, T, features) -> (N, T, hidden): `hidden` channels, each with `state_size` / 2
    complex states (conjugate pairs: the real output needs only half)."""

    state_size = 64
    dt_range = (0.001, 0.1)  # the step sizes' log-uniform initial range (the paper's)

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.input = nn.Linear(features, hidden) if hidden != features else nn.Identity()
        half = self.state_size // 2
        low, high = (math.log(v) for v in self.dt_range)
        self.log_dt = nn.Parameter(torch.rand(hidden) * (high - low) + low)
        self.log_a_real = nn.Parameter(torch.full((hidden, half), math.log(0.5)))
        self.register_buffer("a_imag", math.pi * torch.arange(half).float().repeat(hidden, 1))
        self.c = nn.Parameter(torch.view_as_real(torch.randn(hidden, half, dtype=torch.cfloat)))
        self.d = nn.Parameter(torch.randn(hidden))

    def _discrete(self) -> tuple[torch.Tensor, torch.Tensor]:
        """dt A and C' (hidden, half), complex."""
        a = torch.complex(-torch.exp(self.log_a_real), self.a_imag)
        dt_a = a * torch.exp(self.log_dt)[:, None]
        return dt_a, torch.view_as_complex(self.c) * (torch.exp(dt_a) - 1) / a

    @staticmethod
    def _kernel(dt_a: torch.Tensor, c: torch.Tensor, steps: int) -> torch.Tensor:
        """K_l = 2 Re(C' exp(dt A l)) for l < steps, (hidden, steps), in real arithmetic:
        exp(l Re dt A) (Re C' cos(l Im dt A) - Im C' sin(l Im dt A)). The complex exp of
        the same (hidden, half, steps) powers took 4x as long on a CPU (218 against 51 ms at
        hidden 81, T = 2048), most of the S4D layer's inference latency."""
        at = torch.arange(steps, device=c.device)
        decay = torch.exp(dt_a.real[..., None] * at)  # (hidden, half, steps)
        angle = dt_a.imag[..., None] * at
        return 2 * (torch.einsum("hn,hnl->hl", c.real, decay * torch.cos(angle))
                    - torch.einsum("hn,hnl->hl", c.imag, decay * torch.sin(angle)))  # fmt: skip

    def forward(self, x: torch.Tensor, mode: str = "parallel") -> torch.Tensor:
        u = self.input(x)  # (N, T, H)
        dt_a, c = self._discrete()
        if mode == "parallel":
            steps = u.shape[1]
            kernel = self._kernel(dt_a, c, steps)
            # a causal convolution of length T through FFTs of length 2T (no wrap-around)
            spectrum = torch.fft.rfft(u.transpose(1, 2), n=2 * steps)  # (N, H, T) in
            spectrum = spectrum * torch.fft.rfft(kernel, n=2 * steps)
            y = torch.fft.irfft(spectrum, n=2 * steps)[..., :steps].transpose(1, 2)
        else:
            decay = torch.exp(dt_a)
            state = torch.zeros(u.shape[0], *decay.shape, dtype=decay.dtype, device=u.device)
            outputs = []
            for t in range(u.shape[1]):
                state = decay * state + u[:, t, :, None]
                outputs.append(2 * torch.einsum("hn,bhn->bh", c, state).real)
            y = torch.stack(outputs, dim=1)
        return F.gelu(y + self.d * u)


@MODELS.register("s4d")
class S4D(ScanNet):
    cell = S4DLayer
