"""Estimates, hardware parsing, validation and selection."""

from __future__ import annotations

import pytest

from modelport.catalog.catalog import Catalog
from modelport.catalog.entry import InferenceDefaults, TrainingDefaults
from modelport.catalog.estimates import (
    estimate_cost,
    estimate_inference_memory,
    estimate_training_memory,
)
from modelport.catalog.selection import select_models
from modelport.errors import InvalidValueError, UnknownTaskError
from modelport.hardware import GPU, SystemInfo, parse_nvidia_smi, parse_rocm_smi, with_gpu_memory
from modelport.validation import FitLevel, merge_defaults, validate_model
from tests.conftest import make_entry

LLAMA_8B = make_entry(
    "meta-llama/Llama-3.1-8B-Instruct",
    provider="meta",
    parameters=8_030_000_000,
    context_window=131072,
    open_weights=True,
    model_architecture={
        "num_layers": 32,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
    },
    inference_defaults={"max_model_len": 8192},
)
CPU_ONLY = SystemInfo(os="Linux", python="3.11", cpu="test", cpu_count=2, ram_gb=24.0)


def gpu_box(gb: float, cc: str = "8.9") -> SystemInfo:
    return SystemInfo(
        os="Linux",
        python="3.11",
        cpu="test",
        cpu_count=16,
        ram_gb=64.0,
        gpus=(GPU("Test GPU", "nvidia", gb, cc),),
    )


def test_memory_estimate_parts() -> None:
    est = estimate_inference_memory(LLAMA_8B, context=8192)
    assert est.weights_gb == pytest.approx(16.06, rel=1e-3)
    # 2 × 32 layers × 8 kv heads × 128 head dim × 8192 tokens × 2 bytes
    assert est.kv_cache_gb == pytest.approx(2 * 32 * 8 * 128 * 8192 * 2 / 1e9, rel=1e-3)
    assert est.total_gb == pytest.approx(
        est.weights_gb + est.kv_cache_gb + est.overhead_gb, abs=1e-3
    )
    int4 = estimate_inference_memory(LLAMA_8B, dtype="int4", context=8192)
    assert int4.weights_gb == pytest.approx(est.weights_gb / 4, rel=1e-3)
    with pytest.raises(InvalidValueError):
        estimate_inference_memory(LLAMA_8B, dtype="int3")
    with pytest.raises(InvalidValueError):
        estimate_inference_memory(make_entry("x/unknown-size"))


def test_training_estimates_order() -> None:
    full = estimate_training_memory(LLAMA_8B, method="full")
    lora = estimate_training_memory(LLAMA_8B, method="lora")
    qlora = estimate_training_memory(LLAMA_8B, method="qlora")
    assert full.total_gb > lora.total_gb > qlora.total_gb
    assert full.optimizer_gb == pytest.approx(8.03e9 * 12 / 1e9, rel=1e-3)
    with pytest.raises(InvalidValueError):
        estimate_training_memory(LLAMA_8B, method="magic")


def test_cost_estimate() -> None:
    entry = make_entry(
        "openai/x",
        source="api",
        pricing={
            "input_per_1m_tokens": 2.0,
            "output_per_1m_tokens": 8.0,
            "cached_input_per_1m_tokens": 0.5,
        },
    )
    cost = estimate_cost(
        entry, input_tokens=1_000_000, output_tokens=500_000, cached_input_tokens=2_000_000
    )
    assert cost is not None
    assert cost.total_usd == pytest.approx(2 + 4 + 1)
    assert estimate_cost(make_entry(), input_tokens=1, output_tokens=1) is None


def test_parse_smi_outputs() -> None:
    gpus = parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559, 9.0\nTesla T4, 15360, 7.5\n")
    assert [g.compute_capability for g in gpus] == ["9.0", "7.5"]
    assert gpus[0].memory_gb == pytest.approx(85.52, rel=1e-3)
    amd = parse_rocm_smi(
        '{"card0": {"Card Series": "AMD Instinct MI300X", "VRAM Total Memory (B)": "206141652992"}}'
    )
    assert amd[0].vendor == "amd"
    assert amd[0].memory_gb == pytest.approx(206.14, rel=1e-3)
    assert parse_rocm_smi("not json") == []


