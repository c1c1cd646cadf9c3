"""drf-spectacular extension describing the OCP access-key signature scheme."""

from drf_spectacular.authentication import BasicScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AccessKeyScheme(OpenApiAuthenticationExtension):
    target_class = "taskcenter.api.authentication.AccessKeyAuthentication"
    name = "ocpAccessKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`OCP-ACCESS-KEY-HMACSHA1 <AccessKeyId>:<Signature>` with a `Date` header; "
                "Signature = base64(HMAC-SHA1(secret, Method\\nMD5(body)\\nContent-Type\\n"
                "Date\\nHost\\nx-ocp-* headers\\nPath?Query)). See docs/api.md."
            ),
        }


class CachedBasicScheme(BasicScheme):
    """HTTP Basic with remembered credentials is HTTP Basic to a client."""

    target_class = "taskcenter.api.authentication.CachedBasicAuthentication"
