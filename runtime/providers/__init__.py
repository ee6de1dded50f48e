"""LLM providers: turn our messages and tools into one streamed generation."""
