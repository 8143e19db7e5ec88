"""Fine-tuning: continue training on the clean reserve; the backdoor fades as weights move."""

from __future__ import annotations

from bdcore import Defense, DefenseInputs, DefenseOutput, accuracy_on, fine_tune

from bdb_defense_ft.config import FTConfig


class FineTune(Defense):
    """Fine-tune every weight on the clean reserve (cosine lr, SGD)."""

    config: FTConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        val_before = accuracy_on(model, inputs.val)
        fine_tune(model, inputs.reserve, inputs.recipe, self.ctx.seed, epochs=c.epochs, lr=c.lr,
                  batch_size=c.batch_size, weight_decay=c.weight_decay, augment=c.augment,
                  optimizer="sgd", schedule="cosine")
        return DefenseOutput(model=model, info={"val_acc_before": val_before, "val_acc_after": accuracy_on(model, inputs.val)})
