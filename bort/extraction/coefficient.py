"""The W-coefficient: the three surrogates, each relative to the maximum point T, scalarised into one number to
minimise (the exact formula of the paper is not public; this is the reading of docs/extraction.md, "Readings").

    p̂ = p*(ξ) / p*(T)     î = i*(ξ) / i*(T)     ê = e*(ξ) / e*(T)  (>= 1: e*(T) is T's own entropy)

    form "ratio" (default):   W = ê^γ / ((1 - p̂)^α (1 - î)^β)   error paid per unit of the gains over T
    form "product":           W = p̂^α · î^β · ê^γ
    form "sum":               W = α p̂ + β î + γ ê

In "ratio" T itself (p̂ = î = 1: no gain) is the worst point, W = inf; "product" rewards size so strongly that
with equal weights it picks the smallest candidate unless the error ratios differ by as much as the sizes.
All three grow with every surrogate, so replacing ê by its floor 1 gives a lower bound of W from p* and i* alone:
`lower_bound`. That bound is what lets the loop stop early with the (1 - ε) guarantee (loop.py).
"""
import dataclasses
import math

from ..errors import ConfigError

FORMS = ("ratio", "product", "sum")


@dataclasses.dataclass(frozen=True)
class WCoefficient:
    form: str = "ratio"
    alpha: float = 1.0  # weight of parameters
    beta: float = 1.0  # weight of inference cost
    gamma: float = 1.0  # weight of error

    def __post_init__(self):
        if self.form not in FORMS:
            raise ConfigError(f"unknown W-coefficient form {self.form!r}; choose from {', '.join(FORMS)}")
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"W-coefficient weight {name} must be a finite number >= 0, got {value!r}")
        if self.alpha == self.beta == self.gamma == 0:
            raise ConfigError("at least one W-coefficient weight must be positive")

    def __call__(self, p_ratio, i_ratio, e_ratio):
        for name, value in (("p", p_ratio), ("i", i_ratio), ("e", e_ratio)):
            if not value > 0:
                raise ValueError(f"surrogate ratio {name} must be positive, got {value}")
        if self.form == "ratio":
            gains = (1.0 - p_ratio) ** self.alpha * (1.0 - i_ratio) ** self.beta
            return e_ratio ** self.gamma / gains if gains > 0 else math.inf
        if self.form == "product":
            return p_ratio ** self.alpha * i_ratio ** self.beta * e_ratio ** self.gamma
        return self.alpha * p_ratio + self.beta * i_ratio + self.gamma * e_ratio

    def lower_bound(self, p_ratio, i_ratio):
        """W with ê at its floor 1: no candidate with these p̂, î can score below it."""
        return self(p_ratio, i_ratio, 1.0)
