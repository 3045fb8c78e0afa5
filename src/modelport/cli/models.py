"""Commands about models in the catalog: models, search, show, validate, recommend, tasks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from modelport import units as fmt
from modelport.cli._options import GpuMemoryOpt, JsonOpt, LimitOpt, NameArg, QuietOpt
from modelport.cli._output import Output, to_jsonable

__all__ = ["register"]

CapabilityOpt = Annotated[
    list[str] | None,
    typer.Option("--capability", "-c", help="Required capability (repeatable), e.g. vision."),
]
TaskOpt = Annotated[str | None, typer.Option("--task", "-t", help="Pipeline task or alias.")]


def _entry_row(entry: Any) -> list[str]:
    price = entry.pricing.blended_per_1m_tokens() if entry.pricing else None
    return [
        entry.id,
        entry.provider,
        entry.source.value,
        entry.category.value,
        fmt.params(entry.effective_parameters),
        fmt.tokens(entry.context_window),
        fmt.price(price),
        entry.status.value,
    ]


_COLUMNS = ["ID", "PROVIDER", "SOURCE", "CATEGORY", "PARAMS", "CONTEXT", "$/1M", "STATUS"]


def models(
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    source: Annotated[str | None, typer.Option(help="self-hosted or api.")] = None,
    category: Annotated[str | None, typer.Option(help="e.g. text-llm, embedding.")] = None,
    task: TaskOpt = None,
    tag: Annotated[str | None, typer.Option(help="Only entries with this tag.")] = None,
    status: Annotated[str | None, typer.Option(help="stable, experimental or deprecated.")] = None,
    capability: CapabilityOpt = None,
    min_context: Annotated[
        int | None, typer.Option(min=0, help="At least this many tokens.")
    ] = None,
    max_price: Annotated[
        float | None, typer.Option(min=0, help="At most this USD per 1M tokens (3:1 blend).")
    ] = None,
    max_vram: Annotated[
        float | None, typer.Option(min=0, help="Needs at most this GB of VRAM.")
    ] = None,
    sort: Annotated[
        str, typer.Option(help="id, name, provider, context, price, parameters, usage, release.")
    ] = "id",
    desc: Annotated[bool, typer.Option("--desc", help="Sort descending.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Show at most this many.")
    ] = None,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many.")] = 0,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List catalog models, filtered and sorted."""
    from modelport.api import list_catalog

    page = list_catalog(
        provider=provider,
        source=source,
        category=category,
        task=task,
        tag=tag,
        status=status,
        capabilities=capability or (),
        min_context=min_context,
        max_price=max_price,
        max_vram=max_vram,
        sort=sort,
        descending=desc,
        limit=limit,
        offset=offset,
    )
    entries, total = list(page.models), page.total
    out = Output(json_mode=json_, quiet=quiet)
    if quiet:
        out.ids([e.id for e in entries])
        return

    def human() -> None:
        out.table(_COLUMNS, [_entry_row(e) for e in entries])
        out.message(f"{len(entries)} of {total} model(s).")

    out.result({"total": total, "offset": offset, "models": entries}, human)


