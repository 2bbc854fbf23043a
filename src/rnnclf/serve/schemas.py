"""The JSON of `rnnclf serve`: requests, responses and /info as pydantic models (FastAPI documents them at
/docs), and the responses built from predictions and explanations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from rnnclf.inference.decisions import LabelSet
from rnnclf.inference.explain import DEFAULT_STEPS
from rnnclf.views.explanations import pairs


class PredictRequest(BaseModel):
    """One text, or a list of texts classified in one batch."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "oil prices rose sharply", "top_k": 3}, {"texts": ["first text", "second text"]}]
        },
    )

    text: str | None = Field(None, description="One text to classify. Give `text` or `texts`, not both.")
    texts: list[str] | None = Field(None, min_length=1, description="Several texts; answered in the same order.")
    top_k: int | None = Field(
        None,
        ge=1,
        description="Labels per text, most likely first, capped at the number of labels (default 1); multi-label "
        "runs: the K most probable labels in `top`, beside the labels over their thresholds (default none).",
    )
    coverage: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Also answer each text's prediction set: the labels that hold the true one this often, e.g. 0.9 "
        "(conformal, fitted on validation; multi-label: this share of a text's labels).",
    )

    @model_validator(mode="after")
    def _text_or_texts(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise PydanticCustomError(
                "text_or_texts", "give exactly one of 'text' (a string) or 'texts' (a list of strings)"
            )
        return self


class ExplainRequest(PredictRequest):
    """Texts to classify and explain."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "not a good film"}, {"texts": ["first text", "second"], "steps": 64}]},
    )

    steps: int | None = Field(
        None, ge=1, description=f"Integration steps per text (default {DEFAULT_STEPS}); more: closer to exact, slower."
    )


Explanation = list[tuple[str, float]]


class LabelProbability(BaseModel):
    label: str
    probability: float


class Judged(BaseModel):
    set: list[str] | None = Field(
        None, description="With coverage: the prediction set, most probable first (null without coverage)."
    )
    abstain: bool | None = Field(None, description="With coverage: the set is empty or holds every label.")
    out_of_domain: list[str] = Field(
        [], description="Why the text looks unlike the training data (unknown words, no plausible label); empty if not."
    )


class Prediction(Judged):
    label: str = Field(description="The most likely label.")
    probability: float = Field(description="Its probability (softmax over all labels).")
    top: list[LabelProbability] = Field(description="The top_k labels with their probabilities, most likely first.")


class PredictResponse(BaseModel):
    predictions: list[Prediction] = Field(description="One per text, in request order; a list even for one text.")


class LabelSetPrediction(Judged):
    labels: list[str] = Field(description="Every label whose probability reaches its threshold; may be empty.")
    scores: dict[str, float] = Field(description="Every label's probability (a sigmoid each), most probable first.")
    top: list[LabelProbability] = Field(
        [], description="The top_k most probable labels, whatever their thresholds (only when top_k is given)."
    )


class LabelSetResponse(BaseModel):
    predictions: list[LabelSetPrediction] = Field(description="One per text, in request order.")


class ExplainedPrediction(Prediction):
    explained: str = Field(description="The label explained: the predicted one.")
    explanation: Explanation = Field(
        description="[token, score] for each token the model saw: its integrated-gradients attribution to the "
        "label's log-odds; positive supports the label."
    )


class ExplainResponse(BaseModel):
    predictions: list[ExplainedPrediction] = Field(description="One per text, in request order.")


class ExplainedLabelSet(LabelSetPrediction):
    explanations: dict[str, Explanation] = Field(
        description="For each label over its threshold (or the most probable label when none is): [token, score] "
        "for each token, the attribution to that label's log-odds."
    )


class ExplainedLabelSetResponse(BaseModel):
    predictions: list[ExplainedLabelSet] = Field(description="One per text, in request order.")


class ModelSummary(BaseModel):
    encoder: str
    hidden_size: int
    num_layers: int
    bidirectional: bool
    pooling: str
    tokenizer: str
    max_length: int | None = Field(description="Texts are truncated to this many tokens; null = no limit.")
    embedding_dim: int


class Limits(BaseModel):
    max_texts: int = Field(description="Most texts in one request; more answer 413.")
    max_body_bytes: int = Field(description="Largest request body; larger answers 413.")


class ExplainLimits(BaseModel):
    max_texts: int = Field(description="Most texts in one POST /explain; more answer 413.")
    max_steps: int = Field(description="Most integration steps per text; more answer 413.")
    default_steps: int


class Info(BaseModel):
    run: str = Field(description="The run directory being served.")
    labels: list[str] = Field(description="Label names in index order.")
    num_labels: int
    model: ModelSummary
    device: str
    int8: bool = Field(description="The model computes in int8 (rnnclf serve --int8).")
    multi_label: bool = Field(False, description="Several labels per text, each decided by its own threshold.")
    thresholds: dict[str, float] | None = Field(None, description="Multi-label: each label's decision threshold.")
    prediction_sets: str | None = Field(
        None,
        description="How /predict's coverage answers (conformal.json: lac, aps, or recall for multi-label runs); "
        "null: this run has none (rnnclf calibrate RUN fits them).",
    )
    temperature: float | dict[str, float] | None = Field(
        None,
        description="The temperature that divides the logits before the softmax / sigmoid (calibration.json; "
        "multi-label: per label); null when the run has none.",
    )
    version: str = Field(description="rnnclf version.")
    limits: Limits
    explain: ExplainLimits | None = Field(
        description="POST /explain's limits; null when the server runs int8 (explanations need the fp32 model) or an "
        "ensemble (explanations are of one model)."
    )
    members: list[str] | None = Field(
        None, description="An ensemble (rnnclf ensemble): its member runs; `model` describes the first."
    )


class Health(BaseModel):
    status: str


class ErrorMessage(BaseModel):
    detail: str


def predict_response(predictions: list[list[tuple[str, float]]], judged: list | None = None) -> PredictResponse:
    return PredictResponse(
        predictions=[
            Prediction(
                label=top[0][0],
                probability=top[0][1],
                top=[LabelProbability(label=label, probability=p) for label, p in top],
                **judged_fields(judgement),
            )
            for top, judgement in zip(predictions, judged or [None] * len(predictions), strict=True)
        ]
    )


def label_set_response(sets: list[LabelSet], judged: list | None = None) -> LabelSetResponse:
    return LabelSetResponse(
        predictions=[
            LabelSetPrediction(
                labels=found.labels,
                scores=found.scores,
                top=[LabelProbability(label=label, probability=p) for label, p in found.top],
                **judged_fields(judgement),
            )
            for found, judgement in zip(sets, judged or [None] * len(sets), strict=True)
        ]
    )


def judged_fields(judgement: Any) -> dict[str, Any]:
    """An inference.trust.Judgement as the response's fields (none for /explain's answers)."""
    if judgement is None:
        return {}
    return {"set": judgement.labels, "abstain": judgement.abstain, "out_of_domain": judgement.out_of_domain}


def explain_response(
    predictions: list[list[tuple[str, float]]] | list[LabelSet], attributions: list[list[Any]]
) -> ExplainResponse | ExplainedLabelSetResponse:
    if predictions and isinstance(predictions[0], LabelSet):
        answered = label_set_response(predictions).predictions
        return ExplainedLabelSetResponse(
            predictions=[
                ExplainedLabelSet(**found.model_dump(), explanations={a.label: pairs(a) for a in explained})
                for found, explained in zip(answered, attributions, strict=True)
            ]
        )
    return ExplainResponse(
        predictions=[
            ExplainedPrediction(**found.model_dump(), explained=explained[0].label, explanation=pairs(explained[0]))
            for found, explained in zip(predict_response(predictions).predictions, attributions, strict=True)
        ]
    )
