"""Agent cards: what each agent advertises to A2A clients."""

from __future__ import annotations

from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityScheme,
)
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0, TransportProtocol

from hector import __version__
from hector.agent import AgentLike
from hector.config.schema import SkillConfig

INPUT_MODES = ["text/plain", "application/json"]
OUTPUT_MODES = ["text/plain", "application/json"]
SCHEME = "BearerAuth"


def agent_url(base_url: str, agent_id: str) -> str:
    return f"{base_url.rstrip('/')}/agents/{agent_id}"


def build_card(
    agent: AgentLike,
    base_url: str,
    skills: list[SkillConfig] | None = None,
    auth_enabled: bool = False,
    auth_required: bool = False,
) -> AgentCard:
    """The card for *agent* served at *base_url*.

    Both protocol versions are listed on the same URL: 1.0 first (current clients pick it),
    then 0.3 (older clients read the first 0.3 interface as their ``url``).
    """
    url = agent_url(base_url, agent.id)
    interfaces = [
        AgentInterface(url=url, protocol_binding=binding, protocol_version=version)
        for version in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
        for binding in (TransportProtocol.JSONRPC.value, TransportProtocol.HTTP_JSON.value)
    ]
    declared = [
        AgentSkill(id=s.id, name=s.name, description=s.description, tags=s.tags, examples=s.examples)
        for s in skills or []
    ]
    card = AgentCard(
        name=agent.name,
        description=agent.description or f"Hector agent {agent.name}",
        version=__version__,
        supported_interfaces=interfaces,
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=INPUT_MODES,
        default_output_modes=OUTPUT_MODES,
        skills=declared
        or [
            AgentSkill(
                id="general",
                name=agent.name,
                description=agent.description or "Answers messages",
                tags=["general"],
            )
        ],
    )
    if auth_enabled:
        # API keys travel as bearer tokens too, so one HTTP bearer scheme describes both.
        card.security_schemes[SCHEME].CopyFrom(
            SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="bearer", bearer_format="JWT", description="A JWT from the issuer, or an API key"
                )
            )
        )
        if auth_required:
            requirement = card.security_requirements.add()
            requirement.schemes[SCHEME].SetInParent()
    return card
