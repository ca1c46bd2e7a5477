"""Signing against the HMAC vectors Binance publishes (hmac_signature_vectors.json)."""

from __future__ import annotations

import json
from pathlib import Path

from bot_cli.exchange.signing import encode_params, sign


VECTORS = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "binance" / "hmac_signature_vectors.json").read_text()
)
SECRET = VECTORS["secretKey"]
V1, V2 = VECTORS["vectors"]


def test_official_vector_query_string() -> None:
    """Example 1/2 of the docs: the whole payload in one place."""
    assert sign(SECRET, V1["payload"]) == V1["signature"]


def test_official_vector_mixed_query_and_body_concatenated_without_separator() -> None:
    """Example 3: totalParams is query + body with NO '&' between them."""
    payload = V2["queryString"] + V2["requestBody"]
    assert payload == V2["payload"]
    assert sign(SECRET, payload) == V2["signature"]


def test_mixed_vector_only_reproduces_with_the_published_stray_space() -> None:
    """Without the docs' space after 'timestamp=' the digest differs (reference §2.2)."""
    fixed = V2["payload"].replace("timestamp= ", "timestamp=")
    assert sign(SECRET, fixed) == "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"


def test_reordered_parameters_give_another_signature() -> None:
    """Order is part of what is signed: the reordered Example-1 payload has its own digest."""
    reordered = (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=9000"
        "&recvWindow=5000&timestamp=1591702613943"
    )
    digest = sign(SECRET, reordered)
    assert digest == "ec11dcc17e67e47f0d3c3f513dfe9062307e37619c5c82ebaa8fe0bdf3d59519"
    assert digest != V1["signature"]


def test_encode_params_keeps_order_and_reproduces_the_vector_payload() -> None:
    """encode_params writes the parameters in the order given."""
    params = [
        ("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "1"),
        ("price", "9000"), ("timeInForce", "GTC"), ("recvWindow", "5000"),
        ("timestamp", "1591702613943"),
    ]
    assert encode_params(params) == V1["payload"]


def test_encode_params_percent_encodes_reserved_characters() -> None:
    """':' and '/' (allowed in Binance ids) are percent-encoded, so we sign the encoded form."""
    assert encode_params([("newClientOrderId", "a:b/c d")]) == "newClientOrderId=a%3Ab%2Fc+d"


def test_encode_params_of_nothing_is_empty() -> None:
    """No parameters encode to the empty string."""
    assert encode_params([]) == ""
