-- The risk decision now comes before the authorisation, and a request the sidecar
-- refuses holds the order for review instead of falling back.

-- Authorised and held for a person to decide; nothing captured.
alter table customer_order drop constraint customer_order_status_check;
alter table customer_order add constraint customer_order_status_check
    check (status in ('pending', 'awaiting_verification', 'in_review', 'paid', 'rejected', 'cancelled'));

-- What the shop sent the sidecar as the user agent (cleaned), so that a retry sends
-- the same request.
alter table customer_order add column user_agent text;

-- A blocked attempt is never authorised.
alter table payment_attempt drop constraint payment_attempt_status_check;
alter table payment_attempt add constraint payment_attempt_status_check
    check (status in ('started', 'authorised', 'declined', 'captured', 'voided', 'blocked'));

-- 'refused': the sidecar answered our request with a 4xx (not 429); the outcome is
-- 'review' and `refused_status` keeps the status.
alter table risk_decision drop constraint risk_decision_source_check;
alter table risk_decision add constraint risk_decision_source_check
    check (source in ('sidecar', 'fallback', 'refused', 'disabled'));
alter table risk_decision drop constraint risk_decision_outcome_check;
alter table risk_decision add constraint risk_decision_outcome_check
    check (outcome in ('allow', 'challenge', 'block', 'review'));
alter table risk_decision add column refused_status integer;

-- The sandbox gateway is a service of its own now (`sandbox-gateway`): its books leave
-- the shop's database. Fingerprints made with the key the shop used to hold (it was in
-- the repository) are redacted: beside the BIN and last four, 10^6 guesses with that
-- key gave the card number back.
drop table sandbox_operation;
drop table sandbox_authorisation;
drop table sandbox_card;
update customer_order set card_fingerprint = 'fp_redacted';
