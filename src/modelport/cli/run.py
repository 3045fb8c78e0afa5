"""``modelport convert`` and ``modelport run``: ONNX conversion and inference."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modelport.cli._options import JsonOpt
from modelport.cli._output import Output, to_jsonable

__all__ = ["register"]

RefArg = Annotated[
    str,
    typer.Argument(
        help="A model: hf:org/name, onnx:NAME, tfhub:HANDLE, torch:owner/repo/entry, "
        "a catalog name, or a folder."
    ),
]
TrustOpt = Annotated[
    bool,
    typer.Option("--trust", help="Run this PyTorch Hub repository's hubconf.py this once."),
]
InputShapeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input-shape",
        help="Example input for export: [name=]1,3,224,224[:dtype] (repeatable).",
    ),
]
TaskOpt = Annotated[str | None, typer.Option("--task", "-t", help="Override the detected task.")]
ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", help="Preferred execution provider: cuda, tensorrt, coreml, cpu…"),
]


def convert(
    ref: RefArg,
    task: TaskOpt = None,
    optimize: Annotated[
        bool, typer.Option("--optimize", help="Apply ONNX Runtime's transformer optimizer.")
    ] = False,
    quantize: Annotated[
        str | None, typer.Option("--quantize", help="int8: dynamic per-channel quantization.")
    ] = None,
    opset: Annotated[
        int | None, typer.Option("--opset", min=11, max=23, help="ONNX opset (default 18).")
    ] = None,
    trust: TrustOpt = False,
    input_shape: InputShapeOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Convert a model to ONNX (cached), checked against the original on generated inputs."""
    from modelport.api import convert as do_convert

    result = do_convert(
        ref,
        task=task,
        optimize=optimize,
        quantize=quantize,
        opset=opset,
        trust=trust,
        input_shapes=input_shape or (),
    )
    out = Output(json_mode=json_)

    def human() -> None:
        state = "cached" if result.cached else f"converted in {result.seconds:.1f} s"
        out.message(
            f"{result.task}: {state}; max |ONNX − original| = {result.max_abs_diff:.2e}, "
            f"cosine {result.cosine:.6f}"
        )
        out.message(str(result.path))

    out.result(result, human)


def _inputs(text: list[str] | None, input_: str | None, file: list[Path] | None) -> Any:
    from modelport.errors import InvalidValueError

    given = [x for x in (text, input_, file) if x]
    if len(given) != 1:
        raise InvalidValueError(
            "Give the model exactly one kind of input.",
            hint="Use --text TEXT (repeatable), --input JSON, or --file PATH.",
        )
    if text:
        return text[0] if len(text) == 1 else list(text)
    if file:
        for path in file:
            if not path.exists():
                raise InvalidValueError(f"{path} does not exist.")
        return str(file[0]) if len(file) == 1 else [str(p) for p in file]
    assert input_ is not None
    try:
        return json.loads(input_)
    except json.JSONDecodeError as e:
        raise InvalidValueError(f"--input is not valid JSON: {e.msg}.") from None


def _say(text: str) -> None:
    # Plain lines need no Rich console (whose import costs a noticeable share of a run).
    sys.stdout.write(text + "\n")


def _show(out: Output, task: str, result: Any) -> None:
    if task in ("feature-extraction", "sentence-similarity"):
        rows = result.tolist() if hasattr(result, "tolist") else result
        for row in rows if rows and isinstance(rows[0], list) else [rows]:
            head = ", ".join(f"{v:.4f}" for v in row[:6])
            _say(f"[{head}, …] ({len(row)} dims)")
        return
    if task == "text-generation":
        for item in result if isinstance(result, list) else [result]:
            _say(item["generated_text"])
        return
    if task == "tensors":
        for name, value in result.items():
            _say(f"{name}: {json.dumps(value)}")
        return
    if task == "question-answering":
        _say(
            f"{result['answer']!r} (score {result['score']:.3f}, "
            f"chars {result['start']}–{result['end']})"
        )
        return
    rows = (
        result if isinstance(result, list) and result and isinstance(result[0], list) else [result]
    )
    for items in rows:
        out.table(
            [k.upper() for k in items[0]] if items else ["RESULT"],
            [[f"{v:.4f}" if isinstance(v, float) else v for v in item.values()] for item in items],
        )


