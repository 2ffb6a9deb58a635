//! The customer's verdict on a hand-over: is the restored data right, and
//! how was the help (1–5, a comment). Given once, by the requester, after
//! the restore completed; "not right" reopens the ticket to its engineer.
//! `decide` is the whole rule, a pure function.

use chrono::{DateTime, Utc};

use super::ids::{TicketId, UserId};
use super::text::forbidden_char;
use super::ticket::{MAX_REASON_CHARS, TicketCommand, TicketState, checked_text};

string_enum! {
    /// How the verdict reached the desk.
    pub enum VerdictChannel ("verdict channel") {
        /// The ticket page or the API, signed in.
        Desk = "desk",
        /// The one-click link of the completed email.
        EmailLink = "email_link",
    }
}

/// What the customer says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerdictInput {
    pub data_right: bool,
    /// Required when the data is not right: what is wrong.
    pub comment: String,
    /// 1 to 5.
    pub rating: i64,
    pub rating_comment: String,
}

/// A verdict as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ticket_id: TicketId,
    pub requester_id: UserId,
    /// Who worked the ticket: ratings are shown by engineer.
    pub engineer_id: Option<UserId>,
    pub data_right: bool,
    pub comment: Option<String>,
    pub rating: i64,
    pub rating_comment: Option<String>,
    pub channel: VerdictChannel,
    pub given_at: DateTime<Utc>,
}

/// Why a verdict is refused. Nothing is stored on a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerdictRefusal {
    #[error("only the person who filed the request may say whether its data is right")]
    NotRequester,
    #[error("the restore has not been handed over yet")]
    NotHandedOver,
    #[error("a verdict was given already: thank you")]
    AlreadyGiven,
    #[error("{message}")]
    BadInput {
        field: &'static str,
        message: String,
    },
}

/// The facts a verdict is decided on, read by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictFacts {
    pub state: TicketState,
    pub by_requester: bool,
    pub already_given: bool,
}

/// What a verdict does: the record, and the ticket command it causes
/// (a reopening when the data is not right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictDecision {
    pub data_right: bool,
    pub comment: Option<String>,
    pub rating: i64,
    pub rating_comment: Option<String>,
    pub ticket_command: Option<TicketCommand>,
}

fn optional_text(field: &'static str, text: &str) -> Result<Option<String>, VerdictRefusal> {
    if text.trim().is_empty() {
        if let Some((_, c)) = forbidden_char(text) {
            return Err(VerdictRefusal::BadInput {
                field,
                message: super::text::forbidden_char_message(field, c),
            });
        }
        return Ok(None);
    }
    checked_text(field, text, MAX_REASON_CHARS)
        .map(Some)
        .map_err(|r| match r {
            super::ticket::Refusal::BadText { field, message } => {
                VerdictRefusal::BadInput { field, message }
            }
            other => VerdictRefusal::BadInput {
                field,
                message: other.to_string(),
            },
        })
}

/// Decides a verdict. Checks run in a fixed order — who, when, once, input.
pub fn decide(
    facts: VerdictFacts,
    input: &VerdictInput,
) -> Result<VerdictDecision, VerdictRefusal> {
    if !facts.by_requester {
        return Err(VerdictRefusal::NotRequester);
    }
    if facts.already_given {
        return Err(VerdictRefusal::AlreadyGiven);
    }
    if facts.state != TicketState::Completed {
        return Err(VerdictRefusal::NotHandedOver);
    }
    if !(1..=5).contains(&input.rating) {
        return Err(VerdictRefusal::BadInput {
            field: "rating",
            message: "Rate the help from 1 (poor) to 5 (excellent)".into(),
        });
    }
    let comment = optional_text("comment", &input.comment)?;
    let rating_comment = optional_text("rating_comment", &input.rating_comment)?;
    let ticket_command = if input.data_right {
        None
    } else {
        let Some(comment) = comment.clone() else {
            return Err(VerdictRefusal::BadInput {
                field: "comment",
                message: "Say what is not right, so the engineer knows where to look".into(),
            });
        };
        Some(TicketCommand::Reopen { comment })
    };
    Ok(VerdictDecision {
        data_right: input.data_right,
        comment,
        rating: input.rating,
        rating_comment,
        ticket_command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(state: TicketState, by_requester: bool, already_given: bool) -> VerdictFacts {
        VerdictFacts {
            state,
            by_requester,
            already_given,
        }
    }

    fn input(data_right: bool, comment: &str, rating: i64) -> VerdictInput {
        VerdictInput {
            data_right,
            comment: comment.into(),
            rating,
            rating_comment: String::new(),
        }
    }

    #[test]
    fn once_by_the_requester_after_hand_over() {
        use TicketState as S;
        let good = input(true, "", 5);
        let cases = [
            (facts(S::Completed, true, false), Ok(())),
            (
                facts(S::Completed, false, false),
                Err(VerdictRefusal::NotRequester),
            ),
            (
                facts(S::Completed, true, true),
                Err(VerdictRefusal::AlreadyGiven),
            ),
            (
                facts(S::Restoring, true, false),
                Err(VerdictRefusal::NotHandedOver),
            ),
            (
                facts(S::InReview, true, false),
                Err(VerdictRefusal::NotHandedOver),
            ),
            // Someone else is refused as such, whatever the state.
            (
                facts(S::Restoring, false, true),
                Err(VerdictRefusal::NotRequester),
            ),
        ];
        for (f, expected) in cases {
            assert_eq!(decide(f, &good).map(|_| ()), expected, "{f:?}");
        }
    }

    #[test]
    fn not_right_reopens_with_its_comment_and_needs_one() {
        let f = facts(TicketState::Completed, true, false);
        let d = decide(f, &input(false, "  the 14:20 orders are missing ", 2)).unwrap();
        assert_eq!(
            d.ticket_command,
            Some(TicketCommand::Reopen {
                comment: "the 14:20 orders are missing".into()
            })
        );
        assert!(matches!(
            decide(f, &input(false, "  ", 2)),
            Err(VerdictRefusal::BadInput {
                field: "comment",
                ..
            })
        ));
        let right = decide(f, &input(true, "", 4)).unwrap();
        assert_eq!(right.ticket_command, None);
        assert_eq!(right.comment, None);
    }

    #[test]
    fn ratings_and_comments_are_bounded() {
        let f = facts(TicketState::Completed, true, false);
        for rating in [0, 6, -1] {
            assert!(matches!(
                decide(f, &input(true, "", rating)),
                Err(VerdictRefusal::BadInput {
                    field: "rating",
                    ..
                })
            ));
        }
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        assert!(matches!(
            decide(f, &input(false, &long, 3)),
            Err(VerdictRefusal::BadInput {
                field: "comment",
                ..
            })
        ));
        let mut with_nul = input(true, "", 3);
        with_nul.rating_comment = "fine\u{0}".into();
        assert!(matches!(
            decide(f, &with_nul),
            Err(VerdictRefusal::BadInput {
                field: "rating_comment",
                ..
            })
        ));
    }
}
