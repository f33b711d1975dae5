"""The homework's PixelDA training step in PyTorch, as its report gives it: the reference
that `evaluation.fidelity` holds the Keras `--preset homework` against.

Networks (NCHW, PyTorch's own layers and defaults): G concatenates a dense 10 -> 32x32 map of
z to the image, conv 64 3x3 ReLU, 6 residual blocks (conv-BN-ReLU-conv-BN + skip), conv 3
3x3 tanh; D: conv 3x3 stride 2 padding 1 (64, 128, 256, 512), each BN, LeakyReLU 0.2, then Gaussian
noise (std 0.2) added and dropout 0.1, dense -> sigmoid; T: conv 32 5x5 - pool - conv 48 5x5 -
pool - dense 100 - dense 100 - dense 10. Batch norm is `nn.BatchNorm2d`'s (momentum 0.1,
eps 1e-5, unbiased running variance). Losses as the report's `calculate_losses`:
`nn.BCELoss`, the fake term as `BCE(1 - D(G), 1)`, `nn.CrossEntropyLoss`; one
`torch.optim.Adam(lr, betas, weight_decay)` for D and T, one for G. A step: the D/T step,
then the G step against the updated D and T on the same generated batch.

Random draws are passed in (z, and D's noise and dropout multipliers per pass) so that
another implementation can be fed the same tensors. Parameters are a dict of arrays named
like PyTorch modules' state (`g.res0.bn1.running_var`); torch is imported only here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

RESIDUAL_BLOCKS = 6
D_FILTERS = (64, 128, 256, 512)


@dataclasses.dataclass(frozen=True)
class HomeworkSettings:
    """The homework's numbers (report: loss weights, Adam, batch norm)."""

    w_d: float = 0.013
    w_g_adv: float = 0.011
    w_g_task: float = 0.01
    learning_rate: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-5
    bn_momentum: float = 0.1
    bn_epsilon: float = 1e-5
    leak: float = 0.2


def parameter_names() -> dict[str, list[str]]:
    """The trainable layers of each network in order: convs and dense layers (weight, bias)
    and batch norms (weight, bias, running_mean, running_var)."""
    g = ["g.fc", "g.conv0"]
    for i in range(RESIDUAL_BLOCKS):
        g += [f"g.res{i}.conv1", f"g.res{i}.bn1", f"g.res{i}.conv2", f"g.res{i}.bn2"]
    d = [name for i in range(len(D_FILTERS)) for name in (f"d.conv{i}", f"d.bn{i}")]
    return {
        "generator": [*g, "g.out"],
        "discriminator": [*d, "d.fc"],
        "classifier": ["t.conv0", "t.conv1", "t.fc0", "t.fc1", "t.fc2"],
    }


