"""The public keys that verify our signed tokens (access tokens, result viewer links),
for the result viewer's gateway and anyone else who checks them (RFC 7517)."""

from fastapi import APIRouter, Response

from api.deps import Public, ServicesDep
from api.schemas.records import JwksOut

router = APIRouter(tags=["keys"], dependencies=[Public])


@router.get(
    "/.well-known/jwks.json",
    response_model=JwksOut,
    summary="Our public signing keys (OKP/Ed25519 JWKs)",
)
def keys(services: ServicesDep, response: Response) -> JwksOut:
    # Cacheable: keys change only with a restart on another key (rotation keeps the old
    # one listed while tokens it signed may still be about).
    response.headers["Cache-Control"] = "public, max-age=300"
    return JwksOut.model_validate(services.jwks)
