//! The staff commands a path names, as the pages and the API both take
//! them.

use crate::domain::ticket::TicketCommand;

/// The command an action's path names, and the text the engineer typed;
/// `inspect`: an approval asks the customer to inspect the copy first.
pub fn staff_command(
    action: &str,
    body: &str,
    reason: &str,
    inspect: bool,
) -> Option<(TicketCommand, String)> {
    let body = body.to_string();
    let reason = reason.to_string();
    Some(match action {
        "claim" => (TicketCommand::Claim, String::new()),
        "request-info" => (
            TicketCommand::RequestInfo {
                message: body.clone(),
            },
            body,
        ),
        "approve" => (TicketCommand::Approve { inspect }, String::new()),
        "reject" => (
            TicketCommand::Reject {
                reason: reason.clone(),
            },
            reason,
        ),
        "retry" => (TicketCommand::Retry, String::new()),
        "resolve" => (TicketCommand::Resolve, String::new()),
        "cancel-restore" => (
            TicketCommand::CancelRestore {
                reason: reason.clone(),
            },
            reason,
        ),
        "reply" => (TicketCommand::Reply { body: body.clone() }, body),
        "note" => (TicketCommand::Note { body: body.clone() }, body),
        _ => return None,
    })
}
