"""Super-Fine-Tuning: fine-tuning with a cyclic learning rate (Smith's triangular CLR, as in
super-convergence). In the first phase the rate swings up to a high peak, which pushes the model
far enough from its backdoored weights to forget the trigger; in the second phase it swings to a
much lower peak so the model settles and recovers clean accuracy. Every cycle starts and ends at
the base rate. Runs through the shared trainer's `cyclic` schedule.
"""

from __future__ import annotations

from bdcore import Defense, DefenseInputs, DefenseOutput, accuracy_on
from bdcore import train

from bdb_defense_sft.config import SFTConfig


class SuperFineTuning(Defense):
    """Fine-tune every weight on the clean reserve: high-peak cycles, then low-peak cycles."""

    config: SFTConfig

    def run(self, inputs: DefenseInputs) -> DefenseOutput:
        c = self.config
        model = inputs.model
        info = {"val_acc_before": accuracy_on(model, inputs.val)}
        common = {"batch_size": c.batch_size, "momentum": c.momentum, "weight_decay": c.weight_decay,
                  "augment": c.augment, "optimizer": "sgd", "schedule": "cyclic", "lr_min": c.lr_base}
        phases = [("forget", c.forget_epochs, c.lr_max1, c.forget_cycles),
                  ("recover", c.recover_epochs, c.lr_max2, c.recover_cycles)]
        for i, (name, epochs, peak, cycles) in enumerate(phases):
            if epochs == 0:
                continue
            recipe = inputs.recipe.model_copy(update={**common, "epochs": epochs, "lr": peak, "cycles": cycles})
            stats = train(model, inputs.reserve, recipe, seed=self.ctx.seed + i)
            info[f"{name}_steps"] = stats.steps
            info[f"val_acc_after_{name}"] = accuracy_on(model, inputs.val)
        return DefenseOutput(model=model.eval(), info=info)
