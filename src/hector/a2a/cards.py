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


TRANSPORTS = {
    "json-rpc": TransportProtocol.JSONRPC.value,
    "rest": TransportProtocol.HTTP_JSON.value,
    "grpc": TransportProtocol.GRPC.value,
}
"""``server.preferred_transport`` → the card's protocol binding."""


def build_card(
    agent: AgentLike,
    base_url: str,
    skills: list[SkillConfig] | None = None,
    auth_enabled: bool = False,
    auth_required: bool = False,
    grpc_address: str | None = None,
    preferred: str = "json-rpc",
) -> AgentCard:
    """The card for *agent* served at *base_url* (and over gRPC at *grpc_address*, ``host:port``).

    Both protocol versions are listed: 1.0 first (current clients pick it), then 0.3 (older
    clients read the first 0.3 interface as their ``url``). Within each, the *preferred*
    transport comes first: clients that take the first interface they speak use it. The gRPC
    interfaces name the agent as their tenant, which a2a-sdk clients send with every call: one
    gRPC port serves all agents.
    """
    url = agent_url(base_url, agent.id)
    grpc = TransportProtocol.GRPC.value
    first = TRANSPORTS[preferred if grpc_address or preferred != "grpc" else "json-rpc"]
    bindings = [first, *(b for b in TRANSPORTS.values() if b != first and (grpc_address or b != grpc))]

    def interface(binding: str, version: str) -> AgentInterface:
        if binding == grpc:
            return AgentInterface(
                url=grpc_address, protocol_binding=binding, protocol_version=version, tenant=agent.id
            )
        return AgentInterface(url=url, protocol_binding=binding, protocol_version=version)

    interfaces = [
        interface(binding, version)
        for version in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
        for binding in bindings
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