def test_validation_levels_and_suggestions() -> None:
    assert validate_model(LLAMA_8B, gpu_box(80)).fit is FitLevel.FITS
    tight = validate_model(LLAMA_8B, gpu_box(20))
    assert tight.fit is FitLevel.TIGHT
    small = validate_model(LLAMA_8B, gpu_box(8))
    assert small.fit is FitLevel.DOES_NOT_FIT
    assert not small.ok
    assert any("int4" in s for s in small.suggestions)
    assert small.reasons
    assert small.estimate is not None
    cpu = validate_model(LLAMA_8B, CPU_ONLY)
    assert cpu.target == "cpu"
    assert any("GPU" in s for s in cpu.suggestions)


def test_compute_capability_and_gpu_count_block() -> None:
    needs_ampere = make_entry(
        "x/needs-cc",
        parameters=1_000_000_000,
        requirements={"min_compute_capability": "8.0", "min_gpus": 1},
    )
    verdict = validate_model(needs_ampere, gpu_box(16, cc="7.5"))
    assert verdict.fit is FitLevel.DOES_NOT_FIT
    assert any("compute capability 8.0" in r for r in verdict.reasons)
    needs_two = make_entry("x/needs-two", parameters=1_000_000_000, requirements={"min_gpus": 2})
    assert validate_model(needs_two, gpu_box(80)).fit is FitLevel.DOES_NOT_FIT


def test_training_validation() -> None:
    ok = validate_model(LLAMA_8B, gpu_box(24), purpose="training")
    assert ok.fit in (FitLevel.FITS, FitLevel.TIGHT)
    full = validate_model(LLAMA_8B, gpu_box(24), purpose="training", method="full")
    assert full.fit is FitLevel.DOES_NOT_FIT
    assert any("lora" in s for s in full.suggestions)
    closed = make_entry("openai/gpt-x", source="api", capabilities={"fine_tuning": False})
    assert validate_model(closed, CPU_ONLY, purpose="training").fit is FitLevel.DOES_NOT_FIT
    assert validate_model(closed, CPU_ONLY).fit is FitLevel.FITS


def test_override_plans_for_another_gpu() -> None:
    planned = with_gpu_memory(CPU_ONLY, 24)
    assert planned.max_gpu_memory_gb == 24
    assert planned.notes
    assert with_gpu_memory(gpu_box(80), 0).gpus == ()


def test_defaults_merge_rejects_unknown_keys_and_bad_values() -> None:
    merged = merge_defaults(TrainingDefaults(learning_rate=1e-4), {"epochs": 3}, TrainingDefaults)
    assert merged.learning_rate == 1e-4
    assert merged.epochs == 3
    with pytest.raises(InvalidValueError, match="Unknown TrainingDefaults setting"):
        merge_defaults(None, {"learnin_rate": 1e-3}, TrainingDefaults)
    with pytest.raises(InvalidValueError, match="gpu_memory_utilization"):
        merge_defaults(InferenceDefaults(), {"gpu_memory_utilization": 1.5}, InferenceDefaults)
    with pytest.raises(InvalidValueError):
        validate_model(LLAMA_8B, gpu_box(80), overrides={"nonsense": 1})


def test_selection_unifies_api_and_self_hosted() -> None:
    catalog = Catalog(
        [
            LLAMA_8B,
            make_entry(
                "openai/cheap",
                source="api",
                context_window=128000,
                capabilities={"tool_calling": True},
                pricing={"input_per_1m_tokens": 0.1, "output_per_1m_tokens": 0.4},
            ),
            make_entry(
                "openai/pricey",
                source="api",
                context_window=128000,
                pricing={"input_per_1m_tokens": 30, "output_per_1m_tokens": 60},
            ),
            make_entry(
                "old/gone", status="deprecated", deprecation={"message": "x"}, parameters=10**8
            ),
        ]
    )
    picks = select_models(catalog, "chat", limit=10)
    ids = [p.entry.id for p in picks]
    assert set(ids) == {
        "meta-llama/Llama-3.1-8B-Instruct",
        "openai/cheap",
        "openai/pricey",
        "old/gone",
    }
    assert ids[-1] == "old/gone"
    assert all(p.reasons for p in picks)
    cheap = select_models(catalog, "text-generation", include_self_hosted=False, max_cost_per_1m=1)
    assert [p.entry.id for p in cheap] == ["openai/cheap"]
    tools = select_models(catalog, "text-generation", capabilities=["tool_calling"])
    assert [p.entry.id for p in tools] == ["openai/cheap"]
    fits = select_models(
        catalog, "text-generation", include_api=False, fits_this_machine=True, system=gpu_box(8)
    )
    assert "meta-llama/Llama-3.1-8B-Instruct" not in [p.entry.id for p in fits]
    with pytest.raises(UnknownTaskError):
        select_models(catalog, "levitation")
    with pytest.raises(InvalidValueError):
        select_models(catalog, "chat", include_api=False, include_self_hosted=False)


