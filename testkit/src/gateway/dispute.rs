//! Disputes, as processors report them: a captured payment the cardholder's bank
//! contests is opened as a dispute, later won or lost by the merchant. Merchants learn
//! of them from the event feed (`GET /v1/events?after=<sequence>`), in order; the test
//! hooks `POST /test/disputes` and `POST /test/disputes/{id}/close` play the bank.

use serde::Serialize;

use super::{Books, BooksError};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dispute {
    pub dispute_id: String,
    pub authorisation_id: String,
    /// The merchant's idempotency key of the authorisation: how it finds its payment.
    pub idempotency_key: String,
    /// The network's reason, e.g. `fraudulent`, `product_not_received`.
    pub reason: String,
    /// `needs_response`, `won` or `lost`.
    pub status: String,
}

/// One entry of the event feed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// 1, 2, 3…: a merchant asks for the events after the last it has seen.
    pub sequence: u64,
    /// `dispute.opened`, `dispute.won`, `dispute.lost`.
    pub kind: String,
    pub dispute: Dispute,
}

/// Reasons take the networks' vocabulary: lower-case words and underscores.
fn valid_reason(reason: &str) -> bool {
    (1..=64).contains(&reason.len()) && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

impl Books {
    /// Opens a dispute on a captured authorisation.
    pub fn open_dispute(&self, authorisation_id: &str, reason: &str) -> Result<Dispute, BooksError> {
        if !valid_reason(reason) {
            return Err(BooksError::WrongState("invalid_reason".to_owned()));
        }
        let mut inner = self.lock();
        let authorisation = inner
            .authorisations
            .get(authorisation_id)
            .ok_or(BooksError::UnknownAuthorisation)?;
        if authorisation.status != "captured" {
            return Err(BooksError::WrongState(authorisation.status.clone()));
        }
        let dispute = Dispute {
            dispute_id: format!("dp_{}", ulid::Ulid::new().to_string().to_lowercase()),
            authorisation_id: authorisation_id.to_owned(),
            idempotency_key: authorisation.idempotency_key.clone(),
            reason: reason.to_owned(),
            status: "needs_response".to_owned(),
        };
        inner.disputes.insert(dispute.dispute_id.clone(), dispute.clone());
        inner.push_event("dispute.opened", &dispute);
        Ok(dispute)
    }

    /// Closes an open dispute, won or lost by the merchant.
    pub fn close_dispute(&self, dispute_id: &str, won: bool) -> Result<Dispute, BooksError> {
        let mut inner = self.lock();
        let dispute = inner
            .disputes
            .get_mut(dispute_id)
            .ok_or(BooksError::UnknownAuthorisation)?;
        if dispute.status != "needs_response" {
            return Err(BooksError::WrongState(dispute.status.clone()));
        }
        dispute.status = if won { "won" } else { "lost" }.to_owned();
        let dispute = dispute.clone();
        inner.push_event(if won { "dispute.won" } else { "dispute.lost" }, &dispute);
        Ok(dispute)
    }

    /// Events after `sequence`, oldest first, at most `limit`.
    pub fn events(&self, after: u64, limit: usize) -> Vec<Event> {
        let inner = self.lock();
        inner
            .events
            .iter()
            .filter(|e| e.sequence > after)
            .take(limit)
            .cloned()
            .collect()
    }
}

impl super::Inner {
    fn push_event(&mut self, kind: &str, dispute: &Dispute) {
        let sequence = self.events.len() as u64 + 1;
        self.events.push(Event {
            sequence,
            kind: kind.to_owned(),
            dispute: dispute.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{CardInput, Operation};

    fn captured(books: &Books) -> String {
        let card = CardInput {
            number: crate::gateway::approved_card(1),
            exp_month: 12,
            exp_year: 2099,
            cvc: "123".into(),
        };
        let token = books.tokenise(&card).expect("token");
        let a = books.authorise("ord:pay_1", &token.token, 100, "EUR").expect("auth");
        books
            .settle(Operation::Capture, "ord:pay_1:capture", &a.authorisation_id)
            .expect("capture");
        a.authorisation_id
    }

    #[test]
    fn fingerprints_hold_no_digits_so_never_a_card_number() {
        let books = Books::new(b"k");
        for n in 0..2000 {
            let card = CardInput {
                number: crate::gateway::approved_card(n),
                exp_month: 12,
                exp_year: 2099,
                cvc: "123".into(),
            };
            let fp = books.tokenise(&card).expect("token").fingerprint;
            assert!(!fp.bytes().any(|b| b.is_ascii_digit()), "{fp}");
            let bytes = crate::gateway::from_letters(&fp[3..]).expect("decodes");
            assert_eq!(crate::gateway::letters(&bytes), fp[3..]);
        }
    }

    #[test]
    fn a_dispute_opens_on_a_capture_and_closes_once_in_the_feed() {
        let books = Books::new(b"k");
        let id = captured(&books);
        let d = books.open_dispute(&id, "fraudulent").expect("opens");
        assert_eq!(d.idempotency_key, "ord:pay_1");
        assert_eq!(
            books.close_dispute(&d.dispute_id, false).expect("closes").status,
            "lost"
        );
        assert!(matches!(
            books.close_dispute(&d.dispute_id, true),
            Err(BooksError::WrongState(_))
        ));
        let kinds: Vec<String> = books.events(0, 10).into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["dispute.opened", "dispute.lost"]);
        assert_eq!(books.events(1, 10).len(), 1);
        assert!(matches!(
            books.open_dispute("auth_nope", "fraudulent"),
            Err(BooksError::UnknownAuthorisation)
        ));
        assert!(matches!(
            books.open_dispute(&id, "Bad Reason"),
            Err(BooksError::WrongState(_))
        ));
    }
}
