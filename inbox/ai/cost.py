"""Token usage and what it costs, per 1,000 messages: the same arithmetic for `flask ai eval`
and for the Sara settings page (recorded decisions)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

PER = 1000  # messages


@dataclass(frozen=True, slots=True)
class TokenCost:
    messages: int  # every message Sara decided, rules included: the denominator of "per 1,000 messages"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0  # decisions that called a billed model

    def _per_1000(self, value: int) -> int:
        return round(value * PER / self.messages) if self.messages else 0

    @property
    def prompt_per_1000(self) -> int:
        return self._per_1000(self.prompt_tokens)

    @property
    def completion_per_1000(self) -> int:
        return self._per_1000(self.completion_tokens)

    @property
    def tokens_per_1000(self) -> int:
        return self._per_1000(self.prompt_tokens + self.completion_tokens)

    def cost_per_1000(self, prompt_price: Decimal | None, completion_price: Decimal | None) -> Decimal | None:
        """Prices per million tokens (prompt, completion); None when a price is unknown."""
        if prompt_price is None or completion_price is None or not self.messages:
            return None
        total = (Decimal(self.prompt_tokens) * Decimal(prompt_price)
                 + Decimal(self.completion_tokens) * Decimal(completion_price)) / 1_000_000
        return (total * PER / self.messages).quantize(Decimal("0.0001"))