def test_training_honours_the_training_capability() -> None:
    frozen = make_entry(
        "x/inference-only",
        parameters=100_000_000,
        open_weights=True,
        capabilities={"training": False},
    )
    verdict = validate_model(frozen, gpu_box(80), purpose="training")
    assert verdict.fit is FitLevel.DOES_NOT_FIT
    assert any("capabilities.training" in r for r in verdict.reasons)
    assert validate_model(frozen, gpu_box(80)).fit is FitLevel.FITS


def test_deprecated_entries_warn_whatever_the_fit() -> None:
    old = make_entry(
        "old/self-hosted",
        parameters=100_000_000,
        status="deprecated",
        deprecation={"message": "superseded", "replacement": "new/self-hosted"},
    )
    for purpose in ("inference", "training"):
        verdict = validate_model(old, gpu_box(80), purpose=purpose)  # type: ignore[arg-type]
        assert verdict.warnings == ("deprecated: superseded",)
        assert "use its replacement new/self-hosted" in verdict.suggestions
    hosted = make_entry(
        "old/api", source="api", status="deprecated", deprecation={"message": "retired"}
    )
    assert validate_model(hosted, CPU_ONLY).warnings == ("deprecated: retired",)
    assert validate_model(LLAMA_8B, gpu_box(80)).warnings == ()


def test_qlora_returns_qlora_defaults() -> None:
    qlora = validate_model(LLAMA_8B, gpu_box(24), purpose="training", method="qlora")
    assert qlora.defaults["method"] == "qlora"
    assert qlora.defaults["load_in_4bit"] is True
    assert qlora.defaults["lora"] is not None
    lora = validate_model(LLAMA_8B, gpu_box(24), purpose="training", method="lora")
    assert (lora.defaults["method"], lora.defaults["load_in_4bit"]) == ("lora", False)
    full = validate_model(LLAMA_8B, gpu_box(80), purpose="training", method="full")
    assert full.defaults["lora"] is None
    # The entry's own LoRA settings carry over to QLoRA; a user override still wins.
    tuned = LLAMA_8B.model_copy(
        update={"training_defaults": TrainingDefaults(lora={"r": 64, "alpha": 128})}
    )
    picked = validate_model(
        tuned, gpu_box(24), purpose="training", method="qlora", overrides={"epochs": 2}
    )
    assert picked.defaults["lora"]["r"] == 64
    assert (picked.defaults["load_in_4bit"], picked.defaults["epochs"]) == (True, 2)
    with pytest.raises(InvalidValueError, match="training method"):
        validate_model(LLAMA_8B, gpu_box(24), purpose="training", method="dora")


def test_validate_never_answers_for_another_model() -> None:
    from modelport import api
    from modelport.errors import ModelNotFoundError

    for missing in (
        "meta-llama/Meta-Llama-3.1-70B-Instruct",
        "hf:meta-llama/Llama-3.1-70B",
        "meta-llama/Llama-3.1-70b-instruct-turbo",
        "anthropic:gpt-4o",
    ):
        with pytest.raises(ModelNotFoundError) as info:
            api.validate_model(missing, gpu_memory="80GB")
        assert info.value.suggestions, missing
    assert api.validate_model("openai:gpt-4o").model_id == "openai/gpt-4o"
