-- Accounts and their refresh tokens. Append-only: never edit a migration once applied.

create table account (
    account_id bigint generated always as identity primary key,
    -- Stored lower-cased; one account per address.
    email text not null unique check (email = lower(email) and position('@' in email) > 1),
    -- argon2id in PHC string format (salt and parameters included).
    password_hash text not null,
    role text not null default 'shopper' check (role in ('shopper', 'analyst', 'admin')),
    created_at timestamptz not null default now()
);

-- Rotating refresh tokens: each use replaces the token with a new one of the same
-- family. A token presented after it was replaced means it leaked: the whole family
-- is revoked.
create table refresh_token (
    refresh_token_id bigint generated always as identity primary key,
    account_id bigint not null references account on delete cascade,
    family text not null,
    -- SHA-256 of the token; the token itself is only ever in the shopper's cookie.
    token_hash bytea not null unique,
    expires_at timestamptz not null,
    replaced_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz not null default now()
);
create index refresh_token_family on refresh_token (family);
