#!/bin/sh
# Post one signal to the inbox of a running `bot run` ([inbox] enabled = true in bot.toml).
#
#   BOT_INBOX_SECRET=... sh examples/signal.sh
#
# The body is signed with HMAC-SHA256 (the secret never travels). The answer is one JSON line:
# 202 {"id": ...} once the entry is on disk; 409 {"id": ...} if this key was used before (run
# it twice: the second answer names the first entry, nothing new is sent); 4xx {"error", "field"}.
set -eu
: "${BOT_INBOX_SECRET:?set BOT_INBOX_SECRET to the secret bot run was started with}"
URL="${BOT_INBOX_URL:-http://127.0.0.1:18766/signal}"
KEY="${1:-example-$(date +%Y%m%d%H%M)}"

BODY=$(printf '{"key":"%s","symbol":"BTCUSDT","side":"buy","quantity":"0.010","sl_pct":"1","tp_pct":"2"}' "$KEY")
SIG=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$BOT_INBOX_SECRET" | sed 's/^.*= *//')

curl -sS -w ' (HTTP %{http_code})\n' -X POST "$URL" \
    -H 'Content-Type: application/json' \
    -H "X-Bot-Signature: sha256=$SIG" \
    --data-binary "$BODY"

# Simpler, where the secret may travel (loopback, or behind TLS):
#   curl -sS -X POST "$URL" -H "X-Bot-Secret: $BOT_INBOX_SECRET" --data-binary "$BODY"
