"""Check API responses against the app's own OpenAPI document (the subset of JSON Schema it
uses: type, enum, pattern, minimum/maximum, properties/required/additionalProperties, items,
$ref, allOf, oneOf). Small on purpose: the project pins no JSON Schema library."""

from __future__ import annotations

import re

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def resolve(root: dict, ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def validate(value, schema: dict, root: dict, where: str = "$") -> list[str]:
    errors: list[str] = []
    if "$ref" in schema:
        errors += validate(value, resolve(root, schema["$ref"]), root, where)
    for sub in schema.get("allOf", []):
        errors += validate(value, sub, root, where)
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not validate(value, s, root, where)]
        if len(matching) != 1:
            errors.append(f"{where}: matches {len(matching)} of oneOf")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return errors + [f"{where}: {value!r} is not {'/'.join(types)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: missing {key!r}")
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                errors += validate(item, properties[key], root, f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += validate(item, schema["additionalProperties"], root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected {key!r}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], root, f"{where}[{i}]")
    return errors


def _template_regex(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(template)) + "$")


class OpenApiChecker:
    """Every response goes through `check`: its status must be documented for the operation,
    and its JSON body must match the documented schema."""

    def __init__(self, spec: dict):
        self.spec = spec
        # Literal paths first: /api/tickets/stats is not /api/tickets/{ticket_id}.
        self.paths = sorted(spec["paths"], key=lambda p: p.count("{"))
        self.checked: set[tuple[str, str, str]] = set()

    def operation(self, method: str, path: str) -> tuple[str, dict]:
        for template in self.paths:
            if _template_regex(template).match(path) and method.lower() in self.spec["paths"][template]:
                return template, self.spec["paths"][template][method.lower()]
        raise AssertionError(f"{method} {path} is not documented")

    def check(self, method: str, path: str, response) -> None:
        template, operation = self.operation(method, path.split("?")[0])
        status = str(response.status_code)
        documented = operation["responses"].get(status)
        assert documented is not None, f"{method} {template} answered {status}, which is not documented"
        if "$ref" in documented:
            documented = resolve(self.spec, documented["$ref"])
        assert response.mimetype == "application/json", f"{method} {path}: {response.mimetype}"
        schema = documented["content"]["application/json"]["schema"]
        errors = validate(response.get_json(), schema, self.spec)
        assert not errors, f"{method} {path} → {status} does not match its schema: {errors[:5]}"
        self.checked.add((method.upper(), template, status))
