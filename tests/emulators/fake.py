"""The stand-in for "Fake serving", the managed endpoint service of the test plugin's cloud.

Fake serving does not exist; this module is its whole documentation, and the plugin in
`tests/fake_provider.py` follows it as a built-in provider follows its vendor's reference:

- API: JSON over HTTP at `$FAKE_SERVING_URL`, authenticated with `Authorization: Bearer
  $FAKE_SERVING_KEY` (401 otherwise). Errors are `{"code": ..., "message": ...}`.
- `PUT /regions/{region}/endpoints/{name}` creates an endpoint: `instance_type`, `image`, `args`,
  `env`, `min_replicas`, `max_replicas`, `tags`. Names match `^[a-z][a-z0-9-]{0,62}$`; an existing
  name is 409 Conflict; an instance type over the account's quota is 400 `QuotaExceeded`.
- `GET` on it answers its `state`: CREATING, then (after some polls) READY or FAILED with a
  `failure` (out of capacity, an image it cannot pull, a container that does not start).
- An optional `target` is the requests in flight per replica that autoscaling aims at.
- `PATCH` changes `min_replicas`/`max_replicas`/`target` and `tags` (all of them) at once. A `PATCH` that changes what runs
  (`instance_type`, `image`, `args`, `env`) replaces the replicas blue/green: the endpoint is
  UPDATING while the new replicas start; the old ones take every call until the new ones answer
  `/health`, then the new ones take them, the old ones stop, and the endpoint's fields are the new
  ones. New replicas that fail leave the old ones serving: the endpoint is READY again with its
  `failure`, and its fields unchanged. A `PATCH` that changes nothing that runs starts nothing;
  one while UPDATING or DELETING is 409 Conflict.
- `DELETE` starts removing it (202): it is DELETING for some polls, then gone (404); a `DELETE` or
  `PUT` while it is DELETING is 409 Conflict.
- `GET /regions/{region}/endpoints?tag=KEY=VALUE` lists endpoints with that tag.
- `GET /regions/{region}/quotas/{instance_type}` answers the account's quota for the type:
  `{"name", "limit", "used"}` in instances (replicas of live endpoints count as used).
- Containers: the service runs `image` with `args` as the container's CMD (after the image's
  ENTRYPOINT, as `docker run IMAGE ARGS...` does), sends traffic to port 8000 and waits for
  `GET /health` to answer 200 before the endpoint is READY.
- Inference: `POST /serve/{region}/{name}/v1/chat/completions` (same key) reaches the container's
  `/v1/chat/completions`; `GET /serve/{region}/{name}` answers 200 while the endpoint is READY.
- Faults a test injects: capacity or quota per instance type, 429 (with `Retry-After: 0`) and 500
  for the next N calls, polls before READY.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.emulators import containers
from tests.emulators.http import DROP, Answer, Call, JsonStandIn
from tests.emulators.vllm import ContainerFailed

API_KEY = "fake-serving-key"
SERVING_PORT = 8000
# The service's instance types and their GPUs (the test catalog's fake rows offer these).
INSTANCES = {"fake.gpu1": 1, "fake.gpu2": 1, "f2.gpu1": 1}
# What a PATCH may change that needs new replicas (anything else it changes in place).
_RUNS = ("instance_type", "image", "args", "env")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_ENDPOINT = re.compile(r"^/regions/(?P<region>[^/]+)/endpoints/(?P<name>[^/?]+)$")
_ENDPOINTS = re.compile(r"^/regions/(?P<region>[^/]+)/endpoints$")
_SERVE = re.compile(r"^/serve/(?P<region>[^/]+)/(?P<name>[^/]+)(?P<route>/.*)?$")
_QUOTA = re.compile(r"^/regions/(?P<region>[^/]+)/quotas/(?P<instance_type>[^/]+)$")
DEFAULT_INSTANCE_QUOTA = 8


@dataclass
class Faults:
    polls: int = 0  # GETs an endpoint answers CREATING before it starts
    quota_for: set[str] = field(default_factory=set)
    instance_quota: dict[str, int] = field(default_factory=dict)  # instance type -> instances the account may run
    capacity_for: set[str] = field(default_factory=set)
    throttle_next: int = 0
    drop_next: int = 0  # connections closed without an answer
    server_error_next: int = 0


class FakeStandIn(JsonStandIn):
    def __init__(self) -> None:
        super().__init__()
        self.faults = Faults()
        self.endpoints: dict[tuple[str, str], dict[str, Any]] = {}
        self.containers: dict[tuple[str, str], containers.Container] = {}
        self.creations: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str, Any]] = []

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults()
            self.endpoints.clear()
            self.containers.clear()
            self.creations.clear()
            self.requests.clear()

    def inventory(self) -> dict[str, list[str]]:
        with self._lock:
            return {"endpoints": sorted(f"{region}/{name}" for region, name in self.endpoints)}

    def received(self, method: str) -> list[dict[str, Any]]:
        return [body for verb, _, body in self.requests if verb == method]

    def updating_in_place(self) -> int:
        """Endpoints starting new replicas beside their old ones (billed both)."""
        with self._lock:
            return sum(1 for e in self.endpoints.values() if e["state"] == "UPDATING")

    def finish_operations(self, polls: int = 0) -> None:
        """Every endpoint creating or deleting ends after `polls` more polls (at once with 0)."""
        with self._lock:
            self.faults.polls = polls
            for key, endpoint in list(self.endpoints.items()):
                endpoint["polls_left"] = min(endpoint["polls_left"], polls)
                if polls == 0:
                    self._progress(key, endpoint)

    def add(self, region: str, name: str, body: dict[str, Any]) -> None:
        """An endpoint that exists already (made by an earlier test process), started and READY."""
        with self._lock:
            self.endpoints[(region, name)] = self._new(name, body, polls=0)
            self._progress((region, name), self.endpoints[(region, name)])

    def serving(self, host: str, path: str) -> bool | None:
        match = _SERVE.match(path)
        if match is None or match["route"]:
            return None
        with self._lock:
            return self.endpoints.get((match["region"], match["name"]), {}).get("state") in ("READY", "UPDATING")

    def answer(self, call: Call) -> Answer:
        with self._lock:
            self.requests.append((call.method, call.path, call.body))
            if call.headers.get("authorization") != f"Bearer {API_KEY}":
                return 401, _error("NotAuthenticated", "missing or wrong API key"), {}
            if self.faults.drop_next > 0:
                self.faults.drop_next -= 1
                return DROP
            if self.faults.throttle_next > 0:
                self.faults.throttle_next -= 1
                return 429, _error("TooManyRequests", "slow down"), {"Retry-After": "0"}
            if self.faults.server_error_next > 0:
                self.faults.server_error_next -= 1
                return 500, _error("InternalError", "the service had a bad moment"), {}
            if match := _SERVE.match(call.path):
                return self._serve(match["region"], match["name"], match["route"] or "/", call)
            if match := _QUOTA.match(call.path):
                kind = match["instance_type"]
                used = sum(e["min_replicas"] for (region, _), e in self.endpoints.items() if region == match["region"] and e["instance_type"] == kind)
                return 200, {"name": f"{kind} instances", "limit": self.faults.instance_quota.get(kind, DEFAULT_INSTANCE_QUOTA), "used": used}, {}
            if match := _ENDPOINTS.match(call.path):
                tag = call.query.get("tag", [""])[0]
                key, _, value = tag.partition("=")
                listed = [e for (region, _), e in self.endpoints.items() if region == match["region"] and e["tags"].get(key) == value]
                return 200, {"endpoints": [_public(e) for e in listed]}, {}
            if match := _ENDPOINT.match(call.path):
                return self._endpoint(call.method, (match["region"], match["name"]), call.body)
            return 404, _error("NotFound", f"no route for {call.method} {call.path}"), {}

    def _endpoint(self, method: str, key: tuple[str, str], body: Any) -> Answer:
        endpoint = self.endpoints.get(key)
        if method == "PUT":
            if endpoint is not None:
                return 409, _error("Conflict", f"endpoint {key[1]} exists in {key[0]}"), {}
            problem = _invalid(key[1], body)
            if problem:
                return 400, _error("InvalidParameter", problem), {}
            if body["instance_type"] in self.faults.quota_for:
                return 400, _error("QuotaExceeded", f"the account's quota for {body['instance_type']} is used up"), {}
            self.endpoints[key] = self._new(key[1], body, self.faults.polls)
            self.creations.append(("endpoint", key[1]))
            return 201, _public(self.endpoints[key]), {}
        if endpoint is None:
            return 404, _error("NotFound", f"endpoint {key[1]} does not exist in {key[0]}"), {}
        if method == "GET":
            self._progress(key, endpoint)
            if key not in self.endpoints:
                return 404, _error("NotFound", f"endpoint {key[1]} does not exist in {key[0]}"), {}
            return 200, _public(endpoint), {}
        if method == "PATCH":
            if endpoint["state"] in ("UPDATING", "DELETING"):
                return 409, _error("Conflict", f"endpoint {key[1]} is {endpoint['state']}"), {}
            runs = {k: body[k] for k in _RUNS if k in body and body[k] != endpoint[k]}
            problem = _invalid(key[1], {**endpoint, **body}) if runs else None
            if problem:
                return 400, _error("InvalidParameter", problem), {}
            endpoint.update({k: int(body[k]) for k in ("min_replicas", "max_replicas", "target") if k in body})
            if "tags" in body:
                endpoint["tags"] = dict(body["tags"])
            if runs:
                endpoint.update(state="UPDATING", pending=runs, polls_left=self.faults.polls)
            return 200, _public(endpoint), {}
        if method == "DELETE":
            if endpoint["state"] == "DELETING":
                return 409, _error("Conflict", f"endpoint {key[1]} is being deleted"), {}
            endpoint.update(state="DELETING", polls_left=self.faults.polls)
            self.containers.pop(key, None)
            return 202, None, {}
        return 405, _error("MethodNotAllowed", method), {}

    def _new(self, name: str, body: dict[str, Any], polls: int) -> dict[str, Any]:
        fields = ("instance_type", "image", "args", "env", "min_replicas", "max_replicas", "tags")
        return {
            "name": name,
            "state": "CREATING",
            "failure": None,
            "polls_left": polls,
            "target": body.get("target"),
            "pending": None,
            **{k: body[k] for k in fields},
        }

    def _progress(self, key: tuple[str, str], endpoint: dict[str, Any]) -> None:
        """A CREATING endpoint counts down its polls, then starts its container or fails; a DELETING
        one counts down, then is gone."""
        if endpoint["state"] not in ("CREATING", "DELETING", "UPDATING"):
            return
        if endpoint["polls_left"] > 0:
            endpoint["polls_left"] -= 1
            return
        if endpoint["state"] == "DELETING":
            del self.endpoints[key]
            return
        runs = {**{k: endpoint[k] for k in _RUNS}, **(endpoint["pending"] or {})}
        container, failure = self._start(key[0], runs)
        if endpoint["state"] == "UPDATING":  # the old replicas served all along; the new ones take over only if they answer
            endpoint.update(state="READY", failure=failure, pending=None)
            if container is not None:
                endpoint.update(runs)
                self.containers[key] = container
            return
        if container is None:
            endpoint.update(state="FAILED", failure=failure)
            return
        self.containers[key] = container
        endpoint["state"] = "READY"

    def _start(self, region: str, runs: dict[str, Any]) -> tuple[containers.Container | None, str | None]:
        """Replicas of what `runs` describes, started as the service starts them, or why they did not start."""
        if runs["instance_type"] in self.faults.capacity_for:
            return None, f"no capacity for {runs['instance_type']} in {region} now"
        try:
            container = containers.start(
                runs["image"], dict(runs["env"]), runs["instance_type"], args=list(runs["args"]), gpus=INSTANCES[runs["instance_type"]]
            )
        except containers.UnknownImage as exc:
            return None, f"cannot pull image {runs['image']}: {exc}"
        except ContainerFailed as failed:
            return None, f"the container exited with code {failed.code}: {failed.log}"
        health, _ = container.handle("GET", "/health", None)
        if container.port != SERVING_PORT or health != 200:
            return None, f"the container listens on {container.port}; Fake serving sends traffic to {SERVING_PORT}"
        return container, None

    def _serve(self, region: str, name: str, route: str, call: Call) -> Answer:
        container = self.containers.get((region, name))
        if container is None:
            return 404, _error("NotFound", f"endpoint {name} is not serving in {region}"), {}
        status, answer = container.handle(call.method, route, call.body)
        return status, answer, {}


def _invalid(name: str, body: Any) -> str | None:
    if not _NAME.match(name):
        return f"endpoint name {name!r} must match {_NAME.pattern}"
    missing = [k for k in ("instance_type", "image", "args", "env", "min_replicas", "max_replicas", "tags") if k not in body]
    if missing:
        return f"missing fields: {', '.join(missing)}"
    if body["instance_type"] not in INSTANCES:
        return f"unknown instance type {body['instance_type']!r}; Fake serving offers {', '.join(sorted(INSTANCES))}"
    if not 1 <= int(body["min_replicas"]) <= int(body["max_replicas"]):
        return "replicas must satisfy 1 <= min_replicas <= max_replicas"
    return None


def _public(endpoint: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in endpoint.items() if k not in ("polls_left", "pending")}


def _error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}
