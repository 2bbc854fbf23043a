"""A run's predictions over HTTP: a FastAPI app around one Predictor, served by uvicorn (extra rnnclf[serve]).

POST /predict  {"text": "..."} or {"texts": ["...", ...]}, optional "top_k"  ->  {"predictions": [...]}
POST /explain  the same, optional "steps"  ->  the predictions, each with its tokens' scores (rnnclf.explain)
GET  /info     labels, a model summary, the run, the rnnclf version and the limits
GET  /health   {"status": "ok"}
GET  /docs     the OpenAPI documentation (FastAPI's), schema at /openapi.json

Limits answer 413 with {"detail": "..."}: more than max_texts texts, or a body over max_body_bytes (checked
against Content-Length and against the bytes actually received); /explain, a gradient pass per integration step,
has its own smaller max_explain_texts and max_explain_steps. A long text is no error: the tokenizer
truncates it to the run's max_length.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from rnnclf import __version__
from rnnclf.calibration import describe_temperature
from rnnclf.engine.device import use_cpu_threads
from rnnclf.errors import RnnclfError
from rnnclf.explain import DEFAULT_STEPS, explain_predictions
from rnnclf.explain_view import pairs
from rnnclf.predict import LabelSet, Predictor

try:
    import uvicorn
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse
except ImportError:
    raise RnnclfError("rnnclf serve needs FastAPI and uvicorn: pip install 'rnnclf[serve]'") from None

MAX_TEXTS = 256
MAX_BODY_BYTES = 1_000_000
MAX_EXPLAIN_TEXTS = 16
MAX_EXPLAIN_STEPS = 256


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


class Prediction(BaseModel):
    label: str = Field(description="The most likely label.")
    probability: float = Field(description="Its probability (softmax over all labels).")
    top: list[LabelProbability] = Field(description="The top_k labels with their probabilities, most likely first.")


class PredictResponse(BaseModel):
    predictions: list[Prediction] = Field(description="One per text, in request order; a list even for one text.")


class LabelSetPrediction(BaseModel):
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
    temperature: float | dict[str, float] | None = Field(
        None,
        description="The temperature that divides the logits before the softmax / sigmoid (calibration.json; "
        "multi-label: per label); null when the run has none.",
    )
    version: str = Field(description="rnnclf version.")
    limits: Limits
    explain: ExplainLimits | None = Field(
        description="POST /explain's limits; null when the server runs int8 (explanations need the fp32 model)."
    )


class Health(BaseModel):
    status: str


class ErrorMessage(BaseModel):
    detail: str


class LimitBodySize:
    """ASGI middleware: 413 for a body over `limit` bytes, by its Content-Length or by the bytes that arrive."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body too large: the limit is {self.limit:,} bytes (rnnclf serve --max-body-bytes)"
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await JSONResponse({"detail": too_large}, 413)(scope, receive, send)
        received = 0

        async def receive_within_limit() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:  # a chunked body has no Content-Length; FastAPI answers this exception
                raise HTTPException(413, too_large)
            return message

        await self.app(scope, receive_within_limit, send)


def describe(predictor: Predictor, max_texts: int, max_body_bytes: int, explain: ExplainLimits) -> Info:
    """What GET /info answers."""
    config = predictor.run.config
    return Info(
        run=str(predictor.run.path.resolve()),
        labels=predictor.labels,
        num_labels=len(predictor.labels),
        model=ModelSummary(
            encoder=config.model.encoder,
            hidden_size=config.model.hidden_size,
            num_layers=config.model.num_layers,
            bidirectional=config.model.bidirectional,
            pooling=config.model.pooling,
            tokenizer=config.tokenizer.kind,
            max_length=config.data.max_length,
            embedding_dim=config.embedding.dim,
        ),
        device=str(predictor.device),
        int8=predictor.int8,
        multi_label=predictor.multi_label,
        thresholds=dict(zip(predictor.labels, map(float, predictor.thresholds), strict=True))
        if predictor.multi_label
        else None,
        temperature=describe_temperature(predictor.temperature, predictor.labels, predictor.multi_label),
        version=__version__,
        limits=Limits(max_texts=max_texts, max_body_bytes=max_body_bytes),
        explain=None if predictor.int8 else explain,
    )


def predict_response(predictions: list[list[tuple[str, float]]]) -> PredictResponse:
    return PredictResponse(
        predictions=[
            Prediction(
                label=top[0][0],
                probability=top[0][1],
                top=[LabelProbability(label=label, probability=p) for label, p in top],
            )
            for top in predictions
        ]
    )


def label_set_response(sets: list[LabelSet]) -> LabelSetResponse:
    return LabelSetResponse(
        predictions=[
            LabelSetPrediction(
                labels=found.labels,
                scores=found.scores,
                top=[LabelProbability(label=label, probability=p) for label, p in found.top],
            )
            for found in sets
        ]
    )


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