class TorchPixelDA:
    """The homework's G, D, T and their two Adam optimizers, from `params` (arrays in
    PyTorch's layouts, as `parameter_names` names them)."""

    def __init__(self, params: dict[str, np.ndarray], settings: HomeworkSettings):
        import torch

        self.torch, self.settings = torch, settings
        self.state = {}
        for name, value in params.items():
            tensor = torch.tensor(np.asarray(value, np.float32))
            self.state[name] = tensor.requires_grad_(not name.endswith(("_mean", "_var")))
        groups = {
            net: self._trainable(prefix) for net, prefix in (("g", "g."), ("dt", ("d.", "t.")))
        }
        self.g_optimizer, self.d_optimizer = (
            torch.optim.Adam(
                groups[net],
                lr=settings.learning_rate,
                betas=settings.betas,
                weight_decay=settings.weight_decay,
            )
            for net in ("g", "dt")
        )

    def _trainable(self, prefix) -> list:
        return [t for n, t in self.state.items() if n.startswith(prefix) and t.requires_grad]

    def _conv(self, x, name, stride=1, padding=1):
        F = self.torch.nn.functional
        return F.conv2d(
            x, self.state[f"{name}.weight"], self.state[f"{name}.bias"], stride, padding
        )

    def _linear(self, x, name):
        return self.torch.nn.functional.linear(
            x, self.state[f"{name}.weight"], self.state[f"{name}.bias"]
        )

    def _bn(self, x, name):
        s = self.state
        return self.torch.nn.functional.batch_norm(
            x,
            s[f"{name}.running_mean"],
            s[f"{name}.running_var"],
            s[f"{name}.weight"],
            s[f"{name}.bias"],
            training=True,
            momentum=self.settings.bn_momentum,
            eps=self.settings.bn_epsilon,
        )

    def generator(self, x, z):
        F = self.torch.nn.functional
        plane = self._linear(z, "g.fc").view(-1, 1, x.shape[2], x.shape[3])
        h = F.relu(self._conv(self.torch.cat([x, plane], 1), "g.conv0"))
        for i in range(RESIDUAL_BLOCKS):
            r = F.relu(self._bn(self._conv(h, f"g.res{i}.conv1"), f"g.res{i}.bn1"))
            h = h + self._bn(self._conv(r, f"g.res{i}.conv2"), f"g.res{i}.bn2")
        return self.torch.tanh(self._conv(h, "g.out"))

    def discriminator(self, x, draws):
        """`draws`: per block (noise, keep), noise ~ 0.2 N(0, 1) and keep the dropout
        multiplier (0 or 1 / (1 - 0.1)): the training-mode D of the homework."""
        F = self.torch.nn.functional
        for i, (noise, keep) in enumerate(draws):
            x = self._conv(x, f"d.conv{i}", stride=2, padding=1)  # nn.Conv2d(c, f, 3, 2, 1)
            x = F.leaky_relu(self._bn(x, f"d.bn{i}"), self.settings.leak)
            x = (x + noise) * keep
        return self.torch.sigmoid(self._linear(x.flatten(1), "d.fc"))

    def classifier(self, x):
        F = self.torch.nn.functional
        x = F.max_pool2d(F.relu(self._conv(x, "t.conv0", padding=2)), 2)
        x = F.max_pool2d(F.relu(self._conv(x, "t.conv1", padding=2)), 2)
        x = F.relu(self._linear(x.flatten(1), "t.fc0"))
        return self._linear(F.relu(self._linear(x, "t.fc1")), "t.fc2")

    def train_step(self, x_s, y_s, x_t, z, draws) -> tuple[float, float]:
        """One homework step on NCHW tensors; `draws` holds D's draws for its three passes
        (real target, fake in the D step, fake in the G step). The two losses."""
        torch, s = self.torch, self.settings
        bce, ce = torch.nn.BCELoss(), torch.nn.CrossEntropyLoss()
        fake = self.generator(x_s, z)
        ones = torch.ones(x_s.shape[0], 1)
        loss_d_real = bce(self.discriminator(x_t, draws[0]), ones)
        loss_d_fake = bce(1 - self.discriminator(fake.detach(), draws[1]), ones)
        loss_d = (loss_d_real + loss_d_fake) * s.w_d
        loss_t = ce(self.classifier(x_s), y_s) + ce(self.classifier(fake.detach()), y_s)
        self.d_optimizer.zero_grad()
        (loss_d + loss_t).backward()
        self.d_optimizer.step()
        loss_g_adv = bce(self.discriminator(fake, draws[2]), ones) * s.w_g_adv
        loss_g = loss_g_adv + ce(self.classifier(fake), y_s) * s.w_g_task
        self.g_optimizer.zero_grad()
        loss_g.backward()
        self.g_optimizer.step()
        return float((loss_d + loss_t).detach()), float(loss_g.detach())

    def arrays(self) -> dict[str, np.ndarray]:
        """Every parameter and running statistic, as NumPy arrays."""
        return {n: t.detach().numpy().copy() for n, t in self.state.items()}

    def adam_moments(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(exp_avg, exp_avg_sq) of every trainable parameter."""
        moments = {}
        for optimizer in (self.g_optimizer, self.d_optimizer):
            for name, tensor in self.state.items():
                if tensor in optimizer.state:
                    st = optimizer.state[tensor]
                    moments[name] = (st["exp_avg"].numpy().copy(), st["exp_avg_sq"].numpy().copy())
        return moments
