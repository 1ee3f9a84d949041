-- The risk sidecar's decision log, labels and payment outcomes (the contract's SQL
-- interface for analysts). Applied by the sidecar at start-up with its own history
-- table (risk_schema_history); the shop's migrations sit one folder up and skip these.
create schema if not exists risk;

-- One row per decision, partitioned by day of decided_at. decided_at is the time in
-- the decision id's ULID, so (decided_at, decision_id) is unique exactly when
-- decision_id is: PostgreSQL needs the partition key in a partitioned table's key.
-- The sidecar creates partitions ahead and drops those past decision_log.retention_days.
create table risk.decisions (
    decision_id       text        not null,
    transaction_id    text        not null,
    decided_at        timestamptz not null,
    occurred_at       timestamptz not null,
    decision          text        not null check (decision in ('allow', 'challenge', 'block')),
    score             double precision not null,
    reasons           jsonb       not null,
    features          jsonb       not null,
    model_version     text        not null,
    policy_version    text        not null,
    degraded          text[]      not null default '{}',
    customer_id       text        not null,
    account_created_at timestamptz,
    email_domain      text,
    email_hash        text,
    payment_method    text        not null,
    card_fingerprint  text,
    card_bin          text,
    card_last4        text,
    card_country      text,
    ip                inet,
    device_id         text,
    shipping_country  text,
    billing_country   text,
    amount_minor      bigint      not null,
    currency          text        not null,
    items             jsonb       not null default '[]',
    metadata          jsonb       not null default '{}',
    -- Inputs a replay needs that are not features (a threat-intelligence answer, later).
    inputs            jsonb       not null default '{}',
    evaluated_in_us   integer     not null,
    primary key (decided_at, decision_id)
) partition by range (decided_at);

-- Labels and outcomes find their decision by transaction id. Each index costs every
-- insert (make bench measures the log's PostgreSQL CPU per decision): the console adds
-- the ones its queries need.
create index decisions_transaction_id on risk.decisions (transaction_id);

-- Every label is kept; the same label from the same source again is one row.
create table risk.labels (
    transaction_id text        not null,
    label          text        not null check (label in ('fraud', 'legitimate')),
    source         text        not null check (source in
                       ('chargeback', 'manual_review', 'customer_report', 'challenge_failed', 'challenge_passed')),
    occurred_at    timestamptz not null,
    recorded_at    timestamptz not null default now(),
    reason         text,
    reported_by    text,
    primary key (transaction_id, label, source)
);
create index labels_recorded_at on risk.labels (recorded_at);

create table risk.outcomes (
    transaction_id text        not null,
    status         text        not null check (status in
                       ('authorised', 'declined', 'captured', 'voided', 'refunded', 'disputed')),
    code           text,
    occurred_at    timestamptz not null,
    recorded_at    timestamptz not null default now(),
    primary key (transaction_id, status)
);
create index outcomes_recorded_at on risk.outcomes (recorded_at);

-- The transaction's label: highest precedence, the latest among equals.
create view risk.transaction_labels as
select distinct on (transaction_id)
       transaction_id, label, source, occurred_at, recorded_at, reason, reported_by
  from risk.labels
 order by transaction_id,
          case source when 'chargeback' then 5 when 'manual_review' then 4 when 'customer_report' then 3
                      when 'challenge_failed' then 2 else 1 end desc,
          occurred_at desc, recorded_at desc;
