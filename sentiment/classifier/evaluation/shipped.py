"""What ships beside what could: the network, the baseline and their blend, scored alike.

Each model's probabilities on the validation and test splits are the ones their stages saved. The
blend's weight is chosen on the validation split alone (model/blend.py); the three are then scored
on the test split by the same function, at the same decision threshold, so the report, the
metrics files and the model card compare like with like. What ships is the `ship` param's model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentiment.classifier.evaluation.metrics import score_predictions
from sentiment.classifier.model.blend import SHIPPED_COMBINATION, BlendChoice, blend, choose_blend

MODELS = ("network", "baseline", "blend")
# The metrics each model gets in metrics/shipped.json and metrics/blend.json, as
# metrics/baseline.json names them.
HEADLINE = ("accuracy", "f1", "roc_auc", "log_loss")


@dataclass(frozen=True)
class ScoredModel:
    """One model's validation accuracy (how the blend and the baseline were chosen: the positive
    label at or above 0.5, or the likeliest) and its test metrics (`score_predictions`')."""

    validation_accuracy: float
    test: dict
    test_scores: np.ndarray

    def headline(self, label_names: list[str]) -> dict:
        """accuracy, f1 (the positive label's, or the macro average), ROC AUC and log loss."""
        f1_of = label_names[1] if len(label_names) == 2 else "macro avg"
        return {
            "accuracy": self.test["accuracy"],
            "f1": self.test["report"][f1_of.replace(" ", "_")]["f1-score"],
            "roc_auc": self.test["roc_auc"],
            "log_loss": self.test["log_loss"],
        }


@dataclass(frozen=True)
class Comparison:
    """The three models scored, the blend's choice, and which one ships."""

    models: dict[str, ScoredModel]  # MODELS, in that order
    choice: BlendChoice
    ship: str
    label_names: list[str]

    @property
    def shipped(self) -> ScoredModel:
        return self.models[self.ship]

    def shipped_metrics(self) -> dict:
        """metrics/shipped.json: which model ships, and its test and validation figures."""
        return {"model": self.ship} | self._figures(self.shipped)

    def blend_metrics(self) -> dict:
        """metrics/blend.json: the network's weight in the blend, and the blend's figures."""
        return {"weight": self.choice.weight} | self._figures(self.models["blend"])

    def _figures(self, model: ScoredModel) -> dict:
        return model.headline(self.label_names) | {
            "validation_accuracy": round(model.validation_accuracy, 6)
        }


def compare_models(
    network: tuple[np.ndarray, np.ndarray],
    baseline: tuple[np.ndarray, np.ndarray],
    validation_labels: np.ndarray,
    test_labels: np.ndarray,
    *,
    ship: str,
    decision_threshold: float,
    label_names: list[str],
) -> Comparison:
    """The network's and the baseline's (validation, test) probabilities, blended and scored.

    The test labels score the three models; they have no say in the blend's weight.
    """
    if ship not in MODELS:
        raise ValueError(f"ship {ship!r} is not one of {', '.join(MODELS)}")
    choice = choose_blend(network[0], baseline[0], validation_labels, SHIPPED_COMBINATION)
    test_scores = {
        "network": network[1],
        "baseline": baseline[1],
        "blend": blend(network[1], baseline[1], choice.weight, SHIPPED_COMBINATION),
    }
    validation_accuracy = {
        "network": choice.by_weight[1.0][0],
        "baseline": choice.by_weight[0.0][0],
        "blend": choice.validation_accuracy,
    }
    test_labels = np.asarray(test_labels).astype(np.int64)
    models = {
        name: ScoredModel(
            validation_accuracy[name],
            score_predictions(
                test_labels,
                test_scores[name],
                decision_threshold=decision_threshold,
                label_names=label_names,
            ),
            test_scores[name],
        )
        for name in MODELS
    }
    return Comparison(models, choice, ship, list(label_names))
