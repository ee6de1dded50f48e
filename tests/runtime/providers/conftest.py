"""A fake Messages API server per test, and the real SDK provider pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from runtime.providers.anthropic import AnthropicProvider
from tests.fakes import FakeMessagesAPI

TEST_KEY = "sk-ant-test-key"


@pytest.fixture
def fake_api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as api:
        yield api


@pytest.fixture
async def provider(fake_api: FakeMessagesAPI) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(base_url=fake_api.url_v1, api_key=TEST_KEY)
    yield provider
    await provider.aclose()
