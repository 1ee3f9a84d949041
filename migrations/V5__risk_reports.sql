-- What the shop tells the risk sidecar after a decision (payment outcomes, challenge
-- labels, disputes), written in the same transaction as the change it reports and
-- sent by a background task until the sidecar acknowledges it: a report survives a
-- sidecar that is down, a crash of the shop, and retries (one row per fact).
create table risk_report (
    risk_report_id  bigserial primary key,
    transaction_id  text        not null,
    -- The sidecar path below /v1, and the JSON body exactly as it will be sent.
    kind            text        not null check (kind in ('outcome', 'label')),
    body            jsonb       not null,
    -- One row per fact: 'outcome:captured', 'label:challenge_passed'.
    fact            text        not null,
    created_at      timestamptz not null default now(),
    attempts        integer     not null default 0,
    next_attempt_at timestamptz not null default now(),
    sent_at         timestamptz,
    -- Refused for good (the sidecar knows no such decision, or our request was wrong).
    given_up_at     timestamptz,
    last_status     integer,
    unique (transaction_id, fact)
);
create index risk_report_due on risk_report (next_attempt_at) where sent_at is null and given_up_at is null;

-- Disputes the gateway reported on our payments, and how far its event feed was read.
create table payment_dispute (
    dispute_id         text primary key,
    payment_attempt_id bigint      not null references payment_attempt,
    reason             text        not null,
    status             text        not null check (status in ('open', 'won', 'lost')),
    opened_at          timestamptz not null default now(),
    closed_at          timestamptz
);

create table gateway_event_cursor (
    only_row      boolean primary key default true check (only_row),
    last_sequence bigint  not null
);
insert into gateway_event_cursor (last_sequence) values (0);
