"""JWT verification against a JWKS: explicit algorithms, issuer, audience, expiry."""

from __future__ import annotations

from typing import Any

import jwt

from hector.security import AuthError, Principal
from hector.security.jwks import JWKSCache

# Asymmetric algorithms only: `none` and the HMAC family are never accepted, so a token signed
# with the public key as an HMAC secret cannot pass.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
LEEWAY_SECONDS = 30
_RESERVED = {"iss", "aud", "exp", "iat", "nbf", "jti"}


class JWTVerifier:
    def __init__(self, jwks: JWKSCache, issuer: str | None, audience: str | None) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("Invalid token: malformed") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthError(f"Invalid token: algorithm {alg!r} is not accepted")
        if not isinstance(kid, str) or not kid:
            raise AuthError("Invalid token: no key id (kid)")
        key = await self.jwks.get(kid)
        if key is None:
            raise AuthError("Invalid token: unknown signing key")
        if key.algorithm_name and key.algorithm_name != alg:
            raise AuthError("Invalid token: algorithm does not match the key")
        required = ["exp", "sub"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": required, "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("Invalid token: expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("Invalid token: not valid yet") from None
        except jwt.InvalidIssuerError:
            raise AuthError("Invalid token: wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise AuthError("Invalid token: wrong audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"Invalid token: missing claim {exc.claim!r}") from None
        except jwt.InvalidTokenError:
            raise AuthError("Invalid token: bad signature") from None
        custom = {k: v for k, v in claims.items() if k not in _RESERVED}
        return Principal(subject=str(claims["sub"]), method="jwt", claims=custom)
