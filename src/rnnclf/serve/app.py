"""A run's predictions over HTTP: a FastAPI app around one Predictor, served by uvicorn (extra rnnclf[serve]).

POST /predict  {"text": "..."} or {"texts": ["...", ...]}, optional "top_k"  ->  {"predictions": [...]}
POST /explain  the same, optional "steps"  ->  the predictions, each with its tokens' scores (rnnclf.inference.explain)
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

from rnnclf import __version__
from rnnclf.device.threads import use_cpu_threads
from rnnclf.errors import RnnclfError
from rnnclf.evaluation.calibration import describe_temperature
from rnnclf.files import CONFORMAL
from rnnclf.inference.decisions import top_labels
from rnnclf.inference.ensemble import EnsemblePredictor, load_predictor
from rnnclf.inference.explain import DEFAULT_STEPS, explain_texts
from rnnclf.inference.predictor import Predictor
from rnnclf.inference.trust import Trust, assess, load_trust
from rnnclf.serve.schemas import (
    ErrorMessage,
    ExplainedLabelSetResponse,
    ExplainLimits,
    ExplainRequest,
    ExplainResponse,
    Health,
    Info,
    LabelSetResponse,
    Limits,
    ModelSummary,
    PredictRequest,
    PredictResponse,
    explain_response,
    label_set_response,
    predict_response,
)

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


def describe(
    predictor: Predictor, max_texts: int, max_body_bytes: int, explain: ExplainLimits, trust: Trust | None = None
) -> Info:
    """What GET /info answers."""
    config, is_ensemble = predictor.run.config, isinstance(predictor, EnsemblePredictor)
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
        explain=None if predictor.int8 or is_ensemble else explain,
        members=[str(member.path) for member in predictor.run.members] if is_ensemble else None,
        prediction_sets=trust.conformal.method if trust is not None else None,
    )


def create_app(
    predictor: Predictor | Path | str,
    max_texts: int = MAX_TEXTS,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_explain_texts: int = MAX_EXPLAIN_TEXTS,
    max_explain_steps: int = MAX_EXPLAIN_STEPS,
) -> FastAPI:
    """The FastAPI app serving `predictor`, or the run directory at that path (loaded with device auto)."""
    if isinstance(predictor, Path | str):
        predictor = load_predictor(predictor)
    explain_limits = ExplainLimits(
        max_texts=max_explain_texts, max_steps=max_explain_steps, default_steps=min(DEFAULT_STEPS, max_explain_steps)
    )
    trust = load_trust(predictor.run.path, predictor.labels, predictor.multi_label)
    info = describe(predictor, max_texts, max_body_bytes, explain_limits, trust)
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
        return answer_predict(predictor, request, max_texts, trust)

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
        return answer_explain(predictor, request, explain_limits)

    @app.get("/info")
    def get_info() -> Info:
        """The labels, a summary of the model, the run directory, the rnnclf version and the request limits."""
        return info

    @app.get("/health")
    def health() -> Health:
        """Answers while the server is up."""
        return Health(status="ok")

    return app


def requested_texts(request: PredictRequest, limit: int, option: str, what: str = "texts") -> list[str]:
    """The request's texts; more than `limit` answer 413 naming the serve option that sets it."""
    texts = [request.text] if request.text is not None else request.texts
    if len(texts) > limit:
        raise HTTPException(
            413, f"too many {what}: {len(texts)} in one request, the limit is {limit} (rnnclf serve {option})"
        )
    return texts


def answer_predict(predictor: Predictor, request: PredictRequest, max_texts: int, trust: Trust | None) -> Any:
    """/predict's answer; each text judged (out of domain; with coverage, its prediction set)."""
    texts = requested_texts(request, max_texts, "--max-texts")
    if request.coverage is not None and trust is None:
        raise HTTPException(
            422, f"this run has no prediction sets ({CONFORMAL}); fit them with: rnnclf calibrate {predictor.run.path}"
        )
    try:  # a sync endpoint runs in FastAPI's thread pool; torch releases the GIL, so requests run in parallel
        probs, judged = assess(predictor, texts, trust, request.coverage)
        if predictor.multi_label:
            return label_set_response(predictor.label_sets(probs, request.top_k or 0), judged)
        return predict_response(top_labels(probs, predictor.labels, request.top_k or 1), judged)
    except RnnclfError as exc:  # "text N: empty text; nothing to classify"
        raise HTTPException(422, str(exc)) from None


def answer_explain(predictor: Predictor, request: ExplainRequest, limits: ExplainLimits) -> Any:
    if predictor.int8:
        raise HTTPException(501, "explanations need the fp32 model's gradients; this server runs int8 (--int8)")
    if isinstance(predictor, EnsemblePredictor):
        raise HTTPException(501, "explanations are of one model; this server runs an ensemble: explain with a member")
    texts = requested_texts(request, limits.max_texts, "--max-explain-texts", "texts to explain")
    steps = request.steps or limits.default_steps
    if steps > limits.max_steps:
        raise HTTPException(
            413, f"too many steps: {steps}, the limit is {limits.max_steps} (rnnclf serve --max-explain-steps)"
        )
    try:
        return explain_response(*explain_texts(predictor, texts, request.top_k, steps))
    except RnnclfError as exc:  # an empty text, or one the tokenizer keeps no token of
        raise HTTPException(422, str(exc)) from None


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
    max_explain_texts: int | None = None,
    max_explain_steps: int | None = None,
) -> None:
    """Load the run once and serve it until Ctrl-C (or SIGTERM).

    `threads` is torch's CPU threads per prediction: 1 serves single texts fastest (a small RNN step gains
    nothing from more), and concurrent requests still use every core, each in its own thread.
    """
    use_cpu_threads(threads)  # once, for every request: requests run in parallel threads
    predictor = load_predictor(run, device, int8=int8)
    explain_texts, explain_steps = max_explain_texts or MAX_EXPLAIN_TEXTS, max_explain_steps or MAX_EXPLAIN_STEPS
    app = create_app(predictor, max_texts, max_body_bytes, explain_texts, explain_steps)
    sock = listen(host, port)
    address = f"[{host}]" if ":" in host else host
    url = f"http://{address}:{sock.getsockname()[1]}"
    log(
        f"serving {run} ({len(predictor.labels)} labels, {predictor.device}{', int8' if int8 else ''}, {threads} CPU thread{'s' if threads > 1 else ''} per request) at {url}; "
        f"API docs at {url}/docs; Ctrl-C stops"
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="info" if access_log else "warning", access_log=access_log))
    server.run(sockets=[sock])
