"""The one failure classifier: what the engine does next (stop, retry, fail over) for each kind of answer."""

from __future__ import annotations

import pytest

from providers.base import (
    AuthError,
    CapacityError,
    ErrorWords,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    QuotaError,
    ThrottledError,
    TransientError,
    classify,
    failed_because,
)

WORDS = ErrorWords("Service", auth_codes=frozenset({"AuthorizationFailed"}), capacity_words=("capacity", "stockout"))


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (403, "AuthorizationFailed", "no write access to /resourceGroups/capacity-tests", AuthError),  # a name is not a reason
        (404, "NotFound", "deployment quota-demo not found", NotFoundError),
        (429, "RESOURCE_EXHAUSTED", "Quota exceeded for custom_model_serving_l4", QuotaError),  # quota before throttling
        (429, "TooManyRequests", "slow down", ThrottledError),
        (400, "InvalidParameter", "a stockout of L4 in us-central1-a", CapacityError),
        (500, "InternalError", "try again", TransientError),
        (424, "ModelError", "the container answered 503", TransientError),
        (None, "", "connection reset", TransientError),
        (400, "ValidationException", "bad name", InvalidRequestError),
    ],
)
def test_a_failure_is_classified_by_status_and_code_before_words(status: int | None, code: str, message: str, expected: type) -> None:
    assert type(classify(WORDS, status, code, message)) is expected


def test_retry_after_in_seconds_is_kept_and_an_http_date_left_to_the_backoff() -> None:
    assert classify(WORDS, 429, "", "slow", "1.5").retry_after == 1.5  # type: ignore[attr-defined]
    assert classify(WORDS, 429, "", "slow", "Wed, 21 Oct 2026 07:28:00 GMT").retry_after is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("quota exceeded for ml.g6", QuotaError), ("account limit reached", QuotaError), ("out of host capacity", CapacityError), ("OOM", ProviderError)],
)
def test_a_failed_resource_fails_over_on_quota_or_capacity_whatever_the_clouds_words(reason: str, expected: type) -> None:
    assert type(failed_because(ErrorWords("Service", quota_words=()), reason)) is expected