def search(
    query: Annotated[str, typer.Argument(help="Words to look for, e.g. 'llama 8b'.")],
    hub: Annotated[
        str,
        typer.Option("--hub", help="all (the catalog and every hub at once), catalog, hf, onnx, …"),
    ] = "all",
    timeout: Annotated[
        float, typer.Option(min=0.1, help="With --hub all: seconds each source may take.")
    ] = 5.0,
    task: TaskOpt = None,
    library: Annotated[
        str | None, typer.Option("--library", help="Hub search: only this library.")
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(help="Hub search: downloads, likes, updated, recent or trending."),
    ] = None,
    category: Annotated[
        str | None,
        typer.Option("--category", help="With --hub all: text, vision, audio, multimodal…"),
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option(
            "--format", help="With --hub all: onnx, safetensors, pytorch, tensorflow, gguf, api."
        ),
    ] = None,
    max_size: Annotated[
        str | None, typer.Option("--max-size", help="With --hub all: at most this big, e.g. 2GB.")
    ] = None,
    limit: LimitOpt = 20,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Search the catalog (fuzzy, by name, alias, task, tag or provider), or one hub."""
    out = Output(json_mode=json_, quiet=quiet)
    if hub == "all":
        from modelport.api import search_everywhere
        from modelport.catalog.tasks import canonical_task

        everywhere = search_everywhere(
            query,
            task=canonical_task(task) if task else None,
            limit=limit,
            timeout=timeout,
            category=_category(category),
            format=format_.lower() if format_ else None,
            max_size=_size(max_size),
        )
        for source, reason in sorted(everywhere.failures.items()):
            if not json_:
                sys.stderr.write(f"warning: {source}: {reason}\n")
        if quiet:
            out.ids([r.ref for r in everywhere.results])
            return

        def human_all() -> None:
            if not everywhere.results:
                out.message(f"Nothing matches {query!r}.")
                return
            out.table(
                ["REF", "TASK", "FORMAT", "SIZE", "SCORE", "DOWNLOADS", "ALSO"],
                [
                    [
                        r.ref,
                        r.task or "?",
                        ", ".join(r.formats) if r.formats else r.format or "?",
                        fmt.size(r.size) if r.size else "?",
                        f"{r.score:.0f}",
                        fmt.count(r.downloads) if r.downloads is not None else "-",
                        ", ".join(r.also),
                    ]
                    for r in everywhere.results
                ],
            )

        out.result(
            {
                "results": [
                    {**to_jsonable(r), "score": round(r.score, 1)} for r in everywhere.results
                ],
                "failures": everywhere.failures,
                "seconds": everywhere.seconds,
            },
            human_all,
        )
        return
    if hub != "catalog":
        from modelport.api import search_hub
        from modelport.catalog.tasks import canonical_task

        found = search_hub(
            query,
            hub=hub,
            task=canonical_task(task) if task else None,
            library=library,
            sort=sort,
            limit=limit,
        )
        if quiet:
            out.ids([f"{m.hub}:{m.id}" for m in found])
            return

        def human_hub() -> None:
            if not found:
                out.message(f"No model on {hub} matches {query!r}.")
                return
            out.table(
                ["ID", "TASK", "LIBRARY", "DOWNLOADS", "LIKES"],
                [
                    [
                        f"{m.hub}:{m.id}",
                        m.task or "?",
                        m.library or "?",
                        fmt.count(m.downloads or 0),
                        fmt.count(m.likes or 0),
                    ]
                    for m in found
                ],
            )

        out.result(found, human_hub)
        return

    from modelport.api import search_models

    hits = search_models(query, limit=limit)
    if task:
        from modelport.catalog.tasks import canonical_task

        wanted = canonical_task(task)
        hits = [h for h in hits if wanted in h.entry.tasks]
    if quiet:
        out.ids([h.entry.id for h in hits])
        return

    def human() -> None:
        if not hits:
            out.message(f"No model matches {query!r}.")
            return
        out.table(["SCORE", *_COLUMNS], [[f"{h.score:.0f}", *_entry_row(h.entry)] for h in hits])

    out.result([{"score": h.score, "model": h.entry} for h in hits], human)


def _show_hub_model(name: str, json_: bool) -> None:
    from modelport.api import hub_info

    info = hub_info(name)
    out = Output(json_mode=json_)

    def human() -> None:
        out.message(f"[bold]{info['ref']}[/bold] at {info['revision']}")
        if "entrypoints" in info:
            out.message(
                "trusted: " + ("yes" if info["trusted"] else f"no (modelport trust {info['id']})")
            )
            if info["dependencies"]:
                out.message("needs: " + ", ".join(info["dependencies"]))
            out.table(
                ["ENTRY POINT", "ARGUMENTS", "DESCRIPTION"],
                [
                    [
                        e["name"],
                        e["signature"],
                        (e["doc"] or "").split("\n")[0]
                        or (f"from {e['imported_from']}" if e["imported_from"] else ""),
                    ]
                    for e in info["entrypoints"]
                ],
            )
            return
        facts = [
            ("task", info.get("task") or "?"),
            ("library", info.get("library") or "?"),
            ("size", fmt.size(info["size"]) if info.get("size") else "?"),
            ("license", info.get("license") or "?"),
            ("downloads", f"{info['downloads']:,}" if info.get("downloads") else "?"),
            ("files", str(len(info.get("files") or ()))),
        ]
        out.table(["", ""], [[k, v] for k, v in facts])

    out.result(info, human)


def _category(value: str | None) -> str | None:
    from modelport.catalog.tasks import TaskCategory
    from modelport.errors import InvalidValueError

    if value is None:
        return None
    try:
        return TaskCategory(value.lower()).value
    except ValueError:
        raise InvalidValueError(
            f"Unknown category {value!r}.",
            hint="Use one of: " + ", ".join(c.value for c in TaskCategory) + ".",
        ) from None


def _size(value: str | None) -> int | None:
    from modelport.errors import InvalidValueError
    from modelport.settings import parse_size

    if value is None:
        return None
    try:
        return int(parse_size(value, default_unit="b"))
    except ValueError as e:
        raise InvalidValueError(f"--max-size {value!r} is not a size: {e}.") from None


def show(name: NameArg, json_: JsonOpt = False) -> None:
    """Show what the catalog knows about a model, or what its hub says (hf:, onnx:, torch:…)."""
    from modelport.api import resolve_model, show_model
    from modelport.refs import parse_ref

    ref = parse_ref(name)
    if ref.registry is not None and ref.hub == ref.registry:
        _show_hub_model(name, json_)
        return
    match = resolve_model(name)
    entry = show_model(name)
    out = Output(json_mode=json_)

    def human() -> None:
        from rich.panel import Panel

        if match.method == "fuzzy":
            out.message(f"[dim]{name!r} matched {entry.id} (fuzzy, {match.confidence:.0%})[/dim]")
        lines = [f"[bold]{entry.name}[/bold]  ({entry.id})"]
        if entry.description:
            lines.append(entry.description)
        facts = [
            ("provider", entry.provider),
            ("source", entry.source.value),
            ("category", entry.category.value),
            ("tasks", ", ".join(entry.tasks) or "?"),
            (
                "status",
                entry.status.value
                + (f" — {entry.deprecation.message}" if entry.deprecation else ""),
            ),
            (
                "parameters",
                fmt.params(entry.effective_parameters)
                + (
                    f" ({fmt.params(entry.active_parameters)} active)"
                    if entry.active_parameters
                    else ""
                ),
            ),
            *(
                [("weights", f"about {fmt.size(entry.weights_bytes)}")]
                if entry.weights_bytes
                else []
            ),
            ("context", fmt.tokens(entry.context_window)),
            ("max output", fmt.tokens(entry.max_output_tokens)),
            ("license", entry.license or "?"),
            ("open weights", {True: "yes", False: "no", None: "?"}[entry.open_weights]),
            ("inputs", ", ".join(m.value for m in entry.input_modalities)),
            ("outputs", ", ".join(m.value for m in entry.output_modalities)),
            ("capabilities", ", ".join(entry.capabilities.supported()) or "?"),
        ]
        if entry.pricing:
            p = entry.pricing
            parts = [
                f"{label} {fmt.price(value)}"
                for label, value in (
                    ("input", p.input_per_1m_tokens),
                    ("output", p.output_per_1m_tokens),
                    ("cached input", p.cached_input_per_1m_tokens),
                )
                if value is not None
            ]
            extra = [
                f"{label} ${value:g}"
                for label, value in (
                    ("per image", p.per_image),
                    ("per audio minute", p.per_audio_minute),
                    ("per 1k characters", p.per_1k_characters),
                )
                if value is not None
            ]
            facts.append(
                (
                    "pricing",
                    ", ".join(parts)
                    + (" per 1M tokens" if parts else "")
                    + ("; " if parts and extra else "")
                    + ", ".join(extra)
                    + (f" (as of {p.as_of})" if p.as_of else ""),
                )
            )
        if entry.source.value == "api" or entry.latency is not None:
            facts.append(("latency", _latency_line(entry)))
        if entry.requirements and entry.requirements.min_vram_gb is not None:
            facts.append(("needs", f"{entry.requirements.min_vram_gb:g} GB VRAM (min)"))
        if entry.lineage and entry.lineage.base_model:
            facts.append(("base model", entry.lineage.base_model))
        if entry.hugging_face_id:
            facts.append(("hugging face", entry.hugging_face_id))
            from modelport.api import stored_revisions

            stored = stored_revisions(f"hf:{entry.hugging_face_id}")
            if stored:
                latest = stored[0]
                facts.append(
                    (
                        "in the store",
                        f"{latest.revision[:12]}, {fmt.size(latest.size)} "
                        f"({len(stored)} revision(s)); run it: modelport run {name}",
                    )
                )
            else:
                facts.append(("in the store", f"no; pull it: modelport pull {name}"))
        if entry.source_url:
            facts.append(
                ("source", f"{entry.source_url}" + (f" ({entry.as_of})" if entry.as_of else ""))
            )
        width = max(len(k) for k, _ in facts)
        lines += [f"[cyan]{k.rjust(width)}[/cyan]  {v}" for k, v in facts]
        if entry.notes:
            lines.append(f"[dim]{entry.notes}[/dim]")
        out.console.print(Panel("\n".join(lines), expand=False))

    out.result(entry, human)


def _latency_line(entry: Any) -> str:
    """The latency profile in one line, saying whether it is the entry's own or a preset."""
    from modelport.catalog.estimates import latency_profile

    p = latency_profile(entry)
    text = f"first token {p.time_to_first_token_ms:g} ms, then {p.inter_token_latency_ms_mean:g}"
    if p.inter_token_latency_ms_std:
        text += f" ± {p.inter_token_latency_ms_std:g}"
    text += " ms per token"
    multipliers = [
        f"{name} ×{value:g}"
        for name, value in (
            ("vision", p.vision_multiplier),
            ("audio", p.audio_multiplier),
            ("video", p.video_multiplier),
            ("reasoning", p.reasoning_multiplier),
            ("tools", p.tool_call_multiplier),
        )
        if value != 1
    ]
    if multipliers:
        text += f" ({', '.join(multipliers)})"
    if entry.latency is None:
        return text + f" [dim]— the {p.preset} preset by size, not measured[/dim]"
    sources = [s for s in (p.source_url, str(p.as_of) if p.as_of else None) if s]
    return text + (f" ({', '.join(sources)})" if sources else "")


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON when they parse (numbers, booleans)."""
    import json

    from modelport.errors import InvalidValueError

    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidValueError(
                f"--set needs key=value, got {pair!r}.", hint="e.g. --set learning_rate=1e-4"
            )
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw
    return overrides


def validate(
    name: NameArg,
    for_: Annotated[str, typer.Option("--for", help="inference or training.")] = "inference",
    gpu_memory: GpuMemoryOpt = None,
    dtype: Annotated[
        str | None, typer.Option(help="Weights dtype or quantization, e.g. int4.")
    ] = None,
    context: Annotated[int | None, typer.Option(min=1, help="Context length in tokens.")] = None,
    method: Annotated[str | None, typer.Option(help="Training method: full, lora, qlora.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a training or inference default, e.g. --set learning_rate=1e-4.",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Check whether a model can be served or trained on this machine."""
    from modelport.api import validate_model

    result = validate_model(
        name,
        purpose=for_,
        gpu_memory=gpu_memory,
        dtype=dtype,
        context=context,
        method=method,
        overrides=_parse_overrides(set_ or []),
    )
    out = Output(json_mode=json_)

    def human() -> None:
        colour = {"fits": "green", "tight": "yellow", "does-not-fit": "red"}[result.fit.value]
        out.message(
            f"[bold {colour}]{result.fit.value}[/bold {colour}]  {result.model_id} "
            f"for {result.purpose} on {result.target}"
        )
        for warning in result.warnings:
            out.message(f"  [yellow]! {warning}[/yellow]")
        for reason in result.reasons:
            out.message(f"  • {reason}")
        if result.estimate:
            e = result.estimate
            parts = [
                f"weights {e.weights_gb:g}",
                f"KV cache {e.kv_cache_gb:g}",
                f"overhead {e.overhead_gb:g}",
            ]
            if e.method != "inference":
                parts += [
                    f"gradients {e.gradients_gb:g}",
                    f"optimizer {e.optimizer_gb:g}",
                    f"activations {e.activations_gb:g}",
                ]
            out.message(f"  memory: {' + '.join(parts)} = {e.total_gb:g} GB")
        for tip in result.suggestions:
            out.message(f"  → {tip}")

    out.result(result, human)
    if not result.ok:
        raise typer.Exit(3)


def recommend(
    task: Annotated[str, typer.Option("--task", "-t", help="Pipeline task or alias.")],
    api: Annotated[bool, typer.Option("--api/--no-api", help="Include hosted API models.")] = True,
    self_hosted: Annotated[
        bool, typer.Option("--self-hosted/--no-self-hosted", help="Include self-hosted models.")
    ] = True,
    min_context: Annotated[
        int | None, typer.Option(min=0, help="At least this many tokens.")
    ] = None,
    max_cost: Annotated[
        float | None, typer.Option(min=0, help="At most this USD per 1M tokens.")
    ] = None,
    capability: CapabilityOpt = None,
    fits: Annotated[
        bool, typer.Option("--fits", help="Only models that fit this machine.")
    ] = False,
    gpu_memory: GpuMemoryOpt = None,
    hubs: Annotated[
        bool,
        typer.Option("--hubs/--catalog-only", help="Also ask every hub for popular candidates."),
    ] = True,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds each hub may take.")] = 5.0,
    usable: Annotated[
        bool,
        typer.Option("--usable", help="Only API models with a usable key here (and local ones)."),
    ] = False,
    limit: LimitOpt = 10,
    json_: JsonOpt = False,
) -> None:
    """Recommend models for a task across the catalog and the hubs, with the reasons."""
    from modelport.api import select_models

    picks = select_models(
        task,
        include_api=api,
        include_self_hosted=self_hosted,
        min_context=min_context,
        max_cost_per_1m=max_cost,
        capabilities=capability or (),
        fits_this_machine=fits or gpu_memory is not None,
        gpu_memory=gpu_memory,
        limit=limit,
        usable_only=usable,
    )
    rows: list[dict[str, Any]] = [
        {
            "ref": f"catalog:{p.entry.id}",
            "score": p.score,
            "reasons": p.reasons,
            "model": p.entry,
            "fit": p.validation.fit.value if p.validation else None,
            "key": p.key,
        }
        for p in picks
    ]
    if hubs and self_hosted and not (min_context or capability):
        from modelport.api import hub_candidates
        from modelport.catalog.tasks import canonical_task

        known = [f"hf:{p.entry.hugging_face_id}" for p in picks if p.entry.hugging_face_id]
        found, failures = hub_candidates(
            canonical_task(task),
            exclude=known,
            gpu_memory=gpu_memory,
            limit=max(3, limit // 2),
            timeout=timeout,
        )
        for source, reason in sorted(failures.items()):
            if not json_:
                sys.stderr.write(f"warning: {source}: {reason}\n")
        rows += [
            {
                "ref": c.ref,
                "score": c.score,
                "reasons": c.reasons,
                "model": None,
                "fit": c.fit,
                "key": None,
            }
            for c in found
            if not (fits and c.fit == "does-not-fit")
        ]
        rows.sort(key=lambda r: -r["score"])
        rows = rows[:limit]
    out = Output(json_mode=json_)

    def human() -> None:
        if not rows:
            out.message("No model meets those constraints.")
            return
        out.table(
            ["SCORE", "MODEL", "WHY"],
            [[f"{r['score']:.0f}", r["ref"], "; ".join(r["reasons"])] for r in rows],
        )

    out.result(rows, human)


def tasks(json_: JsonOpt = False) -> None:
    """List the pipeline tasks with their category and aliases."""
    from modelport.catalog.tasks import TASKS

    out = Output(json_mode=json_)
    out.result(
        [
            {
                "name": t.name,
                "category": t.category.value,
                "aliases": t.aliases,
                "description": t.description,
            }
            for t in TASKS
        ],
        lambda: out.table(
            ["TASK", "CATEGORY", "ALIASES"],
            [[t.name, t.category.value, ", ".join(t.aliases)] for t in TASKS],
        ),
    )


def register(app: typer.Typer) -> None:
    """Add these commands to the app."""
    app.command()(models)
    app.command()(search)
    app.command()(show)
    app.command()(validate)
    app.command()(recommend)
    app.command()(tasks)
    app.command()(compare)


def compare(
    refs: Annotated[list[str], typer.Argument(help="Two or more models: names, hf:…, onnx:…")],
    gpu_memory: GpuMemoryOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Compare models side by side: task, size, parameters, format, license, fit, latency."""
    from modelport.api import compare_models
    from modelport.errors import InvalidValueError

    if len(refs) < 2:
        raise InvalidValueError("Compare needs at least two models.")
    rows = compare_models(refs, gpu_memory=gpu_memory)
    out = Output(json_mode=json_)

    def cell(value: Any) -> str:
        return "?" if value is None else str(value)

    def human() -> None:
        fields: list[tuple[str, Callable[[Any], str]]] = [
            ("task", lambda c: cell(c.task)),
            ("size", lambda c: fmt.size(c.size_bytes) if c.size_bytes else "?"),
            ("parameters", lambda c: fmt.params(c.parameters)),
            ("format", lambda c: cell(c.format)),
            ("opset", lambda c: cell(c.opset)),
            ("license", lambda c: cell(c.license)),
            ("downloads", lambda c: fmt.count(c.downloads) if c.downloads is not None else "?"),
            ("fit here", lambda c: cell(c.fit)),
            ("latency (100 tokens)", lambda c: f"{c.latency_ms:.0f} ms" if c.latency_ms else "?"),
        ]
        out.table(
            ["", *[c.ref for c in rows]], [[name, *[get(c) for c in rows]] for name, get in fields]
        )
        for c in rows:
            for error in c.errors:
                out.message(f"[yellow]{c.ref}[/yellow]: {error}")

    out.result(rows, human)
