-- Orders, payments, risk decisions, verification codes.

create table customer_order (
    order_id bigint generated always as identity primary key,
    -- What shoppers and the risk sidecar see: ord_<ulid>.
    public_id text not null unique,
    account_id bigint not null references account,
    -- The checkout form's key: a double submission finds this order instead of making another.
    checkout_key text not null unique,
    status text not null check (status in ('pending', 'awaiting_verification', 'paid', 'rejected', 'cancelled')),
    total_minor bigint not null check (total_minor >= 0),
    currency char(3) not null,
    shipping_country char(2) not null,
    billing_country char(2) not null,
    -- The gateway's token and what may be shown; never the card number.
    card_token text not null,
    card_fingerprint text not null,
    card_bin text not null,
    card_last4 text not null,
    device_id text,
    ip text,
    -- Set when a decision came from the fallback policy (sidecar down, slow, garbled).
    needs_review boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index customer_order_account on customer_order (account_id, created_at desc);

create table order_item (
    order_id bigint not null references customer_order on delete cascade,
    product_id bigint not null references product,
    sku text not null,
    name text not null,
    quantity integer not null check (quantity > 0),
    unit_price_minor bigint not null check (unit_price_minor >= 0),
    primary key (order_id, product_id)
);

-- Every change of an order's status, in order.
create table order_event (
    order_event_id bigint generated always as identity primary key,
    order_id bigint not null references customer_order on delete cascade,
    from_status text,
    to_status text not null,
    detail jsonb not null default '{}',
    created_at timestamptz not null default now()
);
create index order_event_order on order_event (order_id, order_event_id);

-- One row per payment attempt; its key is the idempotency key of every gateway call
-- and the risk decision's transaction id.
create table payment_attempt (
    payment_attempt_id bigint generated always as identity primary key,
    order_id bigint not null references customer_order on delete cascade,
    attempt integer not null check (attempt > 0),
    idempotency_key text not null unique,
    authorisation_id text,
    status text not null check (status in ('started', 'authorised', 'declined', 'captured', 'voided')),
    decline_code text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (order_id, attempt)
);

create table risk_decision (
    payment_attempt_id bigint primary key references payment_attempt on delete cascade,
    -- 'sidecar' or 'fallback' (the configured policy when the sidecar failed).
    source text not null check (source in ('sidecar', 'fallback', 'disabled')),
    decision_id text,
    outcome text not null check (outcome in ('allow', 'challenge', 'block')),
    score double precision,
    reasons jsonb not null default '[]',
    model_version text,
    policy_version text,
    degraded jsonb not null default '[]',
    -- Why the fallback was used: timeout, unavailable, invalid_response.
    fallback_reason text,
    latency_us bigint not null,
    created_at timestamptz not null default now()
);

create table verification (
    order_id bigint primary key references customer_order on delete cascade,
    -- SHA-256 of the code salted with the order's public id.
    code_hash bytea not null,
    expires_at timestamptz not null,
    attempts integer not null default 0,
    max_attempts integer not null,
    status text not null check (status in ('pending', 'passed', 'failed', 'expired')),
    created_at timestamptz not null default now()
);

-- The development mailbox: what the shop would e-mail.
create table mailbox_message (
    mailbox_message_id bigint generated always as identity primary key,
    recipient text not null,
    subject text not null,
    body text not null,
    created_at timestamptz not null default now()
);

-- The sandbox payment gateway's own books (a real gateway keeps these on its side).
-- It never stores the card number either: a token, a fingerprint, BIN and last four.
create table sandbox_card (
    token text primary key,
    fingerprint text not null,
    bin text not null,
    last4 text not null,
    -- Decided at tokenisation from the documented test numbers.
    behaviour text not null,
    created_at timestamptz not null default now()
);

create table sandbox_authorisation (
    authorisation_id text primary key,
    idempotency_key text not null unique,
    token text not null references sandbox_card,
    amount_minor bigint not null,
    currency char(3) not null,
    status text not null check (status in ('authorised', 'declined', 'captured', 'voided', 'refunded')),
    decline_code text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Every money movement the sandbox performed; a capture key is used at most once.
create table sandbox_operation (
    sandbox_operation_id bigint generated always as identity primary key,
    authorisation_id text not null references sandbox_authorisation,
    kind text not null check (kind in ('capture', 'void', 'refund')),
    idempotency_key text not null,
    amount_minor bigint not null,
    created_at timestamptz not null default now(),
    unique (kind, idempotency_key)
);
