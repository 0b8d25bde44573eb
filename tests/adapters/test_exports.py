"""The public surface of `adapters`: the router is written against exactly these names."""

import adapters

PUBLIC = {
    # same-format passthrough
    "ANTHROPIC",
    "OPENAI",
    "RESPONSES",
    "MessagesSent",
    "WireBody",
    "passes_through",
    "refuse_fields",
    "refuse_untaken",
    "refuse_untranslated",
    "translated",
    # errors
    "GatewayError",
    "InvalidRequest",
    "UnsupportedCapability",
    "UnsupportedParameter",
    "NotFound",
    "AuthenticationFailed",
    "RateLimitExceeded",
    "Timeout",
    "NetworkError",
    "ProviderInternalError",
    "Overloaded",
    "SerializationError",
    "StreamError",
    "ContentFiltered",
    "ContextLengthExceeded",
    "NoHealthyTarget",
    "AllTargetsFailed",
    # unified types
    "GatewayRequest",
    "GatewayResponse",
    "Message",
    "ContentPart",
    "RefusalPart",
    "TextPart",
    "WirePart",
    "ImagePart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "Choice",
    "ChatChunk",
    "ChunkChoice",
    "Delta",
    "UpstreamRequest",
    # embeddings: the unified types, OpenAI's format, parts, joins and shares
    "EmbeddingInput",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "Embedder",
    "embedding_request_from_wire",
    "embedding_response_to_wire",
    "join_embeddings",
    "request_parts",
    "share_tokens",
    "split_embeddings",
    # Anthropic: the adapter, and the Messages ingress codec
    "AnthropicAdapter",
    "MessagesStreamEncoder",
    "anthropic_error_to_wire",
    "messages_request_from_wire",
    "messages_response_to_wire",
    # the OpenAI Responses ingress codec
    "ResponsesStreamEncoder",
    "passed_stream_failure",
    "responses_request_from_wire",
    "responses_response_to_wire",
    # adapter protocol and helpers
    "AdapterBase",
    "Capabilities",
    "header",
    "HTTPAdapter",
    "StreamDecoder",
    "TokenCounter",
    "error_for_status",
    "response_for",
    "retry_after",
    "stream_decoder_for",
    "take_decoded",
    # OpenAI wire format and adapter
    "OpenAIAdapter",
    "OpenAIStreamDecoder",
    "request_from_wire",
    "request_to_wire",
    "response_from_wire",
    "response_to_wire",
    "chunk_from_wire",
    "chunk_to_wire",
    "chat_completion_id",
    # SSE
    "SSEDecoder",
    "SSEEvent",
    # simulated provider
    "SimulatedModel",
    "SimulatedPlan",
    # registry of provider kinds, and the built-in kinds' config classes
    "AdapterFactory",
    "ProviderSpec",
    "adapter_factory",
    "known_kinds",
    "provider_kinds",
    "provider_spec",
    "register_adapter",
    "AnthropicProvider",
    "AzureProvider",
    "BedrockProvider",
    "CohereProvider",
    "GeminiProvider",
    "LatencySpec",
    "OllamaProvider",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "SimulatedProvider",
    "HuggingFaceProvider",
    "ReplicateProvider",
    "RunPodProvider",
    # providers that answer through jobs (create, poll or stream, cancel)
    "Job",
    "JobAdapter",
    "PolledStreamDecoder",
    # providers' rate-limit headers
    "RateLimitParser",
    "UpstreamLimits",
    "parse_anthropic_headers",
    "parse_openai_headers",
    # resuming a broken stream by prefill
    "Seam",
    "prefilled",
    # legacy text completions, passed through to OpenAI-format targets
    "TextCompleter",
    "TextRequest",
    "TextResponse",
    "TextStreamDecoder",
    "text_request_from_wire",
    "text_response_from_wire",
}


def test_public_names_are_pinned() -> None:
    assert {name for name in vars(adapters) if not name.startswith("_")} == PUBLIC


def test_public_names_resolve() -> None:
    for name in PUBLIC:
        assert getattr(adapters, name) is not None, name


def test_every_public_exception_is_a_gateway_error() -> None:
    exceptions = {
        name
        for name in PUBLIC
        if isinstance(obj := getattr(adapters, name), type) and issubclass(obj, BaseException)
    }
    assert len(exceptions) == 17
    for name in exceptions:
        assert issubclass(getattr(adapters, name), adapters.GatewayError), name
