"""Inference: completion, generation and refactoring bodies and answers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from ai_ide.wire.common import (
    MAX_CODE_CHARS,
    MAX_PROMPT_CHARS,
    MODEL_ID_PATTERN,
    StrictModel,
    WireModel,
)

RefactorOperation = Literal["extract_variable", "extract_method", "rename", "optimize_performance"]

# A stop string is checked against the text's tail after every token: bounded.
StopSequence = Annotated[str, Field(max_length=256)]

# -- completion ------------------------------------------------------------------


class ProjectContext(StrictModel):
    """Optional hints about the project."""

    dependencies: list[str] = Field(default_factory=list, max_length=200)
    framework: str | None = Field(None, max_length=200)


class CompletionContext(StrictModel):
    """Where to complete."""

    language: str | None = Field(None, max_length=64, examples=["rust"])
    code: str = Field(max_length=MAX_CODE_CHARS)
    cursor_position: int | None = Field(
        None, ge=0, le=2**31 - 1, description="Offset in code; past the end is clamped."
    )
    file_path: str | None = Field(None, max_length=4096)
    project_context: ProjectContext | None = None


class CompletionParameters(StrictModel):
    """Sampling parameters."""

    max_tokens: int = Field(100, ge=1, le=4096)
    temperature: float = Field(0.1, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    stop_sequences: list[StopSequence] = Field(default_factory=list, max_length=16)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    n: int = Field(1, ge=1, le=8, description="Completions to produce (1 + alternatives).")
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class CompletionOptions(StrictModel):
    """How to deliver the result."""

    stream: bool = False
    async_: bool = Field(False, alias="async")
    cache: bool = False

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CompletionRequestBody(StrictModel):
    """``POST /inference/completion`` body."""

    model_id: str | None = Field(None, pattern=MODEL_ID_PATTERN, max_length=128)
    context: CompletionContext
    parameters: CompletionParameters = Field(default_factory=CompletionParameters)
    options: CompletionOptions = Field(default_factory=CompletionOptions)


class Timings(WireModel):
    """Where the time of one generation went, as the server measured it (ms)."""

    queue_ms: float = Field(description="Waiting for a slot.")
    prompt_ms: float = Field(description="Evaluating the prompt.")
    decode_ms: float = Field(description="Generating tokens.")
    first_token_ms: float = Field(description="From submission to the first token.")
    total_ms: float


class CompletionMetadata(WireModel):
    """Measured figures of one completion."""

    model_used: str
    tokens_used: int = Field(description="Prompt plus generated tokens.")
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = Field(description="Prompt tokens reused from the KV cache.")
    processing_time_ms: float
    finish_reason: str
    used_fim: bool
    cached: bool = Field(description="Served from the completion cache.")
    replace_range: tuple[int, int] = Field(description="Offsets in code the text replaces.")
    raw_text: str = Field(description="What the model produced before post-processing.")
    context_snippets: int = Field(description="Definitions from other code put in the prompt.")
    timings: Timings


class CompletionBody(WireModel):
    """The completion itself."""

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    metadata: CompletionMetadata


class Suggestion(WireModel):
    """An alternative completion."""

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str


class CompletionResponse(WireModel):
    """``POST /inference/completion`` answer (and the ``done`` event of a stream)."""

    completion: CompletionBody
    suggestions: list[Suggestion]

    @property
    def text(self) -> str:
        """The completion's text (``completion.text``)."""
        return self.completion.text


# -- generation ------------------------------------------------------------------


class GenerationContext(StrictModel):
    """What to generate into."""

    language: str | None = Field(None, max_length=64)
    existing_code: str = Field("", max_length=MAX_CODE_CHARS)
    file_path: str | None = Field(None, max_length=4096)


class GenerationParameters(StrictModel):
    """Sampling parameters for generation."""

    max_tokens: int = Field(256, ge=1, le=4096)
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    stop_sequences: list[StopSequence] = Field(default_factory=list, max_length=16)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class AsyncOption(StrictModel):
    """Options shared by requests that can run as background jobs."""

    async_: bool = Field(False, alias="async")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class GenerationRequestBody(StrictModel):
    """``POST /inference/generation`` body."""

    model_id: str | None = Field(None, pattern=MODEL_ID_PATTERN, max_length=128)
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    context: GenerationContext = Field(default_factory=GenerationContext)
    parameters: GenerationParameters = Field(default_factory=GenerationParameters)
    options: AsyncOption = Field(default_factory=AsyncOption)


class GenerationMetadata(WireModel):
    """Measured figures of one generation."""

    model_used: str
    tokens_used: int
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = Field(description="Prompt tokens reused from the KV cache.")
    processing_time_ms: float
    finish_reason: str
    prompt_style: Literal["chat", "comment"] = Field(
        description="chat: the model's chat template; comment: the request as a code comment"
    )
    timings: Timings


class GenerationBody(WireModel):
    """The generated code."""

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    metadata: GenerationMetadata


class GenerationResponse(WireModel):
    """``POST /inference/generation`` answer."""

    generation: GenerationBody

    @property
    def text(self) -> str:
        """The generated code (``generation.text``)."""
        return self.generation.text


# -- refactoring -----------------------------------------------------------------


class RefactorContext(StrictModel):
    """Where the refactoring applies."""

    language: str | None = Field(None, max_length=64, examples=["rust"])
    file_path: str | None = Field(None, max_length=4096)
    selection_start: int | None = Field(None, ge=0, le=2**31 - 1)
    selection_end: int | None = Field(None, ge=0, le=2**31 - 1)


class RefactorRequestBody(StrictModel):
    """``POST /inference/refactor`` body."""

    model_id: str | None = Field(None, pattern=MODEL_ID_PATTERN, max_length=128)
    code: str = Field(min_length=1, max_length=MAX_CODE_CHARS)
    operation: RefactorOperation
    context: RefactorContext = Field(default_factory=RefactorContext)
    safety_checks: bool = True
    new_name: str | None = Field(None, min_length=1, max_length=256)
    options: AsyncOption = Field(default_factory=AsyncOption)


class SafetyCheckBody(WireModel):
    """One check that ran on the result (passed null: not run, e.g. tool missing)."""

    name: str
    passed: bool | None
    detail: str


class EditBody(WireModel):
    """Replace ``original_code[start:end]`` with ``new_text``."""

    start: int
    end: int
    new_text: str


class RefactoringBody(WireModel):
    """The accepted refactoring."""

    type: str
    original_code: str
    refactored_code: str
    confidence: float = Field(ge=0.0, le=1.0)
    safety_score: float = Field(ge=0.0, le=1.0)
    explanation: str
    checks: list[SafetyCheckBody]
    edits: list[EditBody]
    model_used: str | None = Field(description="null when no model was needed")


class AlternativeBody(WireModel):
    """Another variant that passed the same checks."""

    type: str
    code: str
    confidence: float = Field(ge=0.0, le=1.0)
    safety_score: float = Field(ge=0.0, le=1.0)


class RefactorResponse(WireModel):
    """``POST /inference/refactor`` answer."""

    refactoring: RefactoringBody
    alternatives: list[AlternativeBody]

    @property
    def refactored_code(self) -> str:
        """The whole code after the refactoring (``refactoring.refactored_code``)."""
        return self.refactoring.refactored_code
