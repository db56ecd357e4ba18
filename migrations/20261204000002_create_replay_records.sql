-- The idempotency ledger: one row per (operation, event id) whose first request
-- succeeded. A failed request leaves no row, so the client can correct the
-- request and retry with the same event id.
--
-- `request_body` and `response_body` are JSON text; `request_sha256` is the hex
-- SHA-256 of the request body with object keys sorted, used to flag a duplicate
-- whose payload differs from the first one. `response_body` holds the first
-- response exactly as sent, including its `idempotency` object.

create table replay_records (
    replay_record_id integer primary key autoincrement,
    operation        text not null,
    event_id         text not null,
    request_sha256   text not null,
    request_body     text not null,
    response_body    text not null,
    first_seen_at    text not null,
    replay_count     integer not null default 0,
    last_replayed_at text,
    unique (operation, event_id)
);

create index replay_records_first_seen_at on replay_records (first_seen_at);