def run(
    ref: RefArg,
    text: Annotated[
        list[str] | None, typer.Option("--text", help="Input text (repeatable for a batch).")
    ] = None,
    input_: Annotated[
        str | None, typer.Option("--input", help='JSON input, e.g. {"question": …, "context": …}.')
    ] = None,
    file: Annotated[
        list[Path] | None, typer.Option("--file", help="An input file, e.g. an image.")
    ] = None,
    provider: ProviderOpt = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", min=1, help="How many labels or tokens.")
    ] = None,
    max_new_tokens: Annotated[
        int, typer.Option(min=1, help="Text generation: tokens to add.")
    ] = 32,
    sample: Annotated[
        bool, typer.Option("--sample", help="Text generation: sample instead of greedy.")
    ] = False,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    benchmark: Annotated[
        bool, typer.Option("--benchmark", help="Time repeated runs instead.")
    ] = False,
    runs: Annotated[int, typer.Option("--runs", min=1, help="Benchmark runs.")] = 20,
    trust: TrustOpt = False,
    input_shape: InputShapeOpt = None,
    local: Annotated[
        bool,
        typer.Option("--local", help="Run in this process even when `modelport serve` listens."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Run a model (pulled and converted on first use) and print its answer.

    When a `modelport serve` listens at MODELPORT_HOST:MODELPORT_PORT, it answers (the
    model stays loaded there); otherwise the model runs in this process.
    """
    inputs = _inputs(text, input_, file)
    in_process_only = local or benchmark or provider or trust or input_shape
    if not in_process_only and not Path(ref).expanduser().is_dir():
        served = _run_on_server(
            ref,
            inputs,
            file=bool(file),
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            sample=sample,
            temperature=temperature,
            seed=seed,
        )
        if served is not None:
            task, provider_used, answer = served
            if json_:
                document = {"task": task, "provider": provider_used, "result": answer}
                sys.stdout.write(json.dumps(document) + "\n")
            else:
                _show(Output(json_mode=False), task, answer)
            return
    from modelport.api import load_model

    model = load_model(ref, provider=provider, trust=trust, input_shapes=input_shape or ())
    options: dict[str, Any] = {}
    if model.task == "text-generation":
        options = {
            "max_new_tokens": max_new_tokens,
            "do_sample": sample,
            "temperature": temperature,
            "seed": seed,
        }
        if top_k:
            options["top_k"] = top_k
    elif top_k and model.task in ("text-classification", "fill-mask", "image-classification"):
        options["top_k"] = top_k
    out = Output(json_mode=json_)
    if benchmark:
        result = model.benchmark(inputs, runs=runs, **options)

        def human_bench() -> None:
            out.table(
                ["", ""],
                [
                    ["task", model.task],
                    ["provider", result.provider],
                    ["runs", result.runs],
                    ["p50", f"{result.p50_ms:.2f} ms"],
                    ["p90", f"{result.p90_ms:.2f} ms"],
                    ["p99", f"{result.p99_ms:.2f} ms"],
                    ["throughput", f"{result.throughput_per_s:.1f} inputs/s"],
                ],
            )

        out.result(result, human_bench)
        return
    answer = model(inputs, **options)
    if json_:
        sys.stdout.write(
            json.dumps(
                {
                    "task": model.task,
                    "provider": model.provider,
                    "result": to_jsonable(answer),
                }
            )
            + "\n"
        )
        return
    _show(out, model.task, answer)


def _run_on_server(
    ref: str,
    inputs: Any,
    *,
    file: bool,
    top_k: int | None,
    max_new_tokens: int,
    sample: bool,
    temperature: float,
    seed: int | None,
) -> tuple[str, str, Any] | None:
    """The answer of a running server as (task, provider, result); None if none listens."""
    import base64

    from modelport.cli import _client
    from modelport.errors import ServerNotRunningError

    if not _client.find_server():
        return None
    if file:  # the server reads no files of ours: the bytes travel in the request
        paths = inputs if isinstance(inputs, list) else [inputs]
        encoded = [base64.b64encode(Path(p).read_bytes()).decode() for p in paths]
        inputs = encoded if isinstance(inputs, list) else encoded[0]
    # Only what the user changed travels: the defaults are the pipelines' own.
    parameters: dict[str, Any] = {}
    if top_k is not None:
        parameters["top_k"] = top_k
    if max_new_tokens != 32:
        parameters["max_new_tokens"] = max_new_tokens
    if sample:
        parameters["do_sample"] = True
    if temperature != 1.0:
        parameters["temperature"] = temperature
    if seed is not None:
        parameters["seed"] = seed
    try:
        answer = _client.request(
            "POST",
            "/api/v1/predict/" + _client.quoted(ref),
            {"inputs": inputs, "parameters": parameters},
        )
    except ServerNotRunningError:
        return None
    if _client.SERVER_HEADER not in answer.headers:
        return None  # another program listens on the port
    _client.raise_for(answer)
    meta = answer.body["meta"]
    return str(meta["task"]), str(meta["provider"]), answer.body["data"]


def register(app: typer.Typer) -> None:
    """Add these commands to the app."""
    app.command()(convert)
    app.command()(run)
