"""Long-term memory through a running server: what is stored, what a later turn or conversation
recalls into the prompt, and whose memories stay out of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hector.config import parse_config
from hector.errors import ConfigError
from tests.harness import running_hector
from tests.llm_server import ScriptedLLMServer
from tests.rag.test_retrieval import ask, llm, messages

KEY_ALICE, KEY_BOB = "key-alice-0123456789", "key-bob-9876543210"
RECALL = "Things you remember from earlier conversations"
FACT = "My cat is called Miso and she hates the vacuum cleaner."


def config(server: ScriptedLLMServer, auth: bool = False, **long_term: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "llms": {"main": llm(server)},
        "agents": {
            "pal": {
                "llm": "main",
                "system_prompt": "You are a friendly assistant.",
                "memory": {"window_size": 4, "long_term": {"enable_auto_recall": True, **long_term}},
            }
        },
    }
    if auth:
        cfg["server"] = {"auth": {"enabled": True, "api_keys": [KEY_ALICE, KEY_BOB]}}
    return cfg


def system_prompt(server: ScriptedLLMServer) -> str:
    first = messages(server.last)[0]
    assert first["role"] == "system"
    return str(first["content"])


async def test_session_scope_recalls_what_left_the_window(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    async with running_hector(config(llm_server), tmp_path) as url:
        await ask(url, FACT, "s1", agent="pal")
        assert RECALL not in system_prompt(llm_server), "nothing to recall yet"
        await ask(url, "What is the capital of France?", "s1", agent="pal")
        assert FACT not in system_prompt(llm_server), "still in the window: not recalled twice"
        await ask(url, "What is my pet's name?", "s1", agent="pal")
        prompt = system_prompt(llm_server)
        assert prompt.startswith("You are a friendly assistant.\n\n" + RECALL)
        assert "- [user, " in prompt and FACT in prompt
        assert [m["content"] for m in messages(llm_server.last)[1:]][-1] == "What is my pet's name?"
        await ask(url, "What is my pet's name?", "s2", agent="pal")
        assert FACT not in system_prompt(llm_server), "another conversation recalls nothing of s1"


async def test_user_scope_spans_conversations_but_not_users(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    cfg = config(llm_server, auth=True, recall_scope="user", recall_limit=1)
    async with running_hector(cfg, tmp_path) as url:
        await ask(url, FACT, "a1", agent="pal", key=KEY_ALICE)
        await ask(url, "Tell me about my pet", "a2", agent="pal", key=KEY_ALICE)
        assert FACT in system_prompt(llm_server)
        assert system_prompt(llm_server).count("\n- [") == 1, "recall_limit memories at most"
        await ask(url, "Tell me about my pet", "b1", agent="pal", key=KEY_BOB)
        assert RECALL not in system_prompt(llm_server), "Bob never sees Alice's memories"
        # Same conversation id, other user: still nothing of Alice's.
        await ask(url, "Tell me about my pet", "a1", agent="pal", key=KEY_BOB)
        assert FACT not in system_prompt(llm_server)


async def test_batches_are_written_when_full_and_at_shutdown(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    cfg = config(llm_server, recall_scope="agent", batch_size=3, storage_scope="conversational")
    llm_server.reply("Noted, Miso it is.")
    async with running_hector(cfg, tmp_path) as url:
        await ask(url, FACT, "x1", agent="pal")  # user + assistant: 2 of 3, nothing written yet
        await ask(url, "what is my cat called?", "x2", agent="pal")
        assert RECALL not in system_prompt(llm_server), "a batch is written only when full"
        await ask(url, "what is my cat called?", "x3", agent="pal")  # x2's turn filled the batch
        assert FACT in system_prompt(llm_server) and "[assistant, " in system_prompt(llm_server)
        await ask(url, "Remember: the vet is Dr. Okafor on Elm Street.", "x4", agent="pal")
    async with running_hector(cfg, tmp_path) as url:  # restarted: the pending message was kept
        await ask(url, "who is the vet for my cat?", "x5", agent="pal")
        assert "Dr. Okafor on Elm Street" in system_prompt(llm_server)


async def test_recall_is_off_by_default(tmp_path: Path, llm_server: ScriptedLLMServer) -> None:
    cfg = config(llm_server)
    cfg["agents"]["pal"]["memory"]["long_term"] = {"recall_scope": "agent"}
    async with running_hector(cfg, tmp_path) as url:
        await ask(url, FACT, "o1", agent="pal")
        await ask(url, "what is my cat called?", "o2", agent="pal")
        assert system_prompt(llm_server) == "You are a friendly assistant."


def test_memory_parts_are_validated(llm_server: ScriptedLLMServer) -> None:
    cfg = config(llm_server)
    cfg["vector_stores"] = {"one": {"type": "embedded"}, "two": {"type": "embedded"}}
    with pytest.raises(
        ConfigError, match=r"agent 'pal': vector_store is required when long-term memory is enabled"
    ):
        parse_config(cfg, "<test>")
    cfg["agents"]["pal"]["vector_store"] = "three"
    with pytest.raises(ConfigError, match=r"agent 'pal': vector_store 'three' not found"):
        parse_config(cfg, "<test>")
    cfg["agents"]["pal"]["vector_store"] = "two"
    assert parse_config(cfg, "<test>").config.agents["pal"].vector_store == "two"
    user_scope = config(llm_server, recall_scope="user")
    assert any("every caller is 'anonymous'" in w for w in parse_config(user_scope, "<test>").warnings)
    with pytest.raises(ConfigError, match="longterm"):
        parse_config(config(llm_server) | {"agents": {"pal": {"memory": {"longterm": {}}}}}, "<test>")


def test_memory_refuses_a_vector_store_that_keeps_one_collection(llm_server: ScriptedLLMServer) -> None:
    # Memories are kept apart by collection; a vector store whose `collection` setting puts
    # everything in one would recall one user's memories in another user's conversation.
    cfg = config(llm_server)
    cfg["vector_stores"] = {"q": {"type": "qdrant", "path": ":memory:", "collection": "everything"}}
    with pytest.raises(
        ConfigError, match=r"agent 'pal': long-term memory cannot use vector store 'q': its collection"
    ):
        parse_config(cfg, "<test>")
    del cfg["vector_stores"]["q"]["collection"]
    assert parse_config(cfg, "<test>").config.vector_stores["q"].collection is None
    # The embedded store has one table for all collections and no such setting to apply.
    cfg["vector_stores"]["q"] = {"type": "embedded", "collection": "everything"}
    parse_config(cfg, "<test>")


async def test_a_long_message_still_in_the_window_is_not_recalled(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    long = FACT + " " + "She sleeps on the sunny windowsill all afternoon. " * 90  # over 4000 chars
    async with running_hector(config(llm_server), tmp_path) as url:
        await ask(url, long, "l1", agent="pal")
        await ask(url, "What is my cat called?", "l1", agent="pal")
        # The memory holds the message cut to 4000 characters; the model sees it whole anyway.
        assert long in [m["content"] for m in messages(llm_server.last)]
        assert RECALL not in system_prompt(llm_server)