def create_app(
    predictor: Predictor | Path | str,
    max_texts: int = MAX_TEXTS,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_explain_texts: int = MAX_EXPLAIN_TEXTS,
    max_explain_steps: int = MAX_EXPLAIN_STEPS,
) -> FastAPI:
    """The FastAPI app serving `predictor`, or the run directory at that path (loaded with device auto)."""
    if not isinstance(predictor, Predictor):
        predictor = Predictor.load(predictor)
    explain_limits = ExplainLimits(
        max_texts=max_explain_texts, max_steps=max_explain_steps, default_steps=min(DEFAULT_STEPS, max_explain_steps)
    )
    info = describe(predictor, max_texts, max_body_bytes, explain_limits)
    app = FastAPI(
        title="rnnclf",
        version=__version__,
        summary=f"Text classification with the run {predictor.run.path.name} ({len(predictor.labels)} labels).",
    )
    app.add_middleware(LimitBodySize, limit=max_body_bytes)

    @app.post(
        "/predict",
        response_model=LabelSetResponse if predictor.multi_label else PredictResponse,
        responses={413: {"model": ErrorMessage, "description": f"More than {max_texts} texts, or a body too large."}},
    )
    def predict(request: PredictRequest) -> Any:
        """The top_k labels of each text with their probabilities (multi-label runs: the labels over their
        thresholds and every label's probability). Empty texts answer 422."""
        texts = [request.text] if request.text is not None else request.texts
        if len(texts) > max_texts:
            raise HTTPException(
                413, f"too many texts: {len(texts)} in one request, the limit is {max_texts} (rnnclf serve --max-texts)"
            )
        try:  # a sync endpoint runs in FastAPI's thread pool; torch releases the GIL, so requests run in parallel
            if predictor.multi_label:
                return label_set_response(predictor.predict_labels(texts, request.top_k or 0))
            return predict_response(predictor.predict(texts, request.top_k or 1))
        except RnnclfError as exc:  # "text N: empty text; nothing to classify"
            raise HTTPException(422, str(exc)) from None

    @app.post(
        "/explain",
        response_model=ExplainedLabelSetResponse if predictor.multi_label else ExplainResponse,
        responses={
            413: {
                "model": ErrorMessage,
                "description": "Over max_explain_texts or max_explain_steps; a body too large.",
            },
            501: {"model": ErrorMessage, "description": "The server runs int8: explanations need the fp32 model."},
        },
    )
    def explain(request: ExplainRequest) -> Any:
        """/predict's answer, each text with a score per token for its label (multi-label runs: each label over
        its threshold, or the most probable): integrated gradients over the embeddings, toward the label's
        log-odds. Positive scores support the label."""
        if predictor.int8:
            raise HTTPException(501, "explanations need the fp32 model's gradients; this server runs int8 (--int8)")
        texts = [request.text] if request.text is not None else request.texts
        steps = request.steps or explain_limits.default_steps
        if len(texts) > max_explain_texts:
            raise HTTPException(
                413,
                f"too many texts to explain: {len(texts)} in one request, the limit is {max_explain_texts} "
                "(rnnclf serve --max-explain-texts)",
            )
        if steps > max_explain_steps:
            raise HTTPException(
                413, f"too many steps: {steps}, the limit is {max_explain_steps} (rnnclf serve --max-explain-steps)"
            )
        try:
            if predictor.multi_label:
                predictions = predictor.predict_labels(texts, request.top_k or 0)
            else:
                predictions = predictor.predict(texts, request.top_k or 1)
            return explain_response(predictions, explain_predictions(predictor, texts, predictions, steps))
        except RnnclfError as exc:  # an empty text, or one the tokenizer keeps no token of
            raise HTTPException(422, str(exc)) from None

    @app.get("/info")
    def get_info() -> Info:
        """The labels, a summary of the model, the run directory, the rnnclf version and the request limits."""
        return info

    @app.get("/health")
    def health() -> Health:
        """Answers while the server is up."""
        return Health(status="ok")

    return app


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, so that a port in use or a bad host is one clear error before serving."""
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only then (without it keep-alive answers wait 40 ms)
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:  # socket.gaierror (unknown host) is an OSError too
        if sock is not None:
            sock.close()
        raise RnnclfError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(
    run: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "auto",
    max_texts: int = MAX_TEXTS,
    max_body_bytes: int = MAX_BODY_BYTES,
    threads: int = 1,
    access_log: bool = False,
    log: Callable[[str], None] = print,
    int8: bool = False,
    max_explain_texts: int = MAX_EXPLAIN_TEXTS,
    max_explain_steps: int = MAX_EXPLAIN_STEPS,
) -> None:
    """Load the run once and serve it until Ctrl-C (or SIGTERM).

    `threads` is torch's CPU threads per prediction: 1 serves single texts fastest (a small RNN step gains
    nothing from more), and concurrent requests still use every core, each in its own thread.
    """
    use_cpu_threads(threads)  # once, for every request: requests run in parallel threads
    predictor = Predictor.load(run, device, int8=int8)
    app = create_app(predictor, max_texts, max_body_bytes, max_explain_texts, max_explain_steps)
    sock = listen(host, port)
    address = f"[{host}]" if ":" in host else host
    url = f"http://{address}:{sock.getsockname()[1]}"
    log(
        f"serving {run} ({len(predictor.labels)} labels, {predictor.device}{', int8' if int8 else ''}, {threads} CPU thread{'s' if threads > 1 else ''} per request) at {url}; "
        f"API docs at {url}/docs; Ctrl-C stops"
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="info" if access_log else "warning", access_log=access_log))
    server.run(sockets=[sock])
